// toplevel.cpp — running one statement as a top-level command from a
// background worker, outside any transaction block, the way
// exec_simple_query does (parse, analyze, plan, PortalRun with
// isTopLevel = true). CREATE/DROP INDEX CONCURRENTLY need this: they refuse
// SPI, and commit and start transactions themselves.
#include "toplevel.hpp"

extern "C" {
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
}

namespace zdd::toplevel {

namespace {

// Runs raw (parsed, or built) as a top-level command. Parse and plan
// trees must outlive the transactions the command commits itself
// (exec_simple_query keeps them in MessageContext): cxt is a context of
// our own under TopMemoryContext, deleted at the end. On an error the
// transaction is aborted here.
//
// No user switch here: a command that commits and starts transactions
// itself must not run inside a security-restricted context (StartTransaction
// asserts it). CREATE INDEX needs none: DefineIndex itself runs the table
// owner's index expressions as the table owner, security-restricted.
void run_raw(RawStmt *raw, const char *text, MemoryContext cxt) {
  try {
    pg_call([&] {
      SetCurrentStatementStartTimestamp();
      StartTransactionCommand();
      MemoryContextSwitchTo(cxt);
      List *queries = pg_analyze_and_rewrite_fixedparams(raw, text, nullptr, 0, nullptr);
      List *plans = pg_plan_queries(queries, text, CURSOR_OPT_PARALLEL_OK, nullptr);
      Portal portal = CreatePortal("", true, true);
      portal->visible = false;
      PortalDefineQuery(portal, nullptr, text, CreateCommandTag(raw->stmt), plans, nullptr);
      PortalStart(portal, nullptr, 0, InvalidSnapshot);
      DestReceiver *dest = CreateDestReceiver(DestNone);
      QueryCompletion qc;
      (void)PortalRun(portal, FETCH_ALL, true, true, dest, dest, &qc);
      dest->rDestroy(dest);
      PortalDrop(portal, false);
      CommitTransactionCommand();
      MemoryContextSwitchTo(TopMemoryContext);
    });
  } catch (...) {
    pg_call([&] {
      AbortCurrentTransaction();
      MemoryContextSwitchTo(TopMemoryContext);
    });
    throw;
  }
}

// A context for one top-level statement's trees.
MemoryContext statement_context() {
  return pg_call([] {
    return AllocSetContextCreate(TopMemoryContext, "zdd top-level statement", ALLOCSET_DEFAULT_SIZES);
  });
}

}  // namespace

// See toplevel.hpp.
void run(const std::string &sql) {
  MemoryContext cxt = statement_context();
  const char *text = sql.c_str();
  try {
    RawStmt *raw = pg_call([&] {
      MemoryContext old = MemoryContextSwitchTo(cxt);
      List *parsed = pg_parse_query(text);
      MemoryContextSwitchTo(old);
      if (list_length(parsed) != 1) elog(ERROR, "zdd: expected one statement: %s", text);
      return linitial_node(RawStmt, parsed);
    });
    run_raw(raw, text, cxt);
  } catch (...) {
    pg_call([&] { MemoryContextDelete(cxt); });
    throw;
  }
  pg_call([&] { MemoryContextDelete(cxt); });
}

// See toplevel.hpp.
void run(Node *stmt, const std::string &label) {
  MemoryContext cxt = statement_context();
  try {
    RawStmt *raw = pg_call([&] {
      MemoryContext old = MemoryContextSwitchTo(cxt);
      RawStmt *r = makeNode(RawStmt);
      r->stmt = stmt;
      r->stmt_location = 0;
      r->stmt_len = 0;
      MemoryContextSwitchTo(old);
      return r;
    });
    run_raw(raw, label.c_str(), cxt);
  } catch (...) {
    pg_call([&] { MemoryContextDelete(cxt); });
    throw;
  }
  pg_call([&] { MemoryContextDelete(cxt); });
}

}  // namespace zdd::toplevel
