// xact.hpp — a transaction of its own, for background workers.
#pragma once

#include "spi.hpp"

extern "C" {
#include "utils/snapmgr.h"
}

namespace zdd {

// Runs fn in a new transaction with a snapshot and an SPI connection, and
// commits; on an exception, aborts the transaction and rethrows. Only for
// code that runs outside any transaction (the background worker).
template <typename F>
auto in_own_transaction(F &&fn) -> decltype(fn()) {
  pg_call([] {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
  });
  auto commit = [] {
    pg_call([] {
      PopActiveSnapshot();
      CommitTransactionCommand();
    });
  };
  try {
    if constexpr (std::is_void_v<decltype(fn())>) {
      {
        spi::Connection spi;
        fn();
      }
      commit();
    } else {
      auto r = [&] {
        spi::Connection spi;
        return fn();
      }();
      commit();
      return r;
    }
  } catch (...) {
    pg_call([] { AbortCurrentTransaction(); });
    throw;
  }
}

}  // namespace zdd
