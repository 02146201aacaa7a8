#!/usr/bin/env bash
# Soak: the integer -> bigint primary key of a referenced table, end to end
# under load. Apps insert orders (ids from the serial), update amounts and
# insert order_items referencing orders while begin_retype, the backfill,
# the twins (unique index, incoming foreign key) and complete run.
# Invariants: zero failed client transactions (across complete too); the
# id column is bigint under its old name with its primary key, sequence
# (AS bigint) and the validated incoming foreign key; row counts and the
# sum of amounts equal what the load plus the clients' transactions
# predict; no orphan item; inserts after complete get ids past 2^31.
# Clients use the simple protocol: a statement prepared before complete
# whose result holds the column fails once with "cached plan must not
# change result type" (PostgreSQL's rule for any column type change;
# PGBENCH_MODE="-M prepared" shows it) — see README, Limits.
source "$ZDD_ROOT/test/lib.sh"
ROWS=100000
SECS=${SOAK_SECONDS:-20}
DIR="$STAGE/retype"
as_pg mkdir -p "$DIR"
start_instance "$DIR/data" 55450
trap 'stop_instance "$DIR/data" || true' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
CREATE EXTENSION zdd;
CREATE TABLE orders (id serial PRIMARY KEY, amount numeric(12,2) NOT NULL);
CREATE TABLE order_items (id bigserial PRIMARY KEY, order_id int NOT NULL REFERENCES orders (id), qty int NOT NULL);
INSERT INTO orders (amount) SELECT g % 100 FROM generate_series(1, $ROWS) g;
INSERT INTO order_items (order_id, qty) SELECT g, 1 FROM generate_series(1, $ROWS) g;
-- room for the transition's inserts below 2^31, then past it after complete
SELECT setval('orders_id_seq', 2147000000);
VACUUM ANALYZE orders, order_items;
SQL
SUM0=$(q "SELECT sum(amount) FROM orders")
cat > "$DIR/app.sql" <<'SQL'
\set id random(1, 100000)
UPDATE orders SET amount = amount + 1 WHERE id = :id;
INSERT INTO orders (amount) VALUES (1) RETURNING id;
INSERT INTO order_items (order_id, qty) VALUES (:id, 1);
SQL
chmod 644 "$DIR"/*.sql
pgbench -n ${PGBENCH_MODE:-} -c 2 -j 1 -T "$SECS" -f "$DIR/app.sql" postgres > "$DIR/app.out" 2>&1 &
P1=$!
sleep 2
ID=$(q "SELECT zdd.begin_retype('orders', 'id', 'bigint', batch_size => 2000, pause_ms => 5)")
q "CALL zdd.wait($ID, '5 min')" >/dev/null
q "SELECT zdd.complete($ID)" >/dev/null
echo "complete at $(date +%T)"
rc=0
wait $P1 || rc=$?
# after complete: ids past 2^31
q "SELECT setval('orders_id_seq', 2147483600)" >/dev/null
pgbench -n -c 2 -j 1 -T 3 -f "$DIR/app.sql" postgres > "$DIR/after.out" 2>&1 || rc=$?

fail=0
check "pgbench exit status" "$rc" 0
check "failed transactions during the transition" "$(failed "$DIR/app.out")" 0
check "failed transactions after complete" "$(failed "$DIR/after.out")" 0
TX=$(( $(tx "$DIR/app.out") + $(tx "$DIR/after.out") ))
echo "client transactions: $TX"
[ "$(tx "$DIR/app.out")" -gt 100 ] || { echo "FAIL: too few client transactions"; fail=1; }
check "phase" "$(q "SELECT phase FROM zdd.transition WHERE id = $ID")" completed
check "id type" "$(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'id'")" bigint
check "primary key" "$(q "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'orders_pkey'")" "PRIMARY KEY (id)"
check "incoming foreign key" "$(q "SELECT conname || ' ' || convalidated || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'order_items'::regclass AND contype = 'f'")" \
  "order_items_order_id_fkey true FOREIGN KEY (order_id) REFERENCES orders(id)"
check "sequence type" "$(q "SELECT seqtypid::regtype FROM pg_sequence WHERE seqrelid = 'orders_id_seq'::regclass")" bigint
check "orders" "$(q "SELECT count(*) FROM orders")" "$((ROWS + TX))"
check "order items" "$(q "SELECT count(*) FROM order_items")" "$((ROWS + TX))"
check "sum of amounts" "$(q "SELECT sum(amount) FROM orders")" "$(q "SELECT ($SUM0 + 2 * $TX)::numeric(14,2)")"
check "orphan items" "$(q "SELECT count(*) FROM order_items i WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = i.order_id)")" 0
check "ids past 2^31" "$(q "SELECT max(id) > 2147483647 FROM orders")" t
check "leftover zdd columns" "$(q "SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname LIKE '%zdd%' AND NOT attisdropped")" 0
check_server_log "$DIR/data/server.log" || fail=1
[ $fail -eq 0 ] && echo "retype PK soak: PASS" || { echo "retype PK soak: FAIL"; cat "$DIR/app.out" "$DIR/after.out"; }
exit $fail
