// health.cpp — the health signals a backfill batch checks first (see
// health.hpp). Each reads PostgreSQL's shared memory the way its own SQL
// views do (pg_stat_replication, pg_replication_slots, pg_stat_activity,
// pg_stat_progress_vacuum, pg_stat_user_tables), without their rights
// checks, and returns a reason a DBA can act on.
#include "health.hpp"

extern "C" {
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "pgstat.h"
#include "replication/slot.h"
#include "replication/walsender_private.h"
#include "storage/fd.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/backend_progress.h"
#include "utils/backend_status.h"
#include "utils/timestamp.h"
}

namespace zdd::health {

namespace {

int max_replica_lag_kb = 100 * 1024;  // GitLab stops at 100 MB of slot lag
int max_replica_delay_ms = 0;
int max_archive_backlog = 42;  // GitLab's figure: 42 segments not yet archived
double max_dead_tuples = 0.5;
bool wait_for_autovacuum = true;
int max_transaction_age_s = 0;
int health_recheck_ms = 5000;

// This transaction's snapshot of the backends' status (loaded once per
// transaction; the entries stay valid until it ends).
int backend_count() {
  return pg_call([] { return pgstat_fetch_stat_numbackends(); });
}
const PgBackendStatus *backend(int i) {
  LocalPgBackendStatus *l = pg_call([&] { return pgstat_fetch_stat_local_beentry(i); });
  return l ? &l->backendStatus : nullptr;
}

// The name of walsender pid as pg_stat_replication shows it
// (application_name), or "walsender <pid>".
std::string walsender_name(int pid) {
  const int n = backend_count();
  for (int i = 1; i <= n; ++i) {
    const PgBackendStatus *b = backend(i);
    if (b && b->st_procpid == pid && b->st_appname && b->st_appname[0]) return b->st_appname;
  }
  return fmt::format("walsender {}", pid);
}

// Since when each walsender's replay position has not moved (this
// process's own record, kept across batches): PostgreSQL's replay_lag
// keeps its last value while replay is stopped, so a paused standby
// would look fine by it.
struct Replay {
  pid_t pid;
  XLogRecPtr apply;
  bool behind;        // WAL past apply waited to be replayed at the last look
  TimestampTz since;  // first look at which it stood at apply, behind
};
std::vector<Replay> replays;

// How long walsender pid's replay position has stood at apply while WAL
// waited to be replayed (behind: the standby flushed WAL past it), in ms,
// as far as this process's looks tell: counted from the first look that
// found it behind at apply.
int64_t stuck_ms(pid_t pid, XLogRecPtr apply, bool behind, TimestampTz now) {
  for (Replay &p : replays)
    if (p.pid == pid) {
      if (p.apply != apply || !behind || !p.behind) p = {pid, apply, behind, now};
      return (now - p.since) / 1000;
    }
  if (replays.size() >= 64) replays.clear();  // walsenders come and go
  replays.push_back({pid, apply, behind, now});
  return 0;
}

// Replica lag: bytes between the WAL insert position and each streaming
// standby's (or subscriber's) replay position; and its replay delay,
// counted only while it has not replayed everything (an idle primary's
// last delay reading is stale, its positions are not): the delay the
// standby reports (replay_lag), or how long its replay position has not
// moved, whichever is longer. Spinlocks are held only to copy plain values.
void replicas(const Limits &l, XLogRecPtr now, Reading &r) {
  if (WalSndCtl == nullptr) return;
  const TimestampTz clock = GetCurrentTimestamp();
  for (int i = 0; i < max_wal_senders; ++i) {
    WalSnd *w = &WalSndCtl->walsnds[i];
    SpinLockAcquire(&w->mutex);
    const pid_t pid = w->pid;
    const WalSndState state = w->state;
    const XLogRecPtr apply = w->apply;
    const XLogRecPtr flush = w->flush;
    const TimeOffset delay = w->applyLag;
    SpinLockRelease(&w->mutex);
    if (pid == 0 || (state != WALSNDSTATE_STREAMING && state != WALSNDSTATE_CATCHUP) ||
        XLogRecPtrIsInvalid(apply))
      continue;
    const int64_t lag = now > apply ? int64_t(now - apply) : 0;
    r.lag_bytes = std::max(r.lag_bytes, lag);
    // behind: the standby holds WAL it has not replayed (its own flush
    // position, as it reports both in one reply, past its replay position)
    const int64_t delay_ms = std::max<int64_t>(delay / 1000, stuck_ms(pid, apply, flush > apply, clock));
    if (r.reason) continue;
    if (l.replica_lag_bytes > 0 && lag > l.replica_lag_bytes)
      r.reason = fmt::format("replica lag {} > {} on {}", pretty_bytes(lag),
                             pretty_bytes(l.replica_lag_bytes), walsender_name(pid));
    else if (l.replica_delay_ms > 0 && lag > 0 && delay_ms > l.replica_delay_ms)
      r.reason = fmt::format("replica delay {} ms > {} ms on {}", delay_ms, l.replica_delay_ms,
                             walsender_name(pid));
  }
}

// Replication slot lag: WAL each slot keeps (insert position minus its
// restart position), active or not: a slot nobody consumes keeps WAL
// until the disk is full. The slots are copied under the lock into space
// reserved before it (nothing under the lock can throw).
void slots(const Limits &l, XLogRecPtr now, Reading &r) {
  if (ReplicationSlotCtl == nullptr) return;
  struct Copy {
    XLogRecPtr restart;
    bool active;
    NameData name;
  };
  std::vector<Copy> copies(max_replication_slots);
  Copy *out = copies.data();
  const int n = pg_call([&] {
    int k = 0;
    LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
    for (int i = 0; i < max_replication_slots; ++i) {
      ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];
      if (!s->in_use) continue;
      SpinLockAcquire(&s->mutex);
      out[k].restart = s->data.restart_lsn;
      out[k].name = s->data.name;
      out[k].active = s->active_pid != 0;
      SpinLockRelease(&s->mutex);
      ++k;
    }
    LWLockRelease(ReplicationSlotControlLock);
    return k;
  });
  copies.resize(n);
  for (const Copy &c : copies) {
    if (XLogRecPtrIsInvalid(c.restart)) continue;
    const int64_t lag = now > c.restart ? int64_t(now - c.restart) : 0;
    r.lag_bytes = std::max(r.lag_bytes, lag);
    if (!r.reason && l.replica_lag_bytes > 0 && lag > l.replica_lag_bytes)
      r.reason = fmt::format("replication slot lag {} > {} on {}slot {}", pretty_bytes(lag),
                             pretty_bytes(l.replica_lag_bytes), c.active ? "" : "inactive ",
                             NameStr(c.name));
  }
}

// WAL archive backlog: segments marked .ready that the archiver has not
// archived yet (archive_mode on). A directory that cannot be read is
// logged and counts as no backlog: a health check never fails a batch.
void archive(const Limits &l, Reading &r) {
  if (r.reason || l.archive_backlog <= 0 || !XLogArchivingActive()) return;
  const int64_t ready = pg_call([] {
    int64_t n = 0;
    DIR *dir = AllocateDir(XLOGDIR "/archive_status");
    if (dir == nullptr) return n;
    struct dirent *de;
    while ((de = ReadDirExtended(dir, XLOGDIR "/archive_status", LOG)) != nullptr) {
      const size_t len = strlen(de->d_name);
      if (len > 6 && strcmp(de->d_name + len - 6, ".ready") == 0) ++n;
    }
    FreeDir(dir);
    return n;
  });
  if (ready > l.archive_backlog)
    r.reason = fmt::format("archive backlog {} WAL segments > {}", ready, l.archive_backlog);
}

// Autovacuum (or a wraparound-prevention vacuum) running on the table.
void autovacuum(const Limits &l, Oid relid, Reading &r) {
  if (r.reason || !l.autovacuum) return;
  const int n = backend_count();
  for (int i = 1; i <= n && !r.reason; ++i) {
    const PgBackendStatus *b = backend(i);
    if (!b || b->st_backendType != B_AUTOVAC_WORKER || b->st_databaseid != MyDatabaseId ||
        b->st_progress_command != PROGRESS_COMMAND_VACUUM || b->st_progress_command_target != relid)
      continue;
    const bool wraparound = b->st_activity_raw && strstr(b->st_activity_raw, "wraparound") != nullptr;
    r.reason = fmt::format("autovacuum{} running on the table (pid {})",
                           wraparound ? " (to prevent wraparound)" : "", b->st_procpid);
  }
}

// The table's dead tuples as a share of its live tuples (cumulative
// statistics, as pg_stat_user_tables shows them).
void dead_tuples(const Limits &l, Oid relid, Reading &r) {
  if (r.reason || l.dead_tuples <= 0) return;
  const PgStat_StatTabEntry *e = pg_call([&] { return pgstat_fetch_stat_tabentry(relid); });
  if (e == nullptr || e->n_dead_tuples < kDeadTuplesFloor) return;
  const double share = double(e->n_dead_tuples) / double(std::max<int64_t>(1, e->n_live_tuples));
  if (share > l.dead_tuples)
    r.reason = fmt::format("dead tuples {:.0f}% of live > {:.0f}% ({} dead)", share * 100,
                           l.dead_tuples * 100, int64_t(e->n_dead_tuples));
}

// The oldest transaction open in this database (its snapshot keeps every
// batch's dead tuples from being removed).
void transaction_age(const Limits &l, Reading &r) {
  if (r.reason || l.transaction_age_s <= 0) return;
  const TimestampTz now = GetCurrentTimestamp();
  const int n = backend_count();
  for (int i = 1; i <= n && !r.reason; ++i) {
    const PgBackendStatus *b = backend(i);
    if (!b || b->st_databaseid != MyDatabaseId || b->st_procpid == MyProcPid ||
        b->st_xact_start_timestamp == 0 || b->st_backendType == B_AUTOVAC_WORKER)
      continue;
    const int64_t age_s = (now - b->st_xact_start_timestamp) / USECS_PER_SEC;
    if (age_s > l.transaction_age_s)
      r.reason = fmt::format("transaction of pid {} open {} s > {} s", b->st_procpid, age_s,
                             l.transaction_age_s);
  }
}

}  // namespace

std::string pretty_bytes(int64_t bytes) {
  static const char *const units[] = {"bytes", "kB", "MB", "GB", "TB"};
  int u = 0;
  double v = double(bytes);
  while (u < 4 && v >= 10 * 1024.0) {
    v /= 1024.0;
    ++u;
  }
  return fmt::format("{} {}", int64_t(v + 0.5), units[u]);
}

// See health.hpp. Shared-memory reads only; runs in the batch's transaction
// (the backend status and statistics snapshots are per transaction).
Reading check(Oid relid, const Limits &limits) {
  Reading r;
  const XLogRecPtr now = RecoveryInProgress() ? InvalidXLogRecPtr : GetXLogInsertRecPtr();
  if (!XLogRecPtrIsInvalid(now)) {
    replicas(limits, now, r);
    slots(limits, now, r);
  }
  archive(limits, r);
  autovacuum(limits, relid, r);
  dead_tuples(limits, relid, r);
  transaction_age(limits, r);
  return r;
}

Limits defaults() {
  Limits l;
  l.replica_lag_bytes = int64_t(max_replica_lag_kb) * 1024;
  l.replica_delay_ms = max_replica_delay_ms;
  l.archive_backlog = max_archive_backlog;
  l.dead_tuples = max_dead_tuples;
  l.autovacuum = wait_for_autovacuum;
  l.transaction_age_s = max_transaction_age_s;
  return l;
}

int recheck_ms() { return health_recheck_ms; }

void define_settings() {
  DefineCustomIntVariable(
      "zdd.max_replica_lag",
      "Backfills wait while a standby or replication slot lags more WAL than this (0: never).",
      "Bytes between the WAL insert position and each standby's replay position "
      "(pg_stat_replication) or each slot's restart position (pg_replication_slots).",
      &max_replica_lag_kb, 100 * 1024, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_KB, nullptr, nullptr,
      nullptr);
  DefineCustomIntVariable(
      "zdd.max_replica_delay",
      "Backfills wait while a standby reports a replay delay longer than this (0: never).",
      "Counted only while the standby has not replayed all WAL.", &max_replica_delay_ms, 0, 0,
      INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "zdd.max_archive_backlog",
      "Backfills wait while more WAL segments than this wait to be archived (0: never).", nullptr,
      &max_archive_backlog, 42, 0, INT_MAX, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomRealVariable(
      "zdd.max_dead_tuples",
      "Backfills wait while the table's dead tuples exceed this share of its live tuples "
      "(0: never).",
      "Tables with fewer than 100000 dead tuples never wait for this.", &max_dead_tuples, 0.5, 0,
      1000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("zdd.wait_for_autovacuum",
                           "Backfills wait while autovacuum runs on their table.", nullptr,
                           &wait_for_autovacuum, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "zdd.max_transaction_age",
      "Backfills wait while a transaction in the database has been open longer than this "
      "(0: never).",
      nullptr, &max_transaction_age_s, 0, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
      nullptr);
  DefineCustomIntVariable("zdd.health_recheck",
                          "How often a waiting backfill checks the cluster's health again.",
                          nullptr, &health_recheck_ms, 5000, 100, 3600 * 1000, PGC_SIGHUP,
                          GUC_UNIT_MS, nullptr, nullptr, nullptr);
}

}  // namespace zdd::health
