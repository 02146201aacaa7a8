// retype.hpp — begin_retype's checks, shared with the preflight
// zdd.check_retype().
#pragma once

#include "transition.hpp"

namespace zdd::retype {

// A type change as the caller asked for it.
struct Request {
  Oid relid = InvalidOid;
  std::string column, type_text;
  std::optional<std::string> up, down, new_column;
};

// The request of begin_retype / check_retype (arguments 0-5: tbl, col,
// new_type, up, down, new_column; 22004 for a missing table, column or
// type). fn names the function in the error.
Request request_from_args(FunctionCallInfo fcinfo, const char *fn);

// What begin_retype will do: the expand step's request, or (catalog_only)
// one ALTER COLUMN ... TYPE that changes only the catalog.
struct Prepared {
  transition::Expand x;
  bool catalog_only = false;
};

// Every check begin_retype makes before it takes a lock that blocks
// writes: the table and column, the type, the conversion both ways, index
// expressions, and the conversion on a sample of the rows. Throws what
// begin_retype would refuse; changes nothing.
Prepared prepare(const Request &r);

}  // namespace zdd::retype
