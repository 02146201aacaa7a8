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

// See toplevel.hpp.
void run(const std::string &sql) {
  const char *text = sql.c_str();
  // Parse and plan trees must outlive the transactions the command commits
  // itself (exec_simple_query keeps them in MessageContext): a context of
  // our own under TopMemoryContext, deleted at the end.
  MemoryContext cxt = pg_call([] {
    return AllocSetContextCreate(TopMemoryContext, "zdd top-level statement", ALLOCSET_DEFAULT_SIZES);
  });
  pg_call([&] {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    MemoryContextSwitchTo(cxt);
    // search_path pinned for this transaction, as for every zdd statement.
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_LOCAL, true, 0, false);
    List *parsed = pg_parse_query(text);
    if (list_length(parsed) != 1) elog(ERROR, "zdd: expected one statement: %s", text);
    RawStmt *raw = linitial_node(RawStmt, parsed);
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
    MemoryContextDelete(cxt);
  });
}

}  // namespace zdd::toplevel
