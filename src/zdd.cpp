// zdd.cpp — module entry: magic block and _PG_init.
#include "backfill.hpp"
#include "quiet_triggers.hpp"
#include "settings.hpp"
#include "statement_columns.hpp"
#include "write_log.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

// Defines the zdd.* settings and lets the backfill module register what it
// needs (its launcher, under shared_preload_libraries).
// Nothing during pg_upgrade: no settings to define, no worker to start.
void _PG_init(void) {
  if (IsBinaryUpgrade) return;
  zdd::boundary([] {
    zdd::settings::define();
    zdd::backfill::init();
    zdd::quiet_triggers::install();
    zdd::statement_columns::install();
    zdd::write_log::request();
    MarkGUCPrefixReserved("zdd");
  });
}
}
