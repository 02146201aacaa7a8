// transition.cpp — zdd.begin_rename() and zdd.abort(): the expand step and
// its undo. Each runs in the caller's transaction: it does its whole step
// or, on any error, nothing.
#include "attachments.hpp"
#include "backfill.hpp"
#include "catalog.hpp"
#include "conversion.hpp"
#include "ddl.hpp"
#include "guard.hpp"
#include "partitions.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "table.hpp"
#include "transition.hpp"
#include "write_log.hpp"

extern "C" {
#include "access/relation.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "storage/lockdefs.h"
}

namespace zdd {

namespace transition {

// Reads optional integer argument n, or def when NULL (checked).
int int_arg(FunctionCallInfo fcinfo, int n, int def, const char *name, bool zero_ok) {
  return table::check_throttle_value(name, PG_ARGISNULL(n) ? def : PG_GETARG_INT32(n), zero_ok);
}

void read_throttle_args(FunctionCallInfo fcinfo, int n, Expand &x) {
  x.batch = int_arg(fcinfo, n, settings::batch_size, "batch_size", false);
  x.pause = int_arg(fcinfo, n + 1, settings::pause_ms, "pause_ms", true);
  x.rate = int_arg(fcinfo, n + 2, settings::max_rows_per_sec, "max_rows_per_sec", true);
  x.target = int_arg(fcinfo, n + 3, settings::target_batch_ms, "target_batch_ms", true);
  x.start = PG_ARGISNULL(n + 4) ? true : PG_GETARG_BOOL(n + 4);
  if (PG_NARGS() > n + 5 && !PG_ARGISNULL(n + 5))
    x.label = pg_call([&] { return std::string(TextDatumGetCString(PG_GETARG_DATUM(n + 5))); });
}

std::optional<int64_t> same_request(const Expand &x) {
  // new_type read through to_jsonb: the SQL objects of 0.1.0 lack it.
  auto same = catalog::query(
      "SELECT id FROM zdd.transition t WHERE tbl = $1::pg_catalog.regclass AND old_column = $2 "
      "AND ($3::pg_catalog.text IS NULL OR new_column = $3) AND kind = $4 "
      "AND (pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'new_type') IS NOT DISTINCT FROM $5 "
      "AND phase <> ALL (ARRAY['completed', 'aborted'])",
      {spi::p_oid(x.relid), spi::p_text(x.old_column),
       spi::p_text(x.kind == "retype" && x.keep_name ? std::nullopt : std::optional(x.new_column)),
       spi::p_text(x.kind),
       spi::p_text(x.kind == "retype" ? std::optional(x.new_type_name) : std::nullopt)});
  if (same.empty()) return std::nullopt;
  return std::stoll(*same[0][0]);
}

int64_t expand(const Expand &x) {
  const Oid relid = x.relid;
  const std::string &old_col = x.old_column, &new_col = x.new_column;
  const std::string what = x.kind == "retype" ? "begin_retype" : "begin_rename";
  ddl::lock_table(relid, AccessExclusiveLock, what);
  table::check_table(relid);  // again: it may have changed while we waited
  for (const std::string &c : {old_col, new_col})
    if (auto other = catalog::open_transition_using(relid, c))
      throw Error(ERRCODE_OBJECT_IN_USE,
                  fmt::format("zdd: column \"{}\" of {} is already in transition {}", c,
                              spi::qualified_relation(relid), *other),
                  {}, fmt::format("Complete or abort that transition first (or call {} with the "
                                  "same columns to get its id).", what));
  table::check_walkable(relid);
  if (partitions::is_partitioned(relid)) partitions::check_tree(relid, old_col);
  const table::Column old_attr = table::column_to_move(relid, old_col);
  table::check_twin_rights(relid, old_attr.attnum);
  attachments::refuse_uncarried(relid, old_attr.attnum, old_col);
  table::check_new_name(relid, new_col);
  if (x.label && !catalog::query("SELECT 1 FROM zdd.transition WHERE label = $1 "
                                 "AND phase <> ALL (ARRAY['completed', 'aborted'])",
                                 {spi::p_text(x.label)})
                      .empty())
    throw Error(ERRCODE_DUPLICATE_OBJECT,
                fmt::format("zdd: label \"{}\" is already used by an open transition", *x.label));

  const int64_t id = catalog::next_id();
  const std::string rel = spi::qualified_relation(relid);
  const std::string only = partitions::only(relid);
  spi::execute(fmt::format("ALTER TABLE {}{} ADD COLUMN {} {}", only, rel, spi::ident(new_col),
                           x.new_type_sql.value_or(old_attr.type_sql)));
  // Storage and compression only where the new type has them (a retype
  // to a fixed-length type has neither); the statistics target always.
  const bool varlena = pg_call([&] {
    return get_typlen(get_atttype(relid, get_attnum(relid, new_col.c_str()))) == -1;
  });
  for (const std::string &s : old_attr.column_options)
    if (!x.new_type_sql || varlena || s.rfind("SET STATISTICS", 0) == 0)
      spi::execute(fmt::format("ALTER TABLE {}{} ALTER COLUMN {} {}", only, rel, spi::ident(new_col), s));
  attachments::copy_column_attributes(relid, old_col, new_col);
  // The same default (converted by up for a retype), so that the new
  // app's DEFAULT (and an INSERT that omits the column) gives the column's
  // default during the transition. A volatile default (a sequence's
  // nextval, random(), clock_timestamp()) stays with the old column until
  // complete: evaluated once per column, an INSERT that names neither
  // would get two different values (and draw two numbers); without one
  // the trigger fills the new column with up(old).
  const bool volatile_default = pg_call([&] {
    Relation r = relation_open(relid, AccessShareLock);
    Node *d = build_column_default(r, old_attr.attnum);
    const bool v = d != nullptr && contain_volatile_functions(d);
    relation_close(r, AccessShareLock);
    return v;
  });
  auto def = spi::query("SELECT 1 FROM pg_catalog.pg_attrdef d WHERE d.adrelid = $1 AND d.adnum = $2",
                        {spi::p_oid(relid), spi::p_int4(old_attr.attnum)});
  if (!def.empty() && !volatile_default) {
    const auto text = conversion::converted_default(
        conversion::spec_for(relid, old_col, new_col, x.up, x.down), relid);
    if (text)
      spi::execute(fmt::format("ALTER TABLE {}{} ALTER COLUMN {} SET DEFAULT {}", only, rel,
                               spi::ident(new_col), *text));
  }
  std::string args = fmt::format("{}, {}, {}", spi::literal(std::to_string(id)), spi::literal(old_col),
                                 spi::literal(new_col));
  if (x.kind == "retype")
    args += fmt::format(", {}, {}", spi::literal(x.up.value_or("")), spi::literal(x.down.value_or("")));
  spi::execute(fmt::format("CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW "
                           "EXECUTE FUNCTION zdd.sync_trigger({})",
                           spi::ident(catalog::trigger_name(id)), rel, args));
  catalog::insert(id, relid, old_col, new_col, x.batch, x.pause, x.rate, x.target, what);
  if (catalog::has_column("begin_acl")) {
    // what the new column got from the old one, for complete (see there)
    auto begun = spi::query(
        "SELECT o.attacl::pg_catalog.text, pg_catalog.pg_get_expr(d.adbin, d.adrelid), "
        "pg_catalog.col_description(n.attrelid, n.attnum) FROM pg_catalog.pg_attribute o "
        "JOIN pg_catalog.pg_attribute n ON n.attrelid = o.attrelid AND n.attname = $3 "
        "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = n.attrelid AND d.adnum = n.attnum "
        "WHERE o.attrelid = $1 AND o.attname = $2",
        {spi::p_oid(relid), spi::p_text(old_col), spi::p_text(new_col)});
    catalog::execute(
        "UPDATE zdd.transition SET begin_acl = $2::pg_catalog.aclitem[], begin_default = $3, begin_comment = $4 "
        "WHERE id = $1",
        {spi::p_int8(id), spi::p_text(begun[0][0]), spi::p_text(begun[0][1]), spi::p_text(begun[0][2])});
  }
  if (partitions::is_partitioned(relid)) (void)partitions::sync_leaves(id, relid);
  (void)pg_call([&] { return write_log::slot_for(id); });  // the write log counts from here
  if (x.kind == "retype")
    catalog::execute(
        "UPDATE zdd.transition SET kind = 'retype', old_type = $2, new_type = $3, up_expr = $4, "
        "down_expr = $5, keep_name = $6 WHERE id = $1",
        {spi::p_int8(id), spi::p_text(x.old_type_name), spi::p_text(x.new_type_name), spi::p_text(x.up),
         spi::p_text(x.down), spi::p_bool(x.keep_name)});
  if (x.label)
    catalog::execute("UPDATE zdd.transition SET label = $2 WHERE id = $1",
                     {spi::p_int8(id), spi::p_text(x.label)});
  if (x.start) backfill::request_start(catalog::load(id, true));
  return id;
}

}  // namespace transition

// zdd.begin_rename(): checks (before and again under the lock), adds the
// new column, installs the sync trigger, records 'expanded', and asks for
// the backfill to start at commit.
Datum begin_rename(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "zdd: begin_rename needs a table, an old column and a new column");
  transition::Expand x;
  x.relid = PG_GETARG_OID(0);
  x.old_column = NameStr(*PG_GETARG_NAME(1));
  x.new_column = NameStr(*PG_GETARG_NAME(2));
  transition::read_throttle_args(fcinfo, 3, x);

  spi::Connection spi;
  guard::Scope own_ddl;
  // Checks that need no lock first, so a non-owner never queues a lock.
  table::check_table(x.relid);
  // A re-run of the same request (a migration run twice) returns the open
  // transition instead of failing on the column it added.
  if (auto id = transition::same_request(x)) {
    pg_call([&] {
      ereport(NOTICE, (errmsg("zdd: transition %lld already renames \"%s\" to \"%s\"; returning it",
                              static_cast<long long>(*id), x.old_column.c_str(), x.new_column.c_str())));
    });
    return Int64GetDatum(*id);
  }
  return Int64GetDatum(transition::expand(x));
}

// zdd.abort(): stops the backfill, drops the trigger and the new column
// (with its twins), records 'aborted'; the old column is never touched.
Datum abort_transition(FunctionCallInfo fcinfo) {
  const int64_t id = PG_GETARG_INT64(0);
  spi::Connection spi;
  guard::Scope own_ddl;
  catalog::Transition t = catalog::load(id, true);
  table::check_may_steer(t);
  if (t.phase == "completed" || t.phase == "aborted")
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                fmt::format("zdd: transition {} is already {}", id, t.phase),
                t.phase == "completed" ? "A completed transition dropped its old column." : "");
  backfill::request_stop(t);
  if (t.table_exists) {
    // Every lock under the retry policy: dropping the new column's twin
    // foreign keys locks the referenced tables too.
    const std::string rel = spi::qualified_relation(t.relid);
    const bool partitioned = partitions::is_partitioned(t.relid);
    ddl::with_lock_retry("abort", [&] {
      if (partitioned)
        partitions::lock_tree(t.relid);  // one lock set, parent first
      else
        pg_call([&] { LockRelationOid(t.relid, AccessExclusiveLock); });
      spi::execute(
          fmt::format("DROP TRIGGER IF EXISTS {} ON {}", spi::ident(catalog::trigger_name(id)), rel));
      // Every foreign key that references the new column goes first (any
      // table's, this one's own self-references too; recognized as twins
      // or not: a twin the worker had only begun, NOT VALID, when the
      // abort stopped it, too). The new column's other twins go with it.
      for (const auto &r : spi::query(
               "SELECT co.conrelid, co.conname, c.relkind = 'p' FROM pg_catalog.pg_constraint co "
               "JOIN pg_catalog.pg_class c ON c.oid = co.conrelid "
               "JOIN pg_catalog.pg_attribute a ON a.attrelid = co.confrelid AND a.attname = $2 "
               "WHERE co.contype = 'f' AND co.confrelid = $1 AND co.conparentid = 0 "
               "AND a.attnum = ANY (co.confkey) ORDER BY 1, 2",
               {spi::p_oid(t.relid), spi::p_text(t.new_column)}))
      {
        // as that table's owner (it may be another role's, as DROP COLUMN
        // ... CASCADE by this table's owner would drop it too)
        const Oid referencing = static_cast<Oid>(std::stoul(*r[0]));
        const std::string sql =
            fmt::format("ALTER TABLE {}{} DROP CONSTRAINT {} RESTRICT", *r[2] == "t" ? "" : "ONLY ",
                        spi::qualified_relation(referencing), spi::ident(*r[1]));
        catalog::as_role(catalog::table_owner(referencing), [&] { spi::execute(sql); });
      }
      spi::execute(fmt::format("ALTER TABLE {}{} DROP COLUMN IF EXISTS {} RESTRICT",
                               partitioned ? "" : "ONLY ", rel, spi::ident(t.new_column)));
    });
  }
  catalog::set_phase(t, "aborted", t.table_exists ? "abort" : "abort: table no longer exists");
  if (t.backfill_state == "waiting") catalog::end_wait(t.id);
  pg_call([&] { write_log::forget(t.id); });
  PG_RETURN_VOID();
}

}  // namespace zdd

// SQL entry points: one-line shims through the error boundary.
extern "C" {
PG_FUNCTION_INFO_V1(zdd_begin_rename);
PG_FUNCTION_INFO_V1(zdd_abort);
PGDLLEXPORT Datum zdd_begin_rename(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::begin_rename(fcinfo); });
}
PGDLLEXPORT Datum zdd_abort(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::abort_transition(fcinfo); });
}
}
