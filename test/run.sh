#!/usr/bin/env bash
# make test: pg_regress, isolation, TAP and pgbench soak tests, each on a
# throwaway PostgreSQL 15 instance. Exits non-zero on any failure and ends
# with one summary line "N passed, N failed".
source "$(dirname "$0")/lib.sh"
zdd_stage
export STAGE BIN ZDD_ROOT

passed=0
failed=0
failures=()
tally() {  # tally SUITE LOG: counts "ok"/"FAILED" lines of pg_regress output
  local p f
  p=$(grep -cE '\.\.\. ok|^ok ' "$2" || true)
  f=$(grep -cE '\.\.\. FAILED|^not ok |\.\.\. failed' "$2" || true)
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failures+=("$1")
}

cd "$STAGE/src"
# Subsets for development: REGRESS_ONLY / ISOLATION_ONLY / TAP_ONLY / SOAK_ONLY / TOOLS_ONLY
# hold space-separated names (TAP and soak: file names), or "none".
REGRESS=$(cd sql 2>/dev/null && { ls *.sql 2>/dev/null || true; } | sed 's/\.sql$//' | sort | tr '\n' ' ' || true)
ISOLATION=$(cd test/specs 2>/dev/null && { ls *.spec 2>/dev/null || true; } | sed 's/\.spec$//' | sort | tr '\n' ' ' || true)
TAP=$(cd test/t 2>/dev/null && { ls *.pl 2>/dev/null || true; } | sort | tr '\n' ' ' || true)
SOAK=$(cd test/soak 2>/dev/null && { ls *.sh 2>/dev/null || true; } | sort | tr '\n' ' ' || true)
# The migration tool recipes (npm, sqitch) run in the release lane only:
# they exercise the SQL surface, not the server's memory.
TOOLS=recipes.sh; [ "$ZDD_LANE" != debug ] || TOOLS=none
REGRESS=${REGRESS_ONLY:-$REGRESS}; ISOLATION=${ISOLATION_ONLY:-$ISOLATION}
TAP=${TAP_ONLY:-$TAP}; SOAK=${SOAK_ONLY:-$SOAK}; TOOLS=${TOOLS_ONLY:-$TOOLS}
for v in REGRESS ISOLATION TAP SOAK TOOLS; do [ "${!v}" != none ] || printf -v "$v" ''; done

if [ -n "$REGRESS" ]; then
echo "== pg_regress: $REGRESS"
rc=0
as_pg "$PGXS_DIR/src/test/regress/pg_regress" --bindir="$BIN" --inputdir=. --outputdir="$STAGE/regress" \
  --temp-instance="$STAGE/regress/tmp" --temp-config=test/regress.conf \
  $REGRESS > "$STAGE/regress.log" 2>&1 || rc=$?
cat "$STAGE/regress.log"; tally regress "$STAGE/regress.log"
[ $rc -eq 0 ] || { [ -f "$STAGE/regress/regression.diffs" ] && head -300 "$STAGE/regress/regression.diffs"; failures+=(regress-rc); }
if check_server_log "$STAGE"/regress/log/*.log; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=(regress-log); fi
fi

if [ -n "$ISOLATION" ]; then
  echo "== isolation: $ISOLATION"
  rc=0
  as_pg "$PGXS_DIR/src/test/isolation/pg_isolation_regress" --bindir="$BIN" --inputdir=test \
    --outputdir="$STAGE/isolation" --temp-instance="$STAGE/isolation/tmp" \
    --temp-config=test/regress.conf $ISOLATION > "$STAGE/iso.log" 2>&1 || rc=$?
  cat "$STAGE/iso.log"; tally isolation "$STAGE/iso.log"
  [ $rc -eq 0 ] || { [ -f "$STAGE/isolation/regression.diffs" ] && head -300 "$STAGE/isolation/regression.diffs"; failures+=(isolation-rc); }
  if check_server_log "$STAGE"/isolation/log/*.log; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=(isolation-log); fi
fi

if [ -n "$TAP" ]; then
  echo "== TAP: $TAP"
  as_pg mkdir -p "$STAGE/tap"
  rc=0
  as_pg env PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" TESTDIR="$STAGE/tap" \
    PG_CONFIG="$BIN/pg_config" ZDD_SRC="$STAGE/src" \
    prove -I "$PGXS_DIR/src/test/perl" -I test/t $(printf 'test/t/%s ' $TAP) > "$STAGE/tap.log" 2>&1 || rc=$?
  cat "$STAGE/tap.log"
  # count TAP assertions: "Files=N, Tests=M" and the "not ok" lines
  t=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$STAGE/tap.log")
  f=$(grep -cE '^\s*not ok ' "$STAGE/tap.log" || true)
  p=$(( ${t:-0} - f ))
  if [ $rc -ne 0 ]; then
    [ "$f" -gt 0 ] || f=1
    failures+=(tap)
    # the assertions and a test's own death (PostgreSQL's TAP library sends
    # the test's stderr there), then each node's last zdd lines
    find "$STAGE/tap" -name 'regress_log_*' 2>/dev/null | while read -r l; do echo "--- $l"; grep -E '^(not ok|#)|Died|died|line [0-9]+\.$' "$l" | head -40; done
    find "$STAGE/tap" -name '*.log' -path '*/log/*' ! -name 'regress_log_*' 2>/dev/null | while read -r l; do
      echo "--- $l (last zdd / ERROR lines)"; grep -E 'zdd|ERROR|FATAL' "$l" | tail -15
    done
  fi
  passed=$((passed + p)); failed=$((failed + f))
fi

for s in $SOAK; do
  s=test/soak/$s
  echo "== soak: $s"
  if bash "$ZDD_ROOT/$s"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$s"); fi
done

for s in $TOOLS; do
  s=test/tools/$s
  echo "== migration tools: $s"
  if bash "$ZDD_ROOT/$s"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$s"); fi
done

echo
[ ${#failures[@]} -eq 0 ] || echo "failing suites: ${failures[*]}"
echo "$ZDD_LANE: $passed passed, $failed failed"
[ ${#failures[@]} -eq 0 ] && [ "$failed" -eq 0 ]
