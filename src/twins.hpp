// twins.hpp — what protects the old column, rebuilt on the new one.
#pragma once

#include "catalog.hpp"

namespace zdd::twins {

// Builds the new column's twins of the old column's NOT NULL, CHECK
// constraints, indexes and foreign keys, without blocking writes. Called
// by the backfill worker outside any transaction block (it may run
// CREATE INDEX CONCURRENTLY), connected as the transition's role, after
// the verification pass and before the phase becomes 'backfilled'.
// Idempotent: a retry after a crash or failure resumes where it stopped.
// Throws on failure; the worker records the error and retries later.
void build(int64_t transition_id);

// The name of the twin of index or constraint name: the old column's name
// replaced by the new one's, or "_<new>" appended; at most NAMEDATALEN - 1
// bytes.
std::string twin_name(const std::string &name, const std::string &oldc, const std::string &newc);

}  // namespace zdd::twins
