// write_log.hpp — which side of each open transition the apps write, kept
// in shared memory by the sync trigger (no catalog write per row): counts
// and last-write times of writes naming the old column and the new one.
// complete reads it to refuse contracting while the old column is still
// written (zdd.complete_quiet_period), the interlock of issue 12.
//
// The table lives in the main shared memory segment under a name
// (ShmemInitStruct): with shared_preload_libraries = zdd its space is
// requested at start; without, it comes from the segment's spare room on
// first use, as pg_prewarm's autoprewarm does. It does not survive a
// restart: each slot records since when it counts.
#pragma once

#include "pg.hpp"

extern "C" {
#include "port/atomics.h"
#include "utils/timestamp.h"
}

namespace zdd::write_log {

// One transition's counters.
struct Slot {
  int64 id;  // 0: free
  TimestampTz since;
  pg_atomic_uint64 old_writes, new_writes;
  pg_atomic_uint64 old_last, new_last;  // TimestampTz of the last write, 0: none
};

// The slot of transition id, claimed if it has none (nullptr when the
// table is full). Call outside the per-row path (it takes a spinlock).
Slot *slot_for(int64 id);

// Counts one row written through the old (old_side) or the new column.
inline void note(Slot *s, bool old_side, TimestampTz at) {
  if (s == nullptr) return;
  pg_atomic_fetch_add_u64(old_side ? &s->old_writes : &s->new_writes, 1);
  pg_atomic_write_u64(old_side ? &s->old_last : &s->new_last, static_cast<uint64>(at));
}

// A copy of transition id's counters (its slot claimed now if it had none).
struct Counts {
  bool known = false;  // false: no slot could be had
  int64 old_writes = 0, new_writes = 0;
  TimestampTz old_last = 0, new_last = 0, since = 0;
};
Counts read(int64 id);

// Frees transition id's slot when the current transaction commits
// (complete, abort).
void forget(int64 id);

// Requests the table's space under shared_preload_libraries (from _PG_init).
void request();

}  // namespace zdd::write_log
