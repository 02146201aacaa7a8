// toplevel.hpp — one statement as a top-level command (worker only).
#pragma once

#include "error.hpp"

namespace zdd::toplevel {

// Runs sql (one statement) outside any transaction block as a top-level
// command, in transactions of its own; for CREATE/DROP INDEX CONCURRENTLY
// (DefineIndex runs the table owner's index code as the table owner). Must
// be called with no transaction open. The worker's search_path is pinned
// for its whole life (worker.cpp), so it holds across the command's own
// commits.
void run(const std::string &sql);

// The same for a statement already built as a node tree (a cloned
// IndexStmt); label is its text for pg_stat_activity and errors. stmt must
// live in a context that survives transactions.
void run(Node *stmt, const std::string &label);

}  // namespace zdd::toplevel
