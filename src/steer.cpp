// steer.cpp — zdd.pause / resume / throttle / wait: steering a backfill
// from SQL while it runs. Changes land in the catalog row, which the
// worker reads under a row lock at every batch, so they take effect at
// the next batch without a restart.
#include "backfill.hpp"
#include "ddl.hpp"
#include "partitions.hpp"
#include "table.hpp"
#include "twins.hpp"

extern "C" {
#include "datatype/timestamp.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"
#include "utils/timestamp.h"
}

namespace zdd {

namespace {

// Loads and locks transition id and checks the caller may steer it.
catalog::Transition steerable(int64_t id) {
  catalog::Transition t = catalog::load(id, true);
  table::check_may_steer(t);
  return t;
}

// Raises 55000: the call does not fit the transition's phase or state.
[[noreturn]] void wrong_phase(const catalog::Transition &t, const std::string &what) {
  throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
              fmt::format("zdd: cannot {} transition {}: phase is {}, backfill is {}", what, t.id,
                          t.phase, t.backfill_state));
}

// zdd.pause(): running → paused; the worker skips it from its next batch.
Datum pause(FunctionCallInfo fcinfo) {
  spi::Connection spi;
  catalog::Transition t = steerable(PG_GETARG_INT64(0));
  if (t.phase != "backfilling" || (t.backfill_state != "running" && t.backfill_state != "waiting"))
    wrong_phase(t, "pause");
  catalog::set_backfill_state(t, "paused", "pause");
  PG_RETURN_VOID();
}

// zdd.resume(): (re)starts the backfill — pending, paused, failed, or
// stalled with no live worker; a running one with a worker is left alone.
Datum resume(FunctionCallInfo fcinfo) {
  spi::Connection spi;
  catalog::Transition t = steerable(PG_GETARG_INT64(0));
  if (t.phase == "backfilled" && t.table_exists) {
    // Twins for what was added to the old column since the twins pass
    // (complete refuses until they exist): run that pass again.
    bool missing = false;
    for (const auto &it : twins::plan(t.relid, t.old_column, t.new_column))
      missing = missing || !OidIsValid(it.twin);
    // A partitioned table: partitions attached since the backfill are
    // walked first (backfill and verify), then the twins pass.
    bool leaves_behind = false;
    if (partitions::is_partitioned(t.relid)) {
      (void)partitions::sync_leaves(t.id, t.relid);
      leaves_behind = !partitions::unfinished_leaves(t.id, t.relid).empty();
    }
    if (!missing && !leaves_behind) wrong_phase(t, "resume");
    if (leaves_behind)
      catalog::execute("UPDATE zdd.transition SET pass = 'backfill', backfill_state = 'running', "
                       "next_try_at = NULL WHERE id = $1",
                       {spi::p_int8(t.id)});
    else
    catalog::execute("UPDATE zdd.transition SET pass = 'twins', next_try_at = NULL WHERE id = $1",
                     {spi::p_int8(t.id)});
    catalog::set_phase(t, "backfilling",
                       leaves_behind ? "resume: backfill partitions attached since" : "resume: build missing twins");
    t.phase = "backfilling";
    backfill::request_start(t);
    PG_RETURN_VOID();
  }
  const bool startable =
      (t.phase == "expanded" && t.backfill_state == "pending") ||
      (t.phase == "backfilling" &&
       (t.backfill_state == "paused" || t.backfill_state == "failed" ||
        t.backfill_state == "running" || t.backfill_state == "waiting"));
  if (!startable) wrong_phase(t, "resume");
  const bool going = t.backfill_state == "running" || t.backfill_state == "waiting";
  if (going && backfill::worker_alive()) {
    pg_call([&] {
      ereport(NOTICE, (errmsg("zdd: the backfill of transition " INT64_FORMAT " is already running",
                              t.id)));
    });
    PG_RETURN_VOID();
  }
  backfill::request_start(t);
  PG_RETURN_VOID();
}

// Reads integer argument n as an optional new value (NULL: unchanged).
std::optional<int> opt_int(FunctionCallInfo fcinfo, int n, const char *name, bool zero_ok) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  return table::check_throttle_value(name, PG_GETARG_INT32(n), zero_ok);
}

// Microseconds in an interval (a month counts 30 days).
// Saturates at INT64_MIN / INT64_MAX instead of overflowing.
int64_t interval_usecs(const Interval *iv) {
  int64_t days, months, r;
  if (__builtin_mul_overflow(int64_t(iv->day), USECS_PER_DAY, &days) ||
      __builtin_mul_overflow(int64_t(iv->month), 30 * USECS_PER_DAY, &months) ||
      __builtin_add_overflow(iv->time, days, &r) || __builtin_add_overflow(r, months, &r))
    return (iv->month < 0 || iv->day < 0 || iv->time < 0) ? INT64_MIN : INT64_MAX;
  return r;
}

// Reads interval argument n as an optional limit in units of unit_usecs
// (NULL: unchanged); negative: 22023.
std::optional<int64_t> opt_interval(FunctionCallInfo fcinfo, int n, const char *name, int64_t unit_usecs) {
  if (PG_ARGISNULL(n)) return std::nullopt;
  const int64_t us = interval_usecs(PG_GETARG_INTERVAL_P(n));
  if (us < 0 || us / unit_usecs > INT_MAX)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                fmt::format("zdd: {} must be zero or more and under {} {}", name, INT_MAX,
                            unit_usecs == 1000 ? "ms" : "s"));
  return us / unit_usecs;
}

// zdd.throttle(): new throttle values and health limits, read by the
// worker at its next batch. Every value is checked before anything changes.
Datum throttle(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "zdd: throttle needs an id");
  const auto batch = opt_int(fcinfo, 1, "batch_size", false);
  const auto pause = opt_int(fcinfo, 2, "pause_ms", true);
  const auto rate = opt_int(fcinfo, 3, "max_rows_per_sec", true);
  const auto target = opt_int(fcinfo, 4, "target_batch_ms", true);
  // 0.1.0's SQL definition (before ALTER EXTENSION zdd UPDATE) passes
  // only the first five arguments.
  const bool health_args = PG_NARGS() > 10;
  std::optional<std::string> lag_text;
  if (health_args && !PG_ARGISNULL(5))
    lag_text = pg_call([&] { return std::string(text_to_cstring(PG_GETARG_TEXT_PP(5))); });
  std::optional<int64_t> delay_ms, age_s;
  std::optional<int> backlog;
  if (health_args) {
    delay_ms = opt_interval(fcinfo, 6, "max_replica_delay", 1000);
    backlog = opt_int(fcinfo, 7, "max_archive_backlog", true);
    age_s = opt_interval(fcinfo, 10, "max_transaction_age", USECS_PER_SEC);
  }
  std::optional<double> dead;
  if (health_args && !PG_ARGISNULL(8)) {
    dead = PG_GETARG_FLOAT8(8);
    if (!(*dead >= 0 && *dead <= 1000))
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  fmt::format("zdd: max_dead_tuples must be a share between 0 and 1000 (got {})", *dead),
                  {}, "0.5: wait while dead tuples exceed half the live ones; 0: never wait for it.");
  }
  std::optional<bool> autovac;
  if (health_args && !PG_ARGISNULL(9)) autovac = PG_GETARG_BOOL(9) != 0;
  const bool limits = lag_text || delay_ms || backlog || dead || autovac || age_s;
  spi::Connection spi;
  std::optional<int64_t> lag;
  if (lag_text) {
    auto rows = spi::query("SELECT pg_catalog.pg_size_bytes($1)", {spi::p_text(lag_text)});
    lag = std::stoll(*rows[0][0]);
    if (*lag < 0)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                  fmt::format("zdd: max_replica_lag must be zero or more (got {})", *lag_text), {},
                  "A size such as '100MB'; 0: never wait for replicas.");
  }
  catalog::Transition t = steerable(PG_GETARG_INT64(0));
  if (t.phase == "completed" || t.phase == "aborted") wrong_phase(t, "throttle");
  auto p = [](const std::optional<int> &v) {
    return v ? spi::p_int4(*v) : spi::Param{INT4OID, std::nullopt};
  };
  auto p8 = [](const std::optional<int64_t> &v) {
    return v ? spi::p_int8(*v) : spi::Param{INT8OID, std::nullopt};
  };
  catalog::execute(
      "UPDATE zdd.transition SET batch_size = COALESCE($2, batch_size), "
      "pause_ms = COALESCE($3, pause_ms), "
      "max_rows_per_sec = COALESCE($4, max_rows_per_sec), "
      "target_batch_ms = COALESCE($5, target_batch_ms), "
      "batch_size_now = CASE WHEN $2 IS NOT NULL OR $5 IS NOT NULL THEN NULL "
      "  ELSE batch_size_now END, updated_at = pg_catalog.now() WHERE id = $1",
      {spi::p_int8(t.id), p(batch), p(pause), p(rate), p(target)});
  if (limits)
    catalog::execute(
        "UPDATE zdd.transition SET max_replica_lag = COALESCE($2, max_replica_lag), "
        "max_replica_delay_ms = COALESCE($3::pg_catalog.int4, max_replica_delay_ms), "
        "max_archive_backlog = COALESCE($4, max_archive_backlog), "
        "max_dead_tuples = COALESCE($5::pg_catalog.float8, max_dead_tuples), "
        "wait_for_autovacuum = COALESCE($6::pg_catalog.bool, wait_for_autovacuum), "
        "max_transaction_age_s = COALESCE($7::pg_catalog.int4, max_transaction_age_s) WHERE id = $1",
        {spi::p_int8(t.id), p8(lag), p8(delay_ms), p(backlog),
         spi::p_text(dead ? std::optional<std::string>(fmt::format("{}", *dead)) : std::nullopt),
         spi::p_text(autovac ? std::optional<std::string>(*autovac ? "true" : "false") : std::nullopt),
         p8(age_s)});
  auto show = [](const auto &v) { return v ? fmt::format("{}", *v) : std::string("-"); };
  std::string detail = fmt::format("throttle: batch_size {}, pause_ms {}, max_rows_per_sec {}, "
                                   "target_batch_ms {}",
                                   show(batch), show(pause), show(rate), show(target));
  if (limits)
    detail += fmt::format("; max_replica_lag {}, max_replica_delay_ms {}, max_archive_backlog {}, "
                          "max_dead_tuples {}, wait_for_autovacuum {}, max_transaction_age_s {}",
                          show(lag), show(delay_ms), show(backlog), show(dead), show(autovac), show(age_s));
  catalog::add_history(t.id, "backfill", t.backfill_state, t.backfill_state, detail);
  PG_RETURN_VOID();
}

// CALL zdd.wait(id, timeout): polls every 100 ms, COMMITTING between polls
// so that it holds no snapshot while it waits: a snapshot held here would
// make the backfill's CREATE INDEX CONCURRENTLY wait for it, and the two
// would wait for each other.
Datum wait(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "zdd: wait needs an id");
  const int64_t id = PG_GETARG_INT64(0);
  const int64_t timeout = PG_ARGISNULL(1) ? INT64_MAX : interval_usecs(PG_GETARG_INTERVAL_P(1));
  const bool atomic = !(fcinfo->context && IsA(fcinfo->context, CallContext)) ||
                      castNode(CallContext, fcinfo->context)->atomic;
  if (atomic)
    throw Error(ERRCODE_ACTIVE_SQL_TRANSACTION,
                "zdd: CALL zdd.wait() cannot run inside a transaction block",
                "It commits between polls, so that it holds no snapshot the backfill's "
                "concurrent index builds would have to wait for.",
                "Call it on its own (autocommit), e.g. from a migration that runs outside a "
                "transaction (see the README's recipes for migration tools).");
  // The result row must outlive SPI_finish (the Connection's destructor runs
  // after the return value is built): build it in the caller's context.
  MemoryContext caller = CurrentMemoryContext;
  spi::Connection spi(true);
  const TimestampTz start = pg_call([] { return GetCurrentTimestamp(); });
  int stalled_polls = 0;
  for (;;) {
    catalog::Transition t = catalog::load(id, false);
    if (t.phase == "backfilled" || t.phase == "completed") {
      TupleDesc desc;
      pg_call([&] {
        MemoryContextSwitchTo(caller);
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
          elog(ERROR, "zdd.wait: return type must be a row type");
      });
      std::string phase = t.phase;
      return pg_call([&] {
        MemoryContextSwitchTo(caller);
        Datum v = CStringGetTextDatum(phase.c_str());
        bool isnull = false;
        desc = BlessTupleDesc(desc);
        return HeapTupleGetDatum(heap_form_tuple(desc, &v, &isnull));
      });
    }
    if (t.phase == "aborted")
      throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                  fmt::format("zdd: transition {} was aborted", id));
    if (t.backfill_state == "failed") {
      auto rows = spi::query("SELECT last_error FROM zdd.transition WHERE id = $1", {spi::p_int8(id)});
      throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                  fmt::format("zdd: the backfill of transition {} failed", id),
                  rows.empty() || !rows[0][0] ? std::string() : *rows[0][0],
                  "Fix the cause, then call zdd.resume(id).");
    }
    if (t.phase == "expanded" || t.backfill_state == "paused")
      throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                  fmt::format("zdd: the backfill of transition {} is {}", id,
                              t.phase == "expanded" ? "not started" : "paused"),
                  {}, "Call zdd.resume(id) first.");
    // Running: a backfill with no live worker for 5 s in a row is stalled.
    stalled_polls = backfill::worker_alive() ? 0 : stalled_polls + 1;
    if (stalled_polls >= 50)
      throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                  fmt::format("zdd: the backfill of transition {} is stalled: no worker runs it", id),
                  {}, "Call zdd.resume(id) to start a worker.");
    const TimestampTz now = pg_call([] { return GetCurrentTimestamp(); });
    if (now - start >= timeout)
      throw Error(ERRCODE_QUERY_CANCELED,
                  fmt::format("zdd: timed out waiting for the backfill of transition {}", id));
    pg_call([] { SPI_commit(); });
    ddl::sleep_ms(100);
  }
}

}  // namespace

}  // namespace zdd

// SQL entry points: one-line shims through the error boundary.
extern "C" {
PG_FUNCTION_INFO_V1(zdd_pause);
PG_FUNCTION_INFO_V1(zdd_resume);
PG_FUNCTION_INFO_V1(zdd_throttle);
PG_FUNCTION_INFO_V1(zdd_wait);
PGDLLEXPORT Datum zdd_pause(PG_FUNCTION_ARGS) { return zdd::boundary([&] { return zdd::pause(fcinfo); }); }
PGDLLEXPORT Datum zdd_resume(PG_FUNCTION_ARGS) { return zdd::boundary([&] { return zdd::resume(fcinfo); }); }
PGDLLEXPORT Datum zdd_throttle(PG_FUNCTION_ARGS) { return zdd::boundary([&] { return zdd::throttle(fcinfo); }); }
PGDLLEXPORT Datum zdd_wait(PG_FUNCTION_ARGS) { return zdd::boundary([&] { return zdd::wait(fcinfo); }); }
}
