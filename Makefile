# zdd — PGXS build. `make` builds, `make test` runs every test on a throwaway
# instance, `make demo` walks the seed scenario, `make bench` runs benchmarks.
# `make test` / `make demo` / `make bench` install missing Debian packages
# first when run as root (scripts/setup-deps.sh).

EXTENSION  = zdd
MODULE_big = zdd
DATA_built = zdd--0.2.0.sql zdd--0.1.0--0.2.0.sql
# Released install scripts; the upgrade path is assembled below.
DATA       = sql-release/zdd--0.1.0.sql
PGFILEDESC = "zdd - zero-downtime column changes"

SRCS = $(sort $(wildcard src/*.cpp))
OBJS = $(SRCS:.cpp=.o)
HDRS = $(wildcard src/*.hpp)

# pg_regress tests: every sql/<name>.sql with expected/<name>.out.
REGRESS   = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
# isolation specs: every test/specs/<name>.spec with test/expected/<name>.out
ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

PG_CXXFLAGS = -std=c++17 -Wno-register -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -DFMT_HEADER_ONLY
SHLIB_LINK += -lstdc++

# No LLVM bitcode: the JIT inlines PostgreSQL's own C into expressions; zdd's
# entry points are reached through fmgr/trigger calls the JIT never inlines,
# so .bc files would only double the build time (clang over fmt's headers).
override with_llvm = no

.PHONY: test test-debug test-valgrind debug-pg demo bench deps check-build

ifeq ($(wildcard $(PGXS)),)
# PostgreSQL's build kit is missing: install it (as root), then start again.
all test test-debug test-valgrind demo bench installcheck:
	bash scripts/setup-deps.sh
	$(MAKE) $@
else
include $(PGXS)

$(OBJS): $(HDRS)

# The install script is assembled from one piece per concept (sql-src/).
zdd--0.2.0.sql: $(sort $(wildcard sql-src/*.sql))
	cat $^ > $@

# The upgrade from 0.1.0: its own steps, then the pieces 0.2.0 adds whole
# (one text for both paths).
zdd--0.1.0--0.2.0.sql: sql-release/upgrade--0.1.0--0.2.0.sql sql-src/05_partitions.sql
	cat $^ > $@

deps:
	bash scripts/setup-deps.sh

test: deps all
	bash test/run.sh

# The debug lane: everything again on a cassert / CLOBBER_FREED_MEMORY /
# RANDOMIZE_ALLOCATED_MEMORY build of PostgreSQL (built once per machine).
debug-pg: deps
	bash scripts/build-debug-pg.sh

test-debug: debug-pg
	ZDD_LANE=debug bash test/run.sh

# pg_regress and isolation suites under valgrind on the debug build.
test-valgrind: debug-pg
	ZDD_LANE=debug bash test/valgrind.sh

demo: deps all
	bash test/demo.sh

bench: deps all
	bash test/bench/run.sh
endif
