// worker.cpp — the background processes that run backfills.
//
// Design
// ------
// * Backfill worker: a dynamic background worker per database (bgw_type
//   "zdd backfill"), connected to that database AS THE ROLE THAT STARTED THE
//   TRANSITIONS it serves — never as a superuser on their behalf. At most
//   one runs per database at a time: it holds a session-level advisory
//   lock keyed on the database (a second one exits at once). It serves the
//   database's running backfills of its role in turn, one batch at a time
//   (oldest last batch first); batches are in backfill.cpp.
// * Starting at commit: begin_rename / resume call request_start() inside
//   their transaction; the worker is registered at PRE_COMMIT, so running
//   out of worker slots is still an ERROR (53400) that rolls the call back.
//   The worker first waits for that transaction to end (XactLockTableWait)
//   and only then reads the catalog: a rolled-back call finds nothing.
// * Handing over: when a worker finds no more work of its role it releases
//   the database lock and looks again (so work committed meanwhile is never
//   left with nobody): its own role's → it takes the lock again and goes on;
//   another role's → it registers a worker for that role and exits.
// * Launcher (only with shared_preload_libraries = 'zdd'): a static worker
//   with a restart time, so it also runs again after a crash-restart. It
//   starts a short-lived scout per database; the scout (connected as the
//   bootstrap superuser, it reads zdd.transition and nothing else) starts a
//   backfill worker for the role of each unfinished running backfill.
//   Without preload nothing restarts on its own: zdd.status shows the
//   backfill as stalled and zdd.resume(id) starts a worker.
// * Errors in a batch abort that batch's transaction only; the worker
//   records them (backfill.cpp) and goes on: it never exits into a restart
//   loop. SIGTERM ends it at the next interrupt check; the open batch rolls
//   back and the cursor in the catalog stays consistent.
#include "backfill.hpp"
#include "ddl.hpp"
#include "settings.hpp"
#include "xact.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"
}

namespace zdd::backfill {

namespace {

// What a worker is started with (bgw_extra).
struct WorkerArgs {
  Oid database;
  Oid role;             // InvalidOid: a scout
  TransactionId xid;    // wait for this transaction first (Invalid: none)
};

constexpr const char *kWorkerType = "zdd backfill";

// zdd.launcher_naptime: seconds between two scans of the databases.
int launcher_naptime_s = 30;

// Roles whose workers this transaction must start at commit.
constexpr int kMaxPending = 8;
Oid pending_roles[kMaxPending];
int npending = 0;
bool callback_registered = false;

// Registers a backfill worker (or a scout when role is invalid).
bool register_worker(Oid database, Oid role, TransactionId xid, bool notify,
                     BackgroundWorkerHandle **handle) {
  BackgroundWorker w;
  memset(&w, 0, sizeof(w));
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = BGW_NEVER_RESTART;
  strlcpy(w.bgw_library_name, "zdd", BGW_MAXLEN);
  strlcpy(w.bgw_function_name, "zdd_worker_main", BGW_MAXLEN);
  if (OidIsValid(role))
    snprintf(w.bgw_name, BGW_MAXLEN, "zdd backfill (database %u, role %u)", database, role);
  else
    snprintf(w.bgw_name, BGW_MAXLEN, "zdd backfill scout (database %u)", database);
  strlcpy(w.bgw_type, kWorkerType, BGW_MAXLEN);
  WorkerArgs args{database, role, xid};
  memcpy(w.bgw_extra, &args, sizeof(args));
  w.bgw_notify_pid = notify ? MyProcPid : 0;
  return RegisterDynamicBackgroundWorker(&w, handle);
}

// Transaction callback: registers the workers asked for by request_start
// at PRE_COMMIT (where an ERROR still rolls everything back), forgets them
// at the end of the transaction.
void xact_callback(XactEvent event, void *) {
  switch (event) {
    case XACT_EVENT_PRE_COMMIT: {
      if (npending == 0) return;
      const TransactionId xid = GetTopTransactionIdIfAny();
      for (int i = 0; i < npending; ++i) {
        if (!register_worker(MyDatabaseId, pending_roles[i], xid, false, nullptr)) {
          npending = 0;
          ereport(ERROR,
                  (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                   errmsg("zdd: no background worker slot is free to run the backfill"),
                   errdetail("Nothing was changed."),
                   errhint("Raise max_worker_processes (restart needed) or wait for other "
                           "background workers to end; or begin with start_backfill => false "
                           "and call zdd.resume(id) later.")));
        }
      }
      npending = 0;
      return;
    }
    case XACT_EVENT_PRE_PREPARE:
      if (npending > 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("zdd: cannot start a backfill in a prepared transaction")));
      return;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      npending = 0;
      return;
    default:
      return;
  }
}

// The advisory lock tag that makes a worker the database's only one.
LOCKTAG database_tag() {
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0x7a6464 /* "zdd" */, 0, 3);
  return tag;
}

// Tries to become the database's backfill worker (session lock).
bool try_database_lock() {
  LOCKTAG tag = database_tag();
  StartTransactionCommand();
  LockAcquireResult r = LockAcquire(&tag, ExclusiveLock, true, true);
  CommitTransactionCommand();
  return r != LOCKACQUIRE_NOT_AVAIL;
}

// Gives up being the database's backfill worker.
void release_database_lock() {
  LOCKTAG tag = database_tag();
  LockRelease(&tag, ExclusiveLock, true);
}

// Waits until transaction xid (the call that started us) has ended.
void wait_for_launcher_xact(TransactionId xid) {
  if (!TransactionIdIsValid(xid)) return;
  StartTransactionCommand();
  XactLockTableWait(xid, nullptr, nullptr, XLTW_None);
  CommitTransactionCommand();
}

// The role of the next runnable backfill in this database, ours first.
std::optional<Oid> runnable_role(Oid mine) {
  auto rows = catalog::query(
      "SELECT started_by::pg_catalog.oid FROM zdd.transition "
      "WHERE phase = 'backfilling' AND backfill_state IN ('running', 'waiting') "
      "ORDER BY started_by::pg_catalog.oid = $1 DESC, id LIMIT 1",
      {spi::p_oid(mine)});
  if (rows.empty()) return std::nullopt;
  return static_cast<Oid>(std::stoul(*rows[0][0]));
}

// Settings a role or database may carry (ALTER ROLE/DATABASE ... SET) that
// would change what a batch means or make it fail: pinned for the worker's
// whole life, above any role or database setting (PGC_S_OVERRIDE).
void pin_settings() {
  static const char *const pinned[][2] = {
      {"default_transaction_isolation", "read committed"},  // no 40001 under write load
      {"default_transaction_read_only", "off"},
      {"default_transaction_deferrable", "off"},
      {"row_security", "off"},  // a policy that would filter the walk makes it fail instead
      {"session_replication_role", "origin"},
      {"statement_timeout", "0"},
      {"idle_in_transaction_session_timeout", "0"},
      {"search_path", "pg_catalog, pg_temp"},
      {"zdd.side", "auto"},
      {"extra_float_digits", "3"},  // the cursor's text form (backfill.cpp)
      {"DateStyle", "ISO, MDY"},
      {"IntervalStyle", "postgres"},
      {"lc_monetary", "C"},
  };
  for (const auto &p : pinned) SetConfigOption(p[0], p[1], PGC_SUSET, PGC_S_OVERRIDE);
}

// Signal handling and connection common to the worker kinds. SIGINT
// (pg_cancel_backend) keeps PostgreSQL's handler: it cancels the batch in
// flight (recorded, retried after a backoff); outside a batch the worker
// loop clears it (see worker_main).
WorkerArgs start_process(bool connect) {
  WorkerArgs args;
  memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
  pqsignal(SIGTERM, die);
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  BackgroundWorkerUnblockSignals();
  if (connect) {
    BackgroundWorkerInitializeConnectionByOid(args.database, args.role, 0);
    pin_settings();
  }
  pgstat_report_appname(kWorkerType);
  return args;
}

// Scout: finds the roles with unfinished running backfills in this
// database and starts a worker for the first (handing over does the rest).
void scout_main(const WorkerArgs &args) {
  std::optional<Oid> role = in_own_transaction([] {
    auto ext = spi::query("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'zdd'");
    if (ext.empty() || worker_alive()) return std::optional<Oid>();
    return runnable_role(InvalidOid);
  });
  if (role) {
    const bool ok = pg_call([&] { return register_worker(args.database, *role, InvalidTransactionId, false, nullptr); });
    if (!ok)
      pg_call([] {
        ereport(LOG, (errmsg("zdd: no background worker slot free to resume backfills"),
                      errhint("Raise max_worker_processes, then call zdd.resume(id).")));
      });
  }
}

// Sleeps between batches: wakes for SIGTERM (FATAL) and config reloads,
// ignores a cancel (nothing is running to cancel).
void idle_sleep(long ms) {
  pg_call([&] {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    QueryCancelPending = false;
    CHECK_FOR_INTERRUPTS();
  });
}

// Logs an error that escaped a batch's own handling (which records errors
// in the catalog); the worker goes on after a pause instead of exiting.
void log_loop_error() {
  std::string msg;
  try {
    throw;
  } catch (const std::exception &e) {
    msg = e.what();
  } catch (...) {
    msg = "unknown error";
  }
  pg_call([&] {
    AbortOutOfAnyTransaction();
    ereport(LOG, (errmsg("zdd backfill worker: %s; retrying in 5 s", msg.c_str())));
  });
}

// The backfill worker's loop (see the design above). No error ends it:
// a batch records its own failures, anything else is logged and retried
// after a pause. SIGTERM ends it (FATAL at the interrupt check); a cancel
// that arrives between batches is ignored on purpose — it was aimed at a
// batch that has already ended.
void worker_main(const WorkerArgs &args) {
  pg_call([&] { wait_for_launcher_xact(args.xid); });
  if (!pg_call([] { return try_database_lock(); })) return;  // another worker serves us

  MemoryContext loop_cxt = pg_call([] {
    return AllocSetContextCreate(TopMemoryContext, "zdd backfill loop", ALLOCSET_DEFAULT_SIZES);
  });
  for (;;) {
    long sleep_ms = 0;
    try {
      pg_call([&] {
        QueryCancelPending = false;
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
          ConfigReloadPending = false;
          ProcessConfigFile(PGC_SIGHUP);
        }
        MemoryContextSwitchTo(loop_cxt);
        MemoryContextReset(loop_cxt);
      });
      sleep_ms = run_next_batch(args.role);
      if (sleep_ms < 0) {
        // No work of our role: release, look again, hand over or go on.
        pg_call([] { release_database_lock(); });
        std::optional<Oid> next = in_own_transaction([&] { return runnable_role(args.role); });
        if (!next) return;
        if (*next == args.role) {
          if (!pg_call([] { return try_database_lock(); })) return;
          continue;
        }
        const bool ok = pg_call([&] {
          return register_worker(args.database, *next, InvalidTransactionId, false, nullptr);
        });
        if (!ok)
          pg_call([] {
            ereport(LOG, (errmsg("zdd: no background worker slot free to hand the backfill over"),
                          errhint("Raise max_worker_processes, then call zdd.resume(id).")));
          });
        return;
      }
    } catch (...) {
      log_loop_error();
      sleep_ms = 5000;
    }
    if (sleep_ms > 0) idle_sleep(sleep_ms);
  }
}

}  // namespace

// See backfill.hpp: marks running, queues the worker for PRE_COMMIT.
void request_start(const catalog::Transition &t) {
  if (!callback_registered) {
    pg_call([] { RegisterXactCallback(xact_callback, nullptr); });
    callback_registered = true;
  }
  mark_running(t);
  for (int i = 0; i < npending; ++i)
    if (pending_roles[i] == t.started_by) return;
  if (npending < kMaxPending) pending_roles[npending++] = t.started_by;
}

// See backfill.hpp (pg_stat_activity, this database, not ourselves).
bool worker_alive() {
  auto rows = spi::query(
      "SELECT 1 FROM pg_catalog.pg_stat_activity WHERE backend_type = $1 "
      "AND datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()",
      {spi::p_text(kWorkerType)});
  return !rows.empty();
}

// The worker notices a changed phase at its next batch (it locks the
// transition's catalog row first, which abort and complete hold). Only a
// twin build can run long — CREATE INDEX CONCURRENTLY waits for old
// snapshots — and its SHARE UPDATE EXCLUSIVE lock would make abort give
// up: so cancel it. The cancel runs with the catalog owner's rights, and
// only on zdd's own worker, building this very transition's twins; the
// worker records the cancel as a failed batch and, the transition being
// aborted, never builds them again. The INVALID index left behind goes
// with the new column.
void request_stop(const catalog::Transition &t) {
  if (t.phase != "backfilling") return;
  (void)catalog::query(
      "SELECT pg_catalog.pg_cancel_backend(pid) FROM pg_catalog.pg_stat_activity "
      "WHERE backend_type = $1 AND datname = pg_catalog.current_database() AND query = $2",
      {spi::p_text(kWorkerType), spi::p_text(twins_activity(t.id))});
}

// See backfill.hpp: settings, and the launcher under preload.
void init() {
  define_settings();
  DefineCustomIntVariable("zdd.launcher_naptime",
                          "Time between two scans of the databases by the zdd launcher.",
                          "A backfill whose worker died is picked up again within this time.",
                          &launcher_naptime_s, 30, 1, 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr,
                          nullptr, nullptr);
  if (!process_shared_preload_libraries_in_progress) return;
  BackgroundWorker w;
  memset(&w, 0, sizeof(w));
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = 10;
  strlcpy(w.bgw_library_name, "zdd", BGW_MAXLEN);
  strlcpy(w.bgw_function_name, "zdd_launcher_main", BGW_MAXLEN);
  strlcpy(w.bgw_name, "zdd launcher", BGW_MAXLEN);
  strlcpy(w.bgw_type, "zdd launcher", BGW_MAXLEN);
  RegisterBackgroundWorker(&w);
}

// The databases that accept connections (the launcher's scan list).
std::vector<Oid> databases() {
  std::vector<Oid> out;
  pg_call([&] {
    StartTransactionCommand();
    (void)GetTransactionSnapshot();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tup;
    while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
      Form_pg_database db = (Form_pg_database)GETSTRUCT(tup);
      if (db->datallowconn && !db->datistemplate) out.push_back(db->oid);
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
  });
  return out;
}

// Launcher: scouts every database that accepts connections, one at a time,
// and again every zdd.launcher_naptime, so a backfill whose worker died
// (or was ended) is picked up again without anybody calling resume.
void launcher_main() {
  start_process(false);
  pg_call([] { BackgroundWorkerInitializeConnection(nullptr, nullptr, 0); });
  for (;;) {
    for (Oid db : databases()) {
      BackgroundWorkerHandle *handle = nullptr;
      const bool ok = pg_call([&] {
        return register_worker(db, InvalidOid, InvalidTransactionId, true, &handle);
      });
      if (!ok) {
        pg_call([] { ereport(LOG, (errmsg("zdd launcher: no background worker slot free"))); });
        break;
      }
      pg_call([&] { (void)WaitForBackgroundWorkerShutdown(handle); });
    }
    pg_call([] {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                      long(launcher_naptime_s) * 1000L, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
      if (ConfigReloadPending) {
        ConfigReloadPending = false;
        ProcessConfigFile(PGC_SIGHUP);
      }
    });
  }
}

// Entry of the dynamic workers: scout or backfill worker.
void dynamic_main() {
  WorkerArgs args = start_process(true);
  if (!OidIsValid(args.role))
    scout_main(args);
  else
    worker_main(args);
}

}  // namespace zdd::backfill

// Worker entry points (bgw_function_name), through the error boundary.
extern "C" {
PGDLLEXPORT void zdd_worker_main(Datum);
PGDLLEXPORT void zdd_launcher_main(Datum);

void zdd_worker_main(Datum) {
  zdd::boundary([] { zdd::backfill::dynamic_main(); });
}
void zdd_launcher_main(Datum) {
  zdd::boundary([] { zdd::backfill::launcher_main(); });
}
}
