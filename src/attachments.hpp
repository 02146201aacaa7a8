// attachments.hpp — what else hangs on the old column besides its data
// and its twins: column privileges, comment, attribute options, statistics
// objects, sequence ownership, and what zdd cannot carry (refused up front).
#pragma once

#include "error.hpp"

#include <optional>

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

// What begin copied onto the new column (zdd.transition's begin_acl,
// begin_default, begin_comment; NULL for transitions begun before 0.2.0's
// last change).
struct Begun {
  std::optional<std::string> acl, default_text, comment;
};

// Gives the new column the old one's column privileges (same grantees,
// privileges and grant options), comment and attribute options
// (n_distinct, ...). Idempotent: begin calls it, and complete again for
// whatever was granted or set on the old column meanwhile; with begun
// (complete), a privilege or comment begin copied and removed from the old
// column since is removed from the new one too.
void copy_column_attributes(Oid relid, const std::string &old_column, const std::string &new_column,
                            const Begun *begun = nullptr);

// What complete must carry across the drop of the old column: sequences
// owned by it (moved to the new column before the drop) and extended
// statistics objects on it (dropped with the column, created again on the
// new one after it, under their names).
struct Carry {
  std::vector<std::string> before_drop, after_drop;
};
Carry plan_carry(Oid relid, const std::string &old_column, const std::string &new_column);

}  // namespace zdd::attachments
