// write_log.cpp — see write_log.hpp.
#include "write_log.hpp"

#include "error.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "funcapi.h"
#include "utils/tuplestore.h"
}

namespace zdd::write_log {

namespace {

constexpr int kSlots = 256;

struct Table {
  slock_t lock;
  Slot slots[kSlots];
};

Table *table = nullptr;
shmem_request_hook_type prev_request = nullptr;

// Attaches to the table, creating it on first use in this server's life.
Table *attach() {
  if (table != nullptr) return table;
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found;
  Table *t = static_cast<Table *>(ShmemInitStruct("zdd write log", sizeof(Table), &found));
  if (!found) {
    SpinLockInit(&t->lock);
    for (Slot &s : t->slots) {
      s.id = 0;
      s.since = 0;
      pg_atomic_init_u64(&s.old_writes, 0);
      pg_atomic_init_u64(&s.new_writes, 0);
      pg_atomic_init_u64(&s.old_last, 0);
      pg_atomic_init_u64(&s.new_last, 0);
    }
  }
  LWLockRelease(AddinShmemInitLock);
  table = t;
  return t;
}

void request_space() {
  if (prev_request) prev_request();
  RequestAddinShmemSpace(MAXALIGN(sizeof(Table)));
}

}  // namespace

void request() {
  if (!process_shared_preload_libraries_in_progress) return;
  prev_request = shmem_request_hook;
  shmem_request_hook = request_space;
}

Slot *slot_for(int64 id) {
  Table *t = attach();
  Slot *found = nullptr, *free = nullptr;
  SpinLockAcquire(&t->lock);
  for (Slot &s : t->slots) {
    if (s.id == id) {
      found = &s;
      break;
    }
    if (s.id == 0 && free == nullptr) free = &s;
  }
  if (found == nullptr && free != nullptr) {
    free->id = id;
    free->since = GetCurrentTimestamp();
    pg_atomic_write_u64(&free->old_writes, 0);
    pg_atomic_write_u64(&free->new_writes, 0);
    pg_atomic_write_u64(&free->old_last, 0);
    pg_atomic_write_u64(&free->new_last, 0);
    found = free;
  }
  SpinLockRelease(&t->lock);
  return found;
}

Counts read(int64 id) {
  Counts c;
  Slot *s = slot_for(id);
  if (s == nullptr) return c;
  c.known = true;
  c.since = s->since;
  c.old_writes = static_cast<int64>(pg_atomic_read_u64(&s->old_writes));
  c.new_writes = static_cast<int64>(pg_atomic_read_u64(&s->new_writes));
  c.old_last = static_cast<TimestampTz>(pg_atomic_read_u64(&s->old_last));
  c.new_last = static_cast<TimestampTz>(pg_atomic_read_u64(&s->new_last));
  return c;
}

namespace {

// Ids whose slots are freed when the current transaction commits (a
// rolled-back complete or abort keeps its transition open, and its
// triggers keep counting into the slot).
constexpr int kPending = 64;
int64 pending[kPending];
int npending = 0;
bool callback_registered = false;

void free_slot(int64 id) {
  Table *t = attach();
  SpinLockAcquire(&t->lock);
  for (Slot &s : t->slots)
    if (s.id == id) s.id = 0;
  SpinLockRelease(&t->lock);
}

void at_end(XactEvent event, void *) {
  if (event == XACT_EVENT_COMMIT)
    for (int i = 0; i < npending; ++i) free_slot(pending[i]);
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT) npending = 0;
}

}  // namespace

void forget(int64 id) {
  if (!callback_registered) {
    RegisterXactCallback(at_end, nullptr);
    callback_registered = true;
  }
  if (npending < kPending) pending[npending++] = id;
}

// zdd.write_counts(): every claimed slot, for zdd.status. Reads atomics
// only: a row may be counted an instant before its time is.
Datum counts_srf(FunctionCallInfo fcinfo) {
  pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
  ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
  Table *t = pg_call([] { return attach(); });
  for (Slot &s : t->slots) {
    const int64 id = s.id;
    if (id == 0) continue;
    const uint64 ow = pg_atomic_read_u64(&s.old_writes), nw = pg_atomic_read_u64(&s.new_writes);
    const uint64 ol = pg_atomic_read_u64(&s.old_last), nl = pg_atomic_read_u64(&s.new_last);
    Datum v[6] = {Int64GetDatum(id), Int64GetDatum(static_cast<int64>(ow)),
                  Int64GetDatum(static_cast<int64>(nw)), TimestampTzGetDatum(static_cast<TimestampTz>(ol)),
                  TimestampTzGetDatum(static_cast<TimestampTz>(nl)), TimestampTzGetDatum(s.since)};
    bool n[6] = {false, false, false, ol == 0, nl == 0, false};
    pg_call([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n); });
  }
  return (Datum)0;
}

}  // namespace zdd::write_log

extern "C" {
PG_FUNCTION_INFO_V1(zdd_write_counts);
PGDLLEXPORT Datum zdd_write_counts(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::write_log::counts_srf(fcinfo); });
}
}
