// error.hpp — the single boundary between C++ exceptions and ereport.
//
// Two rules keep C++ and PostgreSQL's longjmp-based errors apart:
//  1. Every PostgreSQL entry point (SQL function, trigger, worker main) runs
//     its body through zdd::boundary(): C++ exceptions never cross it, and
//     ereport(ERROR) is raised only after the catch block has ended, when no
//     C++ object with a destructor is alive any more.
//  2. A PostgreSQL call made from a frame that owns C++ objects goes through
//     zdd::pg_call(): it catches the longjmp with sigsetjmp, restores the
//     error stack and memory context, and rethrows the error as PgError.
//     Code whose frames own no destructible objects may call PostgreSQL
//     directly (the sync trigger's per-row path does).
// A PgError caught anywhere but the boundary must be followed by the
// rollback of a (sub)transaction that encloses the failed call.
#pragma once

#include <exception>
#include <string>
#include <type_traits>

#include "pg.hpp"

namespace zdd {

// An error zdd raises itself: SQLSTATE, message, optional detail and hint.
struct Error : std::exception {
  int sqlstate;
  std::string message, detail, hint;
  Error(int code, std::string msg, std::string det = {}, std::string h = {})
      : sqlstate(code), message(std::move(msg)), detail(std::move(det)), hint(std::move(h)) {}
  const char *what() const noexcept override { return message.c_str(); }
};

// A PostgreSQL ERROR caught by pg_call, carried as plain strings so that it
// outlives the memory contexts a (sub)transaction rollback frees.
struct PgError : Error {
  std::string context;
  using Error::Error;
};

// Copies the current PostgreSQL error into a PgError and clears the error
// state; called right after a longjmp was caught.
[[noreturn]] void rethrow_pg_error(MemoryContext cxt);

// Runs f, turning a PostgreSQL ERROR (longjmp) into a C++ PgError.
// f itself must not own objects with destructors: keep it to PG calls.
template <typename F>
auto pg_call(F &&f) -> decltype(f()) {
  MemoryContext volatile cxt = CurrentMemoryContext;
  sigjmp_buf *volatile saved_stack = PG_exception_stack;
  ErrorContextCallback *volatile saved_ctx = error_context_stack;
  sigjmp_buf local;
  if (sigsetjmp(local, 0) == 0) {
    PG_exception_stack = &local;
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        PG_exception_stack = saved_stack;
        error_context_stack = saved_ctx;
        return;
      } else {
        auto result = f();
        PG_exception_stack = saved_stack;
        error_context_stack = saved_ctx;
        return result;
      }
    } catch (...) {
      // A C++ exception from f (bad_alloc building a string, say) must not
      // leave PostgreSQL's error stack pointing into this dead frame.
      PG_exception_stack = saved_stack;
      error_context_stack = saved_ctx;
      throw;
    }
  }
  PG_exception_stack = saved_stack;
  error_context_stack = saved_ctx;
  rethrow_pg_error(cxt);
}

// What the boundary raises once the C++ frames are gone (palloc'd copies).
struct PendingError {
  int sqlstate;
  char *message, *detail, *hint, *context;
};

// Converts the in-flight C++ exception into a PendingError (called inside
// a catch block only).
PendingError capture_current_exception() noexcept;

// ereport(ERROR) for a captured error. Never returns.
[[noreturn]] void raise(const PendingError &e);

// Runs body (returning Datum or void) and converts any exception into an
// ereport(ERROR) after all C++ frames inside have unwound.
template <typename Body>
auto boundary(Body &&body) -> decltype(body()) {
  PendingError pending;
  try {
    return body();
  } catch (...) {
    pending = capture_current_exception();
  }
  raise(pending);
}

}  // namespace zdd
