#!/usr/bin/env bash
# Soak: two app versions write under pgbench while the backfill runs.
# Invariants at the end: zero failed client transactions; every row has
# surname = lastname; no row holds another row's value (the id is encoded
# in the value); the row count and the sum of ids equal what the initial
# load plus the inserts pgbench made predict.
source "$ZDD_ROOT/test/lib.sh"
ROWS=100000
SECS=${SOAK_SECONDS:-20}
DIR="$STAGE/soak"
as_pg mkdir -p "$DIR"
start_instance "$DIR/data" 55410
trap 'stop_instance "$DIR/data" || true' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
CREATE EXTENSION zdd;
CREATE SEQUENCE ins_seq START 1000001;
CREATE TABLE customer (id bigint PRIMARY KEY, lastname text NOT NULL);
INSERT INTO customer SELECT g, 'id:' || g || ':0' FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE customer;
SQL
cat > "$DIR/old.sql" <<'SQL'
\set id random(1, 100000)
\set k random(1, 9)
UPDATE customer SET lastname = 'id:' || :id::bigint || ':' || :k::int WHERE id = :id::bigint;
INSERT INTO customer (id, lastname) SELECT n, 'id:' || n || ':0' FROM nextval('ins_seq') n;
SQL
cat > "$DIR/new.sql" <<'SQL'
\set id random(1, 100000)
\set k random(1, 9)
UPDATE customer SET surname = 'id:' || :id::bigint || ':' || :k::int WHERE id = :id::bigint;
UPDATE customer SET lastname = 'id:' || (:id::bigint + 1) || ':' || 'b', surname = 'id:' || (:id::bigint + 1) || ':' || 'b' WHERE id = :id::bigint + 1;
INSERT INTO customer (id, surname) SELECT n, 'id:' || n || ':0' FROM nextval('ins_seq') n;
SQL
chmod 644 "$DIR"/*.sql

ID=$(psql -X -A -t -d postgres -c "SELECT zdd.begin_rename('customer', 'lastname', 'surname', batch_size => 500, pause_ms => 5)")
pgbench -n -M prepared -c 2 -j 1 -T "$SECS" -f "$DIR/old.sql" postgres > "$DIR/old.out" 2>&1 &
P1=$!
pgbench -n -M prepared -c 2 -j 1 -T "$SECS" -f "$DIR/new.sql" postgres > "$DIR/new.out" 2>&1 &
P2=$!
sleep $((SECS / 2))
psql -X -d postgres -c "SELECT id, phase, backfill, pass, rows_done, rows_total, percent, rows_per_sec FROM zdd.status"
rc1=0; rc2=0
wait $P1 || rc1=$?
wait $P2 || rc2=$?
psql -X -q -d postgres -c "CALL zdd.wait($ID, '5 min')" >/dev/null

fail=0
check "old app pgbench exit status" "$rc1" 0
check "new app pgbench exit status" "$rc2" 0
check "old app failed transactions" "$(failed "$DIR/old.out")" 0
check "new app failed transactions" "$(failed "$DIR/new.out")" 0
TX=$(( $(tx "$DIR/old.out") + $(tx "$DIR/new.out") ))
echo "client transactions: $TX"
[ "$TX" -gt 100 ] || { echo "FAIL: too few client transactions ($TX)"; fail=1; }
check "phase" "$(q "SELECT phase FROM zdd.transition WHERE id = $ID")" backfilled
check "rows out of step" "$(q "SELECT count(*) FROM customer WHERE surname IS DISTINCT FROM lastname")" 0
check "rows holding another row's value" "$(q "SELECT count(*) FROM customer WHERE split_part(lastname, ':', 2)::bigint <> id")" 0
INSERTS=$(q "SELECT last_value - 1000000 FROM ins_seq")
check "inserts = client transactions" "$INSERTS" "$TX"
check "row count" "$(q "SELECT count(*) FROM customer")" "$((ROWS + INSERTS))"
check "sum of ids" "$(q "SELECT sum(id) FROM customer")" \
  "$(q "SELECT ($ROWS::numeric * ($ROWS + 1) / 2 + sum(g))::bigint FROM generate_series(1000001, 1000000 + $INSERTS) g")"
check_server_log "$DIR/data/server.log" || fail=1
[ $fail -eq 0 ] && echo "backfill soak: PASS" || { echo "backfill soak: FAIL"; cat "$DIR/old.out" "$DIR/new.out"; }
exit $fail
