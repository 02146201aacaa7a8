// table.hpp — checks on the table and columns a transition may touch.
// Every check raises a zdd::Error with the SQLSTATE a DBA would expect and
// runs before anything is changed.
#pragma once

#include "catalog.hpp"

namespace zdd::table {

// What begin_rename needs to know to create the new column as a twin.
struct Column {
  AttrNumber attnum;
  std::string type_sql;                     // schema-qualified type [COLLATE ...]
  std::vector<std::string> column_options;  // SET STORAGE / COMPRESSION / STATISTICS
};

// The relation exists, is a plain or partitioned table zdd supports, is not a system or
// zdd catalog, and the current user owns it (42501 otherwise).
void check_table(Oid relid);

// The table can be walked and kept in step: not temporary, no rules, no
// inheritance parent or children (a partitioned table's partitions are
// fine; a partition itself is refused, 42809: the transition belongs on its
// root), no FORCE ROW LEVEL SECURITY that would hide rows from its owner
// (0A000 otherwise).
void check_walkable(Oid relid);

// No enabled or disabled BEFORE ROW INSERT/UPDATE trigger on relid (or a
// partition of it) sorts after zdd's sync triggers (zz_zdd_sync_<id>):
// one would change a row after the sync, leaving the columns apart
// (0A000 otherwise). Part of check_walkable; complete checks again.
void check_trigger_order(Oid relid);

// The BEFORE ROW INSERT/UPDATE triggers of relid (and its partitions)
// that sort after zdd's sync triggers and are not zdd's, as
// "name on table, ..."; empty when none.
std::string late_triggers(Oid relid);

// The old column: exists, is a user column, not generated (identity is fine),
// of a type whose new twin can be added without a table rewrite.
Column column_to_move(Oid relid, const std::string &name);

// The twins of old_att can be built with the rights they will run with:
// CREATE on the schema for index twins (the starting role), REFERENCES on
// the referenced columns for foreign key twins (the table's owner); 42501
// otherwise, before anything changed rather than after the backfill.
void check_twin_rights(Oid relid, AttrNumber old_att);

// " COLLATE schema.name" for a column definition.
std::string collate_clause(Oid collation);

// The new name is not used by any column (system columns included).
void check_new_name(Oid relid, const std::string &name);

// A throttle number from the caller: refuses negatives, and zero unless
// zero_ok, with 22023; returns v.
int check_throttle_value(const char *name, int v, bool zero_ok);

// The current user may steer transition t: owns its table (or, once the
// table is gone, started it or is superuser).
void check_may_steer(const catalog::Transition &t);

}  // namespace zdd::table
