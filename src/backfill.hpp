// backfill.hpp — what the rest of zdd asks of the backfill engine.
#pragma once

#include "catalog.hpp"

namespace zdd::backfill {

// Moves transition t to phase 'backfilling' (state 'running') and arranges
// for a background worker to start on it once the calling transaction
// commits (never before the catalog row is visible).
void request_start(const catalog::Transition &t);

// Asks the worker serving transition t to stop working on it (abort and
// complete call this after changing the phase).
void request_stop(const catalog::Transition &t);

// Registers the backfill's settings and, under shared_preload_libraries,
// the launcher (from _PG_init).
void init();

}  // namespace zdd::backfill
