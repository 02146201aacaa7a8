-- Health and watching: the health settings and per-transition limits (bad
-- values: 22023, nothing changed), zdd.ready(), NOTIFY zdd payloads, the
-- LOG line format, and backfills that wait — for dead tuples, for an old
-- open transaction — writing nothing, then go on by themselves.
-- (Replica lag, autovacuum and archive backlog: test/t/003_health.pl.)
-- A UTF8 database of its own: the LOG lines' arrow is → there.
\set SHOW_CONTEXT never
CREATE DATABASE zdd_health ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c zdd_health
CREATE EXTENSION zdd;
-- a waiting backfill checks again every 200 ms (the worker reloads)
ALTER SYSTEM SET zdd.health_recheck = 200;
SELECT pg_reload_conf();

-- 1. settings: cluster policy (PGC_SIGHUP), checked when set
ALTER SYSTEM SET zdd.max_replica_lag = -1;
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET zdd.max_dead_tuples = -0.5;
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET zdd.max_archive_backlog = 'many';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET zdd.wait_for_autovacuum = 'maybe';
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET zdd.health_recheck = 0;
\echo :LAST_ERROR_SQLSTATE
SET zdd.max_replica_lag = '1GB';
\echo :LAST_ERROR_SQLSTATE
SELECT name, setting, unit, context FROM pg_settings
WHERE name IN ('zdd.max_replica_lag', 'zdd.max_replica_delay', 'zdd.max_archive_backlog',
               'zdd.max_dead_tuples', 'zdd.wait_for_autovacuum', 'zdd.max_transaction_age')
ORDER BY name;

-- 2. per-transition limits through zdd.throttle: each bad value 22023,
-- nothing changed
CREATE TABLE h (id int PRIMARY KEY, lastname text NOT NULL);
INSERT INTO h SELECT g, 'n' || g FROM generate_series(1, 100) g;
SELECT zdd.begin_rename('h', 'lastname', 'surname', start_backfill => false) AS h \gset
SELECT zdd.throttle(:h, max_replica_lag => 'lots');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:h, max_replica_lag => '-1MB');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:h, max_replica_delay => '-1 s');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:h, max_archive_backlog => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:h, max_dead_tuples => -0.1);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:h, max_dead_tuples => 'NaN');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:h, max_transaction_age => '-1 h');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:h, batch_size => 10, max_replica_lag => '1GB', max_dead_tuples => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT batch_size, max_replica_lag, max_replica_delay_ms, max_archive_backlog, max_dead_tuples,
       wait_for_autovacuum, max_transaction_age_s FROM zdd.transition WHERE id = :h;
SELECT zdd.throttle('h', 'lastname', max_replica_lag => '1GB', max_replica_delay => '30 s',
                    max_archive_backlog => 0, max_dead_tuples => 2, wait_for_autovacuum => false,
                    max_transaction_age => '1 h');
SELECT batch_size, max_replica_lag, max_replica_delay_ms, max_archive_backlog, max_dead_tuples,
       wait_for_autovacuum, max_transaction_age_s FROM zdd.transition WHERE id = :h;

-- 3. zdd.ready: false until backfilled; the old name never; unknown false
SELECT zdd.ready('h', 'surname') AS before, zdd.ready('h', 'lastname') AS old_name,
       zdd.ready('h', 'nosuch') AS unknown;
SELECT zdd.resume(:h);
CALL zdd.wait(:h, '60 s');
SELECT zdd.ready('h', 'surname') AS backfilled, zdd.ready('h', 'lastname') AS old_name;
SELECT zdd.complete(:h);
SELECT zdd.ready('h', 'surname') AS completed;
-- an aborted transition's column is not ready; a retype keeping the name
-- is ready once completed only
CREATE TABLE hr (id int PRIMARY KEY, lastname text NOT NULL, qty int NOT NULL DEFAULT 1);
INSERT INTO hr SELECT g, 'n' || g, g FROM generate_series(1, 100) g;
SELECT zdd.begin_rename('hr', 'lastname', 'surname') AS hr \gset
CALL zdd.wait(:hr, '60 s');
SELECT zdd.abort(:hr);
SELECT zdd.ready('hr', 'surname') AS aborted;
SELECT zdd.begin_retype('hr', 'qty', 'bigint') AS hq \gset
CALL zdd.wait(:hq, '60 s');
SELECT zdd.ready('hr', 'qty') AS retype_backfilled;
SELECT zdd.complete(:hq);
SELECT zdd.ready('hr', 'qty') AS retype_completed;
-- ready needs no rights beyond reading the table
CREATE ROLE zdd_health_app;
GRANT SELECT ON h TO zdd_health_app;
SET ROLE zdd_health_app;
SELECT zdd.ready('h', 'surname') AS app_reads;
RESET ROLE;

-- 4. NOTIFY zdd: one payload per change of phase or backfill state, sent
-- at commit (written by psql to a file here, the PIDs masked)
\getenv abs_builddir PG_ABS_BUILDDIR
\set notify_file :abs_builddir '/results/zdd_health_notify.txt'
CREATE TABLE n (id int PRIMARY KEY, lastname text NOT NULL);
INSERT INTO n VALUES (1, 'a');
SELECT pg_catalog.setval('zdd.transition_id_seq', 4100) AS _ \gset
LISTEN zdd;
\o :notify_file
SELECT zdd.begin_rename('n', 'lastname', 'surname', start_backfill => false);
-- a rolled-back change sends nothing
BEGIN;
SELECT zdd.abort(4101);
ROLLBACK;
SELECT zdd.throttle(4101, batch_size => 7);
SELECT zdd.abort(4101);
\o
UNLISTEN zdd;
SELECT regexp_replace(l, 'PID \d+', 'PID N') AS notification
FROM regexp_split_to_table(pg_read_file(:'notify_file'), E'\n') WITH ORDINALITY AS x(l, o)
WHERE l LIKE 'Asynchronous notification%' ORDER BY o;

-- 5. the LOG lines (sent to this client too at client_min_messages = log)
CREATE TABLE lg (id int PRIMARY KEY, lastname text NOT NULL);
SET client_min_messages = log;
SELECT zdd.begin_rename('lg', 'lastname', 'surname', start_backfill => false) IS NOT NULL AS begun;
SELECT zdd.abort('lg', 'lastname');
-- a subtransaction rolled back takes its LOG lines with it
BEGIN;
SAVEPOINT s;
SELECT zdd.begin_rename('lg', 'lastname', 'surname', start_backfill => false) IS NOT NULL AS begun;
ROLLBACK TO SAVEPOINT s;
COMMIT;
RESET client_min_messages;

-- 6. dead tuples: a table whose dead tuples outnumber half its live ones
-- (autovacuum off) makes the backfill wait; VACUUM lets it go on
CREATE TABLE dead (id int PRIMARY KEY, lastname text NOT NULL) WITH (autovacuum_enabled = false);
INSERT INTO dead SELECT g, 'n' || g FROM generate_series(1, 120000) g;
UPDATE dead SET lastname = lastname;
SELECT pg_stat_force_next_flush();
SELECT zdd.begin_rename('dead', 'lastname', 'surname', batch_size => 5000, pause_ms => 0,
                        start_backfill => false) AS d \gset
SELECT zdd.throttle(:d, max_dead_tuples => 0.5);
SELECT zdd.resume(:d);
-- polls zdd.transition until cond holds for transition id (60 s at most;
-- not zdd.status: its worker column reads pg_stat_activity, which a
-- transaction sees frozen at its first read)
CREATE FUNCTION wait_for(id bigint, cond text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '60 s';
  ok boolean;
BEGIN
  LOOP
    EXECUTE format('SELECT %s FROM zdd.transition WHERE id = %s', cond, id) INTO ok;
    EXIT WHEN ok OR clock_timestamp() > deadline;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN ok;
END $$;
SELECT wait_for(:d, $$backfill_state = 'waiting'$$);
SELECT wait_reason ~ '^dead tuples \d+% of live > 50% \(\d+ dead\)$' AS reason_ok, rows_done, rows_written
FROM zdd.status WHERE id = :d;
SELECT count(*) FILTER (WHERE surname IS NOT NULL) AS written FROM dead;
SELECT value FROM zdd.metrics WHERE id = :d AND metric = 'waiting';
VACUUM dead;
SELECT wait_for(:d, 'rows_done > 0') AS goes_on;
-- its own writes would make it wait again with autovacuum off: turn the
-- signal off for this transition and let it finish
SELECT zdd.throttle(:d, max_dead_tuples => 0);
CALL zdd.wait(:d, '120 s');
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS out_of_step FROM dead;
SELECT from_state, to_state, detail ~ '^dead tuples' AS reason FROM zdd.history
WHERE transition_id = :d AND event = 'backfill' AND from_state IS DISTINCT FROM to_state
ORDER BY id LIMIT 3;
SELECT waited > interval '0' AS waited FROM zdd.status WHERE id = :d;

-- 7. an open transaction older than max_transaction_age: wait until it ends
CREATE TABLE old (id int PRIMARY KEY, lastname text NOT NULL);
INSERT INTO old SELECT g, 'n' || g FROM generate_series(1, 2000) g;
SELECT zdd.begin_rename('old', 'lastname', 'surname', batch_size => 10, pause_ms => 100) AS o \gset
SELECT zdd.throttle(:o, max_transaction_age => '1 s');
BEGIN;
SELECT wait_for(:o, $$backfill_state = 'waiting'$$);
SELECT wait_reason ~ '^transaction of pid \d+ open \d+ s > 1 s$' AS reason_ok FROM zdd.status WHERE id = :o;
COMMIT;
SELECT wait_for(:o, $$backfill_state = 'running'$$);
SELECT zdd.throttle(:o, batch_size => 1000, pause_ms => 0);
CALL zdd.wait(:o, '60 s');
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS out_of_step FROM old;

-- 8. abort while waiting ends the wait (no reason left, the time counted)
CREATE TABLE ab (id int PRIMARY KEY, lastname text NOT NULL);
INSERT INTO ab SELECT g, 'n' || g FROM generate_series(1, 2000) g;
SELECT zdd.begin_rename('ab', 'lastname', 'surname', batch_size => 10, pause_ms => 100,
                        start_backfill => false) AS a \gset
SELECT zdd.throttle(:a, max_transaction_age => '1 s');
SELECT zdd.resume(:a);
BEGIN;
SELECT wait_for(:a, $$backfill_state = 'waiting'$$);
SELECT zdd.abort(:a);
COMMIT;
SELECT phase, backfill_state, wait_reason, waiting_since, waited > interval '0' AS waited
FROM zdd.transition WHERE id = :a;
SELECT backfill, wait_reason FROM zdd.status WHERE id = :a;

ALTER SYSTEM RESET zdd.health_recheck;
SELECT pg_reload_conf();
\c regression
DROP DATABASE zdd_health;
DROP ROLE zdd_health_app;
