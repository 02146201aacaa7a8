// backfill.cpp — one backfill batch, and recording progress and failures.
//
// A batch is one transaction that locks the transition's catalog row,
// writes the rows AND advances the cursor: a crash repeats at most the
// batch in flight. Passes, in phase 'backfilling':
//   backfill  visit every row in key order, write new := up(old) where
//             the row is not in step (zdd.in_step / zdd.up: the conversion
//             core the sync trigger uses);
//   verify    the same walk again, reading each batch's rows once
//             (keyset_batch without write); rows still out of step
//             (written with the trigger bypassed) are fixed by a writing
//             batch over that range and counted in verify_fixed;
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
// Pass end: a keyset pass records the table's greatest key when it starts
// (walk_end) and never walks past it; a ctid pass the table's size. Rows
// inserted later went through the sync trigger, so every pass finishes
// however fast the table grows. The walk's strategy is fixed when a pass
// starts (walk_key: the key's columns, types and operators; "ctid <file>"
// for a ctid walk, restarted from the top of the new file when the table
// is rewritten meanwhile) and
// checked at every batch: a primary key dropped or changed mid-walk fails
// the transition with its own error and restarts the pass from the top at
// zdd.resume(id), never a worker crash.
//
// Key order and comparisons use the primary key index's own btree
// operators, schema-qualified (OPERATOR(schema.<)): with search_path pinned
// to pg_catalog, an extension type's key (citext, ean13) would otherwise
// fall back to another type's operators, or fail.
//
// Rights and triggers: the batch UPDATE runs as the table's owner in a
// security-restricted operation, as VACUUM or CREATE INDEX run the owner's
// code: nothing the owner wrote (CHECK functions, index expressions) runs
// with the rights of the role that started the transition. It fires none of
// the table's user triggers (quiet_triggers.hpp) — they never saw data of
// theirs change — and no setting of the session is changed for it
// (session_replication_role stays as it is). Tables with rules or
// inheritance children are refused up front and checked again per batch.
#include "backfill.hpp"
#include "ddl.hpp"
#include "health.hpp"
#include "partitions.hpp"
#include "quiet_triggers.hpp"
#include "settings.hpp"
#include "twins.hpp"
#include "xact.hpp"

#include <cmath>

extern "C" {
#include "access/stratnum.h"
#include "common/pg_prng.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace zdd::backfill {

namespace {

int max_batch_failures = 5;

// The version of zdd's SQL objects this library's batches need.
constexpr const char *kCatalogVersion = "0.2.0";

// An error that ends the backfill at once (retrying cannot help); with
// reset_pass, the current pass starts again from the top at resume.
struct Permanent : Error {
  bool reset_pass = false;
  Permanent(int code, std::string msg, std::string det = {}, std::string h = {}, bool reset = false)
      : Error(code, std::move(msg), std::move(det), std::move(h)), reset_pass(reset) {}
};

// A zdd.transition row as a batch needs it.
struct Job {
  int64_t id = 0;
  Oid relid = InvalidOid;
  std::string phase, state, pass, old_column, new_column;
  std::optional<std::string> cursor;    // text[] literal
  std::optional<std::string> walk_key;  // the pass's key signature ("ctid <file>", '' = ctid)
  std::optional<std::string> walk_end;  // text[] literal: the pass's last key
  std::optional<std::string> up, down;  // a retype's conversions (NULL: cast / identity)
  health::Limits limits;                // the settings, with the transition's overrides
  int batch_size = 0, target_ms = 0, pause_ms = 0, max_rate = 0, failures = 0;
  int64_t rows_done = 0, rows_total = -1;
  // A partitioned table: relid is the leaf being walked; pass, cursor and
  // walk are that leaf's (zdd.transition_leaf).
  bool leaf = false;
  bool leaves_done = false;  // every leaf walked both passes: the twins pass is next
};

// Picks the leaf partition job j walks next (a leaf in pass backfill
// before any in verify, each in the tree's order) after bringing the leaf
// list up to date (attached partitions join, detached ones leave), and
// loads its walk; the transition's pass follows the leaf's.
void pick_leaf(Job &j) {
  (void)partitions::sync_leaves(j.id, j.relid);
  auto rows = catalog::query(
      "SELECT leaf::pg_catalog.oid, pass, cursor::pg_catalog.text, walk_key, walk_end::pg_catalog.text "
      "FROM zdd.transition_leaf WHERE transition_id = $1 AND pass IN ('backfill', 'verify') "
      "ORDER BY pass = 'verify', position LIMIT 1",
      {spi::p_int8(j.id)});
  if (rows.empty()) {
    j.leaves_done = j.pass != "twins";
    return;
  }
  const spi::Row &r = rows[0];
  j.leaf = true;
  j.relid = static_cast<Oid>(std::stoul(*r[0]));
  j.cursor = r[2];
  j.walk_key = r[3];
  j.walk_end = r[4];
  if (*r[1] != j.pass) {
    catalog::execute(
        "UPDATE zdd.transition SET pass = $2, rows_total = CASE WHEN $2 = 'verify' AND pass = 'backfill' "
        "THEN rows_done ELSE rows_total END WHERE id = $1",
        {spi::p_int8(j.id), spi::p_text(*r[1])});
    j.pass = *r[1];
  }
}

// Writes walk state of job j: set (a SET list over cursor, walk_key,
// walk_end with parameters from $2) on the transition's row, or on its
// leaf's row for a partitioned table.
void update_walk(const Job &j, const std::string &set, std::vector<spi::Param> params) {
  params.insert(params.begin(), spi::p_int8(j.id));
  if (!j.leaf) {
    catalog::execute("UPDATE zdd.transition SET " + set + " WHERE id = $1", params);
    return;
  }
  params.push_back(spi::p_oid(j.relid));
  catalog::execute(fmt::format("UPDATE zdd.transition_leaf SET {} WHERE transition_id = $1 "
                               "AND leaf = ${}::pg_catalog.oid::pg_catalog.regclass",
                               set, params.size()),
                   params);
}

// Loads and locks the catalog row of transition id (owner rights).
std::optional<Job> lock_job(int64_t id) {
  auto rows = catalog::query(
      "SELECT id, tbl::pg_catalog.oid, phase, backfill_state, pass, old_column, new_column, "
      "cursor::pg_catalog.text, COALESCE(batch_size_now, batch_size), target_batch_ms, "
      "pause_ms, max_rows_per_sec, failures, rows_done, COALESCE(rows_total, -1), "
      "walk_key, walk_end::pg_catalog.text, up_expr, down_expr, "
      "max_replica_lag, max_replica_delay_ms, max_archive_backlog, max_dead_tuples, "
      "wait_for_autovacuum, max_transaction_age_s "
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
  j.walk_key = r[15];
  j.walk_end = r[16];
  j.up = r[17];
  j.down = r[18];
  j.limits = health::defaults();
  if (r[19]) j.limits.replica_lag_bytes = std::stoll(*r[19]);
  if (r[20]) j.limits.replica_delay_ms = std::stoll(*r[20]);
  if (r[21]) j.limits.archive_backlog = std::stoll(*r[21]);
  if (r[22]) j.limits.dead_tuples = std::stod(*r[22]);
  if (r[23]) j.limits.autovacuum = *r[23] == "t";
  if (r[24]) j.limits.transaction_age_s = std::stoll(*r[24]);
  if (j.phase == "backfilling" && (j.state == "running" || j.state == "waiting") &&
      partitions::is_partitioned(j.relid))
    pick_leaf(j);  // in the twins pass too: a partition attached meanwhile is walked first
  return j;
}

// One primary key column: quoted name, type, and the index's btree
// operators, schema-qualified.
struct KeyCol {
  std::string name, type, lt, le, eq, ge, gt;
};
struct Key {
  std::vector<KeyCol> cols;
  std::string signature;  // names, types and operators: what the walk depends on
};

// The primary key of relid with its index's operators (empty: no key).
Key primary_key(Oid relid) {
  auto op = [](int strategy) {
    return fmt::format(
        "(SELECT pg_catalog.format('OPERATOR(%I.%s)', n.nspname, o.oprname) "
        "FROM pg_catalog.pg_amop ao JOIN pg_catalog.pg_operator o ON o.oid = ao.amopopr "
        "JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace "
        "WHERE ao.amopfamily = oc.opcfamily AND ao.amoplefttype = oc.opcintype "
        "AND ao.amoprighttype = oc.opcintype AND ao.amopstrategy = {} AND ao.amoppurpose = 's')",
        strategy);
  };
  auto rows = spi::query_cached(
      fmt::format("SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), {}, {}, {}, "
                  "{}, {} FROM pg_catalog.pg_index i "
                  "CROSS JOIN LATERAL pg_catalog.generate_series(0, i.indnkeyatts - 1) AS k(pos) "
                  "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
                  "AND a.attnum = i.indkey[k.pos] "
                  "JOIN pg_catalog.pg_opclass oc ON oc.oid = i.indclass[k.pos] "
                  "WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.pos",
                  op(BTLessStrategyNumber), op(BTLessEqualStrategyNumber),
                  op(BTEqualStrategyNumber), op(BTGreaterEqualStrategyNumber),
                  op(BTGreaterStrategyNumber)),
      {spi::p_oid(relid)});
  Key k;
  for (const auto &r : rows) {
    for (size_t i = 2; i < 7; ++i)
      if (!r[i])
        throw Permanent(ERRCODE_FEATURE_NOT_SUPPORTED,
                        fmt::format("zdd: the primary key of {} has no btree operators for "
                                    "column \"{}\"",
                                    spi::qualified_relation(relid), *r[0]));
    k.cols.push_back({spi::ident(*r[0]), *r[1], *r[2], *r[3], *r[4], *r[5], *r[6]});
    k.signature += fmt::format("{}{} {} {}", k.signature.empty() ? "" : ", ", spi::ident(*r[0]),
                               *r[1], *r[4]);
  }
  return k;
}

// Column references prefix.name for each key column.
std::vector<std::string> refs(const Key &k, const std::string &prefix) {
  std::vector<std::string> out;
  for (const auto &c : k.cols) out.push_back(prefix + c.name);
  return out;
}

// The key values held by text[] parameter $n, cast back to the key types.
std::vector<std::string> param_values(const Key &k, int n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < k.cols.size(); ++i)
    out.push_back(fmt::format("(${}::pg_catalog.text[])[{}]::{}", n, i + 1, k.cols[i].type));
  return out;
}

// Joins items with sep.
std::string join(const std::vector<std::string> &items, const std::string &sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

// (lhs) > (rhs) or, with inclusive = false and less = true, (lhs) <= (rhs):
// the row comparison spelled out with each column's own operators, led by
// a bound on the first column that the index scan can use.
std::string compare(const Key &k, const std::vector<std::string> &lhs,
                    const std::vector<std::string> &rhs, bool greater) {
  const size_t n = k.cols.size();
  const KeyCol &c0 = k.cols[0];
  if (n == 1) return fmt::format("{} {} {}", lhs[0], greater ? c0.gt : c0.le, rhs[0]);
  std::vector<std::string> terms;
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::string> parts;
    for (size_t j = 0; j < i; ++j) parts.push_back(fmt::format("{} {} {}", lhs[j], k.cols[j].eq, rhs[j]));
    parts.push_back(fmt::format("{} {} {}", lhs[i], greater ? k.cols[i].gt : k.cols[i].lt, rhs[i]));
    terms.push_back("(" + join(parts, " AND ") + ")");
  }
  if (!greater) {
    std::vector<std::string> all;
    for (size_t j = 0; j < n; ++j) all.push_back(fmt::format("{} {} {}", lhs[j], k.cols[j].eq, rhs[j]));
    terms.push_back("(" + join(all, " AND ") + ")");
  }
  return fmt::format("({} {} {} AND ({}))", lhs[0], greater ? c0.ge : c0.le, rhs[0],
                     join(terms, " OR "));
}

// ORDER BY list of the key, ascending or descending, by the key's operators.
std::string order_by(const Key &k, const std::vector<std::string> &cols, bool desc) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < cols.size(); ++i)
    parts.push_back(fmt::format("{} USING {}", cols[i], desc ? k.cols[i].gt : k.cols[i].lt));
  return join(parts, ", ");
}

// Equality of two key value lists with the key's operators.
std::string equal(const Key &k, const std::vector<std::string> &a, const std::vector<std::string> &b) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < a.size(); ++i) parts.push_back(fmt::format("{} {} {}", a[i], k.cols[i].eq, b[i]));
  return "(" + join(parts, " AND ") + ")";
}

// The key values of text[] column arr, cast back to the key types.
std::vector<std::string> array_values(const Key &k, const std::string &arr) {
  std::vector<std::string> out;
  for (size_t i = 0; i < k.cols.size(); ++i)
    out.push_back(fmt::format("({})[{}]::{}", arr, i + 1, k.cols[i].type));
  return out;
}

// ARRAY[col::text, ...] of the key columns.
std::string text_array(const std::vector<std::string> &cols) {
  std::vector<std::string> parts;
  for (const auto &c : cols) parts.push_back(c + "::pg_catalog.text");
  return "ARRAY[" + join(parts, ", ") + "]";
}

// Raised when a key's text form does not read back as the same key.
[[noreturn]] void no_round_trip(const std::string &rel, const std::optional<std::string> &key) {
  throw Permanent(ERRCODE_FEATURE_NOT_SUPPORTED,
                  fmt::format("zdd: the primary key of {} does not read back from its text form", rel),
                  fmt::format("Key {} read back as a different value; the backfill stops rather "
                              "than skip or repeat rows.",
                              key.value_or("?")),
                  "Abort the transition, or give the table a primary key of another type.");
}

// The greatest key of the table now (the keyset pass's end), or nullopt
// for an empty table.
std::optional<std::string> last_key(const Job &j, const Key &k) {
  const std::string rel = spi::qualified_relation(j.relid);
  const auto m = refs(k, "zdd_m.");
  auto rows = spi::query(fmt::format(
      "SELECT {arr}::pg_catalog.text, {same} FROM (SELECT {cols} FROM ONLY {rel} zdd_t "
      "ORDER BY {desc} LIMIT 1) zdd_m",
      fmt::arg("arr", text_array(m)), fmt::arg("same", equal(k, m, array_values(k, text_array(m)))),
      fmt::arg("cols", join(refs(k, "zdd_t."), ", ")), fmt::arg("rel", rel),
      fmt::arg("desc", order_by(k, refs(k, "zdd_t."), true))));
  if (rows.empty()) return std::nullopt;
  if (!rows[0][1] || *rows[0][1] != "t") no_round_trip(rel, rows[0][0]);
  return rows[0][0];
}

// A call of the conversion core for the batch: fn (in_step: the filter,
// the sync trigger's own rule; up: the value written) over the row's two
// columns, with the column names and conversions as parameters
// $first..$first+3.
std::string conversion_call(const Job &j, const char *fn, const char *alias, int first) {
  return fmt::format("zdd.{fn}({a}.{o}, {a}.{n}, ${p0}::pg_catalog.text, ${p1}::pg_catalog.text, "
                     "${p2}::pg_catalog.text, ${p3}::pg_catalog.text)",
                     fmt::arg("fn", fn), fmt::arg("a", alias), fmt::arg("o", spi::ident(j.old_column)),
                     fmt::arg("n", spi::ident(j.new_column)), fmt::arg("p0", first),
                     fmt::arg("p1", first + 1), fmt::arg("p2", first + 2), fmt::arg("p3", first + 3));
}

// Outcome of one batch walk step.
struct Step {
  int64_t visited = 0, written = 0;
  std::optional<std::string> next_cursor;  // nullopt: the pass is finished
};

// One keyset batch: up to limit rows after the cursor and up to the pass's
// end. zdd_b reads the batch's keys once, in key order, through the
// primary key index, and keeps only their count and the last one
// (zdd.last: the last of its inputs in the order they come — no second
// pass, no sort). With write, one UPDATE over the key range (cursor, last]
// writes the rows out of step: a range scan of the primary key index,
// never a join against the whole table; zdd_b and the UPDATE see the same
// snapshot, so they cover the same rows. Without write (the verify pass's
// first look), zdd_b also counts the rows out of step and nothing is
// written: a range in step is read once. Returns nullopt when a read found
// rows to fix (the caller then runs the writing batch over the same range).
// Past the table itself the key columns go by zdd's own names (zdd_k1…),
// so no table column name can clash with the statement's.
std::optional<Step> keyset_batch(const Job &j, const Key &k, int limit, bool write) {
  const std::string rel = spi::qualified_relation(j.relid);
  const auto t = refs(k, "zdd_t.");
  std::vector<std::string> names, l, upto, lasts;
  for (size_t i = 0; i < k.cols.size(); ++i) {
    names.push_back(fmt::format("zdd_k{}", i + 1));
    l.push_back("zdd_l." + names.back());
    upto.push_back(fmt::format("(SELECT {} FROM zdd_l)", l.back()));
    lasts.push_back(fmt::format("zdd.last(zdd_s.{0}) AS {0}", names.back()));
  }
  const std::string after = j.cursor ? compare(k, t, param_values(k, 1), true) + " AND " : "";
  const std::string in_step = conversion_call(j, "in_step", "zdd_t", 4);
  const std::string sql = fmt::format(
      "WITH zdd_b AS MATERIALIZED (SELECT pg_catalog.count(*) AS zdd_rows, {offn}{lasts} "
      "FROM (SELECT {tcols}{off} FROM ONLY {rel} zdd_t WHERE {after}{toend} "
      "ORDER BY {asc} LIMIT $2) zdd_s({names}{offname})), "
      "zdd_l AS MATERIALIZED (SELECT * FROM zdd_b WHERE zdd_rows > 0), {update}"
      "zdd_c AS (SELECT {larr} AS zdd_cursor FROM zdd_l) "
      "SELECT (SELECT zdd_rows FROM zdd_b), {written}, "
      "(SELECT zdd_c.zdd_cursor::pg_catalog.text FROM zdd_c), "
      "(SELECT {same} FROM zdd_l, zdd_c)",
      fmt::arg("tcols", join(t, ", ")), fmt::arg("rel", rel), fmt::arg("after", after),
      fmt::arg("off", write ? "" : ", NOT " + in_step), fmt::arg("names", join(names, ", ")),
      fmt::arg("offname", write ? "" : ", zdd_off"),
      fmt::arg("offn", write ? "" : "pg_catalog.count(*) FILTER (WHERE zdd_s.zdd_off) AS zdd_off, "),
      fmt::arg("lasts", join(lasts, ", ")),
      fmt::arg("toend", compare(k, t, param_values(k, 3), false)),
      fmt::arg("asc", order_by(k, t, false)),
      fmt::arg("update",
               write ? fmt::format("zdd_u AS (UPDATE ONLY {} zdd_t SET {} = {} WHERE {}{} AND NOT {} "
                                   "RETURNING 1), ",
                                   rel, spi::ident(j.new_column), conversion_call(j, "up", "zdd_t", 4),
                                   after, compare(k, t, upto, false), in_step)
                     : std::string()),
      fmt::arg("written", write ? "(SELECT pg_catalog.count(*) FROM zdd_u)" : "(SELECT zdd_off FROM zdd_b)"),
      fmt::arg("larr", text_array(l)),
      fmt::arg("same", equal(k, l, array_values(k, "zdd_c.zdd_cursor"))));
  auto rows = spi::query_cached(sql, {spi::p_text(j.cursor), spi::p_int4(limit), spi::p_text(j.walk_end),
                               spi::p_text(j.old_column), spi::p_text(j.new_column), spi::p_text(j.up),
                               spi::p_text(j.down)});
  Step st;
  st.visited = std::stoll(*rows[0][0]);
  st.written = std::stoll(*rows[0][1]);
  if (!write && st.written > 0) return std::nullopt;
  if (st.visited > 0) {
    if (!rows[0][3] || *rows[0][3] != "t") no_round_trip(rel, rows[0][2]);
    st.next_cursor = rows[0][2];
  }
  return st;
}

// One ctid-range batch for a table without primary key: pages [p, q).
Step ctid_batch(const Job &j, int limit) {
  const std::string rel = spi::qualified_relation(j.relid);
  // Cursor: {next page, end page}. The end is the table's size when the
  // pass started: pages added later hold only row versions written through
  // the sync trigger or by this walk, all in step (see the file comment).
  auto info = spi::query_cached(
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
  s.next_cursor = fmt::format("{{{},{}}}", end, nblocks);
  if (j.pass == "verify") {
    // The verify pass reads the range once and writes only when some row
    // is out of step (as keyset_batch without write).
    auto check = spi::query_cached(
        fmt::format("SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE NOT {in_step}) "
                    "FROM ONLY {rel} t WHERE {range}",
                    fmt::arg("rel", rel), fmt::arg("range", range),
                    fmt::arg("in_step", conversion_call(j, "in_step", "t", 3))),
        {spi::p_text(lo), spi::p_text(hi), spi::p_text(j.old_column), spi::p_text(j.new_column),
         spi::p_text(j.up), spi::p_text(j.down)});
    if (std::stoll(*check[0][1]) == 0) {
      s.visited = std::stoll(*check[0][0]);
      return s;
    }
  }
  auto rows = spi::query_cached(
      fmt::format("WITH u AS (UPDATE ONLY {rel} t SET {newc} = {up} WHERE {range} "
                  "AND NOT {in_step} RETURNING 1) "
                  "SELECT (SELECT pg_catalog.count(*) FROM ONLY {rel} t WHERE {range}), "
                  "(SELECT pg_catalog.count(*) FROM u)",
                  fmt::arg("rel", rel), fmt::arg("newc", spi::ident(j.new_column)),
                  fmt::arg("range", range), fmt::arg("in_step", conversion_call(j, "in_step", "t", 3)),
                  fmt::arg("up", conversion_call(j, "up", "t", 3))),
      {spi::p_text(lo), spi::p_text(hi), spi::p_text(j.old_column), spi::p_text(j.new_column),
       spi::p_text(j.up), spi::p_text(j.down)});
  s.visited = std::stoll(*rows[0][0]);
  s.written = std::stoll(*rows[0][1]);
  return s;
}

// A ctid walk's key: "ctid <relfilenode>" ('' in catalogs of older
// versions: a ctid walk whose file was not recorded).
std::string ctid_signature(Oid relid) {
  auto r = spi::query("SELECT pg_catalog.pg_relation_filenode($1)", {spi::p_oid(relid)});
  return "ctid " + r[0][0].value_or("?");
}

bool is_ctid_walk(const std::string &walk_key) { return walk_key.empty() || walk_key.rfind("ctid", 0) == 0; }

// Refuses to walk a table that rules or inheritance children would make
// the walk miss or redirect (begin refuses them; this catches later DDL).
// The transition's sync trigger must be there and fire: without it the
// apps' writes are not kept in step (the guard refuses dropping or
// disabling it; this catches what got past it, e.g. in replica mode).
void check_walkable(const Job &j) {
  auto rows = spi::query_cached(
      "SELECT c.relhasrules, EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid), "
      "EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = $2 "
      "AND t.tgenabled IN ('O', 'A')) "
      "FROM pg_catalog.pg_class c WHERE c.oid = $1",
      {spi::p_oid(j.relid), spi::p_text(catalog::trigger_name(j.id))});
  if (rows.empty()) throw Permanent(ERRCODE_UNDEFINED_TABLE, "zdd: the table no longer exists");
  if (*rows[0][2] != "t")
    throw Permanent(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    fmt::format("zdd: the sync trigger {} of {} is missing or disabled",
                                catalog::trigger_name(j.id), spi::qualified_relation(j.relid)),
                    "Rows the apps write are not kept in step without it.",
                    "Abort the transition and begin again.");
  if (*rows[0][0] == "t" || *rows[0][1] == "t")
    throw Permanent(ERRCODE_FEATURE_NOT_SUPPORTED,
                    fmt::format("zdd: {} now has {}; the backfill cannot cover it",
                                spi::qualified_relation(j.relid),
                                *rows[0][0] == "t" ? "rules" : "inheritance children"),
                    {}, "Abort the transition, or remove them and call zdd.resume(id).");
}

// Runs one step of the pass: the walk's strategy is fixed when the pass
// starts (recorded with the end of the walk in the catalog row, in this
// batch's transaction) and checked at every batch. The statement runs as
// the table's owner in a security-restricted operation, with the table's
// user triggers quiet and a short lock_timeout.
Step run_walk_step(Job &j, int limit) {
  check_walkable(j);
  Key k = primary_key(j.relid);
  // A ctid walk is tied to the table's physical file: its key names it.
  if (k.cols.empty()) k.signature = ctid_signature(j.relid);
  if (j.walk_key && is_ctid_walk(*j.walk_key) && *j.walk_key != k.signature) {
    // Rewritten since the pass started (VACUUM FULL, CLUSTER, a rewriting
    // ALTER TABLE, pg_repack): every row has a new place, pages already
    // walked may now hold rows never visited. Restart the pass from the top
    // of the new file; nothing fails, no row is skipped.
    // A table that gained a primary key meanwhile starts a keyset walk of
    // its own (with its end, below).
    const bool keyset = !is_ctid_walk(k.signature);
    update_walk(j, "walk_key = $2, cursor = NULL, walk_end = NULL",
                {spi::p_text(keyset ? std::nullopt : std::optional(k.signature))});
    catalog::add_history(j.id, "backfill", j.state, j.state,
                         fmt::format("table rewritten during the {} pass: pass restarted", j.pass));
    j.walk_key = keyset ? std::nullopt : std::optional(k.signature);
    j.walk_end.reset();
    j.cursor.reset();
  }
  if (!j.walk_key) {
    std::optional<std::string> end;
    if (!k.cols.empty()) {
      end = catalog::as_role(catalog::table_owner(j.relid), [&] { return last_key(j, k); });
      if (!end) {
        j.walk_key = k.signature;
        return Step{};  // an empty table: nothing to walk
      }
    }
    std::vector<std::string> names;
    for (const auto &c : k.cols) names.push_back(c.name);
    if (!j.leaf)
      catalog::execute("UPDATE zdd.transition SET key_columns = $2::pg_catalog.name[] WHERE id = $1",
                       {spi::p_int8(j.id), spi::p_text(k.cols.empty() ? std::optional<std::string>()
                                                                       : "{" + join(names, ",") + "}")});
    update_walk(j, "walk_key = $2, walk_end = $3::pg_catalog.text[]",
                {spi::p_text(k.signature), spi::p_text(end)});
    j.walk_key = k.signature;
    j.walk_end = end;
  } else if (!is_ctid_walk(*j.walk_key) && *j.walk_key != k.signature) {
    throw Permanent(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    fmt::format("zdd: the primary key of {} changed during the {} pass",
                                spi::qualified_relation(j.relid), j.pass),
                    fmt::format("The walk started on ({}), the table now has ({}).", *j.walk_key,
                                k.cols.empty() ? "no primary key" : k.signature),
                    "zdd.resume(id) starts this pass again from the top with the table's "
                    "current key; or zdd.abort(id).",
                    true);
  }
  const std::string timeout = std::to_string(settings::lock_timeout_ms);
  int level = pg_call([&] {
    int l = NewGUCNestLevel();
    (void)set_config_option("lock_timeout", timeout.c_str(), PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    return l;
  });
  quiet_triggers::Scope quiet(j.relid);
  Step s = catalog::as_role(catalog::table_owner(j.relid), [&] {
    if (is_ctid_walk(*j.walk_key)) return ctid_batch(j, limit);
    if (j.pass == "verify")
      if (std::optional<Step> clean = keyset_batch(j, k, limit, false)) return *clean;
    return *keyset_batch(j, k, limit, true);
  });
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

// Errors a later batch will likely not meet again: a lock wait that timed
// out, a cancel, a serialization failure or deadlock. They back off and
// retry without counting toward zdd.max_batch_failures.
bool transient(int sqlstate) {
  return sqlstate == ERRCODE_LOCK_NOT_AVAILABLE || sqlstate == ERRCODE_QUERY_CANCELED ||
         sqlstate == ERRCODE_T_R_SERIALIZATION_FAILURE || sqlstate == ERRCODE_T_R_DEADLOCK_DETECTED;
}

// Records a failed batch in its own transaction: last_error, the time of
// the next try (other transitions go first meanwhile), failures + 1 unless
// transient, and state 'failed' (with a history line) once failures reach
// the limit or at once for a permanent error. With reset_pass the pass
// starts again from the top at resume: the transition's walk, or for a
// partitioned table the walk of leaf (its counts taken off the totals).
// Returns the backoff.
long record_failure(int64_t id, const Error &e, bool permanent, bool reset_pass, Oid leaf) {
  std::string msg = e.message;
  if (!e.detail.empty()) msg += " (" + e.detail + ")";
  const bool counts = !transient(e.sqlstate);
  long backoff = 0;
  in_own_transaction([&] {
    auto cur = catalog::query("SELECT failures, backfill_state FROM zdd.transition WHERE id = $1",
                              {spi::p_int8(id)});
    const int failures = cur.empty() ? 0 : std::stoi(*cur[0][0]) + (counts ? 1 : 0);
    const std::string from = cur.empty() ? std::string("running") : *cur[0][1];
    backoff = failure_backoff_ms(std::max(failures, 1));
    int64_t leaf_done = 0, leaf_verified = 0;
    if (reset_pass && OidIsValid(leaf)) {
      auto old = catalog::query(
          "WITH old AS (SELECT pass, rows_done, rows_verified FROM zdd.transition_leaf "
          "  WHERE transition_id = $1 AND leaf = $2::pg_catalog.oid::pg_catalog.regclass FOR UPDATE), "
          "reset AS (UPDATE zdd.transition_leaf SET cursor = NULL, walk_key = NULL, walk_end = NULL, "
          "  rows_done = CASE WHEN pass = 'backfill' THEN 0 ELSE rows_done END, "
          "  rows_verified = CASE WHEN pass = 'verify' THEN 0 ELSE rows_verified END "
          "  WHERE transition_id = $1 AND leaf = $2::pg_catalog.oid::pg_catalog.regclass RETURNING 1) "
          "SELECT CASE WHEN pass = 'backfill' THEN rows_done ELSE 0 END, "
          "CASE WHEN pass = 'verify' THEN rows_verified ELSE 0 END FROM old",
          {spi::p_int8(id), spi::p_oid(leaf)});
      if (!old.empty()) {
        leaf_done = std::stoll(*old[0][0]);
        leaf_verified = std::stoll(*old[0][1]);
      }
    }
    auto rows = catalog::query(
        "UPDATE zdd.transition SET failures = failures + $5::int, "
        "failures_total = failures_total + 1, last_error = $2, "
        "updated_at = pg_catalog.now(), last_batch_at = pg_catalog.clock_timestamp(), "
        "next_try_at = pg_catalog.clock_timestamp() + $6 * interval '1 ms', "
        "backfill_state = CASE WHEN failures + $5::int >= $3 THEN 'failed' ELSE backfill_state END, "
        "cursor = CASE WHEN $4 THEN NULL ELSE cursor END, "
        "walk_key = CASE WHEN $4 THEN NULL ELSE walk_key END, "
        "walk_end = CASE WHEN $4 THEN NULL ELSE walk_end END, "
        "rows_done = CASE WHEN NOT $4 THEN rows_done WHEN $7 THEN GREATEST(0, rows_done - $8) "
        "  WHEN pass = 'backfill' THEN 0 ELSE rows_done END, "
        "rows_verified = CASE WHEN NOT $4 THEN rows_verified WHEN $7 THEN GREATEST(0, rows_verified - $9) "
        "  WHEN pass = 'verify' THEN 0 ELSE rows_verified END "
        "WHERE id = $1 AND phase = 'backfilling' AND backfill_state IN ('running', 'waiting') "
        "RETURNING backfill_state",
        {spi::p_int8(id), spi::p_text(msg), spi::p_int4(permanent ? 1 : max_batch_failures),
         spi::p_bool(reset_pass), spi::p_int4(counts || permanent ? 1 : 0), spi::p_int8(backoff),
         spi::p_bool(OidIsValid(leaf)), spi::p_int8(leaf_done), spi::p_int8(leaf_verified)});
    if (!rows.empty() && *rows[0][0] == "failed") {
      catalog::end_wait(id);
      catalog::add_history(id, "backfill", from, "failed", msg);
    }
  });
  return backoff;
}

// The runnable backfill of role whose last batch is oldest, if any; when
// all of them are backing off after a failure, how long until the first
// may try again (wait_ms).
std::optional<int64_t> pick(Oid role, long &wait_ms) {
  // A library newer than the database's SQL objects (installed, but ALTER
  // EXTENSION zdd UPDATE not run yet): wait for the update rather than fail
  // batches against a catalog without this version's columns.
  auto version = spi::query_cached("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'zdd'");
  if (version.empty() || *version[0][0] != kCatalogVersion) {
    wait_ms = 5000;
    return std::nullopt;
  }
  auto rows = catalog::query(
      "SELECT id, GREATEST(0, extract(epoch FROM next_try_at - pg_catalog.clock_timestamp()) "
      "  * 1000)::bigint FROM zdd.transition WHERE phase = 'backfilling' "
      "AND backfill_state IN ('running', 'waiting') AND started_by::pg_catalog.oid = $1 "
      "ORDER BY COALESCE(next_try_at > pg_catalog.clock_timestamp(), false), "
      "last_batch_at NULLS FIRST, id "
      "LIMIT 1",
      {spi::p_oid(role)});
  wait_ms = 0;
  if (rows.empty()) return std::nullopt;
  wait_ms = std::stol(*rows[0][1]);
  if (wait_ms > 0) return std::nullopt;
  return std::stoll(*rows[0][0]);
}

// Finishes the twins pass: phase 'backfilled', state 'done'.
void finish(const Job &j) {
  catalog::execute(
      "UPDATE zdd.transition SET phase = 'backfilled', backfill_state = 'done', last_error = NULL, "
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

// A health signal is over its limit: state 'waiting' with the reason (a
// history line, a LOG line and a NOTIFY when it starts waiting; the reason
// and lag refreshed at every check), checked again after zdd.health_recheck
// (next_try_at: other transitions go first meanwhile). Writes nothing to
// the table. Returns the sleep (none: the worker's pick() waits).
long wait(const Job &j, const std::string &reason, int64_t lag_bytes) {
  const long recheck = health::recheck_ms();
  catalog::execute(
      "UPDATE zdd.transition SET backfill_state = 'waiting', wait_reason = $2, lag_bytes = $3, "
      "waiting_since = COALESCE(waiting_since, pg_catalog.clock_timestamp()), "
      "next_try_at = pg_catalog.clock_timestamp() + $4 * interval '1 ms', worker_pid = $5, "
      "updated_at = pg_catalog.now() WHERE id = $1",
      {spi::p_int8(j.id), spi::p_text(reason), spi::p_int8(lag_bytes), spi::p_int8(recheck),
       spi::p_int4(MyProcPid)});
  if (j.state != "waiting") catalog::add_history(j.id, "backfill", j.state, "waiting", reason);
  const std::string what = fmt::format("zdd backfill: {} waiting: {}", spi::qualified_relation(j.relid), reason);
  pg_call([&] { pgstat_report_activity(STATE_RUNNING, what.c_str()); });
  return 0;
}

// The body of one batch inside its transaction. Returns the sleep before
// the next batch; sets twins_next when the twins pass must run now.
long batch_in_transaction(int64_t id, bool &twins_next, bool &waiting, Oid &leaf) {
  std::optional<Job> found = lock_job(id);
  if (found && found->leaf) leaf = found->relid;
  if (!found || found->phase != "backfilling" ||
      (found->state != "running" && found->state != "waiting"))
    return 0;
  Job &j = *found;
  const bool owner = pg_call([&] { return pg_class_ownercheck(j.relid, GetUserId()); });
  if (!owner)
    throw Permanent(ERRCODE_INSUFFICIENT_PRIVILEGE,
                    fmt::format("zdd: role running the backfill no longer owns table {}",
                                spi::qualified_relation(j.relid)));
  const health::Reading health = health::check(j.relid, j.limits);
  if (health.reason) {
    waiting = true;
    return wait(j, *health.reason, health.lag_bytes);
  }
  if (j.state == "waiting") {
    catalog::end_wait(j.id);
    catalog::add_history(j.id, "backfill", j.state, "running", "healthy again");
    j.state = "running";
  }
  if (j.pass == "twins") {
    twins_next = true;
    return 0;
  }
  if (j.leaves_done) {
    // A partitioned table whose every leaf is walked and verified.
    catalog::execute(
        "UPDATE zdd.transition SET pass = 'twins', cursor = NULL, walk_key = NULL, walk_end = NULL, "
        "updated_at = pg_catalog.now(), next_try_at = NULL, failures = 0, last_error = NULL WHERE id = $1",
        {spi::p_int8(id)});
    catalog::add_history(id, "backfill", std::string("running"), "running",
                         "backfill and verify passes finished on every partition");
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
  if (!s.next_cursor && j.leaf) {
    // This leaf's pass is finished; the next batch picks the next leaf.
    update_walk(j, "pass = $2, cursor = NULL, walk_key = NULL, walk_end = NULL, "
                   "finished_at = CASE WHEN $2 = 'done' THEN pg_catalog.now() END",
                {spi::p_text(std::string(verify ? "done" : "verify"))});
    catalog::add_history(id, "backfill", std::string("running"), "running",
                         fmt::format("{} pass finished on partition {}", j.pass,
                                     spi::qualified_relation(j.relid)));
    return 0;
  }
  if (!s.next_cursor) {
    // Pass finished: backfill → verify → twins.
    const std::string next = verify ? "twins" : "verify";
    catalog::execute(
        "UPDATE zdd.transition SET pass = $2, cursor = NULL, walk_key = NULL, walk_end = NULL, "
        "updated_at = pg_catalog.now(), next_try_at = NULL, "
        "rows_total = CASE WHEN $2 = 'verify' THEN rows_done ELSE rows_total END, "
        "failures = 0, last_error = NULL WHERE id = $1",
        {spi::p_int8(id), spi::p_text(next)});
    catalog::add_history(id, "backfill", std::string("running"), "running",
                         fmt::format("{} pass finished", j.pass));
    return 0;
  }
  catalog::execute(
      "UPDATE zdd.transition SET cursor = CASE WHEN $10 THEN NULL ELSE $2::pg_catalog.text[] END, "
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
      "batches = batches + 1, last_batch_at = pg_catalog.clock_timestamp(), next_try_at = NULL, "
      "updated_at = pg_catalog.now(), failures = 0, last_error = NULL, worker_pid = $5, "
      "batch_size_now = CASE WHEN target_batch_ms > 0 THEN $6 END, last_batch_ms = $8, "
      "lag_bytes = $9 WHERE id = $1",
      {spi::p_int8(id), spi::p_text(s.next_cursor), spi::p_int8(s.visited), spi::p_int8(s.written),
       spi::p_int4(MyProcPid), spi::p_int4(next_size), spi::p_bool(verify),
       spi::p_int4(int(std::min<long>(took, INT_MAX))), spi::p_int8(health.lag_bytes),
       spi::p_bool(j.leaf)});
  if (j.leaf)
    update_walk(j,
                "cursor = $2::pg_catalog.text[], "
                "rows_done = rows_done + CASE WHEN $5 THEN 0 ELSE $3 END, "
                "rows_written = rows_written + CASE WHEN $5 THEN 0 ELSE $4 END, "
                "rows_verified = rows_verified + CASE WHEN $5 THEN $3 ELSE 0 END, "
                "verify_fixed = verify_fixed + CASE WHEN $5 THEN $4 ELSE 0 END",
                {spi::p_text(s.next_cursor), spi::p_int8(s.visited), spi::p_int8(s.written),
                 spi::p_bool(verify)});

  long sleep = j.pause_ms;
  if (j.max_rate > 0) sleep = std::max(sleep, long(s.visited * 1000 / j.max_rate) - took);
  return sleep;
}

// The exception being handled, as a zdd::Error (a std::exception from a
// library call becomes an internal error: it must not end the worker).
Error current_error() {
  try {
    throw;
  } catch (const Error &e) {
    return e;
  } catch (const std::exception &e) {
    return Error(ERRCODE_INTERNAL_ERROR, fmt::format("zdd: internal error: {}", e.what()));
  } catch (...) {
    return Error(ERRCODE_INTERNAL_ERROR, "zdd: unknown internal error");
  }
}

}  // namespace

std::string twins_activity(int64_t id) { return fmt::format("zdd backfill: building twins of transition {}", id); }

// See backfill.hpp: picks, runs and records one batch (or the twins).
// Every error is recorded against the transition it came from and the
// worker goes on; only an unreadable catalog is thrown to the caller.
long run_next_batch(Oid role) {
  std::optional<int64_t> id;
  long sleep = 0, wait_ms = 0;
  bool twins_next = false, waiting = false;
  Oid leaf = InvalidOid;  // the leaf partition the batch walked, if any
  try {
    in_own_transaction([&] {
      id = pick(role, wait_ms);
      if (id) sleep = batch_in_transaction(*id, twins_next, waiting, leaf);
    });
    if (!id) {
      pg_call([] { pgstat_report_activity(STATE_IDLE, nullptr); });
      return wait_ms > 0 ? std::min(wait_ms, 1000L) : -1;
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
    pg_call([&] {
      pgstat_report_stat(false);
      // a wait keeps its "waiting: <reason>" line in pg_stat_activity
      if (!waiting) pgstat_report_activity(STATE_IDLE, nullptr);
    });
    return sleep;
  } catch (...) {
    const Error e = current_error();
    // Retrying cannot help: zdd said so, the role lost its rights (or a
    // row-level security policy would filter the walk), or a key type does
    // not fit the walk.
    bool permanent = e.sqlstate == ERRCODE_INSUFFICIENT_PRIVILEGE ||
                     e.sqlstate == ERRCODE_FEATURE_NOT_SUPPORTED;
    bool reset = false;
    try {
      throw;
    } catch (const Permanent &pe) {
      permanent = true;
      reset = pe.reset_pass;
    } catch (...) {
    }
    pg_call([] { AbortCurrentTransaction(); });
    if (!id) throw;  // the catalog itself is unreadable: the worker loop logs it
    return record_failure(*id, e, permanent, reset, leaf);
  }
}

// The table's row count as the status shows it: pg_class.reltuples, or
// for a table never vacuumed nor analyzed (reltuples -1) the planner's
// estimate from its current size and column widths (EXPLAIN: no scan, so
// it is cheap under begin's lock).
std::optional<std::string> estimate_rows(Oid relid) {
  if (partitions::is_partitioned(relid)) {
    int64_t sum = 0;
    for (const auto &l : partitions::leaves(relid))
      if (auto n = estimate_rows(l.relid)) sum += std::stoll(*n);
    return std::to_string(sum);
  }
  auto r = spi::query("SELECT c.reltuples >= 0, c.reltuples::pg_catalog.int8 FROM pg_catalog.pg_class c "
                      "WHERE c.oid = $1",
                      {spi::p_oid(relid)});
  if (r.empty()) return std::nullopt;
  if (*r[0][0] == "t") return r[0][1];
  auto plan = spi::query(fmt::format("EXPLAIN (FORMAT JSON) SELECT FROM ONLY {}", spi::qualified_relation(relid)));
  if (plan.empty() || !plan[0][0]) return std::nullopt;
  const std::string &json = *plan[0][0];
  const std::string tag = "\"Plan Rows\": ";
  const size_t at = json.find(tag);
  if (at == std::string::npos) return std::nullopt;
  size_t end = at + tag.size();
  while (end < json.size() && isdigit(static_cast<unsigned char>(json[end]))) ++end;
  return json.substr(at + tag.size(), end - at - tag.size());
}

// See backfill.hpp; also estimates rows_total (estimate_rows).
void mark_running(const catalog::Transition &t) {
  if (t.phase == "expanded") catalog::set_phase(t, "backfilling", "backfill started");
  catalog::execute(
      "UPDATE zdd.transition t SET backfill_state = 'running', failures = 0, last_error = NULL, "
      "updated_at = pg_catalog.now(), "
      "backfill_started_at = COALESCE(t.backfill_started_at, pg_catalog.now()), "
      "rows_total = COALESCE(t.rows_total, $2::pg_catalog.int8) "
      "WHERE t.id = $1",
      {spi::p_int8(t.id), spi::p_text(estimate_rows(t.relid))});
  if (t.backfill_state == "waiting") catalog::end_wait(t.id);
  catalog::add_history(t.id, "backfill", t.backfill_state, "running", {});
}

// Defines the engine's own settings (and the health signals').
void define_settings() {
  health::define_settings();
  DefineCustomIntVariable("zdd.max_batch_failures",
                          "Consecutive failed batches after which a backfill is marked failed.",
                          nullptr, &max_batch_failures, 5, 1, 1000, PGC_SIGHUP, 0, nullptr,
                          nullptr, nullptr);
}

}  // namespace zdd::backfill
