#!/usr/bin/env bash
# Soak: client writes never fail because zdd moves from one step to the
# next. pgbench clients write while begin_rename, the backfill, complete
# and (on a second transition) abort run; every client transaction must
# succeed. Apps only use columns that exist for their whole run: the old
# app (lastname) runs across begin_rename and abort, the new app (surname)
# across complete, and an app writing another column runs throughout.
source "$ZDD_ROOT/test/lib.sh"
DIR="$STAGE/lifecycle"
as_pg mkdir -p "$DIR"
start_instance "$DIR/data" 55430 "zdd.complete_quiet_period = 0"
trap 'stop_instance "$DIR/data" || true' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
CREATE EXTENSION zdd;
CREATE TABLE customer (id bigserial PRIMARY KEY, lastname text NOT NULL, note int NOT NULL DEFAULT 0);
INSERT INTO customer (lastname) SELECT 'n' || g FROM generate_series(1, 50000) g;
CREATE TABLE other (id bigserial PRIMARY KEY, lastname text NOT NULL, note int NOT NULL DEFAULT 0);
INSERT INTO other (lastname) SELECT 'n' || g FROM generate_series(1, 50000) g;
SQL
cat > "$DIR/old.sql" <<'SQL'
\set id random(1, 50000)
UPDATE customer SET lastname = 'o' || :id::bigint WHERE id = :id::bigint;
UPDATE other SET lastname = 'o' || :id::bigint WHERE id = :id::bigint;
INSERT INTO other (lastname) VALUES ('old');
SQL
cat > "$DIR/new.sql" <<'SQL'
\set id random(1, 50000)
UPDATE customer SET surname = 's' || :id::bigint WHERE id = :id::bigint;
INSERT INTO customer (surname) VALUES ('new');
SQL
cat > "$DIR/note.sql" <<'SQL'
\set id random(1, 50000)
UPDATE customer SET note = note + 1 WHERE id = :id::bigint;
UPDATE other SET note = note + 1 WHERE id = :id::bigint;
SQL
chmod 644 "$DIR"/*.sql
run() { pgbench -n -M prepared -c 1 -T "$2" -f "$DIR/$1.sql" postgres > "$DIR/$1-$3.out" 2>&1; }

# 1. begin_rename on both tables while the old app and the note app write
run old 8 a & run note 30 a &
sleep 2
C=$(q "SELECT zdd.begin_rename('customer', 'lastname', 'surname', batch_size => 2000, pause_ms => 5)")
O=$(q "SELECT zdd.begin_rename('other', 'lastname', 'surname', batch_size => 2000, pause_ms => 5)")
sleep 7
# 2. the new app takes over customer; abort the transition on other while
#    the old app still writes it
run new 20 b & run old 6 b &
sleep 2
q "SELECT zdd.abort($O)" >/dev/null && echo "aborted $O under load"
psql -X -q -d postgres -c "CALL zdd.wait($C, '3 min')"
# 3. complete customer while the new app and the note app write
q "SELECT zdd.complete($C)" >/dev/null && echo "completed $C under load"
wait

fail=0
for f in "$DIR"/*.out; do
  n=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$f")
  t=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$f")
  echo "$(basename "$f"): $t transactions, ${n:-?} failed"
  [ "${n:-1}" = 0 ] && grep -q "^number of transactions actually processed" "$f" || { fail=1; cat "$f"; }
done
[ "$(q "SELECT phase FROM zdd.transition WHERE id = $C")" = completed ] || { echo "FAIL: not completed"; fail=1; }
[ "$(q "SELECT phase FROM zdd.transition WHERE id = $O")" = aborted ] || { echo "FAIL: not aborted"; fail=1; }
[ "$(q "SELECT count(*) FROM pg_attribute WHERE attrelid = 'other'::regclass AND attname = 'surname' AND NOT attisdropped")" = 0 ] || fail=1
check_server_log "$DIR/data/server.log" || fail=1
[ $fail -eq 0 ] && echo "lifecycle soak: PASS" || echo "lifecycle soak: FAIL"
exit $fail
