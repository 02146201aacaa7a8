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

}  // namespace zdd::twins
