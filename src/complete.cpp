// complete.cpp — zdd.complete(id): the contract step. After 'backfilled'
// (every row verified, twins built), in one transaction: refuse if views,
// rules, policies, functions or other tables' foreign keys depend on the
// old column (2BP01, listing them — never CASCADE); take the ACCESS
// EXCLUSIVE lock under zdd.lock_timeout with retries (55P03 and nothing
// changed when it can't be had); move the old column's default to the new
// one; drop the sync trigger and the old column (RESTRICT); give every twin
// its original's name and role: primary key / unique constraints on their
// twin indexes (ADD CONSTRAINT ... USING INDEX, no scan), other indexes and
// CHECK / foreign key constraints renamed, the replica identity index set
// again; record 'completed'. Under the lock, dependents and twins are read
// again: a twin missing for anything added since the twins pass refuses
// (55000; zdd.resume(id) builds it), never a silent loss.
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
#include "twins.hpp"
#include "write_log.hpp"

extern "C" {
#include "storage/lmgr.h"
#include "storage/lockdefs.h"
}

namespace zdd {

namespace {

// Raises 2BP01 when objects outside the table depend on the old column.
void refuse_dependents(const catalog::Transition &t, int old_att) {
  const auto deps = attachments::dependents(t.relid, old_att, false);
  if (deps.empty()) return;
  std::string list;
  for (const auto &d : deps) list += (list.empty() ? "" : "; ") + d;
  throw Error(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
              fmt::format("zdd: cannot complete transition {}: other objects depend on column \"{}\"",
                          t.id, t.old_column),
              list, fmt::format("Recreate them on \"{}\" first (zdd never drops them with CASCADE).",
                                t.new_column));
}

// Text of a timestamp for messages.
std::string show_time(TimestampTz t) {
  return pg_call([&] { return std::string(timestamptz_to_str(t)); });
}

// The interlock: refuses (55000) while the old column was written within
// zdd.complete_quiet_period — an app version that still writes it would
// fail once it is dropped — or while zdd cannot know (its write log
// started counting less than that ago, e.g. after a restart). A retype
// that keeps the column's name has no old side to wait for.
void refuse_recent_old_writes(const catalog::Transition &t) {
  if (t.keep_name || settings::complete_quiet_s <= 0) return;
  const write_log::Counts c = pg_call([&] { return write_log::read(t.id); });
  const TimestampTz now = pg_call([] { return GetCurrentTimestamp(); });
  const TimestampTz quiet = TimestampTz(settings::complete_quiet_s) * USECS_PER_SEC;
  const std::string hint = fmt::format(
      "Complete once no app version writes \"{}\" any more (zdd.status shows the last write of "
      "each side), lower zdd.complete_quiet_period, or call zdd.complete({}, force => true).",
      t.old_column, t.id);
  if (!c.known)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                fmt::format("zdd: cannot complete transition {}: zdd's write log is full", t.id), {}, hint);
  if (c.old_last > 0 && now - c.old_last < quiet)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                fmt::format("zdd: cannot complete transition {}: column \"{}\" was written {} s ago",
                            t.id, t.old_column, (now - c.old_last) / USECS_PER_SEC),
                fmt::format("Last write of the old column at {} ({} rows through it, {} through \"{}\" "
                            "since {}); zdd.complete_quiet_period is {} s.",
                            show_time(c.old_last), c.old_writes, c.new_writes, t.new_column,
                            show_time(c.since), settings::complete_quiet_s),
                hint);
  if (now - c.since < quiet)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                fmt::format("zdd: cannot complete transition {}: writes of column \"{}\" are known "
                            "only since {}, less than zdd.complete_quiet_period ({} s) ago",
                            t.id, t.old_column, show_time(c.since), settings::complete_quiet_s),
                "zdd counts writes in shared memory from the transition's start or the server's.",
                hint);
}

// The contract, under the table's ACCESS EXCLUSIVE lock (taken with the
// lock retry policy, like every other lock the steps below take: dropping
// the old column's foreign keys locks the referenced tables too). Nothing
// decided earlier is trusted: dependents and twins are read again here.
void contract(const catalog::Transition &t, bool force) {
  const std::string rel = spi::qualified_relation(t.relid);
  const bool partitioned = partitions::is_partitioned(t.relid);
  const std::string only = partitioned ? "" : "ONLY ";
  // A partitioned table and all its partitions are one lock set: parent
  // first, then the tree's order.
  if (partitioned)
    partitions::lock_tree(t.relid);
  else
    pg_call([&] { LockRelationOid(t.relid, AccessExclusiveLock); });
  // Again under the lock: a write may have come between the first check
  // and the lock; none can come after it.
  if (!force) refuse_recent_old_writes(t);
  table::check_trigger_order(t.relid);  // the guard refuses creating one; a bypass is caught here
  // Inheritance children attached since begin: their rows were never
  // backfilled, and dropping the old column would drop their only copy.
  if (!partitioned &&
      !spi::query("SELECT 1 FROM pg_catalog.pg_inherits WHERE inhparent = $1", {spi::p_oid(t.relid)}).empty())
    throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                fmt::format("zdd: cannot complete transition {}: {} now has inheritance children", t.id, rel),
                "Their rows were never backfilled; dropping the old column would drop their only copy.",
                "Detach them (ALTER TABLE child NO INHERIT parent), or abort the transition.");
  if (partitioned) {
    // Partitions attached since the backfill: their rows were never walked.
    // (Detached ones leave the transition's list here.)
    (void)partitions::sync_leaves(t.id, t.relid);
    const std::string behind = partitions::unfinished_leaves(t.id, t.relid);
    if (!behind.empty())
      throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                  fmt::format("zdd: cannot complete transition {}: partitions not backfilled", t.id),
                  fmt::format("Not walked to the end: {}.", behind),
                  "zdd.resume(id) backfills them; then complete again.");
    const std::string local = partitions::local_objects(t.relid, t.old_column);
    if (!local.empty())
      throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
                  fmt::format("zdd: cannot complete transition {}: partitions have their own objects on "
                              "column \"{}\"",
                              t.id, t.old_column),
                  fmt::format("Defined on one partition only: {}; dropping the column would drop them.", local),
                  "Define them on the partitioned table instead, or drop them.");
  }
  const int old_att = pg_call([&] { return int(get_attnum(t.relid, t.old_column.c_str())); });
  refuse_dependents(t, old_att);
  const std::vector<twins::Item> items = twins::plan(t.relid, t.old_column, t.new_column);
  std::string missing;
  for (const auto &it : items)
    if (!OidIsValid(it.twin)) missing += (missing.empty() ? "" : "; ") + it.describe;
  if (!missing.empty())
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                fmt::format("zdd: cannot complete transition {}: the new column \"{}\" lacks twins",
                            t.id, t.new_column),
                fmt::format("Not yet rebuilt on \"{}\": {}.", t.new_column, missing),
                "They were added after the twins pass. zdd.resume(id) builds them without "
                "blocking writes; then complete again.");
  // The old column's default, for a retype converted by up (a serial's
  // nextval stays nextval).
  std::optional<std::string> def;
  if (t.kind == "retype") {
    def = conversion::converted_default(
        conversion::spec_for(t.relid, t.old_column, t.new_column, t.up, t.down), t.relid);
  } else {
    auto d = spi::query(
        "SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d "
        "WHERE d.adrelid = $1 AND d.adnum = $2",
        {spi::p_oid(t.relid), spi::p_int4(old_att)});
    if (!d.empty()) def = d[0][0];
  }
  const std::string newc = spi::ident(t.new_column);
  attachments::Begun begun;
  if (catalog::has_column("begin_acl")) {
    auto b = catalog::query(
        "SELECT begin_acl::pg_catalog.text, begin_default, begin_comment FROM zdd.transition WHERE id = $1",
        {spi::p_int8(t.id)});
    if (!b.empty()) begun = {b[0][0], b[0][1], b[0][2]};
  }
  attachments::copy_column_attributes(t.relid, t.old_column, t.new_column, &begun);
  const attachments::Carry carry = attachments::plan_carry(t.relid, t.old_column, t.new_column);
  if (def)
    spi::execute(fmt::format("ALTER TABLE {}{} ALTER COLUMN {} SET DEFAULT {}", only, rel, newc, *def));
  else if (begun.default_text &&
           !spi::query("SELECT 1 FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a "
                       "ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = $1 AND a.attname = $2 "
                       "AND pg_catalog.pg_get_expr(d.adbin, d.adrelid) = $3",
                       {spi::p_oid(t.relid), spi::p_text(t.new_column), spi::p_text(begun.default_text)})
                .empty())
    // the old column's default was dropped during the transition; the new
    // column still has begin's copy (a default set on it by hand stays)
    spi::execute(fmt::format("ALTER TABLE {}{} ALTER COLUMN {} DROP DEFAULT", only, rel, newc));
  // The index the table is clustered on, if it is an original: its twin
  // takes its name below, and the mark.
  auto clustered = spi::query(
      "SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
      "WHERE i.indrelid = $1 AND i.indisclustered",
      {spi::p_oid(t.relid)});
  spi::execute(fmt::format("DROP TRIGGER IF EXISTS {} ON {}", spi::ident(catalog::trigger_name(t.id)), rel));
  // The originals' constraints first: a self-referencing foreign key that
  // references the old column would make DROP COLUMN ... RESTRICT refuse.
  // Other tables' foreign keys too (their tables locked after ours, under
  // the same retry policy).
  for (const auto &it : items)
    if (it.kind == 'c' || it.kind == 'f' || it.kind == 'r')
      spi::execute(fmt::format("ALTER TABLE {}{} DROP CONSTRAINT {} RESTRICT",
                               it.kind == 'r' ? "ONLY " : only,
                               it.kind == 'r' ? spi::qualified_relation(it.table) : rel,
                               spi::ident(it.name)));
  for (const auto &sql : carry.before_drop) spi::execute(sql);
  spi::execute(fmt::format("ALTER TABLE {}{} DROP COLUMN {} RESTRICT", only, rel, spi::ident(t.old_column)));
  for (const auto &sql : carry.after_drop) spi::execute(sql);
  // Every twin takes its original's name (freed by the drop) and role.
  const std::string schema = spi::ident(pg_call([&] {
    return std::string(get_namespace_name(get_rel_namespace(t.relid)));
  }));
  for (const auto &it : items) {
    if (partitioned && it.kind == 'i' && (it.contype == 'p' || it.contype == 'u')) {
      // Each leaf's twin becomes that leaf's constraint under the name its
      // original had; the parent's constraint then attaches them (no scan,
      // no build).
      for (const auto &lt : it.leaf_twins) {
        const std::string leaf_schema = spi::ident(pg_call([&] {
          return std::string(get_namespace_name(get_rel_namespace(lt.leaf)));
        }));
        spi::execute(fmt::format("ALTER INDEX {}.{} RENAME TO {}", leaf_schema, spi::ident(lt.twin_name),
                                 spi::ident(lt.index_name)));
        spi::execute(fmt::format("ALTER TABLE ONLY {} ADD CONSTRAINT {} {} USING INDEX {}{}",
                                 spi::qualified_relation(lt.leaf), spi::ident(lt.index_name),
                                 it.contype == 'p' ? "PRIMARY KEY" : "UNIQUE", spi::ident(lt.index_name),
                                 it.deferrable ? (it.deferred ? " DEFERRABLE INITIALLY DEFERRED" : " DEFERRABLE")
                                               : ""));
      }
      spi::execute(fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {}", rel, spi::ident(it.name), it.definition));
    } else if (it.kind == 'i' && (it.contype == 'p' || it.contype == 'u')) {
      spi::execute(fmt::format("ALTER TABLE ONLY {} ADD CONSTRAINT {} {} USING INDEX {}{}", rel,
                               spi::ident(it.name), it.contype == 'p' ? "PRIMARY KEY" : "UNIQUE",
                               spi::ident(it.twin_name),
                               it.deferrable ? (it.deferred ? " DEFERRABLE INITIALLY DEFERRED"
                                                            : " DEFERRABLE")
                                             : ""));
    } else if (it.kind == 'i') {
      spi::execute(fmt::format("ALTER INDEX {}.{} RENAME TO {}", schema, spi::ident(it.twin_name),
                               spi::ident(it.name)));
    } else if (it.kind == 'c' || it.kind == 'f' || it.kind == 'r') {
      spi::execute(fmt::format("ALTER TABLE {}{} RENAME CONSTRAINT {} TO {}",
                               it.kind == 'r' ? "ONLY " : only,
                               it.kind == 'r' ? spi::qualified_relation(it.table) : rel,
                               spi::ident(it.twin_name), spi::ident(it.name)));
    }
    if (it.kind == 'i' && it.replica_identity)
      spi::execute(fmt::format("ALTER TABLE ONLY {} REPLICA IDENTITY USING INDEX {}", rel,
                               spi::ident(it.name)));
    // Each partition's replica identity index, on its twin.
    for (const auto &lt : it.leaf_twins)
      if (lt.replica_identity)
        spi::execute(fmt::format("ALTER TABLE ONLY {} REPLICA IDENTITY USING INDEX {}",
                                 spi::qualified_relation(lt.leaf),
                                 spi::ident(it.contype == 'p' || it.contype == 'u' ? lt.index_name
                                                                                   : lt.twin_name)));
  }
  if (!clustered.empty())
    for (const auto &it : items)
      if (it.kind == 'i' && it.name == *clustered[0][0])
        spi::execute(fmt::format("ALTER TABLE ONLY {} CLUSTER ON {}", rel, spi::ident(it.name)));
  // A retype without a new name: the new column takes the old one's, so
  // the apps keep theirs.
  if (t.keep_name)
    spi::execute(fmt::format("ALTER TABLE {}{} RENAME COLUMN {} TO {}", only, rel, newc,
                             spi::ident(t.old_column)));
}

// zdd.complete(): see the file comment.
Datum complete(FunctionCallInfo fcinfo) {
  if (PG_ARGISNULL(0)) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "zdd: complete needs a transition id");
  const int64_t id = PG_GETARG_INT64(0);
  const bool force = PG_NARGS() > 1 && !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
  spi::Connection spi;
  guard::Scope own_ddl;
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
  // Dependents and recent writes first, without the lock: a refusal never
  // queues a lock.
  refuse_dependents(t, pg_call([&] { return int(get_attnum(t.relid, t.old_column.c_str())); }));
  if (!force) refuse_recent_old_writes(t);
  ddl::with_lock_retry("complete", [&] { contract(t, force); });
  backfill::request_stop(t);
  catalog::set_phase(t, "completed", force ? "complete (force)" : "complete");
  pg_call([&] { write_log::forget(t.id); });
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
