// announce.cpp — NOTIFY zdd and the LOG lines of phase and state changes
// (see announce.hpp).
#include "announce.hpp"

#include "catalog.hpp"

#include <algorithm>

extern "C" {
#include "mb/pg_wchar.h"
}

namespace zdd::announce {

namespace {

// LOG lines waiting for their transaction's commit, with the
// subtransaction that queued them.
struct Line {
  SubTransactionId sub;
  std::string text;
};
std::vector<Line> pending;
bool callbacks_registered = false;

// At commit, writes the queued lines; at abort (or PREPARE, whose outcome
// is not known here), drops them.
void on_xact(XactEvent event, void *) noexcept {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) {
    for (const Line &l : pending) ereport(LOG, (errmsg_internal("%s", l.text.c_str()), errhidestmt(true)));
    pending.clear();
  } else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
             event == XACT_EVENT_PREPARE) {
    pending.clear();
  }
}

// A rolled-back subtransaction takes its lines (and those of the
// subtransactions it contained, which have larger ids) with it.
// Filters in place: nothing here allocates, so nothing can throw into
// PostgreSQL's abort path.
void on_subxact(SubXactEvent event, SubTransactionId sub, SubTransactionId, void *) noexcept {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  pending.erase(std::remove_if(pending.begin(), pending.end(),
                               [sub](const Line &l) { return l.sub >= sub; }),
                pending.end());
}

// The arrow of the LOG lines: → when the database's encoding can hold it.
const char *arrow() {
  return GetDatabaseEncoding() == PG_UTF8 ? "\u2192" : "->";
}

}  // namespace

// Reads the row through to_jsonb where a column is new in 0.2.0: a library
// newer than the SQL objects (before ALTER EXTENSION zdd UPDATE) still
// announces the changes of 0.1.0's transitions.
void change(int64_t id, const std::string &event, const std::optional<std::string> &from,
            const std::string &to, const std::string &detail) {
  auto rows = catalog::query(
      "SELECT pg_catalog.pg_notify('zdd', pg_catalog.json_build_object("
      "  'id', t.id, 'table', t.tbl::pg_catalog.text, 'old_column', t.old_column, "
      "  'new_column', t.new_column, 'phase', t.phase, 'state', t.backfill_state, "
      "  'event', $2::pg_catalog.text, 'from', $3::pg_catalog.text, 'to', $4::pg_catalog.text, "
      "  'reason', pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'wait_reason')::pg_catalog.text), "
      "t.tbl::pg_catalog.text, t.old_column, t.new_column, t.rows_done, "
      "pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) "
      "  t.backfill_started_at)::pg_catalog.int8 "
      "FROM zdd.transition t WHERE t.id OPERATOR(pg_catalog.=) $1",
      {spi::p_int8(id), spi::p_text(event), spi::p_text(from), spi::p_text(to)});
  if (rows.empty()) return;
  const spi::Row &r = rows[0];
  std::string note = detail;
  if (event == "phase" && to == "backfilled" && r[5]) {
    const int64_t secs = std::stoll(*r[5]);
    note = fmt::format("rows {}, {}", *r[4], secs < 60 ? fmt::format("{} s", secs)
                                                       : fmt::format("{} min", secs / 60));
  }
  const char *a = arrow();
  std::string line = fmt::format("zdd: transition {} {} {}{}{}: {}{} {} {}", id, *r[1], *r[2], a, *r[3],
                                 event == "backfill" ? "backfill " : "", from.value_or("new"), a, to);
  if (!note.empty()) line += " (" + note + ")";
  pg_call([] {
    if (!callbacks_registered) {
      RegisterXactCallback(on_xact, nullptr);
      RegisterSubXactCallback(on_subxact, nullptr);
      callbacks_registered = true;
    }
  });
  const SubTransactionId sub = pg_call([] { return GetCurrentSubTransactionId(); });
  pending.push_back({sub, std::move(line)});
}

}  // namespace zdd::announce
