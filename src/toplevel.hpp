// toplevel.hpp — one statement as a top-level command (worker only).
#pragma once

#include "error.hpp"

namespace zdd::toplevel {

// Runs sql (one statement) outside any transaction block as a top-level
// command, in transactions of its own; for CREATE/DROP INDEX CONCURRENTLY.
// Must be called with no transaction open.
void run(const std::string &sql);

}  // namespace zdd::toplevel
