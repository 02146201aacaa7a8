// table.cpp — validation of tables and columns (syscache lookups only).
#include "table.hpp"

#include "spi.hpp"

extern "C" {
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "utils/acl.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
}

namespace zdd::table {

namespace {
std::string relname(Oid relid) { return spi::qualified_relation(relid); }
}  // namespace

void check_table(Oid relid) {
  const char kind = pg_call([&] { return get_rel_relkind(relid); });
  if (kind == '\0')
    throw Error(ERRCODE_UNDEFINED_TABLE, fmt::format("zdd: relation with OID {} does not exist", relid));
  const std::string name = relname(relid);
  if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
    throw Error(ERRCODE_WRONG_OBJECT_TYPE, fmt::format("zdd: {} is not a table", name),
                "zdd moves columns of ordinary tables only (not views, materialized views, "
                "foreign tables, indexes, sequences or composite types).");
  const bool system = pg_call([&] {
    return IsCatalogRelationOid(relid) || IsCatalogNamespace(get_rel_namespace(relid)) ||
           IsToastNamespace(get_rel_namespace(relid));
  });
  const bool own_catalog =
      pg_call([&] { return get_rel_namespace(relid) == get_namespace_oid("zdd", false); });
  if (system || own_catalog)
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: {} is a system or zdd catalog table", name));
  const bool owner = pg_call([&] { return pg_class_ownercheck(relid, GetUserId()); });
  if (!owner)
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                fmt::format("zdd: must be owner of table {}", name),
                {}, "Only the table's owner (or a member of the owning role) may start, "
                    "complete or abort a transition on it.");
}

void check_walkable(Oid relid) {
  const std::string name = relname(relid);
  auto rows = spi::query(
      "SELECT c.relpersistence, c.relhasrules, c.relrowsecurity AND c.relforcerowsecurity, "
      "EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid) "
      "  AND c.relkind <> 'p', "
      "EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid), "
      "r.rolsuper OR r.rolbypassrls, "
      "CASE WHEN c.relispartition THEN pg_catalog.pg_partition_root(c.oid)::pg_catalog.text END "
      "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner WHERE c.oid = $1",
      {spi::p_oid(relid)});
  if (rows.empty()) throw Error(ERRCODE_UNDEFINED_TABLE, fmt::format("zdd: {} does not exist", name));
  const spi::Row &r = rows[0];
  if (*r[0] == "t")
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, fmt::format("zdd: {} is a temporary table", name),
                "The backfill worker runs in another session, which cannot see it.",
                "Use ALTER TABLE ... RENAME COLUMN: a temporary table has no other sessions' traffic.");
  if (*r[1] == "t")
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, fmt::format("zdd: {} has rules", name),
                "A rule can rewrite the backfill's UPDATE into other statements.",
                "Drop the table's rules for the transition, or rename by hand.");
  if (*r[3] == "t")
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: {} has inheritance children", name),
                "Their rows share the column, but the sync trigger and the backfill would see "
                "the parent's rows only; complete would then drop the children's only copy.",
                "Rename the column with ALTER TABLE ... RENAME COLUMN, or detach the children "
                "(ALTER TABLE child NO INHERIT parent) first.");
  if (r[6])
    throw Error(ERRCODE_WRONG_OBJECT_TYPE,
                fmt::format("zdd: {} is a partition of {}", name, *r[6]),
                "A partition's columns are its partitioned table's: they change together.",
                fmt::format("Run the transition on {}: it covers every partition.", *r[6]));
  if (*r[4] == "t")
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: {} inherits from another table", name),
                "An inherited column cannot be dropped from the child alone.",
                "Run the transition on the parent (without children), or rename by hand.");
  if (*r[2] == "t" && *r[5] != "t")
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: {} has FORCE ROW LEVEL SECURITY", name),
                "The backfill runs as the table's owner, whose view of the rows the policies "
                "filter: it could not see, and so not copy, every row.",
                "ALTER TABLE ... NO FORCE ROW LEVEL SECURITY for the transition, or give the "
                "owner BYPASSRLS.");
  check_trigger_order(relid);
}

std::string late_triggers(Oid relid) {
  auto late = spi::query(
      "SELECT pg_catalog.string_agg(pg_catalog.format('%I on %s', tg.tgname, tg.tgrelid::pg_catalog.regclass), "
      "', ' ORDER BY tg.tgname, tg.tgrelid) FROM pg_catalog.pg_trigger tg "
      "WHERE (tg.tgrelid = $1 OR tg.tgrelid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree($1) t)) "
      "AND NOT tg.tgisinternal "
      "AND tg.tgtype::pg_catalog.int4 & 3 = 3 AND tg.tgtype::pg_catalog.int4 & 20 <> 0 "
      "AND tg.tgname > 'zz_zdd_sync_' AND tg.tgfoid NOT IN (SELECT p.oid FROM pg_catalog.pg_proc p "
      "  WHERE p.proname = 'sync_trigger' AND p.pronamespace = 'zdd'::pg_catalog.regnamespace)",
      {spi::p_oid(relid)});
  return late.empty() || !late[0][0] ? std::string() : *late[0][0];
}

void check_trigger_order(Oid relid) {
  const std::string late = late_triggers(relid);
  if (late.empty()) return;
  throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
              fmt::format("zdd: {} has BEFORE ROW triggers that would fire after zdd's sync trigger", relname(relid)),
              fmt::format("Triggers fire in name order; zdd's are named zz_zdd_sync_<id>. After it: {}. "
                          "A value such a trigger sets would not reach the other column.",
                          late),
              "Rename them to sort before \"zz_zdd_sync_\" (ALTER TRIGGER ... RENAME TO ...).");
}

std::string collate_clause(Oid collation) {
  // The name is built by PostgreSQL first; no C++ object is alive while
  // it may raise an error.
  const char *q = pg_call([&] {
    HeapTuple ct = SearchSysCache1(COLLOID, ObjectIdGetDatum(collation));
    if (!HeapTupleIsValid(ct)) elog(ERROR, "cache lookup failed for collation %u", collation);
    Form_pg_collation c = (Form_pg_collation)GETSTRUCT(ct);
    const char *name = quote_qualified_identifier(get_namespace_name(c->collnamespace), NameStr(c->collname));
    ReleaseSysCache(ct);
    return name;
  });
  return std::string(" COLLATE ") + q;
}

Column column_to_move(Oid relid, const std::string &name) {
  HeapTuple tup = pg_call([&] { return SearchSysCacheAttName(relid, name.c_str()); });
  if (!HeapTupleIsValid(tup))
    throw Error(ERRCODE_UNDEFINED_COLUMN,
                fmt::format("zdd: column \"{}\" of {} does not exist", name, relname(relid)));
  Form_pg_attribute att = (Form_pg_attribute)GETSTRUCT(tup);
  FormData_pg_attribute a = *att;  // plain copy; release the cache entry at once
  pg_call([&] { ReleaseSysCache(tup); });

  if (a.attnum <= 0)
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: cannot rename system column \"{}\"", name));
  if (a.attgenerated != '\0')
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: cannot rename generated column \"{}\"", name),
                "Generated columns are computed from other columns; rename them with "
                "ALTER TABLE ... RENAME COLUMN, which is a catalog-only change.");
  // A domain with constraints makes ADD COLUMN check every row under an
  // ACCESS EXCLUSIVE lock (a full table rewrite): refuse rather than stall.
  const bool domain_checks = pg_call([&] { return DomainHasConstraints(a.atttypid); });
  if (domain_checks)
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: column \"{}\" is of a domain type with constraints", name),
                "Adding such a column rewrites the whole table under an ACCESS EXCLUSIVE lock; "
                "zdd supports domains without constraints only.");

  Column c;
  c.attnum = a.attnum;
  c.type_sql = pg_call([&] {
    return std::string(format_type_extended(a.atttypid, a.atttypmod,
                                            FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
  });
  const Oid typcoll = pg_call([&] { return get_typcollation(a.atttypid); });
  if (OidIsValid(a.attcollation) && a.attcollation != typcoll) c.type_sql += collate_clause(a.attcollation);
  const char typstorage = pg_call([&] { return get_typstorage(a.atttypid); });
  if (a.attstorage != typstorage) {
    switch (a.attstorage) {
      case TYPSTORAGE_PLAIN: c.column_options.push_back("SET STORAGE PLAIN"); break;
      case TYPSTORAGE_EXTERNAL: c.column_options.push_back("SET STORAGE EXTERNAL"); break;
      case TYPSTORAGE_EXTENDED: c.column_options.push_back("SET STORAGE EXTENDED"); break;
      case TYPSTORAGE_MAIN: c.column_options.push_back("SET STORAGE MAIN"); break;
    }
  }
  if (a.attcompression == 'p') c.column_options.push_back("SET COMPRESSION pglz");
  if (a.attcompression == 'l') c.column_options.push_back("SET COMPRESSION lz4");
  if (a.attstattarget >= 0)
    c.column_options.push_back(fmt::format("SET STATISTICS {}", a.attstattarget));
  return c;
}

void check_twin_rights(Oid relid, AttrNumber old_att) {
  const std::string name = relname(relid);
  auto rows = spi::query(
      "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid "
      "  AND ($2 = ANY (i.indkey::pg_catalog.int2[]) OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d "
      "  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid "
      "  AND d.refobjid = c.oid AND d.refobjsubid = $2))) "
      "AND NOT pg_catalog.has_schema_privilege(pg_catalog.current_user(), c.relnamespace, 'CREATE'), "
      "(SELECT pg_catalog.string_agg(co.confrelid::pg_catalog.regclass::pg_catalog.text, ', ') "
      " FROM pg_catalog.pg_constraint co WHERE co.conrelid = c.oid AND co.contype = 'f' "
      " AND $2 = ANY (co.conkey) AND NOT (SELECT pg_catalog.bool_and(pg_catalog.has_column_privilege("
      "   c.relowner, co.confrelid, k, 'REFERENCES')) FROM pg_catalog.unnest(co.confkey) k)), "
      "c.relnamespace::pg_catalog.regnamespace::pg_catalog.text, c.relowner::pg_catalog.regrole::pg_catalog.text "
      "FROM pg_catalog.pg_class c WHERE c.oid = $1",
      {spi::p_oid(relid), spi::p_int4(old_att)});
  if (rows.empty()) return;
  if (*rows[0][0] == "t")
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                fmt::format("zdd: the new column's index twins need CREATE on schema {}", *rows[0][2]),
                fmt::format("Column {} of {} is indexed; the backfill builds the same indexes on the "
                            "new column as the role that starts the transition.",
                            old_att, name),
                fmt::format("GRANT CREATE ON SCHEMA {} to this role, or start the transition as one "
                            "that has it.",
                            *rows[0][2]));
  if (rows[0][1])
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                fmt::format("zdd: the new column's foreign key twins need REFERENCES on {}", *rows[0][1]),
                fmt::format("They are added as the table's owner, {}.", *rows[0][3]),
                "GRANT REFERENCES on the referenced columns to the table's owner.");
}

void check_new_name(Oid relid, const std::string &name) {
  if (name.empty())
    throw Error(ERRCODE_INVALID_NAME, "zdd: the new column name must not be empty");
  const AttrNumber n = pg_call([&] { return get_attnum(relid, name.c_str()); });
  if (n != InvalidAttrNumber)
    throw Error(ERRCODE_DUPLICATE_COLUMN,
                fmt::format("zdd: column \"{}\" of {} already exists", name, relname(relid)));
}

int check_throttle_value(const char *name, int v, bool zero_ok) {
  if (v < 0 || (v == 0 && !zero_ok))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                fmt::format("zdd: {} must be {} (got {})", name,
                            zero_ok ? "zero or more" : "greater than zero", v));
  return v;
}

void check_may_steer(const catalog::Transition &t) {
  if (t.table_exists) {
    const bool owner = pg_call([&] { return pg_class_ownercheck(t.relid, GetUserId()); });
    if (!owner)
      throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                  fmt::format("zdd: must be owner of table {} to steer transition {}",
                              relname(t.relid), t.id));
    return;
  }
  const bool ok = pg_call([&] {
    return superuser() || has_privs_of_role(GetUserId(), t.started_by);
  });
  if (!ok)
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                fmt::format("zdd: only the role that started transition {} may steer it", t.id));
}

}  // namespace zdd::table
