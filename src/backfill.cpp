// backfill.cpp — one backfill batch, and recording progress and failures.
//
// A batch is one transaction that locks the transition's catalog row,
// writes the rows AND advances the cursor: a crash repeats at most the
// batch in flight. Passes, in phase 'backfilling':
//   backfill  visit every row in key order, write new := old where they
//             differ (zdd.differs: the sync trigger's equality);
//   verify    the same walk again; rows still out of step (written with
//             the trigger bypassed) are fixed and counted in verify_fixed;
//   twins     twins::build() outside any transaction, then phase
//             'backfilled', backfill_state 'done'.
// Rows written by the apps after begin_rename committed went through the
// sync trigger and are already in step, so the walk writes only rows that
// need it: no write amplification.
//
// Key order: keyset over the primary key (composite keys too), cursor =
// the last key done, as text, cast back with the key types. The text form
// must read back as exactly that key: a rounded float key (role setting
// extra_float_digits < 1) would make the walk repeat a batch forever or
// skip every row between the key and its rounding, in both passes. So each
// batch runs with the output settings pinned (extra_float_digits 3,
// DateStyle ISO, IntervalStyle postgres, lc_monetary C: the same for every
// batch and every worker, whatever the role, database or configuration
// says), and the batch statement itself checks that the new cursor reads
// back equal to the last key; a key type whose text form does not round
// trip fails the backfill at once (0A000) rather than skip a row. Tables without
// a primary key: ctid page ranges [p, q). Why no row is skipped there: a
// row version present when the walk starts either stays on its page and is
// visited when its range is, or is moved by an UPDATE; an app UPDATE fires
// the sync trigger, so the moved version is in step; a backfill UPDATE
// writes it in step. Rows inserted after the start went through the
// trigger. So the walk stops at the table's size when the pass started
// (pages appended later hold only such in-step versions), and the verify
// pass checks all rows once more before 'backfilled'.
//
// Triggers: the batch runs with session_replication_role = replica, so the
// table's other triggers (and the sync trigger) do not fire for rows whose
// data they never saw change. This grants nothing the role lacks: the
// worker runs as a role that owns the table (checked at every batch) and
// could disable those triggers itself; the statement is zdd's own fixed
// text. RI triggers are not needed: the batch changes only the new column,
// which no foreign key references while the transition is open.
#include "backfill.hpp"
#include "ddl.hpp"
#include "settings.hpp"
#include "twins.hpp"
#include "xact.hpp"

#include <cmath>

extern "C" {
#include "common/pg_prng.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace zdd::backfill {

namespace {

int max_batch_failures = 5;

// A zdd.transition row as a batch needs it.
struct Job {
  int64_t id = 0;
  Oid relid = InvalidOid;
  std::string phase, state, pass, old_column, new_column;
  std::optional<std::string> cursor;  // text[] literal
  int batch_size = 0, target_ms = 0, pause_ms = 0, max_rate = 0, failures = 0;
  int64_t rows_done = 0, rows_total = -1;
};

// Loads and locks the catalog row of transition id (owner rights).
std::optional<Job> lock_job(int64_t id) {
  auto rows = catalog::query(
      "SELECT id, tbl::pg_catalog.oid, phase, backfill_state, pass, old_column, new_column, "
      "cursor::pg_catalog.text, COALESCE(batch_size_now, batch_size), target_batch_ms, "
      "pause_ms, max_rows_per_sec, failures, rows_done, COALESCE(rows_total, -1) "
      "FROM zdd.transition WHERE id = $1 FOR UPDATE",
      {spi::p_int8(id)});
  if (rows.empty()) return std::nullopt;
  const spi::Row &r = rows[0];
  Job j;
  j.id = std::stoll(*r[0]);
  j.relid = static_cast<Oid>(std::stoul(*r[1]));
  j.phase = *r[2];
  j.state = *r[3];
  j.pass = *r[4];
  j.old_column = *r[5];
  j.new_column = *r[6];
  j.cursor = r[7];
  j.batch_size = std::stoi(*r[8]);
  j.target_ms = std::stoi(*r[9]);
  j.pause_ms = std::stoi(*r[10]);
  j.max_rate = std::stoi(*r[11]);
  j.failures = std::stoi(*r[12]);
  j.rows_done = std::stoll(*r[13]);
  j.rows_total = std::stoll(*r[14]);
  return j;
}

// Quoted names and types of the primary key columns, in key order.
struct Key {
  std::vector<std::string> names, types;
};
// The primary key of relid (empty: the table has none).
Key primary_key(Oid relid) {
  auto rows = spi::query(
      "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
      "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
      "ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::pg_catalog.int2[]) "
      "WHERE i.indrelid = $1 AND i.indisprimary "
      "ORDER BY pg_catalog.array_position(i.indkey::pg_catalog.int2[], a.attnum)",
      {spi::p_oid(relid)});
  Key k;
  for (const auto &r : rows) {
    k.names.push_back(spi::ident(*r[0]));
    k.types.push_back(*r[1]);
  }
  return k;
}

// Joins "prefix<name>" for each key column with sep.
std::string key_list(const Key &k, const std::string &prefix, const std::string &suffix = {},
                     const std::string &sep = ", ") {
  std::string out;
  for (size_t i = 0; i < k.names.size(); ++i) {
    if (i) out += sep;
    out += prefix + k.names[i] + suffix;
  }
  return out;
}

// Outcome of one batch walk step.
struct Step {
  int64_t visited = 0, written = 0;
  std::optional<std::string> next_cursor;  // nullopt: the pass is finished
};

// One keyset batch: up to limit rows after the cursor.
Step keyset_batch(const Job &j, const Key &k, int limit) {
  const std::string rel = spi::qualified_relation(j.relid);
  const std::string oldc = spi::ident(j.old_column), newc = spi::ident(j.new_column);
  std::string after, tafter;
  if (j.cursor) {
    std::string bounds;
    for (size_t i = 0; i < k.types.size(); ++i)
      bounds += fmt::format("{}($1::pg_catalog.text[])[{}]::{}", i ? ", " : "", i + 1, k.types[i]);
    after = fmt::format("WHERE ({}) > ({})", key_list(k, ""), bounds);
    tafter = fmt::format("({}) > ({}) AND", key_list(k, "t."), bounds);
  }
  // The batch's keys b (at most limit, in key order after the cursor), its
  // last key l, then one UPDATE over the key range (cursor, l]: a range scan
  // of the primary key index, never a join against the whole table. b and
  // the UPDATE see the same snapshot, so they cover the same rows.
  std::string upto, readback;
  for (size_t i = 0; i < k.names.size(); ++i) {
    upto += fmt::format("{}(SELECT {} FROM l)", i ? ", " : "", k.names[i]);
    readback += fmt::format("{}c.zdd_cursor[{}]::{}", i ? ", " : "", i + 1, k.types[i]);
  }
  const std::string sql = fmt::format(
      "WITH b AS MATERIALIZED (SELECT {keys} FROM {rel} {after} ORDER BY {keys} LIMIT $2), "
      "l AS MATERIALIZED (SELECT {keys} FROM b ORDER BY {desckeys} LIMIT 1), "
      "u AS (UPDATE {rel} t SET {newc} = t.{oldc} WHERE {tafter} ({tkeys}) <= ({upto}) "
      "AND zdd.differs(t.{newc}, t.{oldc}) RETURNING 1), "
      "c AS (SELECT ARRAY[{textkeys}] AS zdd_cursor FROM l) "
      "SELECT (SELECT pg_catalog.count(*) FROM b), (SELECT pg_catalog.count(*) FROM u), "
      "(SELECT c.zdd_cursor::pg_catalog.text FROM c), "
      "(SELECT ({lkeys}) IS NOT DISTINCT FROM ({readback}) FROM l, c)",
      fmt::arg("keys", key_list(k, "")), fmt::arg("rel", rel), fmt::arg("after", after),
      fmt::arg("newc", newc), fmt::arg("oldc", oldc), fmt::arg("tkeys", key_list(k, "t.")),
      fmt::arg("tafter", tafter), fmt::arg("upto", upto),
      fmt::arg("textkeys", key_list(k, "", "::pg_catalog.text")),
      fmt::arg("desckeys", key_list(k, "", " DESC")), fmt::arg("readback", readback),
      fmt::arg("lkeys", key_list(k, "l.")));
  auto rows = spi::query(sql, {spi::p_text(j.cursor), spi::p_int4(limit)});
  Step s;
  s.visited = std::stoll(*rows[0][0]);
  s.written = std::stoll(*rows[0][1]);
  if (s.visited > 0) {
    if (!rows[0][3] || *rows[0][3] != "t")
      throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                  fmt::format("zdd: the primary key of {} does not read back from its text form",
                              rel),
                  fmt::format("Key {} read back as a different value; the backfill stops rather "
                              "than skip or repeat rows.",
                              rows[0][2].value_or("?")),
                  "Abort the transition, or give the table a primary key of another type.");
    s.next_cursor = rows[0][2];
  }
  return s;
}

// One ctid-range batch for a table without primary key: pages [p, q).
Step ctid_batch(const Job &j, int limit) {
  const std::string rel = spi::qualified_relation(j.relid);
  const std::string oldc = spi::ident(j.old_column), newc = spi::ident(j.new_column);
  // Cursor: {next page, end page}. The end is the table's size when the
  // pass started: pages added later hold only row versions written through
  // the sync trigger or by this walk, all in step (see the file comment).
  auto info = spi::query(
      "SELECT pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::int, "
      "CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages ELSE 50 END "
      "FROM pg_catalog.pg_class c WHERE c.oid = $1",
      {spi::p_oid(j.relid)});
  int64_t page = 0, nblocks = std::stoll(*info[0][0]);
  if (j.cursor) {
    const std::string &c = *j.cursor;  // "{page,end}"
    const size_t comma = c.find(',');
    page = std::stoll(c.substr(1, comma - 1));
    nblocks = std::stoll(c.substr(comma + 1, c.size() - comma - 2));
  }
  Step s;
  if (page >= nblocks) return s;  // finished
  const double per_page = std::max(1.0, std::stod(*info[0][1]));
  const int64_t pages = std::max<int64_t>(1, int64_t(limit / per_page));
  const int64_t end = page + pages;
  const std::string lo = fmt::format("({},0)", page), hi = fmt::format("({},0)", end);
  const std::string range = "t.ctid >= $1::pg_catalog.tid AND t.ctid < $2::pg_catalog.tid";
  auto rows = spi::query(
      fmt::format("WITH u AS (UPDATE {rel} t SET {newc} = t.{oldc} WHERE {range} "
                  "AND zdd.differs(t.{newc}, t.{oldc}) RETURNING 1) "
                  "SELECT (SELECT pg_catalog.count(*) FROM {rel} t WHERE {range}), "
                  "(SELECT pg_catalog.count(*) FROM u)",
                  fmt::arg("rel", rel), fmt::arg("newc", newc), fmt::arg("oldc", oldc),
                  fmt::arg("range", range)),
      {spi::p_text(lo), spi::p_text(hi)});
  s.visited = std::stoll(*rows[0][0]);
  s.written = std::stoll(*rows[0][1]);
  s.next_cursor = fmt::format("{{{},{}}}", end, nblocks);
  return s;
}

// Runs the batch statement with the table's triggers off, a short
// lock_timeout and the cursor's output settings pinned (see the file
// comment); restores them all afterwards.
Step run_walk_step(const Job &j, int limit) {
  const std::string timeout = std::to_string(settings::lock_timeout_ms);
  int level = pg_call([&] {
    int l = NewGUCNestLevel();
    (void)set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    (void)set_config_option("lock_timeout", timeout.c_str(), PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    // The cursor's text form: the same settings for every batch (file comment).
    static const char *const pinned[][2] = {{"extra_float_digits", "3"},
                                            {"DateStyle", "ISO, MDY"},
                                            {"IntervalStyle", "postgres"},
                                            {"lc_monetary", "C"}};
    for (const auto &p : pinned)
      (void)set_config_option(p[0], p[1], PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                              false);
    return l;
  });
  const Key k = primary_key(j.relid);
  Step s = k.names.empty() ? ctid_batch(j, limit) : keyset_batch(j, k, limit);
  pg_call([&] { AtEOXact_GUC(true, level); });
  return s;
}

// Milliseconds since start.
long elapsed_ms(TimestampTz start) {
  long secs;
  int usecs;
  TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
  return secs * 1000 + usecs / 1000;
}

// Jittered, growing wait after the n-th consecutive failure.
long failure_backoff_ms(int n) {
  const double base = std::min(30000.0, 250.0 * std::pow(2.0, std::min(n, 10)));
  return long(base * (0.5 + pg_prng_double(&pg_global_prng_state)));
}

// Records a failed batch in its own transaction: last_error, failures + 1,
// and state 'failed' (with a history line) once failures reach the limit
// or at once for a permanent error.
void record_failure(int64_t id, const Error &e, bool permanent) {
  std::string msg = e.message;
  if (!e.detail.empty()) msg += " (" + e.detail + ")";
  in_own_transaction([&] {
    auto rows = catalog::query(
        "UPDATE zdd.transition SET failures = failures + 1, last_error = $2, "
        "updated_at = pg_catalog.now(), backfill_state = CASE WHEN failures + 1 >= $3 "
        "THEN 'failed' ELSE backfill_state END "
        "WHERE id = $1 AND phase = 'backfilling' AND backfill_state = 'running' "
        "RETURNING backfill_state",
        {spi::p_int8(id), spi::p_text(msg), spi::p_int4(permanent ? 1 : max_batch_failures)});
    if (!rows.empty() && *rows[0][0] == "failed")
      catalog::add_history(id, "backfill", std::string("running"), "failed", msg);
  });
}

// The runnable backfill of role whose last batch is oldest, if any.
std::optional<int64_t> pick(Oid role) {
  auto rows = spi::query(
      "SELECT id FROM zdd.transition WHERE phase = 'backfilling' AND backfill_state = 'running' "
      "AND started_by::pg_catalog.oid = $1 ORDER BY last_batch_at NULLS FIRST, id LIMIT 1",
      {spi::p_oid(role)});
  if (rows.empty()) return std::nullopt;
  return std::stoll(*rows[0][0]);
}

// Finishes the twins pass: phase 'backfilled', state 'done'.
void finish(const Job &j) {
  catalog::execute(
      "UPDATE zdd.transition SET phase = 'backfilled', backfill_state = 'done', "
      "backfill_finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), worker_pid = NULL "
      "WHERE id = $1",
      {spi::p_int8(j.id)});
  catalog::add_history(j.id, "backfill", j.state, "done", "verified; twins built");
  catalog::add_history(j.id, "phase", j.phase, "backfilled", {});
}

// Reports the batch in pg_stat_activity.
void report_activity(const Job &j) {
  std::string what = fmt::format("zdd backfill: {} {} pass, {} of ~{} rows",
                                 spi::qualified_relation(j.relid), j.pass, j.rows_done,
                                 j.rows_total < 0 ? std::string("?") : std::to_string(j.rows_total));
  pg_call([&] { pgstat_report_activity(STATE_RUNNING, what.c_str()); });
}

// The body of one batch inside its transaction. Returns the sleep before
// the next batch; sets twins_next when the twins pass must run now.
long batch_in_transaction(int64_t id, bool &twins_next) {
  std::optional<Job> found = lock_job(id);
  if (!found || found->phase != "backfilling" || found->state != "running") return 0;
  Job &j = *found;
  const bool owner = pg_call([&] { return pg_class_ownercheck(j.relid, GetUserId()); });
  if (!owner)
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                fmt::format("zdd: role running the backfill no longer owns table {}",
                            spi::qualified_relation(j.relid)));
  if (j.pass == "twins") {
    twins_next = true;
    return 0;
  }
  report_activity(j);
  const TimestampTz start = pg_call([] { return GetCurrentTimestamp(); });
  const Step s = run_walk_step(j, j.batch_size);
  const long took = elapsed_ms(start);

  int next_size = j.batch_size;
  if (j.target_ms > 0 && s.visited > 0) {
    const double f = std::clamp(double(j.target_ms) / std::max(1L, took), 0.5, 2.0);
    next_size = std::clamp(int(j.batch_size * f), 10, 100000);
  }
  const bool verify = j.pass == "verify";
  if (!s.next_cursor) {
    // Pass finished: backfill → verify → twins.
    const std::string next = verify ? "twins" : "verify";
    catalog::execute(
        "UPDATE zdd.transition SET pass = $2, cursor = NULL, updated_at = pg_catalog.now(), "
        "rows_total = CASE WHEN $2 = 'verify' THEN rows_done ELSE rows_total END, "
        "failures = 0, last_error = NULL WHERE id = $1",
        {spi::p_int8(id), spi::p_text(next)});
    catalog::add_history(id, "backfill", std::string("running"), "running",
                         fmt::format("{} pass finished", j.pass));
    return 0;
  }
  catalog::execute(
      "UPDATE zdd.transition SET cursor = $2::pg_catalog.text[], "
      "rows_done = rows_done + CASE WHEN $7 THEN 0 ELSE $3 END, "
      "rows_written = rows_written + CASE WHEN $7 THEN 0 ELSE $4 END, "
      "rows_verified = rows_verified + CASE WHEN $7 THEN $3 ELSE 0 END, "
      "verify_fixed = verify_fixed + CASE WHEN $7 THEN $4 ELSE 0 END, "
      "rows_total = CASE WHEN $7 THEN rows_total "
      "  ELSE GREATEST(rows_total, rows_done + $3) END, "
      "rate = CASE WHEN last_batch_at IS NULL THEN NULL ELSE "
      "  0.7 * COALESCE(rate, $3 / GREATEST(0.001, "
      "    extract(epoch FROM pg_catalog.clock_timestamp() - last_batch_at)::float8)) "
      "  + 0.3 * $3 / GREATEST(0.001, "
      "    extract(epoch FROM pg_catalog.clock_timestamp() - last_batch_at)::float8) END, "
      "batches = batches + 1, last_batch_at = pg_catalog.clock_timestamp(), "
      "updated_at = pg_catalog.now(), failures = 0, last_error = NULL, worker_pid = $5, "
      "batch_size_now = CASE WHEN target_batch_ms > 0 THEN $6 END WHERE id = $1",
      {spi::p_int8(id), spi::p_text(s.next_cursor), spi::p_int8(s.visited), spi::p_int8(s.written),
       spi::p_int4(MyProcPid), spi::p_int4(next_size), spi::p_bool(verify)});

  long sleep = j.pause_ms;
  if (j.max_rate > 0) sleep = std::max(sleep, long(s.visited * 1000 / j.max_rate) - took);
  return sleep;
}

}  // namespace

std::string twins_activity(int64_t id) { return fmt::format("zdd backfill: building twins of transition {}", id); }

// See backfill.hpp: picks, runs and records one batch (or the twins).
long run_next_batch(Oid role) {
  std::optional<int64_t> id;
  long sleep = 0;
  bool twins_next = false;
  try {
    in_own_transaction([&] {
      id = pick(role);
      if (id) sleep = batch_in_transaction(*id, twins_next);
    });
    if (!id) {
      pg_call([] { pgstat_report_activity(STATE_IDLE, nullptr); });
      return -1;
    }
    if (twins_next) {
      const std::string what = twins_activity(*id);
      pg_call([&] { pgstat_report_activity(STATE_RUNNING, what.c_str()); });
      twins::build(*id);  // outside any transaction: it may build indexes concurrently
      in_own_transaction([&] {
        std::optional<Job> j = lock_job(*id);
        if (j && j->phase == "backfilling" && j->state == "running" && j->pass == "twins")
          finish(*j);
      });
    }
    pg_call([] {
      pgstat_report_stat(false);
      pgstat_report_activity(STATE_IDLE, nullptr);
    });
    return sleep;
  } catch (const Error &e) {
    pg_call([] { AbortCurrentTransaction(); });
    if (!id) throw;  // the catalog itself is unreadable: let the worker end
    // Retrying cannot help: the role lost the table, or its key does not round trip.
    const bool permanent = e.sqlstate == ERRCODE_INSUFFICIENT_PRIVILEGE ||
                           e.sqlstate == ERRCODE_FEATURE_NOT_SUPPORTED;
    record_failure(*id, e, permanent);
    int failures = 0;
    in_own_transaction([&] {
      auto rows = spi::query("SELECT failures FROM zdd.transition WHERE id = $1", {spi::p_int8(*id)});
      if (!rows.empty()) failures = std::stoi(*rows[0][0]);
    });
    return failure_backoff_ms(failures);
  }
}

// See backfill.hpp; also estimates rows_total from pg_class.
void mark_running(const catalog::Transition &t) {
  if (t.phase == "expanded") catalog::set_phase(t, "backfilling", "backfill started");
  catalog::execute(
      "UPDATE zdd.transition t SET backfill_state = 'running', failures = 0, last_error = NULL, "
      "updated_at = pg_catalog.now(), "
      "backfill_started_at = COALESCE(t.backfill_started_at, pg_catalog.now()), "
      "rows_total = COALESCE(t.rows_total, (SELECT CASE WHEN c.reltuples >= 0 "
      "  THEN c.reltuples::bigint END FROM pg_catalog.pg_class c WHERE c.oid = t.tbl)) "
      "WHERE t.id = $1",
      {spi::p_int8(t.id)});
  catalog::add_history(t.id, "backfill", t.backfill_state, "running", {});
}

// Defines the engine's own settings.
void define_settings() {
  DefineCustomIntVariable("zdd.max_batch_failures",
                          "Consecutive failed batches after which a backfill is marked failed.",
                          nullptr, &max_batch_failures, 5, 1, 1000, PGC_SIGHUP, 0, nullptr,
                          nullptr, nullptr);
}

}  // namespace zdd::backfill
