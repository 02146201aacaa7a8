// quiet_triggers.cpp — see quiet_triggers.hpp.
#include "quiet_triggers.hpp"

extern "C" {
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"
}

namespace zdd::quiet_triggers {

namespace {

Oid quiet_relid = InvalidOid;
ExecutorStart_hook_type prev_executor_start = nullptr;

// ExecutorStart hook: after the standard start (which opened the result
// relations and copied their trigger descriptors), disables the user
// triggers of the quieted table in this query's copies. Plain C-style code:
// it owns no C++ object, so PostgreSQL errors may pass through it.
void executor_start(QueryDesc *qd, int eflags) {
  if (prev_executor_start)
    prev_executor_start(qd, eflags);
  else
    standard_ExecutorStart(qd, eflags);
  if (!OidIsValid(quiet_relid)) return;
  ListCell *lc;
  foreach (lc, qd->estate->es_opened_result_relations) {
    ResultRelInfo *rri = static_cast<ResultRelInfo *>(lfirst(lc));
    if (RelationGetRelid(rri->ri_RelationDesc) != quiet_relid || rri->ri_TrigDesc == nullptr)
      continue;
    TriggerDesc *td = rri->ri_TrigDesc;
    for (int i = 0; i < td->numtriggers; ++i)
      if (!td->triggers[i].tgisinternal) td->triggers[i].tgenabled = TRIGGER_DISABLED;
  }
}

}  // namespace

// See quiet_triggers.hpp.
void install() {
  prev_executor_start = ExecutorStart_hook;
  ExecutorStart_hook = executor_start;
}

Scope::Scope(Oid relid) : saved_(quiet_relid) { quiet_relid = relid; }
Scope::~Scope() { quiet_relid = saved_; }

}  // namespace zdd::quiet_triggers
