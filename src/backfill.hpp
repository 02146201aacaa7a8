// backfill.hpp — the backfill engine: what the rest of zdd asks of it
// (request_start / request_stop / init) and what the worker process runs
// (run_next_batch). Processes: worker.cpp; batches: backfill.cpp;
// SQL steering calls: steer.cpp.
#pragma once

#include "catalog.hpp"

namespace zdd::backfill {

// Moves transition t to phase 'backfilling' (state 'running') and arranges
// for a background worker to start on it once the calling transaction
// commits (never before the catalog row is visible). Out of worker slots:
// ERROR 53400 at commit, and nothing changes.
void request_start(const catalog::Transition &t);

// Asks the worker serving transition t to stop working on it (abort and
// complete call this after changing the phase).
void request_stop(const catalog::Transition &t);

// Registers the backfill's settings and, under shared_preload_libraries,
// the launcher (from _PG_init).
void init();

// ---- internal to the engine ----

// Sets phase backfilling / state running (with history) for request_start.
void mark_running(const catalog::Transition &t);

// In the worker: runs one batch (in its own transaction) of the runnable
// backfill of role whose last batch is oldest. Returns how long to sleep
// before the next batch, or -1 when no backfill of role is runnable.
long run_next_batch(Oid role);

// The worker's pg_stat_activity text while it builds transition id's twins.
std::string twins_activity(int64_t id);

// Defines the engine's settings (zdd.max_batch_failures), from init().
void define_settings();

// True when a backfill worker is alive in the current database.
bool worker_alive();

}  // namespace zdd::backfill
