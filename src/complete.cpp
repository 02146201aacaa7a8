// complete.cpp — zdd.complete(id): the contract step. After 'backfilled'
// (every row verified, twins built), in one transaction: refuse if views,
// rules, policies, functions or other tables' foreign keys depend on the
// old column (2BP01, listing them — never CASCADE); take the ACCESS
// EXCLUSIVE lock under zdd.lock_timeout with retries (55P03 and nothing
// changed when it can't be had); move the old column's default to the new
// one; drop the sync trigger and the old column (RESTRICT); re-create the
// primary key / unique constraints the old column carried on their twin
// indexes (ADD CONSTRAINT ... USING INDEX, no scan); record 'completed'.
#include "backfill.hpp"
#include "catalog.hpp"
#include "ddl.hpp"
#include "spi.hpp"
#include "table.hpp"
#include "twins.hpp"

extern "C" {
#include "storage/lockdefs.h"
}

namespace zdd {

namespace {

// Objects other than the table's own indexes and constraints that depend
// on column att of relid, described for an error message.
std::vector<std::string> dependents(Oid relid, int att) {
  auto rows = spi::query(
      "SELECT DISTINCT pg_catalog.pg_describe_object(CASE WHEN rw.oid IS NULL THEN d.classid "
      "  ELSE 'pg_catalog.pg_class'::pg_catalog.regclass END, COALESCE(rw.ev_class, d.objid), 0) "
      "FROM pg_catalog.pg_depend d "
      "LEFT JOIN pg_catalog.pg_rewrite rw ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass "
      "  AND rw.oid = d.objid "
      "LEFT JOIN pg_catalog.pg_constraint co ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass "
      "  AND co.oid = d.objid "
      "WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = $1 "
      "AND d.refobjsubid = $2 AND d.deptype = 'n' "
      "AND NOT (co.oid IS NOT NULL AND co.conrelid = $1) "
      "AND NOT (rw.oid IS NOT NULL AND rw.ev_class = $1) ORDER BY 1",
      {spi::p_oid(relid), spi::p_int4(att)});
  std::vector<std::string> out;
  for (const auto &r : rows) out.push_back(r[0] ? *r[0] : "?");
  return out;
}

// zdd.complete(): see the file comment.
Datum complete(FunctionCallInfo fcinfo) {
  const int64_t id = PG_GETARG_INT64(0);
  spi::Connection spi;
  catalog::Transition t = catalog::load(id, true);
  table::check_may_steer(t);
  if (t.phase != "backfilled")
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                fmt::format("zdd: cannot complete transition {}: phase is {}", id, t.phase),
                "complete needs phase backfilled: every row verified and the twins built.",
                t.phase == "backfilling" || t.phase == "expanded"
                    ? "Wait for the backfill with CALL zdd.wait(id); see zdd.status."
                    : "");
  if (!t.table_exists)
    throw Error(ERRCODE_UNDEFINED_TABLE, fmt::format("zdd: the table of transition {} no longer exists", id));
  const std::string rel = spi::qualified_relation(t.relid);
  const int old_att = pg_call([&] { return int(get_attnum(t.relid, t.old_column.c_str())); });

  const auto deps = dependents(t.relid, old_att);
  if (!deps.empty()) {
    std::string list;
    for (const auto &d : deps) list += (list.empty() ? "" : "; ") + d;
    throw Error(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
                fmt::format("zdd: cannot complete transition {}: other objects depend on column \"{}\"",
                            id, t.old_column),
                list, fmt::format("Recreate them on \"{}\" first (zdd never drops them with CASCADE).",
                                  t.new_column));
  }

  // Constraints backed by indexes on the old column, to re-create on twins.
  auto keys = spi::query(
      "SELECT co.conname, co.contype, ci.relname FROM pg_catalog.pg_constraint co "
      "JOIN pg_catalog.pg_class ci ON ci.oid = co.conindid "
      "WHERE co.conrelid = $1 AND co.contype IN ('p', 'u') AND $2 = ANY (co.conkey) ORDER BY 1",
      {spi::p_oid(t.relid), spi::p_int4(old_att)});
  auto def = spi::query(
      "SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d "
      "WHERE d.adrelid = $1 AND d.adnum = $2",
      {spi::p_oid(t.relid), spi::p_int4(old_att)});

  ddl::lock_table(t.relid, AccessExclusiveLock, "complete");
  const std::string newc = spi::ident(t.new_column);
  if (!def.empty() && def[0][0])
    spi::execute(fmt::format("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}", rel, newc, *def[0][0]));
  spi::execute(fmt::format("DROP TRIGGER IF EXISTS {} ON {}", spi::ident(catalog::trigger_name(id)), rel));
  spi::execute(fmt::format("ALTER TABLE {} DROP COLUMN {} RESTRICT", rel, spi::ident(t.old_column)));
  for (const auto &k : keys) {
    const std::string twin = twins::twin_name(*k[2], t.old_column, t.new_column);
    auto exists = spi::query(
        "SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = $1 AND c.relname = $2 AND i.indisvalid",
        {spi::p_oid(t.relid), spi::p_text(twin)});
    if (exists.empty())
      throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                  fmt::format("zdd: cannot complete transition {}: the twin index \"{}\" of "
                              "constraint \"{}\" is missing or invalid", id, twin, *k[0]),
                  {}, "Its build failed; see zdd.status.last_error and call zdd.resume(id).");
    spi::execute(fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}", rel,
                             spi::ident(*k[0]), *k[1] == "p" ? "PRIMARY KEY" : "UNIQUE",
                             spi::ident(twin)));
  }
  backfill::request_stop(t);
  catalog::set_phase(t, "completed", "complete");
  PG_RETURN_VOID();
}

}  // namespace

}  // namespace zdd

extern "C" {
PG_FUNCTION_INFO_V1(zdd_complete);
PGDLLEXPORT Datum zdd_complete(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::complete(fcinfo); });
}
}
