// attachments.hpp — what else hangs on the old column besides its data
// and its twins: column privileges, comment, attribute options, statistics
// objects, sequence ownership, and what zdd cannot carry (refused up front).
#pragma once

#include "error.hpp"

namespace zdd::attachments {

// Refuses (0A000, before anything changed) what would block complete and
// zdd cannot carry over: stored generated columns computed from the old
// column, exclusion constraints on it, partitioned tables' foreign keys
// referencing it.
void refuse_uncarried(Oid relid, AttrNumber old_att, const std::string &old_column);

// Objects outside the table's own indexes, constraints and rules (and
// other tables' foreign keys, which get twins) that depend on column att of
// relid — views, functions, policies, triggers: they block complete (2BP01)
// until recreated on the new column. With skip_own, the table's triggers
// and generated columns are left out (the preflight names them apart).
std::vector<std::string> dependents(Oid relid, int att, bool skip_own);

// Gives the new column the old one's column privileges (same grantees,
// privileges and grant options), comment and attribute options
// (n_distinct, ...). Idempotent: begin_rename calls it, and complete again
// for whatever was granted or set on the old column meanwhile.
void copy_column_attributes(Oid relid, const std::string &old_column, const std::string &new_column);

// What complete must carry across the drop of the old column: sequences
// owned by it (moved to the new column before the drop) and extended
// statistics objects on it (dropped with the column, created again on the
// new one after it, under their names).
struct Carry {
  std::vector<std::string> before_drop, after_drop;
};
Carry plan_carry(Oid relid, const std::string &old_column, const std::string &new_column);

}  // namespace zdd::attachments
