#!/usr/bin/env bash
# The README's "From your migration tool" recipes, run with the tools
# themselves: knex and node-pg-migrate (from npm), sqitch (Debian). Each
# starts a rename in one release's migration and gates on the backfill
# (non-transactional: CALL zdd.wait refuses a transaction block),
# contracts in a later release's migration, and rolls back with abort.
# What it checks: the first release leaves phase backfilled; a later
# release's complete run right away is refused by the interlock (the old
# app may still be live) and succeeds once the quiet period is over; a
# migration run twice is harmless; down = abort leaves the table as it was.
source "$ZDD_ROOT/test/lib.sh"
DIR="$STAGE/tools"
mkdir -p "$DIR"
as_pg mkdir -p "$STAGE/tools-db"
start_instance "$STAGE/tools-db/data" 55460
trap 'stop_instance "$STAGE/tools-db/data" || true' EXIT
q() { psql -X -A -t -d postgres -c "$1"; }
fail=0
check() {  # check WHAT ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then echo "ok: $1 ($2)"; else echo "FAIL: $1: got '$2', expected '$3'"; fail=1; fi
}
setup_table() {  # setup_table NAME: a customer-like table of 1000 rows
  q "CREATE TABLE $1 (id int PRIMARY KEY, lastname text NOT NULL); INSERT INTO $1 SELECT g, 'n' || g FROM generate_series(1, 1000) g" >/dev/null
}
phase() { q "SELECT phase FROM zdd.transition WHERE label = '$1' ORDER BY id DESC LIMIT 1"; }
columns() { q "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '$1'::regclass AND attnum > 0 AND NOT attisdropped"; }
q "CREATE EXTENSION zdd" >/dev/null
export PGHOST PGPORT PGUSER PGDATABASE=postgres
export DATABASE_URL="postgres://$PGUSER@localhost/postgres?host=$PGHOST&port=$PGPORT"

# ------------------------------------------------------------------ npm
echo "== npm install knex, pg, node-pg-migrate"
(cd "$DIR" && npm init -y >/dev/null 2>&1 && npm install --no-audit --no-fund --loglevel=error \
   knex@3 pg@8 node-pg-migrate@7 > "$DIR/npm.log" 2>&1) || { cat "$DIR/npm.log"; echo "FAIL: npm install"; exit 1; }

# ------------------------------------------------------------------ knex
echo "== knex"
setup_table customer_knex
mkdir -p "$DIR/knex/migrations"
cat > "$DIR/knex/knexfile.js" <<'JS'
module.exports = {
  client: 'pg',
  connection: { host: process.env.PGHOST, port: process.env.PGPORT, user: process.env.PGUSER, database: 'postgres' },
  migrations: { directory: './migrations' },
};
JS
cp test/tools/knex/*.js "$DIR/knex/migrations/" 2>/dev/null || cp "$ZDD_ROOT"/test/tools/knex/*.js "$DIR/knex/migrations/"
KNEX="$DIR/node_modules/.bin/knex --knexfile $DIR/knex/knexfile.js"
(cd "$DIR/knex" && $KNEX migrate:up 20260101000000_begin_surname.js) > "$DIR/knex1.log" 2>&1 || { cat "$DIR/knex1.log"; fail=1; }
check "knex release 1: begin + wait" "$(phase customer-surname-knex)" backfilled
(cd "$DIR/knex" && $KNEX migrate:latest) > "$DIR/knex2.log" 2>&1 && { echo "FAIL: knex complete not refused"; fail=1; }
check "knex release 2 right away: refused by the interlock" "$(grep -q 'cannot complete transition' "$DIR/knex2.log" && echo yes)" yes
check "knex: still backfilled" "$(phase customer-surname-knex)" backfilled
(cd "$DIR/knex" && PGOPTIONS='-c zdd.complete_quiet_period=0' $KNEX migrate:latest) > "$DIR/knex3.log" 2>&1 || { cat "$DIR/knex3.log"; fail=1; }
check "knex release 2 after the quiet period: completed" "$(phase customer-surname-knex)" completed
check "knex: columns" "$(columns customer_knex)" "id,surname"
# rollback of release 1 on a fresh table: down = abort
q "DROP TABLE customer_knex; DELETE FROM knex_migrations" >/dev/null
setup_table customer_knex
(cd "$DIR/knex" && $KNEX migrate:up 20260101000000_begin_surname.js && $KNEX migrate:down) > "$DIR/knex4.log" 2>&1 || { cat "$DIR/knex4.log"; fail=1; }
check "knex down: aborted" "$(phase customer-surname-knex)" aborted
check "knex down: columns" "$(columns customer_knex)" "id,lastname"

# ------------------------------------------------------------------ node-pg-migrate
echo "== node-pg-migrate"
setup_table customer_npm
mkdir -p "$DIR/npm-migrations"
cp "$ZDD_ROOT"/test/tools/node-pg-migrate/*.js "$DIR/npm-migrations/"
NPM_MIGRATE="$DIR/node_modules/.bin/node-pg-migrate -m $DIR/npm-migrations --migrations-table pgmigrations"
$NPM_MIGRATE up 1 > "$DIR/npm1.log" 2>&1 || { cat "$DIR/npm1.log"; fail=1; }
check "node-pg-migrate release 1: begin + wait" "$(phase customer-surname-npm)" backfilled
# the same migration run again by hand (a re-run): the open transition's id, a NOTICE
check "begin re-run returns the open transition" \
  "$(q "SELECT zdd.begin_rename('customer_npm', 'lastname', 'surname', label => 'customer-surname-npm') = zdd.find('customer-surname-npm')")" t
$NPM_MIGRATE up > "$DIR/npm2.log" 2>&1 && { echo "FAIL: node-pg-migrate complete not refused"; fail=1; }
check "node-pg-migrate release 2 right away: refused" "$(grep -q 'cannot complete transition' "$DIR/npm2.log" && echo yes)" yes
PGOPTIONS='-c zdd.complete_quiet_period=0' $NPM_MIGRATE up > "$DIR/npm3.log" 2>&1 || { cat "$DIR/npm3.log"; fail=1; }
check "node-pg-migrate release 2: completed" "$(phase customer-surname-npm)" completed
check "node-pg-migrate: columns" "$(columns customer_npm)" "id,surname"

# ------------------------------------------------------------------ sqitch
echo "== sqitch"
setup_table customer_sqitch
cp -r "$ZDD_ROOT/test/tools/sqitch" "$DIR/sqitch"
export SQITCH_FULLNAME="zdd test" SQITCH_EMAIL="zdd@example.invalid"
TARGET="db:pg://$PGUSER@/postgres?host=$PGHOST&port=$PGPORT"
(cd "$DIR/sqitch" && sqitch deploy --to begin_surname "$TARGET") > "$DIR/sqitch1.log" 2>&1 || { cat "$DIR/sqitch1.log"; fail=1; }
check "sqitch release 1: begin + wait" "$(phase customer-surname-sqitch)" backfilled
(cd "$DIR/sqitch" && sqitch deploy "$TARGET") > "$DIR/sqitch2.log" 2>&1 && { echo "FAIL: sqitch complete not refused"; fail=1; }
check "sqitch release 2 right away: refused" "$(grep -q 'cannot complete transition' "$DIR/sqitch2.log" && echo yes)" yes
(cd "$DIR/sqitch" && PGOPTIONS='-c zdd.complete_quiet_period=0' sqitch deploy "$TARGET") > "$DIR/sqitch3.log" 2>&1 || { cat "$DIR/sqitch3.log"; fail=1; }
check "sqitch release 2: completed" "$(phase customer-surname-sqitch)" completed
check "sqitch: columns" "$(columns customer_sqitch)" "id,surname"

check_server_log "$STAGE/tools-db/data/server.log" || fail=1
[ $fail -eq 0 ] && echo "migration tool recipes: PASS" || echo "migration tool recipes: FAIL"
exit $fail
