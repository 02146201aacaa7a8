#!/usr/bin/env bash
# make demo: the seed scenario (SPEC section 1) on a throwaway instance.
# customer.lastname becomes surname while simulated app versions write,
# with a rollback to the old app in the middle; at the end, no row lost.
# Scene 2: the int primary key of a referenced table becomes bigint under
# load; inserts after complete get ids past 2^31.
# Scene 3: a streaming standby falls behind; the backfill waits for it
# (health) and goes on by itself once it caught up.
# Scene 4: a table partitioned by month is renamed in one transition; a
# partition attached during the backfill is prepared and walked too.
source "$(dirname "$0")/lib.sh"
zdd_stage
DIR="$STAGE/demo"
as_pg mkdir -p "$DIR"
# complete_quiet_period 8 s (default 5 min) and health_recheck 500 ms
# (default 5 s), for a short demo
start_instance "$DIR/data" 55420 "zdd.complete_quiet_period = 8" "zdd.health_recheck = 500"
trap 'as_pg "$BIN/pg_ctl" -D "$DIR/standby" -m immediate stop >/dev/null 2>&1 || true; stop_instance "$DIR/data" >/dev/null 2>&1 || true; zdd_unstage' EXIT

ROWS=${DEMO_ROWS:-300000}
q() { psql -X -A -t -d postgres -c "$1"; }
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
status() {
  psql -X -d postgres -c "SELECT id, \"table\", old_column || ' → ' || new_column AS change, phase,
    backfill, pass, rows_done, rows_total, percent, rows_per_sec, eta, wait_reason FROM zdd.status"
}

# Each app version is a pgbench script: updates and inserts. A value is
# 'id:<row id>:<version>' so that at the end every row can be checked to
# hold its own value, whichever app wrote it.
app() {  # app VERSION SECONDS: runs that app version in the background
  local v=$1 secs=$2 f="$DIR/app-$1.sql"
  case $v in
    2.2.2) cat > "$f" <<'SQL' ;;  # writes lastname only
\set id random(1, 300000)
UPDATE customer SET lastname = 'id:' || :id::bigint || ':' || '2.2.2' WHERE id = :id::bigint;
INSERT INTO customer (lastname) VALUES ('new:2.2.2');
SQL
    2.2.3) cat > "$f" <<'SQL' ;;  # writes both columns
\set id random(1, 300000)
UPDATE customer SET lastname = 'id:' || :id::bigint || ':' || '2.2.3', surname = 'id:' || :id::bigint || ':' || '2.2.3' WHERE id = :id::bigint;
INSERT INTO customer (lastname, surname) VALUES ('new:2.2.3', 'new:2.2.3');
SQL
    2.2.4) cat > "$f" <<'SQL' ;;  # writes surname only
\set id random(1, 300000)
UPDATE customer SET surname = 'id:' || :id::bigint || ':' || '2.2.4' WHERE id = :id::bigint;
INSERT INTO customer (surname) VALUES ('new:2.2.4');
SQL
  esac
  chmod 644 "$f"
  pgbench -n -M prepared -c 1 -T "$secs" -f "$f" postgres > "$DIR/app-$v-$RANDOM.out" 2>&1 &
}
wait_apps() { wait; }

cat <<'TXT'
zdd demo: rename customer.lastname to surname under live traffic.

 step | app               | db    | what happens
 -----+-------------------+-------+-------------------------------------------------
  0   | 2.2.2             | 2.0.0 | lastname text NOT NULL
  1   | 2.2.2             | 2.0.1 | zdd.begin_rename: new column, sync trigger, backfill
  2   | 2.2.3 (+2.2.2)    | 2.0.1 | new app writes both; trigger keeps them equal
  3   | rollback to 2.2.2 | 2.0.1 | old app writes lastname; trigger fills surname
  4   | 2.2.4             | 2.0.2 | new app writes surname only; trigger fills lastname
  5   | 2.2.4             | 2.0.3 | zdd.complete: NOT NULL/default/index moved, lastname dropped
TXT
say "Step 0 — app 2.2.2, db 2.0.0: customer.lastname text NOT NULL, $ROWS rows"
psql -X -q -d postgres <<SQL
CREATE EXTENSION zdd;
CREATE TABLE customer (id bigserial PRIMARY KEY, lastname text NOT NULL);
CREATE INDEX customer_lastname_idx ON customer (lastname);
INSERT INTO customer (lastname) SELECT 'id:' || g || ':seed' FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE customer;
SQL
psql -X -d postgres -c '\d customer'

say "Step 1 — db 2.0.1: SELECT zdd.begin_rename('customer', 'lastname', 'surname') while app 2.2.2 writes"
app 2.2.2 6
sleep 1
ID=$(q "SELECT zdd.begin_rename('customer', 'lastname', 'surname', batch_size => 2000, pause_ms => 20)")
echo "transition id: $ID (the backfill runs in a background worker)"
q "SELECT pid, backend_type, usename, query FROM pg_stat_activity WHERE backend_type = 'zdd backfill'"
sleep 2; status

say "Step 2 — app 2.2.3 deployed next to 2.2.2: the new app writes both columns"
app 2.2.3 4
sleep 2; status
wait_apps

say "Step 3 — rollback to app 2.2.2: only lastname is written, the trigger fills surname"
app 2.2.2 4
sleep 2; status
wait_apps

say "Step 4 — app 2.2.4: writes only surname, the trigger fills lastname for any old app"
app 2.2.4 45
app 2.2.2 3
echo "CALL zdd.wait($ID)  -- a deploy script gates on the backfill"
psql -X -q -d postgres -c "CALL zdd.wait($ID, '5 min')"
status
q "SELECT count(*) || ' rows out of step' FROM customer WHERE surname IS DISTINCT FROM lastname"
psql -X -d postgres -c '\d customer'

say "Step 5 — db 2.0.3: SELECT zdd.complete($ID) while app 2.2.4 keeps writing"
echo "a forgotten instance of app 2.2.2 still writes lastname for 2 s..."
app 2.2.2 2
sleep 3
echo "complete refuses while an app still wrote lastname within zdd.complete_quiet_period (8 s here):"
psql -X -d postgres -c "SELECT id, old_writes, new_writes, last_old_write::time(0), last_new_write::time(0) FROM zdd.status WHERE id = $ID"
psql -X -d postgres -c "SELECT zdd.complete($ID)" 2>&1 || true
until [ "$(q "SELECT phase FROM zdd.transition WHERE id = $ID")" = completed ]; do
  psql -X -q -d postgres -c "SELECT zdd.complete($ID)" >/dev/null 2>&1 || sleep 1
done
echo "... and completes once the old app has been quiet for 8 s:"
psql -X -d postgres -c "SELECT id, phase FROM zdd.status WHERE id = $ID"
# app 2.2.4 runs on after complete until its 30 s are over (its pgbench
# summary counts every row it inserted)
wait_apps
psql -X -d postgres -c '\d customer'
psql -X -d postgres -c "SELECT at::time(0), by_role, event, from_state, to_state, detail FROM zdd.history WHERE transition_id = $ID ORDER BY id"

say "No row lost"
FAILED=$(cat "$DIR"/app-*.out | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' | paste -sd+ | bc)
INSERTED=$(cat "$DIR"/app-*.out | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' | paste -sd+ | bc)
COUNT=$(q "SELECT count(*) FROM customer")
BAD=$(q "SELECT count(*) FROM customer WHERE surname NOT LIKE 'new:%' AND split_part(surname, ':', 2)::bigint <> id")
echo "app transactions: $INSERTED (each inserted one row), failed: $FAILED"
echo "rows: $COUNT = $ROWS seed + $INSERTED inserted? $([ "$COUNT" -eq $((ROWS + INSERTED)) ] && echo yes || echo NO)"
echo "rows holding another row's value: $BAD"
echo "checksum of surname: $(q "SELECT md5(string_agg(surname, ',' ORDER BY id)) FROM customer")"
SCENE1_OK=0
[ "$COUNT" -eq $((ROWS + INSERTED)) ] && [ "$BAD" = 0 ] && [ "$FAILED" = 0 ] && SCENE1_OK=1

# ---------------------------------------------------------------- scene 2
say "Scene 2 — orders.id (int, referenced by order_items) is about to overflow: int → bigint under load"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
CREATE TABLE orders (id serial PRIMARY KEY, amount numeric(12,2) NOT NULL);
CREATE TABLE order_items (id bigserial PRIMARY KEY, order_id int NOT NULL REFERENCES orders (id), qty int NOT NULL);
INSERT INTO orders (amount) SELECT g % 100 FROM generate_series(1, $ROWS) g;
INSERT INTO order_items (order_id, qty) SELECT g, 1 FROM generate_series(1, $ROWS) g;
SELECT setval('orders_id_seq', 2147000000);  -- 483,647 ids left
VACUUM ANALYZE orders, order_items;
SQL
cat > "$DIR/orders.sql" <<SQL
\set id random(1, $ROWS)
UPDATE orders SET amount = amount + 1 WHERE id = :id;
INSERT INTO orders (amount) VALUES (1) RETURNING id;
INSERT INTO order_items (order_id, qty) VALUES (:id, 1);
SQL
chmod 644 "$DIR/orders.sql"
SUM0=$(q "SELECT sum(amount) FROM orders")
(cd "$DIR" && pgbench -n -c 2 -j 1 -T 25 -f "$DIR/orders.sql" postgres > "$DIR/orders.out" 2>&1) &
OPID=$!
sleep 1
psql -X -d postgres -c "SELECT * FROM zdd.check_retype('orders', 'id', 'bigint')"
echo "SELECT zdd.begin_retype('orders', 'id', 'bigint')"
RID=$(q "SELECT zdd.begin_retype('orders', 'id', 'bigint', pause_ms => 5)")
sleep 2; psql -X -d postgres -c "SELECT id, \"table\", kind, conversion, phase, backfill, pass, rows_done, percent FROM zdd.status WHERE id = $RID"
psql -X -q -d postgres -c "CALL zdd.wait($RID, '5 min')"
psql -X -d postgres -c '\d orders'
say "complete: the primary key, the sequence and the incoming foreign key move to bigint in one short lock"
psql -X -d postgres -c "SELECT zdd.complete($RID)"
wait $OPID || true
q "SELECT setval('orders_id_seq', 2147483600)" >/dev/null
(cd "$DIR" && pgbench -n -c 2 -j 1 -T 3 -f "$DIR/orders.sql" postgres > "$DIR/orders-after.out" 2>&1) || true
psql -X -d postgres -c '\d orders' -c "SELECT seqtypid::regtype AS sequence_type, last_value FROM pg_sequence, orders_id_seq WHERE seqrelid = 'orders_id_seq'::regclass"
OTX=$(cat "$DIR"/orders*.out | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' | paste -sd+ | bc)
OFAILED=$(cat "$DIR"/orders*.out | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' | paste -sd+ | bc)
OCOUNT=$(q "SELECT count(*) FROM orders"); ICOUNT=$(q "SELECT count(*) FROM order_items")
OSUM=$(q "SELECT sum(amount) = $SUM0 + 2 * $OTX FROM orders")
OMAX=$(q "SELECT max(id) > 2147483647 FROM orders")
echo "app transactions: $OTX, failed: $OFAILED; orders $OCOUNT and items $ICOUNT = $ROWS + $OTX? $([ "$OCOUNT" -eq $((ROWS + OTX)) ] && [ "$ICOUNT" -eq $((ROWS + OTX)) ] && echo yes || echo NO)"
echo "sum of amounts as predicted: $OSUM; ids past 2^31: $OMAX"
SCENE2_OK=0
[ "$OFAILED" = 0 ] && [ "$OCOUNT" -eq $((ROWS + OTX)) ] && [ "$ICOUNT" -eq $((ROWS + OTX)) ] && [ "$OSUM" = t ] && [ "$OMAX" = t ] && SCENE2_OK=1

# ---------------------------------------------------------------- scene 3
say "Scene 3 — a standby falls behind: the backfill waits for it, then goes on by itself"
start_standby "$DIR/standby" 55421 standby1
sq() { psql -X -A -t -p 55421 -d postgres -c "$1"; }
# bounded wait: until_true SECONDS COMMAND... (fails the demo when it never holds)
until_true() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $end ] || { echo "timed out waiting for: $*"; exit 1; }; sleep 0.2; done
}
standby_caught_up() { [ "$(sq "SELECT pg_last_wal_replay_lsn() >= '$(q "SELECT pg_current_wal_insert_lsn()")'")" = t ]; }
is_waiting() { [ "$(q "SELECT backfill_state FROM zdd.transition WHERE id = $HID")" = waiting ]; }
psql -X -q -d postgres <<SQL
CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL);
INSERT INTO events (kind) SELECT 'kind ' || g % 50 FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE events;
SQL
q "SELECT application_name, state FROM pg_stat_replication"
echo "the standby's replay is paused (a long report query, a slow disk...): SELECT pg_wal_replay_pause()"
until_true 60 standby_caught_up
sq "SELECT pg_wal_replay_pause()" >/dev/null
HID=$(q "SELECT zdd.begin_rename('events', 'kind', 'category', batch_size => 1000, pause_ms => 10, start_backfill => false)")
echo "SELECT zdd.throttle($HID, max_replica_lag => '8MB')  -- default 100MB; small for the demo"
q "SELECT zdd.throttle($HID, max_replica_lag => '8MB')" >/dev/null
q "SELECT zdd.resume($HID)" >/dev/null
until_true 60 is_waiting
psql -X -d postgres -c "SELECT id, \"table\", phase, backfill, rows_done, wait_reason, pg_size_pretty(replica_lag_bytes) AS lag FROM zdd.status WHERE id = $HID"
W0=$(q "SELECT rows_done FROM zdd.transition WHERE id = $HID"); sleep 3
W1=$(q "SELECT rows_done FROM zdd.transition WHERE id = $HID")
echo "rows done 3 s later: $W1 (was $W0: nothing written while waiting)"
psql -X -d postgres -c "SELECT metric, value FROM zdd.metrics WHERE id = $HID AND metric IN ('waiting', 'lag_bytes', 'rows_done')"
echo "the standby resumes replay: SELECT pg_wal_replay_resume()"
sq "SELECT pg_wal_replay_resume()" >/dev/null
psql -X -q -d postgres -c "CALL zdd.wait($HID, '5 min')"
psql -X -d postgres -c "SELECT id, phase, backfill, rows_done, waited FROM zdd.status WHERE id = $HID"
echo "the server log (one line per change; apps can LISTEN zdd for the same):"
grep -o "zdd: transition $HID .*" "$DIR/data/server.log"
until_true 60 standby_caught_up
HBAD=$(sq "SELECT count(*) FROM events WHERE category IS DISTINCT FROM kind")
echo "rows out of step on the standby: $HBAD; zdd.ready('events', 'category'): $(q "SELECT zdd.ready('events', 'category')")"
SCENE3_OK=0
[ "$W0" = "$W1" ] && [ "$HBAD" = 0 ] && [ "$(q "SELECT phase FROM zdd.transition WHERE id = $HID")" = backfilled ] && SCENE3_OK=1

# ---------------------------------------------------------------- scene 4
say "Scene 4 — a table partitioned by month: one transition covers all 12 partitions, and a 13th attached on the way"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
CREATE TABLE readings (id bigint, month int NOT NULL, temp numeric NOT NULL, PRIMARY KEY (id, month))
  PARTITION BY LIST (month);
SELECT format('CREATE TABLE readings_%s PARTITION OF readings FOR VALUES IN (%s)', m, m)
FROM generate_series(1, 12) m \gexec
CREATE INDEX readings_temp ON readings (temp);
INSERT INTO readings SELECT g, 1 + g % 12, g % 40 FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE readings;
CREATE SEQUENCE readings_seq START 10000000;
SQL
cat > "$DIR/readings.sql" <<SQL
\set id random(1, $ROWS)
UPDATE readings SET temp = temp + 1 WHERE id = :id AND month = 1 + :id % 12;
INSERT INTO readings (id, month, temp) SELECT n, 1 + n % 12, 20 FROM nextval('readings_seq') n;
SQL
chmod 644 "$DIR/readings.sql"
(cd "$DIR" && pgbench -n -c 2 -j 1 -T 15 -f "$DIR/readings.sql" postgres > "$DIR/readings.out" 2>&1) &
PPID2=$!
echo "SELECT zdd.begin_rename('readings', 'temp', 'temperature')"
PID4=$(q "SELECT zdd.begin_rename('readings', 'temp', 'temperature', pause_ms => 5)")
sleep 2
psql -X -d postgres -c "SELECT partition, pass, rows_done, rows_total, percent FROM zdd.status_partitions WHERE id = $PID4 ORDER BY position LIMIT 5"
echo "a partition for month 13 is attached meanwhile: zdd.prepare_partition adds and fills its new column first"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
CREATE TABLE readings_13 (id bigint, month int NOT NULL, temp numeric NOT NULL, PRIMARY KEY (id, month));
INSERT INTO readings_13 SELECT g, 13, 15 FROM generate_series(1, 1000) g;
SELECT zdd.prepare_partition($PID4, 'readings_13');
ALTER TABLE readings ATTACH PARTITION readings_13 FOR VALUES IN (13);
SQL
wait $PPID2 || true
psql -X -q -d postgres -c "CALL zdd.wait($PID4, '5 min')"
psql -X -d postgres -c "SELECT id, \"table\", phase, backfill, rows_done, twins FROM zdd.status WHERE id = $PID4" \
  -c "SELECT count(*) AS partitions, count(*) FILTER (WHERE pass = 'done') AS walked FROM zdd.status_partitions WHERE id = $PID4"
echo "the app stopped writing temp; complete waits out zdd.complete_quiet_period (8 s here) since its last write"
quiet4() { [ "$(q "SELECT clock_timestamp() - last_old_write > interval '8.5 s' FROM zdd.status WHERE id = $PID4")" = t ]; }
until_true 60 quiet4
echo "SELECT zdd.complete($PID4)  -- ACCESS EXCLUSIVE on the parent, then each partition: one short lock set"
psql -X -d postgres -c '\timing on' -c "SELECT zdd.complete($PID4)" | grep -E '^Time'
psql -X -d postgres -c '\d readings'
PTX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$DIR/readings.out")
PFAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$DIR/readings.out")
PCOUNT=$(q "SELECT count(*) FROM readings")
echo "app transactions: $PTX, failed: $PFAILED; rows $PCOUNT = $ROWS + $PTX + 1000? $([ "$PCOUNT" -eq $((ROWS + PTX + 1000)) ] && echo yes || echo NO)"
SCENE4_OK=0
[ "$PFAILED" = 0 ] && [ "$PCOUNT" -eq $((ROWS + PTX + 1000)) ] && [ "$(q "SELECT phase FROM zdd.transition WHERE id = $PID4")" = completed ] && SCENE4_OK=1

check_server_log "$DIR/data/server.log" "$DIR/standby/server.log"
[ "$SCENE1_OK" = 1 ] && [ "$SCENE2_OK" = 1 ] && [ "$SCENE3_OK" = 1 ] && [ "$SCENE4_OK" = 1 ]
