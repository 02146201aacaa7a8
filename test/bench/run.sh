#!/usr/bin/env bash
# make bench: what zdd costs, side by side with the alternatives, in one run
# on a throwaway instance. Writes test/bench/RESULTS.md and
# test/bench/backfill.png. Variants are interleaved and repeated; figures
# are medians with min–max. ZDD_BENCH_ROUNDS (3), ZDD_BENCH_WRITE_ROUNDS
# (section 6's write path, 7), ZDD_BENCH_ROWS (1000000),
# ZDD_BENCH_SCALE (opt-in: rows for the scale run, e.g. 10000000).
source "$(dirname "$0")/../lib.sh"
OUT_DIR="$ZDD_ROOT/test/bench"
ROUNDS=${ZDD_BENCH_ROUNDS:-3}
# the sync write path's rounds (section 6): its overheads are a few
# hundred ms of CPU on a shared machine, so it takes more rounds
WP_ROUNDS=${ZDD_BENCH_WRITE_ROUNDS:-$(( ROUNDS > 7 ? ROUNDS : 7 ))}
BIG=${ZDD_BENCH_ROWS:-1000000}
BULK=300000
zdd_stage
DIR="$STAGE/bench"
as_pg mkdir -p "$DIR"
start_instance "$DIR/data" 55440 "shared_buffers = 1GB" "max_wal_size = 4GB" "checkpoint_timeout = 30min" \
  "synchronous_commit = off" "autovacuum = off" "zdd.complete_quiet_period = 0" \
  "zdd.max_dead_tuples = 0"
trap 'as_pg "$BIN/pg_ctl" -D "$DIR/standby" -m immediate stop >/dev/null 2>&1 || true; stop_instance "$DIR/data" >/dev/null 2>&1 || true; zdd_unstage' EXIT
q() { psql -X -A -t -q -d postgres -c "$1"; }
ms() { psql -X -A -t -q -d postgres -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1; }
# "wall_ms cpu_ms" of one statement: wall time, and the CPU time (user +
# system, in clock ticks) its backend spent on it, from /proc/self/stat
# read by the backend itself. CPU time is what a trigger adds, and what the
# neighbours on a shared machine disturb least.
TICK_MS=$((1000 / $(getconf CLK_TCK)))
wall_cpu() {
  local ticks="(SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint FROM pg_read_file('/proc/self/stat') s)"
  psql -X -A -t -q -d postgres -c "SELECT $ticks" -c '\timing on' -c "$1" -c '\timing off' -c "SELECT $ticks" |
    awk -v tick="$TICK_MS" '/^Time:/ {w = $2; next} /^[0-9]+$/ {t[++n] = $1} END {printf "%s %d\n", w, (t[2] - t[1]) * tick}'
}
# "hold_ms statement_ms" of STATEMENT, which takes ACCESS EXCLUSIVE on
# TABLE. A second session polls pg_locks until it sees that lock granted,
# queues an ACCESS SHARE lock behind it and reads the clock when it is
# granted: hold_ms is that moment minus the statement's start. An upper
# bound of the hold (it includes the statement's work before the lock);
# unlike the statement's own duration it leaves out what PostgreSQL does
# at commit after releasing the locks (truncating the files of a dropped
# index: tens of ms for a 10M-row index, while no one waits).
hold() {
  local tbl=$1 stmt=$2 f
  f=$(mktemp)
  psql -X -A -t -q -d postgres -c "DO \$\$
DECLARE t0 timestamptz; p int; deadline timestamptz := clock_timestamp() + interval '10 min';
BEGIN
  LOOP
    PERFORM pg_catalog.pg_stat_clear_snapshot();
    SELECT l.pid, a.query_start INTO p, t0 FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a USING (pid)
     WHERE l.locktype = 'relation' AND l.relation = '$tbl'::regclass AND l.mode = 'AccessExclusiveLock' AND l.granted;
    EXIT WHEN p IS NOT NULL;
    IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'lock not seen'; END IF;
    PERFORM pg_catalog.pg_sleep(0.0005);
  END LOOP;
  LOCK TABLE $tbl IN ACCESS SHARE MODE;
  RAISE NOTICE 'hold %', round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
END \$\$" 2>&1 | sed -n 's/.*NOTICE:  hold \([0-9.]*\).*/\1/p' > "$f" &
  local watcher=$!
  sleep 0.3
  local s; s=$(ms "$stmt")
  wait "$watcher"
  echo "$(cat "$f") $s"; rm -f "$f"
}
# median and min-max of the numbers on stdin
stats() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f (%.1f–%.1f)\n", m, a[1], a[NR]}'; }
med() { cut -d' ' -f1 <<<"$1"; }
mn() { sed 's/^[^(]*(\([-0-9.]*\)–.*/\1/' <<<"$1"; }
# a / b; "n/a" when either is not positive (an overhead that noise made
# zero or negative has no meaningful ratio)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a <= 0 || b <= 0) print "n/a"; else printf "%.2f", a / b }'; }
echo "zdd bench: rounds=$ROUNDS rows=$BIG"

# ---------------------------------------------------------------- 6. type changes
# The path users pay for during a transition: statements that write the old
# column, which the trigger must sync. Baseline: the app writing both
# columns itself (no trigger, the manual way); the floor is that same
# statement plus PostgreSQL's cheapest C row trigger.
retype_section() {
psql -X -q -d postgres <<SQL
-- int -> bigint: one table per variant, the same rows
CREATE TABLE rt_manual (id int PRIMARY KEY, a int NOT NULL, other int NOT NULL DEFAULT 0, a_new bigint);
INSERT INTO rt_manual SELECT g, g, 0, g FROM generate_series(1, $BULK) g;
CREATE TABLE rt_floor (LIKE rt_manual INCLUDING ALL);
INSERT INTO rt_floor SELECT * FROM rt_manual;
CREATE TRIGGER floor BEFORE UPDATE ON rt_floor FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
CREATE TABLE rt_plpgsql (LIKE rt_manual INCLUDING ALL);
INSERT INTO rt_plpgsql SELECT * FROM rt_manual;
-- The hand-written way: a PL/pgSQL trigger with the same rules.
CREATE FUNCTION rt_sync() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF NEW.a IS DISTINCT FROM OLD.a AND NEW.a_new IS NOT DISTINCT FROM OLD.a_new THEN
    NEW.a_new := NEW.a::bigint;
  ELSIF NEW.a_new IS DISTINCT FROM OLD.a_new AND NEW.a IS NOT DISTINCT FROM OLD.a THEN
    NEW.a := NEW.a_new::int;
  END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER sync BEFORE UPDATE ON rt_plpgsql FOR EACH ROW EXECUTE FUNCTION rt_sync();
CREATE TABLE rt_rename (id int PRIMARY KEY, a int NOT NULL, other int NOT NULL DEFAULT 0);
INSERT INTO rt_rename SELECT id, a, other FROM rt_manual;
CREATE TABLE rt_zdd (LIKE rt_rename INCLUDING ALL);
INSERT INTO rt_zdd SELECT * FROM rt_rename;
SELECT FROM zdd.begin_rename('rt_rename', 'a', 'a_new', start_backfill => false);
SELECT FROM zdd.begin_retype('rt_zdd', 'a', 'bigint', new_column => 'a_new', start_backfill => false);
-- numeric dollars -> integer cents, an expression each way
CREATE TABLE re_manual (id int PRIMARY KEY, price numeric(12,2) NOT NULL, other int NOT NULL DEFAULT 0, cents int);
INSERT INTO re_manual SELECT g, g * 1.25, 0, g * 125 FROM generate_series(1, $BULK) g;
CREATE TABLE re_plpgsql (LIKE re_manual INCLUDING ALL);
INSERT INTO re_plpgsql SELECT * FROM re_manual;
CREATE FUNCTION re_sync() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF NEW.price IS DISTINCT FROM OLD.price AND NEW.cents IS NOT DISTINCT FROM OLD.cents THEN
    NEW.cents := round(NEW.price * 100)::int;
  ELSIF NEW.cents IS DISTINCT FROM OLD.cents AND NEW.price IS NOT DISTINCT FROM OLD.price THEN
    NEW.price := NEW.cents / 100.0;
  END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER sync BEFORE UPDATE ON re_plpgsql FOR EACH ROW EXECUTE FUNCTION re_sync();
CREATE TABLE re_zdd (id int PRIMARY KEY, price numeric(12,2) NOT NULL, other int NOT NULL DEFAULT 0);
INSERT INTO re_zdd SELECT id, price, other FROM re_manual;
SELECT FROM zdd.begin_retype('re_zdd', 'price', 'integer', up => 'round(price * 100)::int',
                             down => 'cents / 100.0', new_column => 'cents', start_backfill => false);
-- rename of a text column, the statement issue 10 measured: SET lastname = lastname || 'x'
CREATE TABLE tx_manual (id int PRIMARY KEY, lastname text NOT NULL, other int NOT NULL DEFAULT 0, surname text);
INSERT INTO tx_manual SELECT g, 'name' || g, 0, 'name' || g FROM generate_series(1, $BULK) g;
CREATE TABLE tx_floor (LIKE tx_manual INCLUDING ALL);
INSERT INTO tx_floor SELECT * FROM tx_manual;
CREATE TRIGGER floor BEFORE UPDATE ON tx_floor FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
CREATE TABLE tx_plpgsql (LIKE tx_manual INCLUDING ALL);
INSERT INTO tx_plpgsql SELECT * FROM tx_manual;
CREATE FUNCTION tx_sync() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF NEW.lastname IS DISTINCT FROM OLD.lastname AND NEW.surname IS NOT DISTINCT FROM OLD.surname THEN
    NEW.surname := NEW.lastname;
  ELSIF NEW.surname IS DISTINCT FROM OLD.surname AND NEW.lastname IS NOT DISTINCT FROM OLD.lastname THEN
    NEW.lastname := NEW.surname;
  END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER sync BEFORE UPDATE ON tx_plpgsql FOR EACH ROW EXECUTE FUNCTION tx_sync();
CREATE TABLE tx_rename (id int PRIMARY KEY, lastname text NOT NULL, other int NOT NULL DEFAULT 0);
INSERT INTO tx_rename SELECT id, lastname, other FROM tx_manual;
SELECT FROM zdd.begin_rename('tx_rename', 'lastname', 'surname', start_backfill => false);
UPDATE tx_manual SET other = other; UPDATE tx_floor SET other = other; UPDATE tx_plpgsql SET other = other;
UPDATE tx_rename SET lastname = lastname;
UPDATE rt_manual SET other = other; UPDATE rt_floor SET other = other; UPDATE rt_plpgsql SET other = other;
UPDATE rt_rename SET a = a; UPDATE rt_zdd SET a = a;
UPDATE re_manual SET other = other; UPDATE re_plpgsql SET other = other; UPDATE re_zdd SET price = price;
VACUUM ANALYZE;
SQL
declare -A RT_A RT_E RT_AC RT_EC RT_T RT_TC
local r v stmt w c
for r in $(seq "$WP_ROUNDS"); do
  for v in manual floor rename zdd plpgsql; do
    case $v in manual|floor) stmt="UPDATE rt_$v SET a = a + 1, a_new = a + 1";;
               *) stmt="UPDATE rt_$v SET a = a + 1";; esac
    read -r w c < <(wall_cpu "$stmt"); RT_A[$v]+="$w "; RT_AC[$v]+="$c "; q "VACUUM rt_$v"
  done
  for v in manual zdd plpgsql; do
    case $v in manual) stmt="UPDATE re_$v SET price = price + 1, cents = round((price + 1) * 100)::int";;
               *) stmt="UPDATE re_$v SET price = price + 1";; esac
    read -r w c < <(wall_cpu "$stmt"); RT_E[$v]+="$w "; RT_EC[$v]+="$c "; q "VACUUM re_$v"
  done
  for v in manual floor rename plpgsql; do
    case $v in manual|floor) stmt="UPDATE tx_$v SET lastname = lastname || 'x', surname = lastname || 'x'";;
               *) stmt="UPDATE tx_$v SET lastname = lastname || 'x'";; esac
    read -r w c < <(wall_cpu "$stmt"); RT_T[$v]+="$w "; RT_TC[$v]+="$c "; q "VACUUM tx_$v"
  done
done
declare -gA S_RTA S_RTE C_RTA C_RTE S_RTT C_RTT
for v in manual floor rename plpgsql; do
  S_RTT[$v]=$(tr ' ' '\n' <<<"${RT_T[$v]}" | grep . | stats); C_RTT[$v]=$(tr ' ' '\n' <<<"${RT_TC[$v]}" | grep . | stats)
done
for v in manual floor rename zdd plpgsql; do
  S_RTA[$v]=$(tr ' ' '\n' <<<"${RT_A[$v]}" | grep . | stats); C_RTA[$v]=$(tr ' ' '\n' <<<"${RT_AC[$v]}" | grep . | stats)
done
for v in manual zdd plpgsql; do
  S_RTE[$v]=$(tr ' ' '\n' <<<"${RT_E[$v]}" | grep . | stats); C_RTE[$v]=$(tr ' ' '\n' <<<"${RT_EC[$v]}" | grep . | stats)
done
ov() { awk -v x="$(med "$1")" -v a="$(med "$2")" 'BEGIN{print x-a}'; }
# overheads and ratios from the backends' CPU time (wall times shown too)
OV_RT_F=$(ov "${C_RTA[floor]}" "${C_RTA[manual]}"); OV_RT_R=$(ov "${C_RTA[rename]}" "${C_RTA[manual]}")
OV_RT_Z=$(ov "${C_RTA[zdd]}" "${C_RTA[manual]}"); OV_RT_P=$(ov "${C_RTA[plpgsql]}" "${C_RTA[manual]}")
OV_E_Z=$(ov "${C_RTE[zdd]}" "${C_RTE[manual]}"); OV_E_P=$(ov "${C_RTE[plpgsql]}" "${C_RTE[manual]}")
OV_T_F=$(ov "${C_RTT[floor]}" "${C_RTT[manual]}"); OV_T_R=$(ov "${C_RTT[rename]}" "${C_RTT[manual]}")
OV_T_P=$(ov "${C_RTT[plpgsql]}" "${C_RTT[manual]}")
# The six ratios, from each variant's median (med) or minimum (mn) CPU
# time: interference on a shared machine only ever adds CPU time, so the
# minimum of the interleaved rounds is the least disturbed estimate.
wp_ratios() {
  local pick=$1 f r z p ez ep tf tr tp
  d() { awk -v x="$($pick "$1")" -v a="$($pick "$2")" 'BEGIN{print x-a}'; }
  f=$(d "${C_RTA[floor]}" "${C_RTA[manual]}"); r=$(d "${C_RTA[rename]}" "${C_RTA[manual]}")
  z=$(d "${C_RTA[zdd]}" "${C_RTA[manual]}"); p=$(d "${C_RTA[plpgsql]}" "${C_RTA[manual]}")
  ez=$(d "${C_RTE[zdd]}" "${C_RTE[manual]}"); ep=$(d "${C_RTE[plpgsql]}" "${C_RTE[manual]}")
  tf=$(d "${C_RTT[floor]}" "${C_RTT[manual]}"); tr=$(d "${C_RTT[rename]}" "${C_RTT[manual]}")
  tp=$(d "${C_RTT[plpgsql]}" "${C_RTT[manual]}")
  echo "$(ratio "$z" "$r") $(ratio "$r" "$f") $(ratio "$z" "$f") $(ratio "$p" "$r") $(ratio "$p" "$z") $(ratio "$ep" "$ez") $(ratio "$tr" "$tf") $(ratio "$tp" "$tr") $(ratio "$p" "$f") $(ratio "$tp" "$tf")"
}
read -r R_RT_ZR R_RT_RF R_RT_ZF R_RT_PR R_RT_PZ R_E_PZ R_T_RF R_T_PR R_RT_PF R_T_PF <<<"$(wp_ratios med)"
read -r M_RT_ZR M_RT_RF M_RT_ZF M_RT_PR M_RT_PZ M_E_PZ M_T_RF M_T_PR M_RT_PF M_T_PF <<<"$(wp_ratios mn)"
echo "retype write path done: manual ${S_RTA[manual]} floor ${S_RTA[floor]} rename ${S_RTA[rename]} zdd ${S_RTA[zdd]} plpgsql ${S_RTA[plpgsql]}; text: manual ${C_RTT[manual]} floor ${C_RTT[floor]} rename ${C_RTT[rename]} plpgsql ${C_RTT[plpgsql]}"

# backfill int -> bigint vs one plain UPDATE: fresh tables each round,
# the plain UPDATE and the zdd backfill of one round back to back
local id rb_plain="" rb_pass="" rb_total="" p t
RB_MISMATCH=0
for r in $(seq "$ROUNDS"); do
psql -X -q -d postgres <<SQL
DROP TABLE IF EXISTS rb_zdd, rb_plain;
CREATE TABLE rb_zdd (id int PRIMARY KEY, a int NOT NULL, other int NOT NULL DEFAULT 0);
INSERT INTO rb_zdd SELECT g, g, 0 FROM generate_series(1, $BIG) g;
CREATE TABLE rb_plain (LIKE rb_zdd INCLUDING ALL);
INSERT INTO rb_plain SELECT * FROM rb_zdd;
ALTER TABLE rb_plain ADD COLUMN a_new bigint;
VACUUM ANALYZE rb_zdd, rb_plain;
CHECKPOINT;
SQL
rb_plain+="$(awk -v m="$(ms "UPDATE rb_plain SET a_new = a")" 'BEGIN{printf "%.2f", m/1000}') "
q "CHECKPOINT"
id=$(q "SELECT zdd.begin_retype('rb_zdd', 'a', 'bigint', batch_size => 10000, pause_ms => 0)")
q "CALL zdd.wait($id, '30 min')" >/dev/null
read -r p t < <(q "SELECT extract(epoch FROM (SELECT at FROM zdd.history WHERE transition_id = $id AND detail = 'verify pass finished') - t.backfill_started_at)::numeric(10,2),
  extract(epoch FROM t.backfill_finished_at - t.backfill_started_at)::numeric(10,2) FROM zdd.transition t WHERE id = $id" | tr '|' ' ')
rb_pass+="$p "; rb_total+="$t "
RB_MISMATCH=$((RB_MISMATCH + $(q "SELECT count(*) FROM rb_zdd WHERE a_zdd_new IS DISTINCT FROM a")))
q "SELECT zdd.abort($id)" >/dev/null
done
RB_PLAIN_S=$(tr ' ' '\n' <<<"$rb_plain" | grep . | stats); RB_PASS_S=$(tr ' ' '\n' <<<"$rb_pass" | grep . | stats)
RB_TOTAL_S=$(tr ' ' '\n' <<<"$rb_total" | grep . | stats)
R_RB=$(ratio "$(med "$RB_PASS_S")" "$(med "$RB_PLAIN_S")"); R_RB_TOTAL=$(ratio "$(med "$RB_TOTAL_S")" "$(med "$RB_PLAIN_S")")
echo "retype backfill done: backfill+verify ${RB_PASS_S}s total ${RB_TOTAL_S}s plain ${RB_PLAIN_S}s"

# complete of the primary key conversion with an incoming foreign key
psql -X -q -d postgres <<SQL
CREATE TABLE pk_orders (id serial PRIMARY KEY, amount int NOT NULL DEFAULT 0);
INSERT INTO pk_orders (amount) SELECT g % 100 FROM generate_series(1, $BIG) g;
CREATE TABLE pk_items (id bigserial PRIMARY KEY, order_id int NOT NULL REFERENCES pk_orders (id));
INSERT INTO pk_items (order_id) SELECT g FROM generate_series(1, $BIG) g;
VACUUM ANALYZE pk_orders, pk_items;
SQL
id=$(q "SELECT zdd.begin_retype('pk_orders', 'id', 'bigint', batch_size => 20000, pause_ms => 0)")
q "CALL zdd.wait($id, '30 min')" >/dev/null
PK_TWINS_S=$(q "SELECT extract(epoch FROM t.backfill_finished_at - (SELECT at FROM zdd.history WHERE transition_id = $id AND detail = 'verify pass finished'))::numeric(10,2) FROM zdd.transition t WHERE id = $id")
read -r PK_COMPLETE_MS PK_COMPLETE_STMT < <(hold pk_orders "SELECT zdd.complete($id)")
PK_CHECK=$(q "SELECT format_type(a.atttypid, a.atttypmod) || ', ' || (SELECT count(*) FROM pg_constraint WHERE conrelid = 'pk_items'::regclass AND contype = 'f' AND convalidated) || ' validated FK' FROM pg_attribute a WHERE a.attrelid = 'pk_orders'::regclass AND a.attname = 'id'")
echo "retype PK done: complete ${PK_COMPLETE_MS} ms ($PK_CHECK)"
RETYPE_MD=$(cat <<MD
## 6. Type changes

Write path that syncs ($BULK rows; bulk \`UPDATE\` writing the old column, the trigger fills the new one; baseline: the app writing both columns itself):

Backend CPU ms (user + system, from \`/proc/self/stat\`; the overheads and ratios below use these) and wall ms, median (min–max) of $WP_ROUNDS interleaved rounds:

| variant | int → bigint: \`SET a = a + 1\`, CPU ms | wall ms | CPU overhead over (m) | numeric → cents: \`SET price = price + 1\`, CPU ms | wall ms | CPU overhead over (m) | rename of a text column: \`SET lastname = lastname \\|\\| 'x'\`, CPU ms | wall ms | CPU overhead over (m) |
|---|---|---|---|---|---|---|---|---|---|
| (m) manual: the app writes both, no trigger | ${C_RTA[manual]} | ${S_RTA[manual]} | 0 | ${C_RTE[manual]} | ${S_RTE[manual]} | 0 | ${C_RTT[manual]} | ${S_RTT[manual]} | 0 |
| (f) floor: (m) + suppress_redundant_updates_trigger | ${C_RTA[floor]} | ${S_RTA[floor]} | $OV_RT_F | | | | ${C_RTT[floor]} | ${S_RTT[floor]} | $OV_T_F |
| (r) zdd rename trigger (identity conversion) | ${C_RTA[rename]} | ${S_RTA[rename]} | $OV_RT_R | | | | ${C_RTT[rename]} | ${S_RTT[rename]} | $OV_T_R |
| (z) zdd retype trigger (cast; \`round(price * 100)::int\`) | ${C_RTA[zdd]} | ${S_RTA[zdd]} | $OV_RT_Z | ${C_RTE[zdd]} | ${S_RTE[zdd]} | $OV_E_Z | | | |
| (p) PL/pgSQL up/down trigger | ${C_RTA[plpgsql]} | ${S_RTA[plpgsql]} | $OV_RT_P | ${C_RTE[plpgsql]} | ${S_RTE[plpgsql]} | $OV_E_P | ${C_RTT[plpgsql]} | ${S_RTT[plpgsql]} | $OV_T_P |

| ratio | from medians | from minima | target |
|---|---|---|---|
| retype overhead / rename overhead | $R_RT_ZR: $(verdict "$R_RT_ZR" 1.1 le) | $M_RT_ZR: $(verdict "$M_RT_ZR" 1.1 le) | ≤ 1.1 |
| rename overhead / floor overhead | $R_RT_RF: $(verdict "$R_RT_RF" 1.5 le) | $M_RT_RF: $(verdict "$M_RT_RF" 1.5 le) | ≤ 1.5 |
| retype overhead / floor overhead | $R_RT_ZF: $(verdict "$R_RT_ZF" 1.5 le) | $M_RT_ZF: $(verdict "$M_RT_ZF" 1.5 le) | ≤ 1.5 |
| PL/pgSQL overhead / rename overhead | $R_RT_PR: $(verdict "$R_RT_PR" 2.5 ge) | $M_RT_PR: $(verdict "$M_RT_PR" 2.5 ge) | ≥ 2.5 |
| PL/pgSQL overhead / retype overhead | $R_RT_PZ: $(verdict "$R_RT_PZ" 2 ge) | $M_RT_PZ: $(verdict "$M_RT_PZ" 2 ge) | ≥ 2 |
| PL/pgSQL overhead / zdd overhead, expression | $R_E_PZ: $(verdict "$R_E_PZ" 2 ge) | $M_E_PZ: $(verdict "$M_E_PZ" 2 ge) | ≥ 2 |
| rename overhead / floor overhead, text column | $R_T_RF: $(verdict "$R_T_RF" 1.5 le) | $M_T_RF: $(verdict "$M_T_RF" 1.5 le) | ≤ 1.5 |
| PL/pgSQL overhead / rename overhead, text column | $R_T_PR: $(verdict "$R_T_PR" 2.5 ge) | $M_T_PR: $(verdict "$M_T_PR" 2.5 ge) | ≥ 2.5 |
| PL/pgSQL overhead / floor overhead, int → bigint; text column (what PL/pgSQL / zdd can reach when zdd costs what the floor trigger does) | $R_RT_PF; $R_T_PF | $M_RT_PF; $M_T_PF | |

| backfill, int → bigint ($BIG rows; median (min–max) of $ROUNDS rounds, fresh tables each) | value |
|---|---|
| plain \`UPDATE t SET a_new = a\` | ${RB_PLAIN_S} s |
| zdd backfill + verification pass, unthrottled (batch 10000) | ${RB_PASS_S} s — ratio $R_RB (target ≤ 1.5: $(verdict "$R_RB" 1.5 le)) |
| … + twins (NOT NULL, primary key index) | ${RB_TOTAL_S} s — ratio $R_RB_TOTAL |
| rows out of step afterwards | $RB_MISMATCH |

| primary key int → bigint ($BIG rows, referenced by a $BIG-row table) | value |
|---|---|
| twins pass (unique index concurrently, NOT NULL, incoming FK validated) | ${PK_TWINS_S} s, no write-blocking lock |
| \`complete\`: both tables' ACCESS EXCLUSIVE held (from the statement's start to a waiting session's grant) | ${PK_COMPLETE_MS} ms (target ≤ 50 per table: $(verdict "$PK_COMPLETE_MS" 100 le) for two) |
| \`complete\`: the statement (also truncates the old primary key index's files, after the locks are released) | ${PK_COMPLETE_STMT} ms |
| afterwards | id $PK_CHECK |
MD
)
}

# ---------------------------------------------------------------- 7. health
# WAL written by a backfill vs one plain UPDATE of the same rows, and a
# streaming standby's replay lag (bytes between the primary's insert
# position and the standby's replay position, sampled every 100 ms)
# during each. The standby runs on the same machine from pg_basebackup -R.
lag_sampler() {  # lag_sampler FILE: samples until FILE.stop exists
  : > "$1"
  while [ ! -f "$1.stop" ]; do
    q "SELECT COALESCE(max(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), replay_lsn)), 0)::bigint FROM pg_stat_replication" >> "$1"
    sleep 0.1
  done
}
caught_up() {  # waits until the standby replayed everything written so far
  local target; target=$(q "SELECT pg_current_wal_insert_lsn()")
  until [ "$(q "SELECT bool_and(replay_lsn >= '$target') FROM pg_stat_replication")" = t ]; do sleep 0.1; done
}
mb() { awk '{printf "%.1f", $1 / 1048576}'; }
# rename_pair P: tables P_zdd (id, lastname, other; $BIG rows) and P_plain
# (the same rows, with an empty surname column) for a backfill vs a plain
# UPDATE side by side
rename_pair() {
psql -X -q -d postgres <<SQL
CREATE TABLE $1_zdd (id int PRIMARY KEY, lastname text NOT NULL, other int NOT NULL DEFAULT 0);
INSERT INTO $1_zdd SELECT g, 'name' || g, 0 FROM generate_series(1, $BIG) g;
CREATE TABLE $1_plain (LIKE $1_zdd INCLUDING ALL);
INSERT INTO $1_plain SELECT * FROM $1_zdd;
ALTER TABLE $1_plain ADD COLUMN surname text;
VACUUM ANALYZE $1_zdd, $1_plain;
SQL
}
lag_stats() {  # median and max of a sample file, in MB
  echo "$(sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' | mb) / $(sort -n "$1" | tail -1 | mb)"
}
health_section() {
start_standby "$DIR/standby" 55441 standby1
rename_pair hw
local l0 l1 sp id
caught_up; q "CHECKPOINT"; caught_up
l0=$(q "SELECT pg_current_wal_insert_lsn()")
rm -f "$DIR/lag_plain.txt.stop"; lag_sampler "$DIR/lag_plain.txt" & sp=$!
HW_PLAIN_MS=$(ms "UPDATE hw_plain SET surname = lastname")
l1=$(q "SELECT pg_current_wal_insert_lsn()")
caught_up; touch "$DIR/lag_plain.txt.stop"; wait $sp
HW_WAL_PLAIN=$(q "SELECT pg_wal_lsn_diff('$l1', '$l0')::bigint")
q "CHECKPOINT"; caught_up
l0=$(q "SELECT pg_current_wal_insert_lsn()")
rm -f "$DIR/lag_zdd.txt.stop"; lag_sampler "$DIR/lag_zdd.txt" & sp=$!
id=$(q "SELECT zdd.begin_rename('hw_zdd', 'lastname', 'surname')")
q "CALL zdd.wait($id, '60 min')" >/dev/null
l1=$(q "SELECT pg_current_wal_insert_lsn()")
caught_up; touch "$DIR/lag_zdd.txt.stop"; wait $sp
HW_WAL_ZDD=$(q "SELECT pg_wal_lsn_diff('$l1', '$l0')::bigint")
HW_ZDD_S=$(q "SELECT extract(epoch FROM backfill_finished_at - backfill_started_at)::numeric(10,1) FROM zdd.transition WHERE id = $id")
HW_WAITS=$(q "SELECT count(*) FROM zdd.history WHERE transition_id = $id AND to_state = 'waiting'")
HW_STANDBY_OFF=$(psql -X -A -t -q -p 55441 -d postgres -c "SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) FROM hw_zdd")
R_HW_WAL=$(ratio "$HW_WAL_ZDD" "$HW_WAL_PLAIN")
HW_LAG_PLAIN=$(lag_stats "$DIR/lag_plain.txt"); HW_LAG_ZDD=$(lag_stats "$DIR/lag_zdd.txt")
R_HW_LAG=$(ratio "$(sort -n "$DIR/lag_zdd.txt" | tail -1)" "$(sort -n "$DIR/lag_plain.txt" | tail -1)")
as_pg "$BIN/pg_ctl" -D "$DIR/standby" -m fast -w stop >/dev/null
echo "health done: WAL zdd $HW_WAL_ZDD plain $HW_WAL_PLAIN; lag zdd $HW_LAG_ZDD plain $HW_LAG_PLAIN MB"
HEALTH_MD=$(cat <<MD
## 7. WAL and a standby's replay lag ($BIG rows, a streaming standby on the same machine)

| | plain \`UPDATE t SET surname = lastname\` | zdd backfill at the default throttle (batch 500, pause 25 ms, zdd.max_replica_lag 100MB) |
|---|---|---|
| duration | $(awk -v m="$HW_PLAIN_MS" 'BEGIN{printf "%.1f", m/1000}') s | ${HW_ZDD_S} s (backfill, verify, twins) |
| WAL written | $(echo "$HW_WAL_PLAIN" | mb) MB | $(echo "$HW_WAL_ZDD" | mb) MB — ratio $R_HW_WAL |
| standby replay lag, median / max of 100 ms samples | $HW_LAG_PLAIN MB | $HW_LAG_ZDD MB — max ratio $R_HW_LAG |
| health waits during the backfill | | $HW_WAITS |
| rows out of step on the standby afterwards | | $HW_STANDBY_OFF |
MD
)
}
# ---------------------------------------------------------------- 8. partitions
# The same rows in one table and in 12 range partitions: backfill (and
# verify, twins) of a rename side by side, and complete's lock hold with 12
# partitions (one lock set: the parent and every partition), for a rename
# with an index on the column and for an int -> bigint primary key.
pt_tables() {  # pt_tables: pt_flat and pt_part ($BIG rows each), fresh
psql -X -q -d postgres <<SQL
DROP TABLE IF EXISTS pt_flat, pt_part;
CREATE TABLE pt_flat (id int NOT NULL, ts int NOT NULL, lastname text NOT NULL, PRIMARY KEY (id, ts));
CREATE TABLE pt_part (LIKE pt_flat INCLUDING ALL) PARTITION BY RANGE (ts);
SELECT format('CREATE TABLE pt_part_%s PARTITION OF pt_part FOR VALUES FROM (%s) TO (%s)', m, m, m + 1)
FROM generate_series(0, 11) m \gexec
INSERT INTO pt_flat SELECT g, g % 12, 'name' || g FROM generate_series(1, $BIG) g;
INSERT INTO pt_part SELECT * FROM pt_flat;
CREATE INDEX ON pt_flat (lastname);
CREATE INDEX ON pt_part (lastname);
VACUUM ANALYZE pt_flat, pt_part;
CHECKPOINT;
SQL
}
pt_times() {  # pt_times ID: "backfill+verify total" seconds of transition ID
q "SELECT extract(epoch FROM (SELECT max(at) FROM zdd.history WHERE transition_id = $1 AND detail IN ('verify pass finished', 'backfill and verify passes finished on every partition')) - t.backfill_started_at)::numeric(10,2),
  extract(epoch FROM t.backfill_finished_at - t.backfill_started_at)::numeric(10,2) FROM zdd.transition t WHERE id = $1" | tr '|' ' '
}
partition_section() {
local flat_pass="" flat_total="" part_pass="" part_total="" c_flat="" c_part="" c_pk="" id p t r h
PT_MISMATCH=0
for r in $(seq "$ROUNDS"); do
  pt_tables
  for v in flat part; do
    id=$(q "SELECT zdd.begin_rename('pt_$v', 'lastname', 'surname', batch_size => 10000, pause_ms => 0)")
    q "CALL zdd.wait($id, '30 min')" >/dev/null
    read -r p t < <(pt_times "$id")
    PT_MISMATCH=$((PT_MISMATCH + $(q "SELECT count(*) FROM pt_$v WHERE surname IS DISTINCT FROM lastname")))
    read -r h _ < <(hold "pt_$v" "SELECT zdd.complete($id)")
    if [ $v = flat ]; then flat_pass+="$p "; flat_total+="$t "; c_flat+="$h ";
    else part_pass+="$p "; part_total+="$t "; c_part+="$h "; fi
  done
  id=$(q "SELECT zdd.begin_retype('pt_part', 'id', 'bigint', batch_size => 10000, pause_ms => 0)")
  q "CALL zdd.wait($id, '30 min')" >/dev/null
  read -r h _ < <(hold pt_part "SELECT zdd.complete($id)")
  c_pk+="$h "
done
PT_FLAT_S=$(tr ' ' '\n' <<<"$flat_pass" | grep . | stats); PT_PART_S=$(tr ' ' '\n' <<<"$part_pass" | grep . | stats)
PT_FLAT_T=$(tr ' ' '\n' <<<"$flat_total" | grep . | stats); PT_PART_T=$(tr ' ' '\n' <<<"$part_total" | grep . | stats)
PT_C_FLAT=$(tr ' ' '\n' <<<"$c_flat" | grep . | stats); PT_C_PART=$(tr ' ' '\n' <<<"$c_part" | grep . | stats)
PT_C_PK=$(tr ' ' '\n' <<<"$c_pk" | grep . | stats)
R_PT=$(ratio "$(med "$PT_PART_S")" "$(med "$PT_FLAT_S")"); R_PT_T=$(ratio "$(med "$PT_PART_T")" "$(med "$PT_FLAT_T")")
PT_CHECK=$(q "SELECT string_agg(DISTINCT format_type(atttypid, atttypmod), ',') FROM pg_attribute WHERE attname = 'id' AND attrelid IN (SELECT relid FROM pg_partition_tree('pt_part'))")
echo "partitions done: flat $PT_FLAT_S part $PT_PART_S complete $PT_C_PART pk $PT_C_PK"
PARTITION_MD=$(cat <<MD
## 8. Partitioned tables ($BIG rows, 12 range partitions vs one table)

Rename of a text column with an index on it, unthrottled (batch 10000, pause 0); median (min–max) of $ROUNDS rounds, fresh tables each, the two variants back to back.

| | one table | 12 partitions | ratio | target |
|---|---|---|---|---|
| backfill + verification passes | ${PT_FLAT_S} s | ${PT_PART_S} s | $R_PT | ≤ 1.2: $(verdict "$R_PT" 1.2 le) |
| … + twins (NOT NULL, the index) | ${PT_FLAT_T} s | ${PT_PART_T} s | $R_PT_T | |
| \`complete\` of the rename: ACCESS EXCLUSIVE on every table held (statement start → a waiting session's grant), ms | ${PT_C_FLAT} ms | ${PT_C_PART} ms | | ≤ 50: $(verdict "$(med "$PT_C_PART")" 50 le) |
| \`complete\` of int → bigint on the primary key (id, ts) | | ${PT_C_PK} ms | | ≤ 50: $(verdict "$(med "$PT_C_PK")" 50 le) |
| rows out of step afterwards | | $PT_MISMATCH | | |
| id type afterwards, every partition | | $PT_CHECK | | |
MD
)
}

verdict() { [ "$1" = n/a ] && { echo "n/a (noise: an overhead came out ≤ 0)"; return; }
  awk -v x="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "le") ? (x <= t) : (x >= t); print ok ? "met" : "MISSED" }'; }
if [ -n "${ZDD_BENCH_ONLY_HEALTH:-}" ]; then
  q "CREATE EXTENSION zdd"
  health_section
  echo "$HEALTH_MD"
  exit 0
fi
if [ -n "${ZDD_BENCH_ONLY_PARTITIONS:-}" ]; then
  q "CREATE EXTENSION zdd"
  partition_section
  echo "$PARTITION_MD"
  exit 0
fi
if [ -n "${ZDD_BENCH_ONLY_RETYPE:-}" ]; then
  q "CREATE EXTENSION zdd"
  retype_section
  echo "$RETYPE_MD"
  exit 0
fi

# ---------------------------------------------------------------- 1. write path
psql -X -q -d postgres <<SQL
CREATE EXTENSION zdd;
CREATE TABLE w_none (id int PRIMARY KEY, lastname text NOT NULL, other int NOT NULL DEFAULT 0, surname text);
CREATE TABLE w_floor (LIKE w_none INCLUDING ALL);
CREATE TABLE w_plpgsql (LIKE w_none INCLUDING ALL);
CREATE TABLE w_zdd (id int PRIMARY KEY, lastname text NOT NULL, other int NOT NULL DEFAULT 0);
INSERT INTO w_none SELECT g, 'name' || g, 0, 'name' || g FROM generate_series(1, $BULK) g;
INSERT INTO w_floor SELECT * FROM w_none;
INSERT INTO w_plpgsql SELECT * FROM w_none;
INSERT INTO w_zdd SELECT id, lastname, other FROM w_none;
CREATE TRIGGER floor BEFORE UPDATE ON w_floor FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
-- The common hand-written approach: a PL/pgSQL sync trigger, same rules.
CREATE FUNCTION plpgsql_sync() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.surname IS NULL THEN NEW.surname := NEW.lastname;
    ELSIF NEW.lastname IS NULL THEN NEW.lastname := NEW.surname;
    ELSIF NEW.lastname IS DISTINCT FROM NEW.surname THEN RAISE EXCEPTION 'conflict'; END IF;
  ELSIF NEW.lastname IS DISTINCT FROM OLD.lastname AND NEW.surname IS NOT DISTINCT FROM OLD.surname THEN
    NEW.surname := NEW.lastname;
  ELSIF NEW.surname IS DISTINCT FROM OLD.surname AND NEW.lastname IS NOT DISTINCT FROM OLD.lastname THEN
    NEW.lastname := NEW.surname;
  ELSIF NEW.surname IS DISTINCT FROM NEW.lastname THEN
    IF NEW.lastname IS DISTINCT FROM OLD.lastname THEN RAISE EXCEPTION 'conflict'; END IF;
    NEW.surname := NEW.lastname;
  END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER sync BEFORE INSERT OR UPDATE ON w_plpgsql FOR EACH ROW EXECUTE FUNCTION plpgsql_sync();
SELECT FROM zdd.begin_rename('w_zdd', 'lastname', 'surname', start_backfill => false);
-- the same history for every table: one full update (zdd: brings every
-- row in step), then VACUUM, so that page layouts match
UPDATE w_none SET other = other; UPDATE w_floor SET other = other;
UPDATE w_plpgsql SET other = other; UPDATE w_zdd SET other = other;
VACUUM ANALYZE;
SQL
VARIANTS="none floor zdd plpgsql"
declare -A BULK_T BULK_OLD_T TPS_U TPS_I
for r in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    BULK_T[$v]+="$(ms "UPDATE w_$v SET other = other + 1") "
    BULK_OLD_T[$v]+="$(ms "UPDATE w_$v SET lastname = lastname || 'x'") "
    q "VACUUM w_$v"
  done
done
for v in $VARIANTS; do
  cat > "$DIR/u_$v.sql" <<SQL
\set id random(1, $BULK)
UPDATE w_$v SET other = other + 1 WHERE id = :id;
SQL
  cat > "$DIR/i_$v.sql" <<SQL
INSERT INTO w_$v (id, lastname) SELECT nextval('ins_$v') , 'ins';
SQL
  q "CREATE SEQUENCE ins_$v START $((BULK + 1))"
done
chmod 644 "$DIR"/*.sql
tps() { pgbench -n -M prepared -c 2 -j 2 -T "${TPS_SECONDS:-8}" -f "$1" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
for r in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    TPS_U[$v]+="$(tps "$DIR/u_$v.sql") "
    TPS_I[$v]+="$(tps "$DIR/i_$v.sql") "
  done
done
declare -A S_BULK S_OLD S_TU S_TI
for v in $VARIANTS; do
  S_BULK[$v]=$(tr ' ' '\n' <<<"${BULK_T[$v]}" | grep . | stats)
  S_OLD[$v]=$(tr ' ' '\n' <<<"${BULK_OLD_T[$v]}" | grep . | stats)
  S_TU[$v]=$(tr ' ' '\n' <<<"${TPS_U[$v]}" | grep . | stats)
  S_TI[$v]=$(tr ' ' '\n' <<<"${TPS_I[$v]}" | grep . | stats)
done
A=$(med "${S_BULK[none]}"); F=$(med "${S_BULK[floor]}"); B=$(med "${S_BULK[zdd]}"); C=$(med "${S_BULK[plpgsql]}")
OV_F=$(awk -v x="$F" -v a="$A" 'BEGIN{print x-a}'); OV_B=$(awk -v x="$B" -v a="$A" 'BEGIN{print x-a}'); OV_C=$(awk -v x="$C" -v a="$A" 'BEGIN{print x-a}')
R_ZF=$(ratio "$OV_B" "$OV_F"); R_CZ=$(ratio "$OV_C" "$OV_B")
R_TPS_U=$(ratio "$(med "${S_TU[zdd]}")" "$(med "${S_TU[none]}")")
R_TPS_I=$(ratio "$(med "${S_TI[zdd]}")" "$(med "${S_TI[none]}")")
echo "write path done: bulk none=$A floor=$F zdd=$B plpgsql=$C"

# ---------------------------------------------------------------- 2. backfill
rename_pair bf
PLAIN_MS=$(ms "UPDATE bf_plain SET surname = lastname")
ID=$(q "SELECT zdd.begin_rename('bf_zdd', 'lastname', 'surname', batch_size => 10000, pause_ms => 0)")
: > "$DIR/rss.txt"
while [ "$(q "SELECT phase FROM zdd.transition WHERE id = $ID")" != backfilled ]; do
  pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'zdd backfill' LIMIT 1")
  if [ -n "$pid" ]; then
    echo "$(q "SELECT rows_done + rows_verified FROM zdd.transition WHERE id = $ID") $(awk '/RssAnon/ {print $2}' /proc/$pid/status 2>/dev/null)" >> "$DIR/rss.txt"
  fi
  sleep 0.5
done
read -r BF_PASS_S BF_TOTAL_S < <(q "SELECT extract(epoch FROM (SELECT at FROM zdd.history WHERE transition_id = $ID AND detail = 'backfill pass finished') - t.backfill_started_at)::numeric(10,2),
  extract(epoch FROM t.backfill_finished_at - t.backfill_started_at)::numeric(10,2) FROM zdd.transition t WHERE id = $ID" | tr '|' ' ')
BF_MISMATCH=$(q "SELECT count(*) FROM bf_zdd WHERE surname IS DISTINCT FROM lastname")
PLAIN_S=$(awk -v m="$PLAIN_MS" 'BEGIN{printf "%.2f", m/1000}')
R_BF=$(ratio "$BF_PASS_S" "$PLAIN_S"); R_BF_TOTAL=$(ratio "$BF_TOTAL_S" "$PLAIN_S")
RSS_FIRST=$(awk 'NF==2 {print $2; exit}' "$DIR/rss.txt"); RSS_LAST=$(awk 'NF==2 {v=$2} END {print v}' "$DIR/rss.txt")
RSS_MAX=$(awk 'NF==2 && $2>m {m=$2} END {print m}' "$DIR/rss.txt")
echo "backfill done: pass ${BF_PASS_S}s total ${BF_TOTAL_S}s plain ${PLAIN_S}s"

# ---------------------------------------------------------------- 3. locks
# The ACCESS EXCLUSIVE lock of begin_rename / complete is held from its
# grant to the end of the statement's transaction (autocommit), measured
# by a waiting session (hold above); the statement's duration is shown too.
BEGIN_MS=""; COMPLETE_MS=""; BEGIN_STMT=""; COMPLETE_STMT=""
for r in $(seq "$ROUNDS"); do
  q "CREATE TABLE lk_$r AS SELECT g AS id, 'name' || g AS lastname FROM generate_series(1, $BIG) g; ALTER TABLE lk_$r ADD PRIMARY KEY (id), ALTER lastname SET NOT NULL; CREATE INDEX ON lk_$r (lastname)"
  q "VACUUM ANALYZE lk_$r"
  read -r h s < <(hold "lk_$r" "SELECT zdd.begin_rename('lk_$r', 'lastname', 'surname', batch_size => 20000, pause_ms => 0)")
  BEGIN_MS+="$h "; BEGIN_STMT+="$s "
  lid=$(q "SELECT id FROM zdd.transition WHERE tbl = 'lk_$r'::regclass")
  q "CALL zdd.wait($lid, '10 min')" >/dev/null
  read -r h s < <(hold "lk_$r" "SELECT zdd.complete($lid)")
  COMPLETE_MS+="$h "; COMPLETE_STMT+="$s "
  q "DROP TABLE lk_$r"
done
S_BEGIN=$(tr ' ' '\n' <<<"$BEGIN_MS" | grep . | stats); S_COMPLETE=$(tr ' ' '\n' <<<"$COMPLETE_MS" | grep . | stats)
S_BEGIN_STMT=$(tr ' ' '\n' <<<"$BEGIN_STMT" | grep . | stats); S_COMPLETE_STMT=$(tr ' ' '\n' <<<"$COMPLETE_STMT" | grep . | stats)
echo "locks done: begin $S_BEGIN complete $S_COMPLETE"

# ---------------------------------------------------------------- 4. foreground
psql -X -q -d postgres <<SQL
CREATE TABLE fg (id int PRIMARY KEY, lastname text NOT NULL, other int NOT NULL DEFAULT 0);
INSERT INTO fg SELECT g, 'name' || g, 0 FROM generate_series(1, $BIG) g;
VACUUM ANALYZE fg;
SQL
cat > "$DIR/fg.sql" <<SQL
\set id random(1, $BIG)
SELECT lastname FROM fg WHERE id = :id;
UPDATE fg SET other = other + 1 WHERE id = :id;
SQL
chmod 644 "$DIR/fg.sql"
FG_SECS=${FG_SECONDS:-20}
fg_run() {  # fg_run NAME: pgbench with per-transaction log in $DIR/NAME.log
  (cd "$DIR" && pgbench -n -M prepared -c 2 -j 2 -R 400 -T "$FG_SECS" -l --log-prefix="$DIR/$1" -f "$DIR/fg.sql" postgres >/dev/null 2>&1)
  cat "$DIR/$1".* > "$DIR/$1.log"
}
pct() { awk '{print $3/1000}' "$1" | sort -g | awk -v p="$2" '{a[NR]=$1} END {i=int(NR*p); if (i<1) i=1; printf "%.2f", a[i]}'; }
fg_run idle
FG_ID=$(q "SELECT zdd.begin_rename('fg', 'lastname', 'surname')")
: > "$DIR/progress.txt"
( start=$(date +%s.%N); while [ "$(q "SELECT backfill FROM zdd.status WHERE id = $FG_ID")" = running ]; do
    echo "$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN{printf "%.1f", n-s}') $(q "SELECT rows_done FROM zdd.transition WHERE id = $FG_ID")" >> "$DIR/progress.txt"; sleep 0.5; done ) &
PROG=$!
fg_run busy
DEFAULT_RATE=$(q "SELECT (rows_done / GREATEST(extract(epoch FROM now() - backfill_started_at), 0.001))::int FROM zdd.transition WHERE id = $FG_ID")
q "SELECT zdd.pause($FG_ID)" >/dev/null; kill $PROG 2>/dev/null || true
P50_IDLE=$(pct "$DIR/idle.log" 0.50); P99_IDLE=$(pct "$DIR/idle.log" 0.99)
P50_BUSY=$(pct "$DIR/busy.log" 0.50); P99_BUSY=$(pct "$DIR/busy.log" 0.99)
R_P99=$(ratio "$P99_BUSY" "$P99_IDLE"); R_P50=$(ratio "$P50_BUSY" "$P50_IDLE")
echo "foreground done: p99 idle $P99_IDLE busy $P99_BUSY"

# latency per second during the busy run, for the plot
awk '{s=$5; lat[s]+=$3/1000; n[s]++} END {for (k in n) print k, lat[k]/n[k]}' "$DIR/busy.log" | sort -n |
  awk 'NR==1 {t0=$1} {print $1-t0, $2}' > "$DIR/latency.txt"
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal png size 900,500
set output "$DIR/backfill.png"
set title "zdd: default-throttled backfill of $BIG rows under a read/write load"
set xlabel "seconds"
set ylabel "rows backfilled"
set y2label "foreground latency, ms (mean per second)"
set ytics nomirror
set y2tics
set key left top
plot "$DIR/progress.txt" using 1:2 with lines lw 2 title "rows backfilled", \
     "$DIR/latency.txt" using 1:2 axes x1y2 with lines title "pgbench latency (ms)"
GP
  cp "$DIR/backfill.png" "$OUT_DIR/backfill.png"
fi

# ---------------------------------------------------------------- 5. scale (opt-in)
SCALE_LINE="not run (set ZDD_BENCH_SCALE=10000000 to run it)"
if [ -n "${ZDD_BENCH_SCALE:-}" ]; then
  q "CREATE TABLE sc (id int PRIMARY KEY, lastname text NOT NULL); INSERT INTO sc SELECT g, 'name' || g FROM generate_series(1, $ZDD_BENCH_SCALE) g"
  q "VACUUM ANALYZE sc"
  SID=$(q "SELECT zdd.begin_rename('sc', 'lastname', 'surname', batch_size => 20000, pause_ms => 0)")
  : > "$DIR/scale.txt"
  while [ "$(q "SELECT phase FROM zdd.transition WHERE id = $SID")" != backfilled ]; do
    pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'zdd backfill' LIMIT 1")
    [ -n "$pid" ] && awk '/RssAnon/ {print $2}' /proc/$pid/status >> "$DIR/scale.txt" 2>/dev/null
    sleep 2
  done
  SCALE_LINE="$ZDD_BENCH_SCALE rows backfilled in $(q "SELECT extract(epoch FROM backfill_finished_at - backfill_started_at)::int FROM zdd.transition WHERE id = $SID") s; worker RssAnon min/max $(sort -n "$DIR/scale.txt" | head -1)/$(sort -n "$DIR/scale.txt" | tail -1) kB over $(wc -l < "$DIR/scale.txt") samples"
fi

retype_section
health_section
partition_section

# ---------------------------------------------------------------- results
cat > "$OUT_DIR/RESULTS.md" <<MD
# zdd benchmark results

- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB
- PostgreSQL: $(q "SELECT version()" | cut -d, -f1)
- Reproduce: \`make bench\` (rounds: $ROUNDS, interleaved; figures are median (min–max)).
  Settings: shared_buffers 1GB, synchronous_commit off, autovacuum off (so zdd.max_dead_tuples = 0:
  with no vacuum, the dead-tuple signal would hold a backfill forever).

## 1. Write path of the sync trigger ($BULK rows)

| variant | bulk \`UPDATE SET other = other + 1\` ms | bulk \`UPDATE SET lastname = lastname \|\| 'x'\` ms | single-row UPDATE TPS (2 clients) | single-row INSERT TPS (2 clients) |
|---|---|---|---|---|
| (a) no trigger | ${S_BULK[none]} | ${S_OLD[none]} | ${S_TU[none]} | ${S_TI[none]} |
| (f) floor: suppress_redundant_updates_trigger | ${S_BULK[floor]} | ${S_OLD[floor]} | ${S_TU[floor]} | ${S_TI[floor]} |
| (b) zdd sync trigger | ${S_BULK[zdd]} | ${S_OLD[zdd]} | ${S_TU[zdd]} | ${S_TI[zdd]} |
| (c) PL/pgSQL sync trigger | ${S_BULK[plpgsql]} | ${S_OLD[plpgsql]} | ${S_TU[plpgsql]} | ${S_TI[plpgsql]} |

| ratio (medians) | value | target | |
|---|---|---|---|
| zdd overhead / floor overhead (bulk) | $R_ZF | ≤ 1.25 | $(verdict "$R_ZF" 1.25 le) |
| PL/pgSQL overhead / zdd overhead (bulk) | $R_CZ | ≥ 2 | $(verdict "$R_CZ" 2 ge) |
| single-row UPDATE TPS zdd / none | $R_TPS_U | ≥ 0.97 | $(verdict "$R_TPS_U" 0.97 ge) |
| single-row INSERT TPS zdd / none | $R_TPS_I | ≥ 0.97 | $(verdict "$R_TPS_I" 0.97 ge) |

## 2. Backfill ($BIG rows)

| | value |
|---|---|
| plain \`UPDATE t SET surname = lastname\` | ${PLAIN_S} s |
| zdd backfill pass, unthrottled (batch 10000, pause 0) | ${BF_PASS_S} s — ratio $R_BF (target ≤ 2.0: $(verdict "$R_BF" 2.0 le)) |
| zdd backfill + verification pass + twins | ${BF_TOTAL_S} s — ratio $R_BF_TOTAL |
| rows out of step afterwards | $BF_MISMATCH |
| rows/s at the default throttle (batch 500, pause 25 ms), under the foreground load of section 4 | $DEFAULT_RATE |
| worker private memory (RssAnon) during the run (first / last / max sample) | ${RSS_FIRST:-?} / ${RSS_LAST:-?} / ${RSS_MAX:-?} kB |

## 3. ACCESS EXCLUSIVE hold ($BIG-row table with an index on the column)

Held: from the start of the autocommit statement that takes the lock to the
moment a session queued behind it is granted its lock (an upper bound: it
includes the statement's work before the lock). The statement's own
duration also counts what PostgreSQL does at commit after releasing the
locks (truncating the files of the indexes complete dropped).

| call | held, ms | statement, ms | target (held) |
|---|---|---|---|
| begin_rename | $S_BEGIN | $S_BEGIN_STMT | ≤ 50: $(verdict "$(med "$S_BEGIN")" 50 le) |
| complete (after the twins exist) | $S_COMPLETE | $S_COMPLETE_STMT | ≤ 50: $(verdict "$(med "$S_COMPLETE")" 50 le) |

## 4. Foreground latency (pgbench read+update by id, 2 clients, 400 tx/s, ${FG_SECS} s)

| | p50 ms | p99 ms |
|---|---|---|
| idle (no zdd) | $P50_IDLE | $P99_IDLE |
| during a default-throttled backfill (sync trigger + worker) | $P50_BUSY | $P99_BUSY |
| ratio | $R_P50 | $R_P99 (target ≤ 1.3: $(verdict "$R_P99" 1.3 le)) |

![backfill progress and foreground latency](backfill.png)

## 5. Scale

$SCALE_LINE

$RETYPE_MD

$HEALTH_MD

$PARTITION_MD
MD
cat "$OUT_DIR/RESULTS.md"
