// partitions.cpp — see partitions.hpp. Catalog reads through SPI with the
// search_path pinned; writes to zdd.transition_leaf through catalog::.
#include "partitions.hpp"

#include "ddl.hpp"
#include "guard.hpp"
#include "quiet_triggers.hpp"
#include "settings.hpp"
#include "table.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "storage/lmgr.h"
#include "storage/lockdefs.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

namespace zdd::partitions {

namespace {

// The partition tree of the root in parameter $n, read from pg_inherits
// (no lock taken on the partitions, unlike pg_partition_tree):
// zdd_tree(relid, path), path ordering it depth first.
std::string tree_cte(int n) {
  return fmt::format(
      "WITH RECURSIVE zdd_tree(relid, path) AS ("
      " SELECT ${0}::pg_catalog.oid, ARRAY[${0}::pg_catalog.oid] "
      " UNION ALL SELECT i.inhrelid, t.path OPERATOR(pg_catalog.||) i.inhrelid FROM zdd_tree t "
      " JOIN pg_catalog.pg_inherits i ON i.inhparent = t.relid) ",
      n);
}

}  // namespace

bool is_partitioned(Oid relid) {
  return pg_call([&] { return get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE; });
}

std::string only(Oid relid) { return is_partitioned(relid) ? "" : "ONLY "; }

std::vector<Leaf> leaves(Oid root) {
  auto rows = spi::query(tree_cte(1) +
                             "SELECT t.relid FROM zdd_tree t JOIN pg_catalog.pg_class c ON c.oid = t.relid "
                             "WHERE c.relkind = 'r' ORDER BY t.path",
                         {spi::p_oid(root)});
  std::vector<Leaf> out;
  for (const auto &r : rows) {
    Leaf l;
    l.relid = static_cast<Oid>(std::stoul(*r[0]));
    l.name = spi::qualified_relation(l.relid);
    out.push_back(l);
  }
  return out;
}

void check_tree(Oid root, const std::string &old_column) {
  const std::string name = spi::qualified_relation(root);
  // The partition key, at any level, by column or by expression (the
  // columns of a partition key expression are recorded as internal
  // dependencies of the table on them, column -> table:
  // StorePartitionKey's reverse_self).
  auto key = spi::query(
      "SELECT c.oid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_partition_tree($1) t "
      "JOIN pg_catalog.pg_class c ON c.oid = t.relid "
      "JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = c.oid "
      "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 "
      "WHERE a.attnum = ANY (pt.partattrs::pg_catalog.int2[]) OR EXISTS (SELECT 1 FROM "
      "pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
      "AND d.objid = c.oid AND d.objsubid = a.attnum AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
      "AND d.refobjid = c.oid AND d.refobjsubid = 0 AND d.deptype = 'i') LIMIT 1",
      {spi::p_oid(root), spi::p_text(old_column)});
  if (!key.empty())
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: column \"{}\" is part of the partition key of {}", old_column, *key[0][0]),
                "PostgreSQL cannot change a partition key in place: the old column could never be "
                "dropped.",
                "A rename of a partition key column is catalog-only: ALTER TABLE ... RENAME COLUMN. "
                "A type change of it needs a new partitioned table.");
  auto bad = spi::query(
      "SELECT c.oid::pg_catalog.regclass::pg_catalog.text, c.relkind, c.relhasrules, "
      "c.relrowsecurity AND c.relforcerowsecurity AND NOT (r.rolsuper OR r.rolbypassrls), "
      "pg_catalog.pg_has_role(c.relowner, 'USAGE') "
      "FROM pg_catalog.pg_partition_tree($1) t JOIN pg_catalog.pg_class c ON c.oid = t.relid "
      "JOIN pg_catalog.pg_roles r ON r.oid = c.relowner WHERE t.level > 0",
      {spi::p_oid(root)});
  for (const auto &r : bad) {
    if (*r[1] == "f")
      throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                  fmt::format("zdd: {} has a foreign table as partition: {}", name, *r[0]),
                  "The backfill cannot walk, nor the sync trigger keep, rows stored elsewhere.",
                  "Detach the foreign partition for the transition, or rename by hand.");
    if (*r[2] == "t")
      throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, fmt::format("zdd: partition {} has rules", *r[0]),
                  "A rule can rewrite the backfill's UPDATE into other statements.",
                  "Drop the partition's rules for the transition.");
    if (*r[3] == "t")
      throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                  fmt::format("zdd: partition {} has FORCE ROW LEVEL SECURITY", *r[0]),
                  "The backfill runs as the owner, whose view of the rows the policies filter.",
                  "ALTER TABLE ... NO FORCE ROW LEVEL SECURITY for the transition.");
    if (*r[4] != "t")
      throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                  fmt::format("zdd: must be owner of partition {}", *r[0]),
                  "The backfill writes every partition as the role that starts the transition.");
  }
  auto refs = spi::query(
      "SELECT pg_catalog.string_agg(pg_catalog.format('%I of %s', co.conname, "
      "co.conrelid::pg_catalog.regclass), ', ') FROM pg_catalog.pg_constraint co "
      "JOIN pg_catalog.pg_attribute a ON a.attrelid = co.confrelid AND a.attname = $2 "
      "WHERE co.contype = 'f' AND co.confrelid = $1 AND co.conparentid = 0 AND a.attnum = ANY (co.confkey)",
      {spi::p_oid(root), spi::p_text(old_column)});
  if (refs[0][0])
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: foreign keys reference column \"{}\" of partitioned table {}",
                            old_column, name),
                fmt::format("Referencing: {}. Their twins would need the new column's unique key on the "
                            "partitioned table before complete, which PostgreSQL 15 cannot build "
                            "without a lock that blocks writes for the whole build.",
                            *refs[0][0]),
                "Drop those foreign keys for the transition and add them again after complete "
                "(NOT VALID, then VALIDATE), or rename by hand.");
  const std::string local = local_objects(root, old_column);
  if (!local.empty())
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: partitions of {} have their own objects on column \"{}\"", name,
                            old_column),
                fmt::format("Defined on one partition only: {}. zdd builds twins of what is defined "
                            "on the partitioned table; complete would drop these with the column.",
                            local),
                "Define them on the partitioned table instead (CREATE INDEX ... ON the parent "
                "attaches an equal index of each partition), or drop them.");
}

std::string local_objects(Oid root, const std::string &old_column) {
  // Below the root: indexes that are no partition of a parent index,
  // constraints that no parent constraint owns, NOT NULL the parent lacks,
  // other tables' foreign keys that reference a partition itself.
  auto rows = spi::query(
      "WITH m AS (SELECT t.relid, a.attnum, a.attnotnull, a.attacl, "
      "  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d "
      "   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) AS def "
      "  FROM pg_catalog.pg_partition_tree($1) t "
      "  JOIN pg_catalog.pg_attribute a ON a.attrelid = t.relid AND a.attname = $2 WHERE t.level > 0), "
      "root AS (SELECT a.attnotnull, (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d "
      "  WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) AS def "
      "  FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND a.attname = $2) "
      "SELECT pg_catalog.string_agg(x, '; ' ORDER BY x) FROM ("
      " SELECT pg_catalog.format('index %s', i.indexrelid::pg_catalog.regclass) AS x "
      " FROM m JOIN pg_catalog.pg_index i ON i.indrelid = m.relid "
      " WHERE (m.attnum = ANY (i.indkey::pg_catalog.int2[]) OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d "
      "   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid "
      "   AND d.refobjid = m.relid AND d.refobjsubid = m.attnum)) "
      "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid) "
      " UNION ALL SELECT pg_catalog.format('constraint %I on %s', co.conname, co.conrelid::pg_catalog.regclass) "
      " FROM m JOIN pg_catalog.pg_constraint co ON co.conrelid = m.relid "
      " WHERE co.contype IN ('c', 'f', 'x') AND m.attnum = ANY (co.conkey) "
      "   AND ((co.contype = 'c' AND co.coninhcount = 0) OR (co.contype IN ('f', 'x') AND co.conparentid = 0)) "
      " UNION ALL SELECT pg_catalog.format('foreign key %I of %s referencing %s', co.conname, "
      "   co.conrelid::pg_catalog.regclass, co.confrelid::pg_catalog.regclass) "
      " FROM m JOIN pg_catalog.pg_constraint co ON co.confrelid = m.relid "
      " WHERE co.contype = 'f' AND m.attnum = ANY (co.confkey) AND co.conparentid = 0 "
      " UNION ALL SELECT pg_catalog.format('NOT NULL on %s', m.relid::pg_catalog.regclass) "
      " FROM m, root WHERE m.attnotnull AND NOT root.attnotnull "
      " UNION ALL SELECT pg_catalog.format('default %s on %s', m.def, m.relid::pg_catalog.regclass) "
      " FROM m, root WHERE m.def IS DISTINCT FROM root.def AND m.def IS NOT NULL "
      " UNION ALL SELECT pg_catalog.format('column privileges on %s', m.relid::pg_catalog.regclass) "
      " FROM m WHERE m.attacl IS NOT NULL "
      " UNION ALL SELECT pg_catalog.format('comment on the column of %s', m.relid::pg_catalog.regclass) "
      " FROM m JOIN pg_catalog.pg_description ds ON ds.objoid = m.relid "
      "   AND ds.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ds.objsubid = m.attnum "
      " UNION ALL SELECT pg_catalog.format('statistics %I', x.stxname) "
      " FROM m JOIN pg_catalog.pg_statistic_ext x ON x.stxrelid = m.relid "
      "   AND m.attnum = ANY (x.stxkeys::pg_catalog.int2[])) s",
      {spi::p_oid(root), spi::p_text(old_column)});
  return rows.empty() || !rows[0][0] ? std::string() : *rows[0][0];
}

int sync_leaves(int64_t id, Oid root) {
  // A leaf is known by its table and by its clone of the sync trigger:
  // PostgreSQL drops the clone at DETACH and creates a new one at ATTACH,
  // so a leaf detached and attached again between two looks (whatever was
  // written meanwhile) is walked again. Positions continue after the
  // highest so far: a leaf attached later is walked after the others.
  auto joined = catalog::query(
      tree_cte(2) +
          ", tree AS (SELECT t.relid, pg_catalog.row_number() OVER (ORDER BY t.path) AS n, "
          "  (SELECT g.oid FROM pg_catalog.pg_trigger g WHERE g.tgrelid = t.relid AND g.tgname = $3) AS trig "
          "  FROM zdd_tree t JOIN pg_catalog.pg_class c ON c.oid = t.relid WHERE c.relkind = 'r'), "
          "gone AS (UPDATE zdd.transition_leaf l SET pass = 'detached', finished_at = pg_catalog.now(), "
          "  cursor = NULL, walk_key = NULL, walk_end = NULL "
          "  WHERE l.transition_id = $1 AND l.pass <> 'detached' "
          "  AND NOT EXISTS (SELECT 1 FROM tree WHERE tree.relid = l.leaf::pg_catalog.oid) RETURNING 1), "
          "again AS (UPDATE zdd.transition_leaf l SET pass = 'backfill', finished_at = NULL, cursor = NULL, "
          "  walk_key = NULL, walk_end = NULL, sync_trigger = tree.trig, "
          "  rows_done = 0, rows_written = 0, rows_verified = 0, verify_fixed = 0 FROM tree "
          "  WHERE l.transition_id = $1 AND tree.relid = l.leaf::pg_catalog.oid "
          "  AND (l.pass = 'detached' OR l.sync_trigger IS DISTINCT FROM tree.trig) RETURNING 1), "
          "base AS (SELECT COALESCE(max(position), 0) AS p FROM zdd.transition_leaf WHERE transition_id = $1) "
          "INSERT INTO zdd.transition_leaf (transition_id, leaf, leaf_name, position, rows_total, sync_trigger) "
          "SELECT $1, tree.relid::pg_catalog.regclass, "
          "  pg_catalog.format('%I.%I', n.nspname, c.relname), base.p + tree.n, "
          "  GREATEST(c.reltuples, 0)::pg_catalog.int8, tree.trig "
          "FROM tree JOIN pg_catalog.pg_class c ON c.oid = tree.relid "
          "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, base "
          "WHERE NOT EXISTS (SELECT 1 FROM zdd.transition_leaf l WHERE l.transition_id = $1 "
          "  AND l.leaf::pg_catalog.oid = tree.relid) "
          "ON CONFLICT DO NOTHING RETURNING 1",
      {spi::p_int8(id), spi::p_oid(root), spi::p_text(catalog::trigger_name(id))});
  return int(joined.size());
}

std::string unfinished_leaves(int64_t id, Oid root) {
  // Every leaf of the tree must be a table walked to the end; a foreign
  // table attached since begin never can be.
  auto rows = catalog::query(
      tree_cte(2) +
          "SELECT pg_catalog.string_agg(c.oid::pg_catalog.regclass::pg_catalog.text || ' (' || "
          "  CASE WHEN c.relkind = 'f' THEN 'a foreign table: zdd cannot walk it' "
          "  ELSE COALESCE(l.pass, 'never walked') END || ')', ', ' ORDER BY t.path) "
          "FROM zdd_tree t JOIN pg_catalog.pg_class c ON c.oid = t.relid AND c.relkind IN ('r', 'f') "
          "LEFT JOIN zdd.transition_leaf l ON l.transition_id = $1 AND l.leaf::pg_catalog.oid = t.relid "
          "WHERE c.relkind = 'f' OR l.pass IS DISTINCT FROM 'done'",
      {spi::p_int8(id), spi::p_oid(root)});
  return rows.empty() || !rows[0][0] ? std::string() : *rows[0][0];
}

void lock_tree(Oid root) {
  // One budget for the whole set: each lock may wait only for what is left
  // of zdd.lock_timeout, so the parent's lock (which blocks every query on
  // the table) is never held longer than that while the partitions' locks
  // are awaited; past it the attempt fails and the caller retries.
  const TimestampTz start = pg_call([] { return GetCurrentTimestamp(); });
  auto lock = [&](Oid relid) {
    // The text is built out here: a lock timeout longjmps out of pg_call's
    // body, past anything living in it.
    const long waited = pg_call([&] { return long((GetCurrentTimestamp() - start) / 1000); });
    const std::string left = std::to_string(std::max(1L, settings::lock_timeout_ms - waited));
    pg_call([&] {
      (void)set_config_option("lock_timeout", left.c_str(), PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
                              true, 0, false);
      LockRelationOid(relid, AccessExclusiveLock);
    });
  };
  lock(root);
  auto rows = spi::query(tree_cte(1) + "SELECT relid FROM zdd_tree WHERE relid <> $1 ORDER BY path",
                         {spi::p_oid(root)});
  for (const auto &r : rows) lock(static_cast<Oid>(std::stoul(*r[0])));
}

}  // namespace zdd::partitions

namespace zdd {

namespace {

// zdd.prepare_partition(id, tbl): readies a table to be attached to the
// partitioned table of open transition id: adds the new column (the
// parent's type, collation and default), fills it from the old column in
// one UPDATE as the table's owner (the conversion core; the table is not
// part of the live table yet), sets NOT NULL where the parent's new column
// has it, and adds the parent's CHECK constraints on the new column the
// table lacks. Once attached, the backfill walks it again (writes between
// prepare and attach had no sync trigger) before complete.
Datum prepare_partition(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "zdd: prepare_partition needs a transition id and a table");
  const int64_t id = PG_GETARG_INT64(0);
  const Oid relid = PG_GETARG_OID(1);
  spi::Connection spi;
  catalog::Transition t = catalog::load(id, true);
  table::check_may_steer(t);
  if (t.phase == "completed" || t.phase == "aborted")
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                fmt::format("zdd: transition {} is already {}", id, t.phase));
  if (!t.table_exists || !partitions::is_partitioned(t.relid))
    throw Error(ERRCODE_WRONG_OBJECT_TYPE,
                fmt::format("zdd: transition {} is not on a partitioned table", id));
  table::check_table(relid);
  table::check_walkable(relid);  // also refuses a table that already is a partition
  // A partitioned table to attach as a sub-partition: every step recurses.
  const std::string only = partitions::only(relid);
  const std::string rel = spi::qualified_relation(relid);
  const std::string newc = spi::ident(t.new_column);
  auto cols = spi::query(
      "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attcollation <> 0 AND "
      "  a.attcollation <> ty.typcollation THEN ' COLLATE ' || a.attcollation::pg_catalog.regcollation "
      "  ELSE '' END, a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid), "
      "(SELECT pg_catalog.format_type(b.atttypid, b.atttypmod) || ' ' || b.attnotnull FROM pg_catalog.pg_attribute b "
      "  WHERE b.attrelid = $2 AND b.attname = $3 AND NOT b.attisdropped), "
      "EXISTS (SELECT 1 FROM pg_catalog.pg_attribute b WHERE b.attrelid = $2 AND b.attname = $4 "
      "  AND NOT b.attisdropped) "
      "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid "
      "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
      "WHERE a.attrelid = $1 AND a.attname = $3",
      {spi::p_oid(t.relid), spi::p_oid(relid), spi::p_text(t.new_column), spi::p_text(t.old_column)});
  if (cols.empty())
    throw Error(ERRCODE_UNDEFINED_COLUMN, fmt::format("zdd: transition {}'s new column is missing", id));
  if (*cols[0][4] != "t")
    throw Error(ERRCODE_UNDEFINED_COLUMN,
                fmt::format("zdd: column \"{}\" of {} does not exist", t.old_column, rel));
  guard::Scope own_ddl;
  ddl::lock_table(relid, AccessExclusiveLock, "prepare_partition");
  if (!cols[0][3]) {
    spi::execute(fmt::format("ALTER TABLE {}{} ADD COLUMN {} {}", only, rel, newc, *cols[0][0]));
    if (cols[0][2])
      spi::execute(fmt::format("ALTER TABLE {}{} ALTER COLUMN {} SET DEFAULT {}", only, rel, newc, *cols[0][2]));
  }
  // Fill the new column (rows already in step are left alone), table by
  // table, as the backfill writes: as each table's owner, firing none of
  // its user triggers (they never saw data of theirs change).
  std::vector<Oid> tables{relid};
  if (only.empty()) {
    tables.clear();
    for (const partitions::Leaf &l : partitions::leaves(relid)) tables.push_back(l.relid);
  }
  for (Oid table : tables) {
    quiet_triggers::Scope quiet(table);
    catalog::as_role(catalog::table_owner(table), [&] {
      spi::query(fmt::format("UPDATE ONLY {} t SET {} = zdd.up(t.{o}, t.{n}, $1, $2, $3, $4) "
                             "WHERE NOT zdd.in_step(t.{o}, t.{n}, $1, $2, $3, $4)",
                             spi::qualified_relation(table), newc, fmt::arg("o", spi::ident(t.old_column)),
                             fmt::arg("n", newc)),
                 {spi::p_text(t.old_column), spi::p_text(t.new_column), spi::p_text(t.up),
                  spi::p_text(t.down)});
    });
  }
  if (*cols[0][1] == "t")
    spi::execute(fmt::format("ALTER TABLE {}{} ALTER COLUMN {} SET NOT NULL", only, rel, newc));
  // The parent's CHECK constraints that use the new column, by name.
  for (const auto &r : spi::query(
           "SELECT co.conname, pg_catalog.pg_get_constraintdef(co.oid) FROM pg_catalog.pg_constraint co "
           "JOIN pg_catalog.pg_attribute a ON a.attrelid = co.conrelid AND a.attname = $3 "
           "WHERE co.conrelid = $1 AND co.contype = 'c' AND a.attnum = ANY (co.conkey) "
           "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint x WHERE x.conrelid = $2 "
           "AND x.conname = co.conname)",
           {spi::p_oid(t.relid), spi::p_oid(relid), spi::p_text(t.new_column)}))
    catalog::as_role(catalog::table_owner(relid), [&] {
      spi::execute(fmt::format("ALTER TABLE {}{} ADD CONSTRAINT {} {}", only, rel, spi::ident(*r[0]), *r[1]));
    });
  PG_RETURN_VOID();
}

}  // namespace

}  // namespace zdd

extern "C" {
PG_FUNCTION_INFO_V1(zdd_prepare_partition);
PGDLLEXPORT Datum zdd_prepare_partition(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::prepare_partition(fcinfo); });
}
}
