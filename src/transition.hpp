// transition.hpp — the expand step shared by begin_rename and
// begin_retype: lock, checks under the lock, the new column, the sync
// trigger, the catalog row, the backfill request.
#pragma once

#include "catalog.hpp"

namespace zdd::transition {

// What the expand step creates.
struct Expand {
  Oid relid = InvalidOid;
  std::string old_column, new_column;
  std::string kind = "rename";
  // A retype: the new column's type as SQL ([COLLATE ...] included), the
  // conversions (nullopt: the cast), the types for people, and whether
  // complete gives the new column the old one's name.
  std::optional<std::string> new_type_sql, up, down;
  std::string old_type_name, new_type_name;
  bool keep_name = false;
  int batch = 0, pause = 0, rate = 0, target = 0;
  bool start = true;
  std::optional<std::string> label;
};

// Throttle arguments n..n+3 and start_backfill (n+4), label (n+5) of a
// begin function into x (NULL: the zdd.* settings).
void read_throttle_args(FunctionCallInfo fcinfo, int n, Expand &x);

// The open transition of the same request (a migration run twice), if
// any: the caller returns its id with a NOTICE.
std::optional<int64_t> same_request(const Expand &x);

// Runs the expand step in the caller's transaction; returns the id.
int64_t expand(const Expand &x);

}  // namespace zdd::transition
