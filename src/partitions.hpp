// partitions.hpp — transitions on partitioned tables: the partition tree,
// the checks it needs, and each leaf's place in the backfill.
//
// A transition on a partitioned table is one transition row on the
// parent (the root). PostgreSQL carries the new column and the sync
// trigger to every partition (ADD COLUMN and CREATE TRIGGER on the parent
// recurse; row triggers are cloned to partitions attached later); the
// backfill walks each leaf partition with its own cursor, recorded in
// zdd.transition_leaf.
#pragma once

#include "catalog.hpp"

namespace zdd::partitions {

// True when relid is a partitioned table.
bool is_partitioned(Oid relid);

// "ONLY " for a plain table; "" for a partitioned one, whose column and
// constraint DDL must recurse to its partitions.
std::string only(Oid relid);

// A leaf partition of a partitioned table, in the partition tree's order.
struct Leaf {
  Oid relid = InvalidOid;
  std::string name;  // schema-qualified, quoted
};
std::vector<Leaf> leaves(Oid root);

// Begin's checks on a partitioned table (before anything changes):
// column not in any level's partition key (42P16... 0A000), every leaf a
// plain table the caller owns (no foreign partitions, rules, owner-hiding
// FORCE RLS), and nothing on the column defined on a partition alone
// (an index, constraint or NOT NULL that complete could not carry).
void check_tree(Oid root, const std::string &old_column);

// The objects on old_column defined on one partition only, as text for a
// message ("" when none).
std::string local_objects(Oid root, const std::string &old_column);

// Brings transition id's leaf list up to date with the tree (at begin: every
// leaf joins): a leaf attached since joins in pass 'backfill', a leaf no
// longer in the tree becomes 'detached'. Returns how many joined.
int sync_leaves(int64_t id, Oid root);

// The leaves of the tree that transition id has not walked to the end
// ("" when all are done), for complete's check.
std::string unfinished_leaves(int64_t id, Oid root);

// Takes ACCESS EXCLUSIVE on root, then on every partition in the tree's
// order (parent first, as PostgreSQL's own recursing DDL does), each
// without waiting past lock_timeout (the caller's retry policy applies).
void lock_tree(Oid root);

}  // namespace zdd::partitions
