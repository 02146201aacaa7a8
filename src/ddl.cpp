// ddl.cpp — lock_timeout + jittered retry around lock-taking steps.
#include "ddl.hpp"

#include "settings.hpp"
#include "spi.hpp"

extern "C" {
#include "common/pg_prng.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"
}

namespace zdd::ddl {

void sleep_ms(long ms) {
  pg_call([&] {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  });
}

namespace {

// Backoff before retry number attempt (1-based): lock_timeout * 2^attempt,
// capped, times a random factor in [0.5, 1.5) so that competing sessions
// do not retry in lockstep.
long backoff_ms(int attempt) {
  double base = settings::lock_timeout_ms * double(1L << std::min(attempt, 16));
  base = std::min(base, double(settings::lock_backoff_max_ms));
  return long(base * (0.5 + pg_prng_double(&pg_global_prng_state)));
}

// Runs step once inside a subtransaction with lock_timeout set; commits the
// subtransaction (keeping its locks) on success, rolls it back on error.
void attempt(const std::function<void()> &step) {
  MemoryContext cxt = CurrentMemoryContext;
  ResourceOwner owner = CurrentResourceOwner;
  pg_call([] { BeginInternalSubTransaction(nullptr); });
  MemoryContextSwitchTo(cxt);
  try {
    std::string timeout = std::to_string(settings::lock_timeout_ms);
    int level = pg_call([&] {
      int l = NewGUCNestLevel();
      (void)set_config_option("lock_timeout", timeout.c_str(), PGC_USERSET, PGC_S_SESSION,
                              GUC_ACTION_SAVE, true, 0, false);
      return l;
    });
    step();
    pg_call([&] {
      AtEOXact_GUC(true, level);  // lock_timeout back to the caller's value
      ReleaseCurrentSubTransaction();
    });
    MemoryContextSwitchTo(cxt);
    CurrentResourceOwner = owner;
  } catch (...) {
    pg_call([] { RollbackAndReleaseCurrentSubTransaction(); });
    MemoryContextSwitchTo(cxt);
    CurrentResourceOwner = owner;
    throw;
  }
}

}  // namespace

void with_lock_retry(const std::string &what, const std::function<void()> &step) {
  const int tries = settings::lock_retries + 1;
  for (int i = 1;; ++i) {
    try {
      attempt(step);
      return;
    } catch (const PgError &e) {
      if (e.sqlstate != ERRCODE_LOCK_NOT_AVAILABLE) throw;
      if (i >= tries)
        throw Error(ERRCODE_LOCK_NOT_AVAILABLE,
                    fmt::format("zdd: {}: could not get the lock in {} attempts of {} ms", what,
                                tries, settings::lock_timeout_ms),
                    e.message,
                    "Long-running transactions hold a conflicting lock (see pg_locks and "
                    "pg_stat_activity). Nothing was changed; call again later, or raise "
                    "zdd.lock_retries / zdd.lock_timeout.");
      sleep_ms(backoff_ms(i));
    }
  }
}

std::optional<Error> probe(const std::function<void()> &check) {
  MemoryContext cxt = CurrentMemoryContext;
  ResourceOwner owner = CurrentResourceOwner;
  pg_call([] { BeginInternalSubTransaction(nullptr); });
  MemoryContextSwitchTo(cxt);
  std::optional<Error> found;
  try {
    check();
  } catch (const Error &e) {
    found = e;
  } catch (...) {
    pg_call([] { RollbackAndReleaseCurrentSubTransaction(); });
    MemoryContextSwitchTo(cxt);
    CurrentResourceOwner = owner;
    throw;
  }
  pg_call([] { RollbackAndReleaseCurrentSubTransaction(); });
  MemoryContextSwitchTo(cxt);
  CurrentResourceOwner = owner;
  return found;
}

void lock_table(Oid relid, LOCKMODE mode, const std::string &what) {
  with_lock_retry(what, [&] { pg_call([&] { LockRelationOid(relid, mode); }); });
}

void run_with_retry(const std::string &what, const std::string &sql) {
  with_lock_retry(what, [&] { spi::execute(sql); });
}

}  // namespace zdd::ddl
