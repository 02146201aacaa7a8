#!/usr/bin/env bash
# Soak: two app versions write across the partitions of a partitioned
# table (inserts routed through the parent, updates on every partition)
# while the backfill walks each leaf. Invariants at the end: zero failed
# client transactions; per leaf partition, every row has surname =
# lastname and holds its own id; row count and sum of ids as predicted.
source "$ZDD_ROOT/test/lib.sh"
ROWS=120000
SECS=${SOAK_SECONDS:-20}
DIR="$STAGE/partition_soak"
as_pg mkdir -p "$DIR"
start_instance "$DIR/data" 55415
trap 'stop_instance "$DIR/data" || true' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
CREATE EXTENSION zdd;
CREATE SEQUENCE ins_seq START 1000001;
CREATE TABLE customer (id bigint, region int NOT NULL, lastname text NOT NULL,
                       PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE customer_0 PARTITION OF customer FOR VALUES IN (0);
CREATE TABLE customer_1 PARTITION OF customer FOR VALUES IN (1);
CREATE TABLE customer_2 PARTITION OF customer FOR VALUES IN (2) PARTITION BY HASH (id);
CREATE TABLE customer_2a PARTITION OF customer_2 FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE customer_2b PARTITION OF customer_2 FOR VALUES WITH (modulus 2, remainder 1);
CREATE TABLE customer_rest PARTITION OF customer DEFAULT;
CREATE INDEX customer_lastname ON customer (lastname);
INSERT INTO customer SELECT g, g % 4, 'id:' || g || ':0' FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE customer;
SQL
cat > "$DIR/old.sql" <<'SQL'
\set id random(1, 120000)
\set k random(1, 9)
UPDATE customer SET lastname = 'id:' || :id::bigint || ':' || :k::int WHERE id = :id::bigint AND region = :id::bigint % 4;
INSERT INTO customer (id, region, lastname) SELECT n, n % 4, 'id:' || n || ':0' FROM nextval('ins_seq') n;
SQL
cat > "$DIR/new.sql" <<'SQL'
\set id random(1, 120000)
\set k random(1, 9)
UPDATE customer SET surname = 'id:' || :id::bigint || ':' || :k::int WHERE id = :id::bigint AND region = :id::bigint % 4;
INSERT INTO customer (id, region, surname) SELECT n, n % 4, 'id:' || n || ':0' FROM nextval('ins_seq') n;
SQL
chmod 644 "$DIR"/*.sql

ID=$(psql -X -A -t -d postgres -c "SELECT zdd.begin_rename('customer', 'lastname', 'surname', batch_size => 500, pause_ms => 20)")
pgbench -n -M prepared -c 2 -j 1 -T "$SECS" -f "$DIR/old.sql" postgres > "$DIR/old.out" 2>&1 &
P1=$!
pgbench -n -M prepared -c 2 -j 1 -T "$SECS" -f "$DIR/new.sql" postgres > "$DIR/new.out" 2>&1 &
P2=$!
sleep $((SECS / 2))
psql -X -d postgres -c "SELECT id, partition, pass, rows_done, rows_total, percent FROM zdd.status_partitions"
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
check "leaves walked and verified" "$(q "SELECT string_agg(partition::text || '=' || pass, ',' ORDER BY position) FROM zdd.status_partitions WHERE id = $ID")" \
  "customer_0=done,customer_1=done,customer_2a=done,customer_2b=done,customer_rest=done"
for leaf in customer_0 customer_1 customer_2a customer_2b customer_rest; do
  check "$leaf: rows out of step" "$(q "SELECT count(*) FROM $leaf WHERE surname IS DISTINCT FROM lastname")" 0
  check "$leaf: rows holding another row's value" \
    "$(q "SELECT count(*) FROM $leaf WHERE split_part(lastname, ':', 2)::bigint <> id")" 0
done
check "default partition holds region 3 only" "$(q "SELECT count(*) FROM customer_rest WHERE region <> 3")" 0
INSERTS=$(q "SELECT last_value - 1000000 FROM ins_seq")
check "inserts = client transactions" "$INSERTS" "$TX"
check "row count" "$(q "SELECT count(*) FROM customer")" "$((ROWS + INSERTS))"
check "sum of ids" "$(q "SELECT sum(id) FROM customer")" \
  "$(q "SELECT ($ROWS::numeric * ($ROWS + 1) / 2 + sum(g))::bigint FROM generate_series(1000001, 1000000 + $INSERTS) g")"
check_server_log "$DIR/data/server.log" || fail=1
[ $fail -eq 0 ] && echo "partition soak: PASS" || { echo "partition soak: FAIL"; cat "$DIR/old.out" "$DIR/new.out"; }
exit $fail
