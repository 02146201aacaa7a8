// zdd.cpp — module entry: magic block and _PG_init.
#include "backfill.hpp"
#include "settings.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

// Defines the zdd.* settings and lets the backfill module register what it
// needs (its launcher, under shared_preload_libraries).
void _PG_init(void) {
  zdd::boundary([] {
    zdd::settings::define();
    zdd::backfill::init();
    MarkGUCPrefixReserved("zdd");
  });
}
}
