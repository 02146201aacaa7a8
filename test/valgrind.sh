#!/usr/bin/env bash
# make test-valgrind: the pg_regress and isolation suites with every server
# process under valgrind (memcheck), on the debug lane's PostgreSQL (built
# with USE_VALGRIND, so valgrind knows PostgreSQL's memory contexts) and
# PostgreSQL's own suppressions. Reports every error with a zdd frame in
# its stack; fails if there is one. Slow (tens of minutes): not part of
# make test.
ZDD_LANE=debug
source "$(dirname "$0")/lib.sh"
zdd_stage
export STAGE BIN ZDD_ROOT

VG="$STAGE/valgrind"
as_pg mkdir -p "$VG"
supp="$(dirname "$PG_CONFIG")/../valgrind.supp"
cp "$supp" "$STAGE/valgrind.supp"
# The server binary becomes a wrapper that runs the real one under valgrind
# (initdb's bootstrap and single-user runs, and version checks, run it bare).
mv "$BIN/postgres" "$BIN/postgres.bin"
cat > "$BIN/postgres" <<WRAP
#!/usr/bin/env bash
case " \$* " in
  *" --boot "*|*" --single "*|*" -V "*|*" --version "*|*" -C "*|*" --describe-config "*)
    exec "\$(dirname "\$0")/postgres.bin" "\$@" ;;
esac
exec valgrind --quiet --trace-children=yes --track-origins=yes \
  --num-callers=30 --leak-check=no --error-limit=no --gen-suppressions=all \
  --suppressions="$STAGE/valgrind.supp" --log-file="$VG/%p.log" \
  "\$(dirname "\$0")/postgres.bin" "\$@"
WRAP
chmod 755 "$BIN/postgres"
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$STAGE"

cd "$STAGE/src"
# Everything runs tens of times slower under valgrind: longer waits (the
# statements are echoed in the outputs, so the expected files too).
sed -i "s/'60 s'/'1800 s'/g" sql/*.sql expected/*.out test/specs/*.spec test/expected/*.out
REGRESS=$(cd sql && ls *.sql | sed 's/\.sql$//' | sort | tr '\n' ' ')
ISOLATION=$(cd test/specs && ls *.spec | sed 's/\.spec$//' | sort | tr '\n' ' ')
# The suites' own outcomes are reported, not judged: under valgrind every
# timing shifts. What counts is valgrind's verdict on zdd's frames.
rc=0 suites=0
echo "== pg_regress under valgrind: $REGRESS"
as_pg "$PGXS_DIR/src/test/regress/pg_regress" --bindir="$BIN" --inputdir=. --outputdir="$STAGE/regress" \
  --temp-instance="$STAGE/regress/tmp" --temp-config=test/regress.conf $REGRESS || suites=1
echo "== isolation under valgrind: $ISOLATION"
as_pg "$PGXS_DIR/src/test/isolation/pg_isolation_regress" --bindir="$BIN" --inputdir=test \
  --outputdir="$STAGE/isolation" --temp-instance="$STAGE/isolation/tmp" \
  --temp-config=test/regress.conf $ISOLATION || suites=1
[ $suites -eq 0 ] || echo "valgrind: some suite outputs differed under valgrind (timing); see the diffs above"

# Errors valgrind found, and those with zdd in their stack.
total=$(cat "$VG"/*.log 2>/dev/null | grep -c '^==[0-9]*== [A-Z][a-z].*\(Invalid\|uninitialised\|Conditional\|Mismatched\|overlap\|free\)' || true)
zdd=$(for f in "$VG"/*.log; do
        awk '/^==[0-9]+== [A-Z]/{if (blk ~ /zdd/) print blk; blk=""} {blk = blk "\n" $0} END{if (blk ~ /zdd/) print blk}' "$f"
      done | grep -c 'zdd' || true)
check_server_log "$STAGE"/regress/log/*.log "$STAGE"/isolation/log/*.log || rc=1
echo "valgrind: $(ls "$VG" | wc -l) server processes checked, $total error reports, $zdd lines in zdd frames"
if [ "$zdd" -gt 0 ]; then
  for f in "$VG"/*.log; do grep -l zdd "$f"; done | head -5 | while read -r f; do echo "--- $f"; head -80 "$f"; done
  rc=1
fi
echo "valgrind: $([ $rc -eq 0 ] && echo 1 || echo 0) passed, $([ $rc -eq 0 ] && echo 0 || echo 1) failed"
exit $rc
