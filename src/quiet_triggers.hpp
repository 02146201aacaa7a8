// quiet_triggers.hpp — the backfill's UPDATE fires none of the table's
// user triggers (zdd's own sync trigger included), without any setting
// that user code could see or abuse.
//
// While a Scope is alive, an ExecutorStart hook marks every non-internal
// trigger DISABLED in the executor's private copy of the target table's
// trigger descriptor (ResultRelInfo::ri_TrigDesc, a copy made per query by
// InitResultRelInfo). The relcache, other queries and other sessions are
// untouched; internal triggers (foreign-key checks) keep firing.
// session_replication_role is never changed: it is superuser-only, and
// every piece of user code that runs during a batch (ALWAYS triggers,
// CHECK functions, index expressions) would run under it.
#pragma once

#include "pg.hpp"

namespace zdd::quiet_triggers {

// Installs the ExecutorStart hook (from _PG_init).
void install();

// Quiets relid's triggers for statements started while the scope lives.
class Scope {
 public:
  explicit Scope(Oid relid);
  ~Scope();
  Scope(const Scope &) = delete;
  Scope &operator=(const Scope &) = delete;

 private:
  Oid saved_;
};

}  // namespace zdd::quiet_triggers
