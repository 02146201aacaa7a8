// statement_columns.cpp — see statement_columns.hpp. Plain C-style code:
// the hooks and callbacks own no C++ object.
#include "statement_columns.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"
}

namespace zdd::statement_columns {

namespace {

// One running INSERT into a table with a sync trigger.
struct Entry {
  EState *estate;
  Oid relid;
  Bitmapset *cols;  // the executor's own (lives as long as estate)
  List *routes;     // of Route: leaves its rows were routed to (in es_query_cxt)
};

// A partition an INSERT into a partitioned table routed rows to, and the
// statement's columns in that partition's attribute numbers.
struct Route {
  Oid relid;
  Bitmapset *cols;
};

constexpr int kMaxDepth = 64;  // deeper nesting: not recorded (fallback)
Entry stack[kMaxDepth];
int depth = 0;
int skipped = 0;  // pushes beyond kMaxDepth, popped without an entry

// Depth at the start of each open subtransaction, to drop the entries of
// statements an error ended without ExecutorEnd.
constexpr int kMaxSub = 256;
int sub_depth[kMaxSub];
SubTransactionId sub_id[kMaxSub];
int nsub = 0;

ExecutorStart_hook_type prev_start = nullptr;
ExecutorEnd_hook_type prev_end = nullptr;

// True when the relation has a zdd sync trigger (named zz_zdd_sync_<id>).
bool has_sync_trigger(const TriggerDesc *td) {
  if (td == nullptr) return false;
  for (int i = 0; i < td->numtriggers; ++i)
    if (strncmp(td->triggers[i].tgname, "zz_zdd_sync_", 12) == 0) return true;
  return false;
}

// After the standard start: records the named columns of each INSERT
// target that has a sync trigger.
void executor_start(QueryDesc *qd, int eflags) {
  if (prev_start)
    prev_start(qd, eflags);
  else
    standard_ExecutorStart(qd, eflags);
  if (qd->operation != CMD_INSERT || (eflags & EXEC_FLAG_EXPLAIN_ONLY)) return;
  ListCell *lc;
  foreach (lc, qd->estate->es_opened_result_relations) {
    ResultRelInfo *rri = static_cast<ResultRelInfo *>(lfirst(lc));
    if (!has_sync_trigger(rri->ri_TrigDesc)) continue;
    if (depth >= kMaxDepth) {
      ++skipped;
      continue;
    }
    stack[depth++] = {qd->estate, RelationGetRelid(rri->ri_RelationDesc),
                      ExecGetInsertedCols(rri, qd->estate), NIL};
  }
}

// Drops the entries of the statement that ends.
void executor_end(QueryDesc *qd) {
  while (depth > 0 && stack[depth - 1].estate == qd->estate) --depth;
  if (prev_end)
    prev_end(qd);
  else
    standard_ExecutorEnd(qd);
}

// A transaction's end forgets everything.
void xact_callback(XactEvent event, void *) {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
      event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
      event == XACT_EVENT_PREPARE) {
    depth = 0;
    nsub = 0;
    skipped = 0;
  }
}

// A subtransaction's abort forgets the statements it ended.
void subxact_callback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId, void *) {
  switch (event) {
    case SUBXACT_EVENT_START_SUB:
      if (nsub < kMaxSub) {
        sub_depth[nsub] = depth;
        sub_id[nsub++] = mySubid;
      }
      break;
    case SUBXACT_EVENT_COMMIT_SUB:
    case SUBXACT_EVENT_ABORT_SUB:
      while (nsub > 0 && sub_id[nsub - 1] >= mySubid) {
        --nsub;
        if (event == SUBXACT_EVENT_ABORT_SUB && sub_id[nsub] == mySubid && depth > sub_depth[nsub])
          depth = sub_depth[nsub];
      }
      break;
    default:
      break;
  }
}

}  // namespace

// See statement_columns.hpp.
void install() {
  prev_start = ExecutorStart_hook;
  ExecutorStart_hook = executor_start;
  prev_end = ExecutorEnd_hook;
  ExecutorEnd_hook = executor_end;
  RegisterXactCallback(xact_callback, nullptr);
  RegisterSubXactCallback(subxact_callback, nullptr);
}

// See statement_columns.hpp.
// An INSERT into a partitioned table reaches the sync trigger of the leaf
// its row was routed to. The innermost statement's routed result relation
// for relid gives the columns, mapped to the leaf's attribute numbers by
// the executor (ExecGetInsertedCols); kept in the statement's entry (its
// query context: it goes with the statement), so later rows find them at
// once and no stack slot is used per partition.
const Bitmapset *routed(Entry &top, Oid relid) {
  ListCell *lc;
  foreach (lc, top.routes) {
    Route *r = static_cast<Route *>(lfirst(lc));
    if (r->relid == relid) return r->cols;
  }
  foreach (lc, top.estate->es_tuple_routing_result_relations) {
    ResultRelInfo *rri = static_cast<ResultRelInfo *>(lfirst(lc));
    if (RelationGetRelid(rri->ri_RelationDesc) != relid) continue;
    MemoryContext old = MemoryContextSwitchTo(top.estate->es_query_cxt);
    Route *r = static_cast<Route *>(palloc(sizeof(Route)));
    r->relid = relid;
    r->cols = bms_copy(ExecGetInsertedCols(rri, top.estate));
    top.routes = lappend(top.routes, r);
    MemoryContextSwitchTo(old);
    return r->cols;
  }
  return nullptr;
}

const Bitmapset *inserted(Oid relid) {
  if (skipped > 0 || depth == 0) return nullptr;  // a deeper statement may be the one running
  // The innermost statement first, its own targets and then the
  // partitions it routed rows to; then the outer statements' own targets.
  int i = depth - 1;
  EState *innermost = stack[i].estate;
  for (; i >= 0 && stack[i].estate == innermost; --i)
    if (stack[i].relid == relid) return stack[i].cols;
  for (int k = depth - 1; k > i; --k)
    if (const Bitmapset *cols = routed(stack[k], relid)) return cols;
  for (; i >= 0; --i)
    if (stack[i].relid == relid) return stack[i].cols;
  return nullptr;
}

}  // namespace zdd::statement_columns
