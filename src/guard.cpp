// guard.cpp — zdd.guard(), a ddl_command_start event trigger (created by
// the install script, a member of the extension). It refuses, before they
// run, the commands that would break an open transition:
//   DROP EXTENSION zdd / DROP SCHEMA zdd (the sync triggers would go, the
//     half-filled new columns would stay);
//   DROP TABLE of a table in transition (a partition of one may be
//     dropped: its rows leave with it);
//   ALTER TABLE ... DROP COLUMN / ALTER COLUMN TYPE of either column,
//     RENAME COLUMN of either column;
//   DROP TRIGGER / ALTER TABLE ... DISABLE (or ENABLE REPLICA) TRIGGER /
//     ALTER TRIGGER ... RENAME of a sync trigger
//     (DISABLE TRIGGER ALL / USER too) — on a partition of a table in
//     transition too;
//   ATTACH PARTITION of a table without the new column, or with a BEFORE
//     ROW trigger that would fire after the sync trigger (see check_attach);
//   CREATE TRIGGER / ALTER TRIGGER ... RENAME of a BEFORE ROW trigger whose
//     name sorts after the sync trigger's (it would fire after the sync).
// Each refusal names the transitions and says what to do (55006). An event
// trigger rather than a ProcessUtility hook: it is in force in every
// session of the database whether or not the library was loaded there.
// zdd's own DDL passes inside a guard::Scope; session_replication_role =
// replica (a superuser's escape hatch) skips event triggers altogether.
#include "guard.hpp"

#include "error.hpp"
#include "catalog.hpp"
#include "spi.hpp"
#include "table.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "commands/event_trigger.h"
#include "catalog/pg_trigger.h"
#include "nodes/parsenodes.h"
#include "storage/lockdefs.h"
}

namespace zdd::guard {

namespace {
int internal_depth = 0;
}  // namespace

Scope::Scope() { ++internal_depth; }
Scope::~Scope() { --internal_depth; }

namespace {

// The open transitions on relid (all tables when relid is invalid) that
// use column (any column when nullopt), as "id (table: old → new), ...".
// With ancestors, also those on a partitioned table relid is a partition
// of (at any level): a partition's columns and cloned sync trigger are
// its root's.
std::string open_transitions(Oid relid, const std::optional<std::string> &column, bool ancestors = false) {
  auto rows = catalog::query(
      "SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s: %s → %s)', t.id, t.tbl, t.old_column, "
      "t.new_column), ', ' ORDER BY t.id) FROM zdd.transition t "
      "WHERE t.phase <> ALL (ARRAY['completed', 'aborted']) "
      "AND ($1::pg_catalog.oid IS NULL OR t.tbl::pg_catalog.oid = $1 OR ($3 AND t.tbl::pg_catalog.oid IN "
      "  (SELECT a::pg_catalog.oid FROM pg_catalog.pg_partition_ancestors($1) a))) "
      "AND ($2::pg_catalog.name IS NULL OR $2::pg_catalog.name IN (t.old_column, t.new_column))",
      {OidIsValid(relid) ? spi::p_oid(relid) : spi::Param{OIDOID, std::nullopt}, spi::p_text(column),
       spi::p_bool(ancestors)});
  return rows[0][0].value_or("");
}

// Refuses what with the open transitions listed.
[[noreturn]] void refuse(const std::string &what, const std::string &transitions) {
  throw Error(ERRCODE_OBJECT_IN_USE, fmt::format("zdd: {} would break open transitions", what),
              fmt::format("Open: {}.", transitions),
              "Complete or abort them first (zdd.complete / zdd.abort).");
}

// The relation a RangeVar names, if it exists (no lock: the command takes its own).
Oid relation_of(RangeVar *rv) {
  return pg_call([&] { return RangeVarGetRelid(rv, NoLock, true); });
}

// True when trigger name has the form of a zdd sync trigger's,
// zz_zdd_sync_<id> (the tables checked have open transitions).
bool sync_trigger_name(const char *name) {
  if (!name || strncmp(name, "zz_zdd_sync_", 12) != 0 || name[12] == '\0') return false;
  for (const char *p = name + 12; *p; ++p)
    if (*p < '0' || *p > '9') return false;
  return true;
}

// True when a trigger named name would fire after zdd's sync triggers
// (same-timing triggers fire in name order, bytewise). zdd's own CREATE
// TRIGGER runs inside guard::Scope and never gets here, so a user's
// zz_zdd_sync_<digits> is late too.
bool late_trigger_name(const char *name) { return name && strcmp(name, "zz_zdd_sync_") > 0; }

// ATTACH PARTITION onto a table in transition (or onto one of its
// partitions): the table attached needs the new column, which
// zdd.prepare_partition(id, table) adds (PostgreSQL would refuse the
// attach without it; this says what to do). Its rows are walked by the
// backfill once attached (complete refuses until then).
void check_attach(Oid parent, PartitionCmd *cmd) {
  const Oid part = relation_of(cmd->name);
  if (!OidIsValid(part)) return;
  // Its own BEFORE ROW triggers must not fire after the sync trigger either.
  const std::string late = table::late_triggers(part);
  if (!late.empty()) {
    const std::string open = open_transitions(parent, std::nullopt, true);
    if (!open.empty())
      refuse(fmt::format("ATTACH PARTITION of a table with BEFORE ROW triggers that would fire after "
                         "zdd's sync trigger ({})",
                         late),
             open);
  }
  auto rows = catalog::query(
      "SELECT t.id, t.new_column, t.tbl::pg_catalog.text FROM zdd.transition t "
      "WHERE t.phase <> ALL (ARRAY['completed', 'aborted']) AND t.tbl::pg_catalog.oid IN "
      "(SELECT $1 UNION ALL SELECT a::pg_catalog.oid FROM pg_catalog.pg_partition_ancestors($1) a) "
      "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute c WHERE c.attrelid = $2 "
      "AND c.attname = t.new_column AND NOT c.attisdropped) ORDER BY t.id",
      {spi::p_oid(parent), spi::p_oid(part)});
  if (rows.empty()) return;
  const std::string name = spi::qualified_relation(part);
  throw Error(ERRCODE_OBJECT_IN_USE,
              fmt::format("zdd: {} lacks column \"{}\" of open transition {} on {}", name, *rows[0][1],
                          *rows[0][0], *rows[0][2]),
              "A partition attached during a transition needs the new column (and its twins' "
              "constraints).",
              fmt::format("SELECT zdd.prepare_partition({}, {}); then attach it again.", *rows[0][0],
                          spi::literal(name)));
}

// Checks one command's parse tree (see the file comment).
void check(Node *tree) {
  if (IsA(tree, DropStmt)) {
    DropStmt *d = castNode(DropStmt, tree);
    ListCell *lc;
    foreach (lc, d->objects) {
      Node *obj = static_cast<Node *>(lfirst(lc));
      if ((d->removeType == OBJECT_EXTENSION || d->removeType == OBJECT_SCHEMA) && IsA(obj, String) &&
          strcmp(strVal(obj), "zdd") == 0) {
        const std::string open = open_transitions(InvalidOid, std::nullopt);
        if (!open.empty())
          refuse(d->removeType == OBJECT_EXTENSION ? "DROP EXTENSION zdd" : "DROP SCHEMA zdd", open);
      } else if (d->removeType == OBJECT_TABLE) {
        const Oid relid = relation_of(pg_call([&] { return makeRangeVarFromNameList(castNode(List, obj)); }));
        if (OidIsValid(relid)) {
          const std::string open = open_transitions(relid, std::nullopt);
          if (!open.empty()) refuse("DROP TABLE", open);
        }
      } else if (d->removeType == OBJECT_TRIGGER) {
        List *names = castNode(List, obj);
        const char *trigger = strVal(llast(names));
        if (sync_trigger_name(trigger)) {
          const Oid relid = relation_of(pg_call([&] {
            return makeRangeVarFromNameList(list_copy_head(names, list_length(names) - 1));
          }));
          const std::string open = OidIsValid(relid) ? open_transitions(relid, std::nullopt) : std::string();
          if (!open.empty()) refuse(fmt::format("DROP TRIGGER {}", trigger), open);
        }
      }
    }
  } else if (IsA(tree, AlterTableStmt)) {
    AlterTableStmt *a = castNode(AlterTableStmt, tree);
    const Oid relid = relation_of(a->relation);
    if (!OidIsValid(relid)) return;
    ListCell *lc;
    foreach (lc, a->cmds) {
      AlterTableCmd *c = castNode(AlterTableCmd, lfirst(lc));
      std::string open;
      if (c->subtype == AT_AttachPartition) {
        check_attach(relid, castNode(PartitionCmd, c->def));
        continue;
      }
      if ((c->subtype == AT_DropColumn || c->subtype == AT_AlterColumnType) && c->name)
        open = open_transitions(relid, std::string(c->name), true);
      else if (((c->subtype == AT_DisableTrig || c->subtype == AT_EnableReplicaTrig) &&
                sync_trigger_name(c->name)) ||
               c->subtype == AT_DisableTrigAll || c->subtype == AT_DisableTrigUser)
        open = open_transitions(relid, std::nullopt, true);
      if (!open.empty())
        refuse(c->subtype == AT_DropColumn           ? "DROP COLUMN"
               : c->subtype == AT_AlterColumnType   ? "ALTER COLUMN ... TYPE"
               : c->subtype == AT_EnableReplicaTrig ? "ENABLE REPLICA TRIGGER"
                                                     : "DISABLE TRIGGER",
               open);
    }
  } else if (IsA(tree, CreateTrigStmt)) {
    // A BEFORE ROW INSERT/UPDATE trigger that would fire after the sync
    // trigger (name order): what it sets would not reach the other column.
    CreateTrigStmt *c = castNode(CreateTrigStmt, tree);
    if (c->row && c->timing == TRIGGER_TYPE_BEFORE && (c->events & (TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE)) &&
        late_trigger_name(c->trigname)) {
      const Oid relid = relation_of(c->relation);
      const std::string open = OidIsValid(relid) ? open_transitions(relid, std::nullopt, true) : std::string();
      if (!open.empty()) refuse(fmt::format("CREATE TRIGGER {} (it would fire after zdd's sync trigger)", c->trigname), open);
    }
  } else if (IsA(tree, RenameStmt)) {
    RenameStmt *r = castNode(RenameStmt, tree);
    if (r->renameType == OBJECT_TRIGGER && r->relation && sync_trigger_name(r->subname)) {
      const Oid relid = relation_of(r->relation);
      const std::string open = OidIsValid(relid) ? open_transitions(relid, std::nullopt, true) : std::string();
      if (!open.empty()) refuse(fmt::format("ALTER TRIGGER {} ... RENAME", r->subname), open);
    }
    if (r->renameType == OBJECT_TRIGGER && r->relation && late_trigger_name(r->newname)) {
      const Oid relid = relation_of(r->relation);
      const std::string open = OidIsValid(relid) ? open_transitions(relid, std::nullopt, true) : std::string();
      if (!open.empty())
        refuse(fmt::format("ALTER TRIGGER ... RENAME TO {} (it would fire after zdd's sync trigger)", r->newname), open);
    }
    if (r->renameType == OBJECT_COLUMN && r->relation && r->subname) {
      const Oid relid = relation_of(r->relation);
      const std::string open =
          OidIsValid(relid) ? open_transitions(relid, std::string(r->subname), true) : std::string();
      if (!open.empty()) refuse("RENAME COLUMN", open);
    }
  }
}

// The event trigger body.
Datum fire(FunctionCallInfo fcinfo) {
  if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "zdd.guard: not called by the event trigger manager");
  if (internal_depth > 0) PG_RETURN_VOID();
  EventTriggerData *ev = reinterpret_cast<EventTriggerData *>(fcinfo->context);
  spi::Connection spi;
  check(ev->parsetree);
  PG_RETURN_VOID();
}

}  // namespace

}  // namespace zdd::guard

extern "C" {
PG_FUNCTION_INFO_V1(zdd_guard);
PGDLLEXPORT Datum zdd_guard(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::guard::fire(fcinfo); });
}
}
