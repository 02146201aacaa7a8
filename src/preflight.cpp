// preflight.cpp — zdd.check_rename(tbl, old, new): what begin_rename would
// refuse and what the DBA should know before starting, from the catalogs
// only, changing nothing. Blockers are begin_rename's own checks (run here
// one by one, each in a subtransaction that is rolled back); warnings and
// notes are read from the catalogs.
#include <functional>

#include "attachments.hpp"
#include "catalog.hpp"
#include "ddl.hpp"
#include "retype.hpp"
#include "partitions.hpp"
#include "spi.hpp"
#include "table.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"
}

namespace zdd {

namespace {

// One finding: severity (blocker, warning, note), object, finding, action.
struct Finding {
  std::string severity, object, finding, action;
};

// begin_rename's checks, as blockers.
void blockers(Oid relid, const std::string &oldc, const std::string &newc, std::vector<Finding> &out) {
  const std::string rel = spi::qualified_relation(relid);
  auto add = [&](const std::optional<Error> &e) {
    if (e) out.push_back({"blocker", rel, e->message + (e->detail.empty() ? "" : " (" + e->detail + ")"), e->hint});
  };
  add(ddl::probe([&] { table::check_table(relid); }));
  add(ddl::probe([&] { table::check_walkable(relid); }));
  add(ddl::probe([&] {
    if (partitions::is_partitioned(relid)) partitions::check_tree(relid, oldc);
  }));
  auto col = ddl::probe([&] { table::column_to_move(relid, oldc); });
  add(col);
  add(ddl::probe([&] { table::check_new_name(relid, newc); }));
  if (col) return;
  const AttrNumber att = pg_call([&] { return get_attnum(relid, oldc.c_str()); });
  add(ddl::probe([&] { table::check_twin_rights(relid, att); }));
  add(ddl::probe([&] { attachments::refuse_uncarried(relid, att, oldc); }));
  if (auto other = catalog::open_transition_using(relid, oldc))
    out.push_back({"blocker", rel, fmt::format("column \"{}\" is already in transition {}", oldc, *other),
                   "Complete or abort that transition first."});
}

// Warnings and notes from the catalogs.
void observations(Oid relid, const std::string &oldc, std::vector<Finding> &out) {
  const AttrNumber att = pg_call([&] { return get_attnum(relid, oldc.c_str()); });
  if (att <= 0) return;
  const std::vector<spi::Param> p = {spi::p_oid(relid), spi::p_int4(att)};
  for (const auto &d : attachments::dependents(relid, att, true))
    out.push_back({"warning", d, "depends on the old column: complete refuses (2BP01) while it does",
                   "Recreate it on the new column before complete."});
  for (const auto &r : spi::query(
           "SELECT pg_catalog.format('trigger %I', t.tgname) FROM pg_catalog.pg_trigger t "
           "WHERE t.tgrelid = $1 AND NOT t.tgisinternal AND t.tgname NOT LIKE 'zz\\_zdd\\_sync\\_%' "
           "AND $2 = ANY (t.tgattr::pg_catalog.int2[]) ORDER BY 1",
           p))
    out.push_back({"warning", *r[0],
                   "fires only for UPDATEs that name the old column (UPDATE OF): complete refuses "
                   "(2BP01) while it does",
                   "Recreate it with UPDATE OF the new column (writes through the new name do not "
                   "fire it meanwhile)."});
  for (const auto &r : spi::query(
           "SELECT pg_catalog.format('publication %I', pb.pubname) FROM pg_catalog.pg_publication_rel pr "
           "JOIN pg_catalog.pg_publication pb ON pb.oid = pr.prpubid WHERE pr.prrelid = $1 "
           "AND (pr.prattrs IS NULL OR $2 = ANY (pr.prattrs::pg_catalog.int2[])) ORDER BY 1",
           p))
    out.push_back({"warning", *r[0], "publishes the table: subscribers see the new column appear and the old one go",
                   "Add the new column on subscribers before begin_rename and drop the old one after "
                   "complete (subscriber writes bypass the sync trigger)."});
  for (const auto &r : spi::query(
           "SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
           "WHERE i.indrelid = $1 AND i.indisreplident AND $2 = ANY (i.indkey::pg_catalog.int2[])",
           p))
    out.push_back({"note", fmt::format("index {}", *r[0]), "is the replica identity",
                   "Carried: complete makes its twin the replica identity."});
  for (const auto &r : spi::query(
           "SELECT pg_catalog.format('foreign key %I of %s', co.conname, co.conrelid::pg_catalog.regclass) "
           "FROM pg_catalog.pg_constraint co WHERE co.contype = 'f' AND co.confrelid = $1 "
           "AND co.conrelid <> $1 AND $2 = ANY (co.confkey) ORDER BY 1",
           p))
    out.push_back({"note", *r[0], "references the old column",
                   "Carried: a twin on that table references the new column (NOT VALID, then "
                   "validated); complete swaps them, locking this table first."});
  for (const auto &r : spi::query(
           "SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) x "
           "WHERE a.attrelid = $1 AND a.attnum = $2",
           p))
    if (*r[0] != "0")
      out.push_back({"note", "column privileges", fmt::format("{} column grants on the old column", *r[0]),
                     "Carried: the new column gets the same grants at begin_rename."});
  auto est = spi::query(
      "SELECT GREATEST(c.reltuples, 0)::bigint, pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)), "
      "c.reltuples < 0 FROM pg_catalog.pg_class c WHERE c.oid = $1",
      {spi::p_oid(relid)});
  if (!est.empty())
    out.push_back({"note", "backfill",
                   fmt::format("about {} rows ({}){}", *est[0][0], *est[0][1],
                               *est[0][2] == "t" ? ", never analyzed: ANALYZE for a better estimate" : ""),
                   fmt::format("At the default throttle (about 15,000 rows/s on 2 cores) the backfill and "
                               "its verification take about {} s.",
                               std::max<int64_t>(1, std::stoll(*est[0][0]) * 2 / 15000))});
}

// Returns the findings as the rows of a set-returning function.
Datum emit(FunctionCallInfo fcinfo, const std::vector<Finding> &out) {
  pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
  ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
  for (const auto &f : out) {
    pg_call([&] {
      Datum v[4] = {CStringGetTextDatum(f.severity.c_str()), CStringGetTextDatum(f.object.c_str()),
                    CStringGetTextDatum(f.finding.c_str()), CStringGetTextDatum(f.action.c_str())};
      bool n[4] = {false, false, false, f.action.empty()};
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
    });
  }
  return (Datum)0;
}

// Raises 42P01 for a relation OID that names nothing.
void check_exists(Oid relid) {
  const bool exists = pg_call([&] { return get_rel_relkind(relid) != '\0'; });
  if (!exists)
    throw Error(ERRCODE_UNDEFINED_TABLE, fmt::format("zdd: relation with OID {} does not exist", relid));
}

// zdd.check_rename(): a set of findings, blockers first.
Datum check_rename(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "zdd: check_rename needs a table, an old column and a new column");
  const Oid relid = PG_GETARG_OID(0);
  const std::string oldc = NameStr(*PG_GETARG_NAME(1)), newc = NameStr(*PG_GETARG_NAME(2));
  std::vector<Finding> out;
  {
    spi::Connection spi;
    check_exists(relid);
    blockers(relid, oldc, newc, out);
    observations(relid, oldc, out);
  }
  return emit(fcinfo, out);
}

// zdd.check_retype(): begin_retype's checks (conversion both ways, the
// sample of rows) as blockers, what it would do as a note, then the
// findings of a rename of the column.
Datum check_retype(FunctionCallInfo fcinfo) {
  const retype::Request r = retype::request_from_args(fcinfo, "check_retype");
  std::vector<Finding> out;
  {
    spi::Connection spi;
    check_exists(r.relid);
    const std::string rel = spi::qualified_relation(r.relid);
    std::optional<retype::Prepared> p;
    auto e = ddl::probe([&] { p = retype::prepare(r); });
    if (e) {
      out.push_back({"blocker", rel, e->message + (e->detail.empty() ? "" : " (" + e->detail + ")"), e->hint});
    } else if (p->catalog_only) {
      out.push_back({"note", fmt::format("column {}", spi::ident(r.column)),
                     fmt::format("{} to {} changes only the catalog (no rewrite, no scan)",
                                 p->x.old_type_name, p->x.new_type_name),
                     "begin_retype runs ALTER COLUMN ... TYPE at once under a short lock; no transition."});
      return emit(fcinfo, out);
    } else {
      out.push_back({"note", fmt::format("column {}", spi::ident(r.column)),
                     fmt::format("{} to {} through new column {}; the conversion compiled both ways and "
                                 "converted a sample of the rows",
                                 p->x.old_type_name, p->x.new_type_name, spi::ident(p->x.new_column)),
                     p->x.keep_name ? fmt::format("complete gives the new column the name {} (it moves to "
                                                  "the end of the table's column list)",
                                                  spi::ident(r.column))
                                    : std::string()});
      if (p->x.up.has_value() != p->x.down.has_value())
        out.push_back({"warning", fmt::format("column {}", spi::ident(r.column)),
                       fmt::format("{} is an expression, {} the assignment cast", p->x.up ? "up" : "down",
                                   p->x.up ? "down" : "up"),
                       "Rows one app version writes are converted by the cast, not by the inverse of "
                       "the expression: give both directions unless the cast is that inverse."});
      // what begin_retype's expand step refuses, as for a rename
      blockers(r.relid, r.column, p->x.new_column, out);
    }
    observations(r.relid, r.column, out);
  }
  return emit(fcinfo, out);
}

}  // namespace

}  // namespace zdd

extern "C" {
PG_FUNCTION_INFO_V1(zdd_check_rename);
PG_FUNCTION_INFO_V1(zdd_check_retype);
PGDLLEXPORT Datum zdd_check_rename(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::check_rename(fcinfo); });
}
PGDLLEXPORT Datum zdd_check_retype(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::check_retype(fcinfo); });
}
}
