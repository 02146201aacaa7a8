# test/lib.sh — shared by make test, make demo and make bench.
#
# zdd_stage builds a private PostgreSQL installation tree in a temporary
# directory: a copy of PostgreSQL 15's binaries, symlinks to its libraries
# and share files, and zdd installed into it (make install DESTDIR=...).
# PostgreSQL finds its share and lib directories relative to its own
# binary, so the system installation is never written to, and the same
# steps work for root and for a normal user. As root, the tree is handed
# to the postgres OS user, because the server refuses to run as root; the
# checkout itself may be unreadable to that user, so everything the server
# side needs (tests, expected outputs) is copied into the stage.

#
# ZDD_LANE=debug (make test-debug) runs everything on the debug lane's
# PostgreSQL (scripts/build-debug-pg.sh: cassert, CLOBBER_FREED_MEMORY,
# RANDOMIZE_ALLOCATED_MEMORY, USE_VALGRIND), with zdd built against it in
# the stage.

set -euo pipefail

ZDD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZDD_LANE=${ZDD_LANE:-release}
if [ "$ZDD_LANE" = debug ]; then
  PG_CONFIG="$(bash "$ZDD_ROOT/scripts/build-debug-pg.sh" | tail -1)/bin/pg_config"
fi
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir)
PG_PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
PG_SHAREDIR=$("$PG_CONFIG" --sharedir)
PGXS_DIR=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/../.." && pwd)

# Runs a command as the server-side user: postgres when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- env PATH="$PATH" "$@"
  else
    "$@"
  fi
}

# zdd_stage: sets STAGE (temp dir) and BIN (its bin dir), installs zdd there.
zdd_stage() {
  STAGE=$(mktemp -d /tmp/zdd-stage.XXXXXX)
  chmod 755 "$STAGE"
  local inst="$STAGE/inst"
  if [ "$ZDD_LANE" = debug ]; then
    # A build of its own against the debug server's headers, in the stage.
    mkdir -p "$STAGE/build"
    cp -r "$ZDD_ROOT/Makefile" "$ZDD_ROOT/zdd.control" "$ZDD_ROOT/src" "$ZDD_ROOT/sql-src" \
      "$ZDD_ROOT/sql-release" "$STAGE/build/"
    make -s -C "$STAGE/build" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" >/dev/null
    make -s -C "$STAGE/build" PG_CONFIG="$PG_CONFIG" install DESTDIR="$inst" >/dev/null
  else
    make -s -C "$ZDD_ROOT" install DESTDIR="$inst" >/dev/null
  fi
  BIN="$inst$PG_BINDIR"
  local lib="$inst$PG_PKGLIBDIR" share="$inst$PG_SHAREDIR"
  mkdir -p "$BIN" "$lib" "$share/extension"
  cp -p "$PG_BINDIR"/* "$BIN"/
  local f
  for f in "$PG_PKGLIBDIR"/*; do
    [ -e "$lib/$(basename "$f")" ] || ln -s "$f" "$lib/$(basename "$f")"
  done
  for f in "$PG_SHAREDIR"/*; do
    [ -e "$share/$(basename "$f")" ] || ln -s "$f" "$share/$(basename "$f")"
  done
  for f in "$PG_SHAREDIR"/extension/*; do
    [ -e "$share/extension/$(basename "$f")" ] || ln -s "$f" "$share/extension/$(basename "$f")"
  done
  # Test inputs the server-side user must read.
  mkdir -p "$STAGE/src"
  cp -r "$ZDD_ROOT/sql" "$ZDD_ROOT/expected" "$ZDD_ROOT/test" "$STAGE/src/"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$STAGE"; fi
  export PATH="$BIN:$PATH"
  trap zdd_unstage EXIT
}

zdd_unstage() {
  if [ -n "${STAGE:-}" ] && [ -d "$STAGE" ]; then
    [ -n "${PGDATA_STARTED:-}" ] && as_pg "$BIN/pg_ctl" -D "$PGDATA_STARTED" -m immediate stop >/dev/null 2>&1 || true
    [ -n "${ZDD_KEEP_STAGE:-}" ] || rm -rf "$STAGE"
  fi
}

# start_instance DIR PORT [extra postgresql.conf lines...]: initdb + start.
start_instance() {
  local dir=$1 port=$2; shift 2
  as_pg "$BIN/initdb" -D "$dir" -U postgres --no-sync -A trust >/dev/null
  {
    echo "port = $port"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$STAGE'"
    echo "fsync = off"
    echo "max_worker_processes = 16"
    local l
    for l in "$@"; do echo "$l"; done
  } | as_pg tee -a "$dir/postgresql.conf" >/dev/null
  as_pg "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
  PGDATA_STARTED=$dir
  export PGHOST="$STAGE" PGPORT="$port" PGUSER=postgres
}

# start_standby DIR PORT NAME: a streaming standby of the
# running instance (pg_basebackup -R), started; application_name NAME.
start_standby() {
  as_pg "$BIN/pg_basebackup" -D "$1" -R -X stream -c fast -h "$STAGE" -p "$PGPORT" -U postgres
  printf "port = %s\ncluster_name = '%s'\n" "$2" "$3" | as_pg tee -a "$1/postgresql.conf" >/dev/null
  as_pg "$BIN/pg_ctl" -D "$1" -l "$1/server.log" -w start >/dev/null
}

stop_instance() {
  as_pg "$BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null
  PGDATA_STARTED=
}

# check_server_log LOG...: fails (and prints the lines) when a server log
# shows a crash (a process ended by a signal other than a test's own
# SIGKILL), an assertion failure, or a memory-context warning from the
# debug build.
check_server_log() {
  local bad
  bad=$(grep -hE 'terminated by signal [0-9]+|TRAP:|problem in alloc set|detected write past chunk|leaked (in|during)|WARNING:  .*(still referenced|reference leak|resource was not closed)' "$@" 2>/dev/null \
        | grep -vE 'terminated by signal 9: Killed' || true)
  if [ -n "$bad" ]; then
    echo "FAIL: server log shows a crash or a memory problem:"
    echo "$bad" | head -20
    return 1
  fi
  echo "ok: server log clean (no crash, no assertion, no memory warning)"
}

# ---- soak checks: check WHAT ACTUAL EXPECTED prints ok/FAIL and sets
# fail=1 on a mismatch; tx / failed read a pgbench summary file; q runs one
# query on the soak's instance.
fail=0
check() {  # check WHAT ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then echo "ok: $1 ($2)"; else echo "FAIL: $1: got $2, expected $3"; fail=1; fi
}
tx() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1"; }
failed() { sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$1"; }
q() { psql -X -A -t -d postgres -c "$1"; }
