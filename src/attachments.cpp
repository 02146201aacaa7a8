// attachments.cpp — see attachments.hpp. Catalog reads through SPI; every
// statement built here quotes its identifiers.
#include "attachments.hpp"

#include "partitions.hpp"
#include "spi.hpp"

namespace zdd::attachments {

// See attachments.hpp.
void refuse_uncarried(Oid relid, AttrNumber old_att, const std::string &old_column) {
  auto excl = spi::query(
      "SELECT pg_catalog.string_agg(co.conname::pg_catalog.text, ', ') FROM pg_catalog.pg_constraint co "
      "WHERE co.contype = 'x' AND co.conrelid = $1 AND $2 = ANY (co.conkey)",
      {spi::p_oid(relid), spi::p_int4(old_att)});
  if (excl[0][0])
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: column \"{}\" is in exclusion constraints", old_column),
                fmt::format("Exclusion constraints: {}. zdd cannot rebuild them on the new column "
                            "without blocking writes.",
                            *excl[0][0]),
                "Rename it with ALTER TABLE ... RENAME COLUMN (catalog-only).");
  auto gen = spi::query(
      "SELECT pg_catalog.string_agg(a.attname::pg_catalog.text, ', ') FROM pg_catalog.pg_attribute a "
      "JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
      "JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass "
      "AND d.objid = ad.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
      "AND d.refobjid = a.attrelid "
      "WHERE a.attrelid = $1 AND a.attgenerated = 's' AND d.refobjsubid = $2",
      {spi::p_oid(relid), spi::p_int4(old_att)});
  if (gen[0][0])
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: stored generated columns are computed from column \"{}\"", old_column),
                fmt::format("Generated: {}. PostgreSQL 15 cannot point a stored generated column at "
                            "another column without rewriting the table.",
                            *gen[0][0]),
                "Rename it with ALTER TABLE ... RENAME COLUMN (catalog-only).");
  auto pfk = spi::query(
      "SELECT pg_catalog.string_agg(pg_catalog.format('%I of %s', co.conname, co.conrelid::pg_catalog.regclass), "
      "', ' ORDER BY co.conname) FROM pg_catalog.pg_constraint co "
      "JOIN pg_catalog.pg_class c ON c.oid = co.conrelid "
      "WHERE co.contype = 'f' AND co.confrelid = $1 AND $2 = ANY (co.confkey) AND c.relkind = 'p' "
      "AND co.conparentid = 0 AND co.conrelid <> $1",
      {spi::p_oid(relid), spi::p_int4(old_att)});
  if (pfk[0][0])
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: partitioned tables' foreign keys reference column \"{}\"", old_column),
                fmt::format("Foreign keys: {}. PostgreSQL 15 cannot add a NOT VALID foreign key on a "
                            "partitioned table, so zdd cannot build their twins without a long lock.",
                            *pfk[0][0]),
                "Drop those foreign keys for the transition and add them back after complete.");
}

// See attachments.hpp.
std::vector<std::string> dependents(Oid relid, int att, bool skip_own) {
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
      "AND NOT ($3 AND d.classid IN ('pg_catalog.pg_trigger'::pg_catalog.regclass, "
      "  'pg_catalog.pg_attrdef'::pg_catalog.regclass)) "
      "AND NOT (co.oid IS NOT NULL AND (co.conrelid = $1 OR (co.contype = 'f' AND co.confrelid = $1))) "
      "AND NOT (rw.oid IS NOT NULL AND rw.ev_class = $1) ORDER BY 1",
      {spi::p_oid(relid), spi::p_int4(att), spi::p_bool(skip_own)});
  std::vector<std::string> out;
  for (const auto &r : rows) out.push_back(r[0] ? *r[0] : "?");
  return out;
}

// See attachments.hpp.
void copy_column_attributes(Oid relid, const std::string &old_column, const std::string &new_column,
                            const Begun *begun) {
  const std::string rel = spi::qualified_relation(relid), newc = spi::ident(new_column);
  // What begin copied and the old column has lost since was revoked
  // during the transition: revoked on the new column too — the privilege,
  // or only its grant option (x: the new column's entries, b: begin's
  // copy, o: the old column's now). One granted on the new column by hand
  // stays.
  if (begun && begun->acl)
    for (const auto &r : spi::query(
             "WITH x AS (SELECT e.* FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) e "
             "  WHERE a.attrelid = $1 AND a.attname = $2), "
             "b AS (SELECT e.* FROM pg_catalog.aclexplode($3::pg_catalog.aclitem[]) e), "
             "o AS (SELECT e.* FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) e "
             "  WHERE a.attrelid = $1 AND a.attname = $4) "
             "SELECT DISTINCT x.privilege_type, CASE WHEN x.grantee = 0 THEN 'PUBLIC' "
             "ELSE x.grantee::pg_catalog.regrole::pg_catalog.text END, "
             "NOT EXISTS (SELECT 1 FROM o WHERE o.privilege_type = x.privilege_type AND o.grantee = x.grantee) "
             "FROM x JOIN b ON b.privilege_type = x.privilege_type AND b.grantee = x.grantee "
             "WHERE NOT EXISTS (SELECT 1 FROM o WHERE o.privilege_type = x.privilege_type AND o.grantee = x.grantee "
             "  AND (o.is_grantable OR NOT (x.is_grantable AND b.is_grantable))) ORDER BY 2, 1",
             {spi::p_oid(relid), spi::p_text(new_column), spi::p_text(begun->acl), spi::p_text(old_column)}))
      spi::execute(fmt::format("REVOKE {}{} ({}) ON {} FROM {} CASCADE", *r[2] == "t" ? "" : "GRANT OPTION FOR ",
                               *r[0], newc, rel, *r[1]));
  auto grants = spi::query(
      "SELECT x.privilege_type, x.grantee = 0, x.grantee::pg_catalog.regrole::pg_catalog.text, "
      "x.is_grantable FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) x "
      "WHERE a.attrelid = $1 AND a.attname = $2 ORDER BY 1, 3",
      {spi::p_oid(relid), spi::p_text(old_column)});
  for (const auto &g : grants)
    spi::execute(fmt::format("GRANT {} ({}) ON {} TO {}{}", *g[0], newc, rel,
                             *g[1] == "t" ? std::string("PUBLIC") : *g[2],
                             *g[3] == "t" ? " WITH GRANT OPTION" : ""));
  auto attr = spi::query(
      "SELECT pg_catalog.col_description($1, a.attnum), "
      "pg_catalog.array_to_string(a.attoptions, ',') FROM pg_catalog.pg_attribute a "
      "WHERE a.attrelid = $1 AND a.attname = $2",
      {spi::p_oid(relid), spi::p_text(old_column)});
  if (attr.empty()) return;
  if (attr[0][0])
    spi::execute(fmt::format("COMMENT ON COLUMN {}.{} IS {}", rel, newc, spi::literal(*attr[0][0])));
  else if (begun && begun->comment &&
           !spi::query("SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND a.attname = $2 "
                       "AND pg_catalog.col_description($1, a.attnum) = $3",
                       {spi::p_oid(relid), spi::p_text(new_column), spi::p_text(begun->comment)})
                .empty())
    // removed from the old column during the transition, still begin's copy on the new one
    spi::execute(fmt::format("COMMENT ON COLUMN {}.{} IS NULL", rel, newc));
  if (attr[0][1] && !attr[0][1]->empty()) {
    // The planner's options a user sets (n_distinct, n_distinct_inherited);
    // anything else there is the server's own bookkeeping.
    std::string opts;
    for (const auto &r : spi::query("SELECT pg_catalog.split_part(o, '=', 1), pg_catalog.split_part(o, '=', 2) "
                                    "FROM pg_catalog.unnest(pg_catalog.string_to_array($1, ',')) o "
                                    "WHERE pg_catalog.split_part(o, '=', 1) IN ('n_distinct', 'n_distinct_inherited')",
                                    {spi::p_text(*attr[0][1])}))
      opts += (opts.empty() ? "" : ", ") + *r[0] + " = " + spi::literal(*r[1]);
    if (!opts.empty())
      spi::execute(fmt::format("ALTER TABLE {}{} ALTER COLUMN {} SET ({})", partitions::only(relid), rel, newc, opts));
  }
}

// See attachments.hpp.
Carry plan_carry(Oid relid, const std::string &old_column, const std::string &new_column) {
  Carry c;
  const std::string rel = spi::qualified_relation(relid);
  const std::string newc = spi::ident(new_column);
  // Sequences owned by the old column (serial): owned by the new one, and
  // widened to the new column's integer type after a retype (int → bigint:
  // AS bigint, so that its maximum becomes bigint's).
  for (const auto &r : spi::query(
           "SELECT d.objid::pg_catalog.regclass::pg_catalog.text, "
           "pg_catalog.format_type(n.atttypid, NULL) "
           "FROM pg_catalog.pg_depend d "
           "JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
           "JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid "
           "JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
           "LEFT JOIN pg_catalog.pg_attribute n ON n.attrelid = d.refobjid AND n.attname = $3 "
           "AND n.atttypid IN ('pg_catalog.int4'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype) "
           "AND (q.seqtypid, n.atttypid) IN (('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype), "
           "('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype), "
           "('pg_catalog.int4'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype)) "
           "WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
           "AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
           "AND d.refobjid = $1 AND a.attname = $2 AND d.deptype = 'a'",
           {spi::p_oid(relid), spi::p_text(old_column), spi::p_text(new_column)})) {
    c.before_drop.push_back(fmt::format("ALTER SEQUENCE {} OWNED BY {}.{}", *r[0], rel, newc));
    if (r[1]) c.before_drop.push_back(fmt::format("ALTER SEQUENCE {} AS {}", *r[0], *r[1]));
  }
  // An identity column: the new column becomes the identity after the drop
  // (catalog-only: ADD GENERATED on a NOT NULL column), its sequence under
  // the old one's name, options and position.
  for (const auto &r : spi::query(
           "SELECT CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END, "
           "pg_catalog.format('%I.%I', n.nspname, sc.relname), "
           // A bound at its type's limit is left to the new column's type
           // (an int → bigint identity must not keep int's maximum).
           "NULL, s.seqincrement, "
           "CASE WHEN s.seqincrement < 0 AND s.seqmin = CASE s.seqtypid WHEN 'pg_catalog.int2'::pg_catalog.regtype "
           "THEN -32768 WHEN 'pg_catalog.int4'::pg_catalog.regtype THEN -2147483648 "
           "ELSE -9223372036854775808 END THEN 'NO MINVALUE' ELSE 'MINVALUE ' || s.seqmin END, "
           "CASE WHEN s.seqincrement > 0 AND s.seqmax = CASE s.seqtypid WHEN 'pg_catalog.int2'::pg_catalog.regtype "
           "THEN 32767 WHEN 'pg_catalog.int4'::pg_catalog.regtype THEN 2147483647 "
           "ELSE 9223372036854775807 END THEN 'NO MAXVALUE' ELSE 'MAXVALUE ' || s.seqmax END, s.seqcache, "
           "s.seqcycle, COALESCE(pg_catalog.pg_sequence_last_value(sc.oid) + s.seqincrement, s.seqstart), "
           "s.seqstart, pg_catalog.obj_description(sc.oid, 'pg_class'), sc.oid "
           "FROM pg_catalog.pg_attribute a "
           "JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
           "AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'i' "
           "AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
           "JOIN pg_catalog.pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S' "
           "JOIN pg_catalog.pg_namespace n ON n.oid = sc.relnamespace "
           "JOIN pg_catalog.pg_sequence s ON s.seqrelid = sc.oid "
           "WHERE a.attrelid = $1 AND a.attname = $2 AND a.attidentity <> ''",
           {spi::p_oid(relid), spi::p_text(old_column)})) {
    // The sequence is made anew (PostgreSQL moves no identity between
    // columns): its START as it was, its position by RESTART (the next
    // value), its privileges and comment copied.
    c.after_drop.push_back(fmt::format(
        "ALTER TABLE {}{} ALTER COLUMN {} ADD GENERATED {} AS IDENTITY (SEQUENCE NAME {} "
        "INCREMENT BY {} {} {} CACHE {} {} START WITH {})",
        partitions::only(relid), rel, newc, *r[0], *r[1], *r[3], *r[4], *r[5], *r[6], *r[7] == "t" ? "CYCLE" : "NO CYCLE",
        *r[9]));
    c.after_drop.push_back(
        fmt::format("ALTER TABLE {}{} ALTER COLUMN {} RESTART WITH {}", partitions::only(relid), rel, newc, *r[8]));
    if (r[10]) c.after_drop.push_back(fmt::format("COMMENT ON SEQUENCE {} IS {}", *r[1], spi::literal(*r[10])));
    for (const auto &g : spi::query(
             "SELECT x.privilege_type, CASE WHEN x.grantee = 0 THEN 'PUBLIC' "
             "ELSE x.grantee::pg_catalog.regrole::pg_catalog.text END, x.is_grantable "
             "FROM pg_catalog.pg_class sc, pg_catalog.aclexplode(sc.relacl) x "
             "WHERE sc.oid = $1 AND x.grantee <> sc.relowner ORDER BY 2, 1",
             {spi::p_oid(static_cast<Oid>(std::stoul(*r[11])))}))
      c.after_drop.push_back(fmt::format("GRANT {} ON SEQUENCE {} TO {}{}", *g[0], *r[1], *g[1],
                                         *g[2] == "t" ? " WITH GRANT OPTION" : ""));
  }
  // Extended statistics objects on the old column: created again with the
  // column replaced, under their own names and statistics targets.
  for (const auto &r : spi::query(
           "SELECT pg_catalog.format('%I.%I', n.nspname, s.stxname), "
           "(SELECT pg_catalog.string_agg(CASE k WHEN 'd' THEN 'ndistinct' WHEN 'f' THEN 'dependencies' "
           "  WHEN 'm' THEN 'mcv' END, ', ') FROM pg_catalog.unnest(s.stxkind) k WHERE k <> 'e'), "
           "(SELECT pg_catalog.string_agg(CASE WHEN a.attname = $2 THEN $3 ELSE pg_catalog.quote_ident(a.attname) END, "
           "  ', ' ORDER BY x.i) FROM pg_catalog.unnest(s.stxkeys::pg_catalog.int2[]) WITH ORDINALITY x(k, i) "
           "  JOIN pg_catalog.pg_attribute a ON a.attrelid = s.stxrelid AND a.attnum = x.k), "
           "s.stxstattarget, s.stxexprs IS NOT NULL "
           "FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace "
           "JOIN pg_catalog.pg_attribute a ON a.attrelid = s.stxrelid AND a.attname = $2 "
           "WHERE s.stxrelid = $1 AND a.attnum = ANY (s.stxkeys::pg_catalog.int2[])",
           {spi::p_oid(relid), spi::p_text(old_column), spi::p_text(newc)})) {
    if (*r[4] == "t")
      throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                  fmt::format("zdd: statistics object {} has expressions", *r[0]),
                  "zdd carries statistics objects on plain columns only.",
                  "Drop it before complete and create it again on the new column afterwards.");
    c.after_drop.push_back(fmt::format("CREATE STATISTICS {}{} ON {} FROM {}", *r[0],
                                       r[1] ? " (" + *r[1] + ")" : std::string(), *r[2], rel));
    if (*r[3] != "-1")
      c.after_drop.push_back(fmt::format("ALTER STATISTICS {} SET STATISTICS {}", *r[0], *r[3]));
  }
  return c;
}

}  // namespace zdd::attachments
