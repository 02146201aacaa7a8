// quiet_triggers.cpp — see quiet_triggers.hpp.
#include "quiet_triggers.hpp"

extern "C" {
#include "catalog/pg_trigger.h"
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
    // The executor tests these flags per row before looking at any trigger
    // (a BEFORE ROW UPDATE flag alone makes it fetch and copy every old
    // row for the trigger manager): they are recomputed from the triggers
    // left enabled. Both are only read while rows are written.
    bool before_update = false, after_update = false;
    for (int i = 0; i < td->numtriggers; ++i) {
      Trigger *tg = &td->triggers[i];
      if (!tg->tgisinternal) tg->tgenabled = TRIGGER_DISABLED;
      if (tg->tgenabled == TRIGGER_DISABLED) continue;
      before_update |= TRIGGER_TYPE_MATCHES(tg->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_BEFORE, TRIGGER_TYPE_UPDATE);
      after_update |= TRIGGER_TYPE_MATCHES(tg->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_AFTER, TRIGGER_TYPE_UPDATE);
    }
    td->trig_update_before_row = before_update;
    td->trig_update_after_row = after_update;
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
