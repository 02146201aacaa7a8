// settings.hpp — zdd.* configuration parameters (GUCs).
#pragma once

namespace zdd::settings {

// Which app version this session is (zdd.side): decides trigger conflicts
// without heuristics when not Auto.
enum Side { SideAuto = 0, SideOld = 1, SideNew = 2 };

extern int side;                 // zdd.side
extern int lock_timeout_ms;      // zdd.lock_timeout: per DDL lock attempt
extern int lock_retries;         // zdd.lock_retries: attempts after the first
extern int lock_backoff_max_ms;  // zdd.lock_backoff_max: cap of one sleep
extern int batch_size;           // zdd.batch_size: default rows per batch
extern int pause_ms;             // zdd.pause: default pause between batches
extern int max_rows_per_sec;     // zdd.max_rows_per_sec: default rate cap, 0 = none
extern int target_batch_ms;      // zdd.target_batch_time: 0 = fixed batch size
extern int complete_quiet_s;     // zdd.complete_quiet_period: 0 = no interlock

// Defines every zdd.* setting and reserves the prefix (from _PG_init).
void define();

}  // namespace zdd::settings
