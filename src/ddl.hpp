// ddl.hpp — taking table locks without stalling traffic, and DDL text.
//
// A waiting ACCESS EXCLUSIVE request blocks every later request on the
// table, so zdd never waits long for one: each attempt runs in a
// subtransaction under lock_timeout = zdd.lock_timeout; on a lock timeout
// the subtransaction rolls back, zdd sleeps a jittered, growing backoff
// and tries again, zdd.lock_retries times, then fails with 55P03 and
// nothing changed.
#pragma once

#include <functional>

#include "error.hpp"

namespace zdd::ddl {

// Runs step (which takes locks and may run DDL) with lock_timeout retries
// as above. what names the step in the final error.
void with_lock_retry(const std::string &what, const std::function<void()> &step);

// Takes lockmode on relid with the retry policy above (lock kept until the
// end of the calling transaction).
void lock_table(Oid relid, LOCKMODE mode, const std::string &what);

// Runs one DDL statement under the retry policy.
void run_with_retry(const std::string &what, const std::string &sql);

// Runs check in a subtransaction that is always rolled back; returns the
// zdd::Error (or PostgreSQL error) it raised, if any.
std::optional<Error> probe(const std::function<void()> &check);

// Sleeps ms milliseconds, waking for interrupts and postmaster death.
void sleep_ms(long ms);

}  // namespace zdd::ddl
