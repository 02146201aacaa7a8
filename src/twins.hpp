// twins.hpp — what protects the old column, rebuilt on the new one.
#pragma once

#include "catalog.hpp"

namespace zdd::twins {

// One object that protects the old column, and its twin on the new one
// when the table has it. Twins are recognized by what they are (the same
// definition with the old column replaced by the new one), never by name,
// so zdd never adopts an unrelated object that happens to carry the name.
struct Item {
  char kind;                // 'i' index, 'c' CHECK, 'f' FOREIGN KEY, 'n' NOT NULL, 'x' exclusion,
                            // 'r' another table's FOREIGN KEY referencing the column
  Oid oid = InvalidOid;     // the original index or constraint
  Oid table = InvalidOid;   // for 'r': the referencing table (the twin is on it)
  std::string name;         // its name (given back to the twin at complete)
  std::string describe;     // for messages
  char contype = '\0';      // for indexes: 'p' / 'u' when a constraint owns it
  bool deferrable = false, deferred = false, validated = true, replica_identity = false;
  std::string definition;   // CHECK / FK: the twin's definition text
  Oid twin = InvalidOid;    // the twin, if the table has it
  std::string twin_name;
  std::vector<Oid> leftovers;  // INVALID indexes of failed builds of this twin
  // A partitioned table's index: each leaf's partition of it, with that
  // leaf's twin (built concurrently, unattached). A primary key or unique
  // constraint's twin is these leaf twins (it.twin = the table once every
  // leaf has one): complete turns them into the leaves' constraints and
  // adds the parent's (definition), which attaches them without a scan.
  struct LeafTwin {
    Oid leaf = InvalidOid, index = InvalidOid, twin = InvalidOid;
    std::string index_name, twin_name;
    bool replica_identity = false;  // the leaf's original is its replica identity
    std::vector<Oid> leftovers;
  };
  std::vector<LeafTwin> leaf_twins;
};

// What protects the old column of transition-to-be (relid, old → new), read
// (on a partitioned table: what is defined on it, each index with its
// leaves' twins),
// from the catalogs now, each item with its twin if it exists. Needs SPI
// and a transaction; complete calls it under its ACCESS EXCLUSIVE lock.
std::vector<Item> plan(Oid relid, const std::string &old_column, const std::string &new_column);

// Builds the new column's twins of the old column's NOT NULL, CHECK
// constraints, indexes and foreign keys, without blocking writes. Called
// by the backfill worker outside any transaction block (it may run
// CREATE INDEX CONCURRENTLY), as the table's owner in a security-restricted
// operation, after the verification pass and before the phase becomes
// 'backfilled'. Idempotent: a retry after a crash or failure builds only
// what is missing. Throws on failure; the worker records the error.
void build(int64_t transition_id);

}  // namespace zdd::twins
