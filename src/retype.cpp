// retype.cpp — zdd.begin_retype(): a column's type change as a transition.
// Before anything changes: the conversion compiles both ways (up and
// down, given or the assignment casts; immutable), no index computes an
// expression or predicate over the column (its twin could not be derived),
// and the conversion runs on a sample of the rows (a value that does not
// convert is an error naming the row's key). A change PostgreSQL makes
// without rewrite or scan is done at once under the short lock; anything
// else is the expand step of transition.hpp with the conversion in the
// sync trigger's arguments and the catalog row.
#include "catalog.hpp"
#include "conversion.hpp"
#include "ddl.hpp"
#include "guard.hpp"
#include "partitions.hpp"
#include "spi.hpp"
#include "table.hpp"
#include "retype.hpp"
#include "transition.hpp"

extern "C" {
#include "catalog/pg_collation.h"
#include "commands/defrem.h"
#include "mb/pg_wchar.h"
#include "parser/parse_type.h"
#include "storage/lmgr.h"
#include "storage/lockdefs.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
}

namespace zdd::retype {

namespace {

// The new column's type: OID, typmod, SQL text (schema-qualified, with the
// old column's collation when both types have one) and a name for people.
struct NewType {
  Oid type = InvalidOid;
  int32 typmod = -1;
  Oid collation = InvalidOid;
  std::string sql, name;
};

// Resolves the type name the caller gave (42704 when unknown; 0A000 for a
// domain with constraints, whose new column PostgreSQL would check row by
// row under an ACCESS EXCLUSIVE lock).
NewType resolve_type(const std::string &text, Oid old_collation) {
  NewType t;
  Oid typcoll = InvalidOid;
  const char *name = nullptr, *sql = nullptr;
  pg_call([&] {
    parseTypeString(text.c_str(), &t.type, &t.typmod, false);
    name = format_type_with_typemod(t.type, t.typmod);
    sql = format_type_extended(t.type, t.typmod, FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
    typcoll = get_typcollation(t.type);
  });
  t.name = name;
  t.sql = sql;
  t.collation = OidIsValid(typcoll) && OidIsValid(old_collation) ? old_collation : typcoll;
  if (OidIsValid(t.collation) && t.collation != typcoll) t.sql += table::collate_clause(t.collation);
  if (pg_call([&] { return DomainHasConstraints(t.type); }))
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: cannot retype to {}: a domain with constraints", t.name),
                "Adding a column of such a domain checks every row under an ACCESS EXCLUSIVE lock.",
                "Retype to the domain's base type, then add the constraint as NOT VALID and validate it.");
  return t;
}

// A free column name for the new column: <col>_zdd_new (numbered when
// taken).
std::string chosen_name(Oid relid, const std::string &col) {
  return spi::free_name(col + "_zdd_new", [&](const std::string &name) {
    return pg_call([&] { return get_attnum(relid, name.c_str()); }) != InvalidAttrNumber;
  });
}

// Refuses (0A000) indexes whose expressions or predicate use the column:
// their twins would have to be written for the new type by hand.
void refuse_index_expressions(Oid relid, AttrNumber att, const std::string &col) {
  auto rows = spi::query(
      "SELECT pg_catalog.string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_catalog.pg_index i "
      "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1 AND EXISTS ("
      "SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
      "AND d.objid = i.indexrelid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
      "AND d.refobjid = i.indrelid AND d.refobjsubid = $2) "
      "AND NOT ($2 = ANY (i.indkey::pg_catalog.int2[]) AND i.indexprs IS NULL AND i.indpred IS NULL)",
      {spi::p_oid(relid), spi::p_int4(att)});
  if (rows[0][0])
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: cannot retype column \"{}\": index expressions or predicates use it", col),
                fmt::format("Indexes: {}.", *rows[0][0]),
                "zdd derives twins of plain key columns only. Drop these indexes (recreate them on "
                "the new column after complete), or rewrite them over plain columns.");
}

// True when ALTER COLUMN ... TYPE would change only the catalog: no
// rewrite (conversion::needs_no_rewrite), no CHECK, exclusion or foreign
// key on the column (checked again with a scan), and every index on it
// (primary key and unique constraints' too) a plain key
// whose operator family and collation stay (PostgreSQL then keeps it).
bool catalog_only(Oid relid, AttrNumber att, Oid old_type, int32 old_typmod, const NewType &nt) {
  if (!conversion::needs_no_rewrite(old_type, old_typmod, nt.type, nt.typmod)) return false;
  auto cons = spi::query(
      "SELECT 1 FROM pg_catalog.pg_constraint WHERE (conrelid = $1 AND $2 = ANY (conkey) "
      "AND contype NOT IN ('p', 'u')) OR (confrelid = $1 AND $2 = ANY (confkey))",
      {spi::p_oid(relid), spi::p_int4(att)});
  if (!cons.empty()) return false;
  auto idx = spi::query(
      "SELECT c.relam, pg_catalog.array_to_string(i.indkey::pg_catalog.int2[], ','), "
      "pg_catalog.array_to_string(i.indclass::pg_catalog.oid[], ','), "
      "pg_catalog.array_to_string(i.indcollation::pg_catalog.oid[], ','), "
      "i.indexprs IS NULL AND i.indpred IS NULL "
      "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
      "WHERE i.indrelid = $1 AND $2 = ANY (i.indkey::pg_catalog.int2[])",
      {spi::p_oid(relid), spi::p_int4(att)});
  for (const auto &r : idx) {
    if (*r[4] != "t") return false;
    const Oid am = static_cast<Oid>(std::stoul(*r[0]));
    const auto keys = spi::split_list(*r[1]), classes = spi::split_list(*r[2]), colls = spi::split_list(*r[3]);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] != std::to_string(att)) continue;
      if (i >= classes.size()) continue;  // an INCLUDE column: no operator class
      const Oid cls = static_cast<Oid>(std::stoul(classes[i]));
      const bool same = pg_call([&] {
        const Oid now = GetDefaultOpClass(old_type, am) == cls ? GetDefaultOpClass(nt.type, am) : cls;
        return OidIsValid(now) && get_opclass_family(now) == get_opclass_family(cls);
      });
      if (!same) return false;
      if (i < colls.size() && static_cast<Oid>(std::stoul(colls[i])) != nt.collation) return false;
    }
  }
  return true;
}

// Runs up on a sample of the column's values (all of them on a small
// table); a value that does not convert raises the conversion's own
// SQLSTATE naming the row's key (primary key, else ctid) and the value.
void check_sample(Oid relid, const std::string &col, conversion::Compiled *conv, const NewType &nt) {
  const std::string rel = spi::qualified_relation(relid);
  auto pk = spi::query(
      "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n) "
      "FROM pg_catalog.pg_index i, LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) "
      "WITH ORDINALITY k(att, n) JOIN pg_catalog.pg_attribute a ON a.attnum = k.att "
      "WHERE i.indrelid = $1 AND i.indisprimary AND a.attrelid = $1",
      {spi::p_oid(relid)});
  const std::string key_cols = pk[0][0] ? *pk[0][0] : "ctid";
  auto size = spi::query("SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = $1", {spi::p_oid(relid)});
  const double tuples = std::stod(*size[0][0]);
  const std::string from =
      tuples < 20000 ? fmt::format("{}{} LIMIT 20000", partitions::only(relid), rel)
                     : fmt::format("{}{} TABLESAMPLE SYSTEM ({}) LIMIT 5000", partitions::only(relid), rel,
                                   std::min(100.0, 100.0 * 5000 / tuples * 2));
  // The key as PostgreSQL prints one in a unique violation: (a, b)=(1, 2).
  auto rows = spi::query(fmt::format(
      "SELECT pg_catalog.format('(%s)=(%s)', $1::pg_catalog.text, pg_catalog.concat_ws(', ', {keys})), "
      "{col}::pg_catalog.text FROM {from}",
      fmt::arg("keys", key_cols == "ctid" ? "ctid::pg_catalog.text" : key_cols),
      fmt::arg("col", spi::ident(col)), fmt::arg("from", from)),
      {spi::p_text(key_cols)});
  Oid old_type, old_coll;
  int32 old_typmod;
  pg_call([&] { get_atttypetypmodcoll(relid, get_attnum(relid, col.c_str()), &old_type, &old_typmod, &old_coll); });
  size_t at = 0;
  auto failed = ddl::probe([&] {
    pg_call([&] {
      Oid input, ioparam;
      getTypeInputInfo(old_type, &input, &ioparam);
      for (at = 0; at < rows.size(); ++at) {
        const auto &v = rows[at][1];
        Datum d = v ? OidInputFunctionCall(input, const_cast<char *>(v->c_str()), ioparam, old_typmod) : 0;
        bool rnull;
        conversion::begin_row(conv);
        (void)conversion::up(conv, d, !v, &rnull);
      }
    });
  });
  if (failed) {
    const auto &v = rows[at][1];
    throw Error(failed->sqlstate,
                fmt::format("zdd: row {} of {}: value {} of column \"{}\" does not convert to {}",
                            *rows[at][0], rel, v ? spi::literal(*v) : "NULL", col, nt.name),
                failed->message,
                "Fix such rows first, or give an up conversion that handles them. Nothing was changed.");
  }
}

// Records a retype done at once (catalog only) as a completed transition.
int64_t record_done(const transition::Expand &x, const std::string &how) {
  const int64_t id = catalog::next_id();
  catalog::insert(id, x.relid, x.old_column, x.old_column, x.batch, x.pause, x.rate, x.target,
                  "begin_retype");
  catalog::execute(
      "UPDATE zdd.transition SET kind = 'retype', old_type = $2, new_type = $3, keep_name = true, "
      "backfill_state = 'done', label = $4 WHERE id = $1",
      {spi::p_int8(id), spi::p_text(x.old_type_name), spi::p_text(x.new_type_name), spi::p_text(x.label)});
  catalog::Transition t = catalog::load(id, true);
  catalog::set_phase(t, "completed", how);
  return id;
}

}  // namespace

// See retype.hpp.
Request request_from_args(FunctionCallInfo fcinfo, const char *fn) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, fmt::format("zdd: {} needs a table, a column and a type", fn));
  auto text_arg = [&](int n) -> std::optional<std::string> {
    if (PG_ARGISNULL(n)) return std::nullopt;
    const char *v = pg_call([&] { return TextDatumGetCString(PG_GETARG_DATUM(n)); });
    return std::string(v);
  };
  Request r;
  r.relid = PG_GETARG_OID(0);
  r.column = NameStr(*PG_GETARG_NAME(1));
  r.type_text = *text_arg(2);
  r.up = text_arg(3);
  r.down = text_arg(4);
  if (!PG_ARGISNULL(5)) r.new_column = std::string(NameStr(*PG_GETARG_NAME(5)));
  return r;
}

// See retype.hpp.
Prepared prepare(const Request &r) {
  Prepared p;
  transition::Expand &x = p.x;
  x.kind = "retype";
  x.relid = r.relid;
  x.old_column = r.column;
  x.up = r.up && !r.up->empty() ? r.up : std::nullopt;
  x.down = r.down && !r.down->empty() ? r.down : std::nullopt;
  x.keep_name = !r.new_column;
  table::check_table(x.relid);
  const table::Column old_attr = table::column_to_move(x.relid, x.old_column);
  Oid old_type, old_coll;
  int32 old_typmod;
  pg_call([&] { get_atttypetypmodcoll(x.relid, old_attr.attnum, &old_type, &old_typmod, &old_coll); });
  const NewType nt = resolve_type(r.type_text, old_coll);
  x.old_type_name = pg_call([&] { return std::string(format_type_with_typemod(old_type, old_typmod)); });
  x.new_type_name = nt.name;
  x.new_type_sql = nt.sql;
  x.new_column = x.keep_name ? chosen_name(x.relid, x.old_column) : *r.new_column;
  if (old_type == nt.type && old_typmod == nt.typmod && !x.up && !x.down)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                fmt::format("zdd: column \"{}\" is already of type {}", x.old_column, nt.name),
                {}, x.keep_name ? "" : "To rename it, use zdd.begin_rename.");
  // The conversion, both ways, before anything changes.
  conversion::Spec spec;
  spec.old_name = x.old_column;
  spec.new_name = x.new_column;
  spec.old_type = old_type;
  spec.old_typmod = old_typmod;
  spec.old_collation = old_coll;
  spec.new_type = nt.type;
  spec.new_typmod = nt.typmod;
  spec.new_collation = nt.collation;
  spec.up = x.up.value_or("");
  spec.down = x.down.value_or("");
  conversion::Compiled *conv = conversion::compile(spec, CurrentMemoryContext);
  try {
    refuse_index_expressions(x.relid, old_attr.attnum, x.old_column);
    p.catalog_only = !x.up && !x.down && x.keep_name &&
                     catalog_only(x.relid, old_attr.attnum, old_type, old_typmod, nt);
    if (!p.catalog_only) check_sample(x.relid, x.old_column, conv, nt);
  } catch (...) {
    conversion::release(conv);
    throw;
  }
  conversion::release(conv);
  return p;
}

namespace {

// zdd.begin_retype(): see the file comment.
Datum begin_retype(FunctionCallInfo fcinfo) {
  const Request r = request_from_args(fcinfo, "begin_retype");

  spi::Connection spi;
  guard::Scope own_ddl;
  table::check_table(r.relid);
  {
    // A re-run of the same request (a migration run twice) returns it.
    transition::Expand probe;
    probe.kind = "retype";
    probe.relid = r.relid;
    probe.old_column = r.column;
    probe.keep_name = !r.new_column;
    probe.new_column = r.new_column.value_or("");
    Oid t;
    int32 m;
    pg_call([&] { parseTypeString(r.type_text.c_str(), &t, &m, false); });
    probe.new_type_name = pg_call([&] { return std::string(format_type_with_typemod(t, m)); });
    if (auto id = transition::same_request(probe)) {
      pg_call([&] {
        ereport(NOTICE, (errmsg("zdd: transition %lld already retypes \"%s\" to %s; returning it",
                                static_cast<long long>(*id), r.column.c_str(), probe.new_type_name.c_str())));
      });
      return Int64GetDatum(*id);
    }
  }
  Prepared p = prepare(r);
  transition::Expand &x = p.x;
  transition::read_throttle_args(fcinfo, 6, x);
  if (!p.catalog_only) return Int64GetDatum(transition::expand(x));

  const std::string rel = spi::qualified_relation(x.relid);
  ddl::with_lock_retry("begin_retype", [&] {
    pg_call([&] { LockRelationOid(x.relid, AccessExclusiveLock); });
    table::check_table(x.relid);
    if (auto other = catalog::open_transition_using(x.relid, x.old_column))
      throw Error(ERRCODE_OBJECT_IN_USE,
                  fmt::format("zdd: column \"{}\" of {} is already in transition {}", x.old_column, rel, *other));
    spi::execute(fmt::format("ALTER TABLE {}{} ALTER COLUMN {} TYPE {}", partitions::only(x.relid), rel,
                             spi::ident(x.old_column),
                             *x.new_type_sql));
  });
  const int64_t id = record_done(x, "ALTER COLUMN TYPE without rewrite");
  pg_call([&] {
    ereport(NOTICE, (errmsg("zdd: %s to %s needs no rewrite: done at once (transition %lld, completed)",
                            x.old_type_name.c_str(), x.new_type_name.c_str(), static_cast<long long>(id))));
  });
  return Int64GetDatum(id);
}

}  // namespace

}  // namespace zdd::retype

extern "C" {
PG_FUNCTION_INFO_V1(zdd_begin_retype);
PGDLLEXPORT Datum zdd_begin_retype(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::retype::begin_retype(fcinfo); });
}
}
