// health.hpp — the cluster's health as the backfill sees it before every
// batch: replica and replication slot lag, WAL archive backlog, autovacuum
// on the table, the table's dead tuples, the oldest open transaction. A
// signal over its limit makes the backfill wait (state 'waiting', the
// reason in zdd.status) until it clears; it never fails the backfill.
//
// Everything is read from shared memory in C (walsender and slot arrays,
// backend status, cumulative statistics, the archive status directory):
// no SQL, no catalog scan, and no dependency on the rights of the role the
// worker runs as (pg_stat_replication hides positions from roles without
// pg_read_all_stats; the worker must see them to protect the standbys).
#pragma once

#include "error.hpp"

namespace zdd::health {

// The limits that apply to one transition: the zdd.* settings, each
// overridden by the transition's own value when zdd.throttle gave one.
// 0 (false) turns a signal off.
struct Limits {
  int64_t replica_lag_bytes = 0;  // zdd.max_replica_lag
  int64_t replica_delay_ms = 0;   // zdd.max_replica_delay
  int64_t archive_backlog = 0;    // zdd.max_archive_backlog (segments)
  double dead_tuples = 0;         // zdd.max_dead_tuples (share of live tuples)
  bool autovacuum = true;         // zdd.wait_for_autovacuum
  int64_t transaction_age_s = 0;  // zdd.max_transaction_age
};

// What one check found.
struct Reading {
  std::optional<std::string> reason;  // set: wait (the first signal over its limit)
  int64_t lag_bytes = 0;              // the largest replica / slot lag seen, for zdd.metrics
};

// Checks every signal of limits for table relid (from a transaction).
Reading check(Oid relid, const Limits &limits);

// Tables with fewer dead tuples than this never wait for zdd.max_dead_tuples.
constexpr int64_t kDeadTuplesFloor = 100000;

// Defines the zdd.max_* health settings (PGC_SIGHUP: cluster policy,
// postgresql.conf or ALTER SYSTEM) and zdd.health_recheck.
void define_settings();

// The settings' values as limits (no overrides).
Limits defaults();

// How long a waiting backfill sleeps before it checks again (ms).
int recheck_ms();

// "312 MB": a byte count as the reasons show it.
std::string pretty_bytes(int64_t bytes);

}  // namespace zdd::health
