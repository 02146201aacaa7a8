// settings.cpp — defines the zdd.* GUCs once, from _PG_init.
#include "settings.hpp"

#include "pg.hpp"

namespace zdd::settings {

int side = SideAuto;
int lock_timeout_ms = 200;
int lock_retries = 20;
int lock_backoff_max_ms = 2000;
int batch_size = 500;
int pause_ms = 25;
int max_rows_per_sec = 0;
int target_batch_ms = 0;
int complete_quiet_s = 300;

namespace {
const struct config_enum_entry side_options[] = {
    {"auto", SideAuto, false}, {"old", SideOld, false}, {"new", SideNew, false}, {nullptr, 0, false}};
}

void define() {
  DefineCustomEnumVariable(
      "zdd.side", "Which app version this session is: auto, old or new.",
      "With old, writes to the old column win and the new column is derived; with new, the "
      "reverse. auto reads the SET list and changed values.",
      &side, SideAuto, side_options, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("zdd.lock_timeout",
                          "lock_timeout of each attempt to take a table lock for DDL.", nullptr,
                          &lock_timeout_ms, 200, 1, 60 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr,
                          nullptr, nullptr);
  DefineCustomIntVariable("zdd.lock_retries",
                          "How many times a DDL step retries after a lock timeout.", nullptr,
                          &lock_retries, 20, 0, 1000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("zdd.lock_backoff_max",
                          "Longest jittered sleep between two lock attempts.", nullptr,
                          &lock_backoff_max_ms, 2000, 1, 60 * 1000, PGC_USERSET, GUC_UNIT_MS,
                          nullptr, nullptr, nullptr);
  DefineCustomIntVariable("zdd.batch_size", "Default rows per backfill batch.", nullptr,
                          &batch_size, 500, 1, 1000000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("zdd.pause", "Default pause between two backfill batches.", nullptr,
                          &pause_ms, 25, 0, 3600 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr,
                          nullptr, nullptr);
  DefineCustomIntVariable("zdd.max_rows_per_sec",
                          "Default cap on backfill rows per second (0: no cap).", nullptr,
                          &max_rows_per_sec, 0, 0, INT_MAX, PGC_USERSET, 0, nullptr, nullptr,
                          nullptr);
  DefineCustomIntVariable(
      "zdd.target_batch_time",
      "Default target duration of one backfill batch; the batch size adapts to it (0: fixed).",
      nullptr, &target_batch_ms, 0, 0, 600 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
      nullptr);
  DefineCustomIntVariable(
      "zdd.complete_quiet_period",
      "complete refuses while the old column was written more recently than this (0: never).",
      "An app version that still writes the old column would break when it is dropped; "
      "zdd.complete(id, force => true) overrides.",
      &complete_quiet_s, 300, 0, 7 * 24 * 3600, PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
}

}  // namespace zdd::settings
