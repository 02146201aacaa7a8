-- The background backfill: key kinds, empty tables, steering, triggers.
\set SHOW_CONTEXT never
-- transition ids start at 1001 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 1000) AS _ \gset
CREATE TABLE single (id int PRIMARY KEY, lastname text NOT NULL);
INSERT INTO single SELECT g, 'n' || g FROM generate_series(1, 5000) g;
CREATE TABLE composite (a int, b text, lastname text, PRIMARY KEY (b, a));
INSERT INTO composite SELECT g % 7, 'k' || (g % 500), 'n' || g FROM generate_series(1, 3000) g;
CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, lastname text);
INSERT INTO ident (lastname) SELECT 'n' || g FROM generate_series(1, 2000) g;
CREATE TABLE nopk (lastname text, other int);
INSERT INTO nopk SELECT 'n' || g, g FROM generate_series(1, 3000) g;
CREATE TABLE empty (id int PRIMARY KEY, lastname text);
-- another trigger on the table must not fire for backfilled rows
CREATE TABLE audit (n int);
INSERT INTO audit VALUES (0);
CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE audit SET n = n + 1; RETURN NEW; END $$;
CREATE TRIGGER audit_upd AFTER UPDATE ON single FOR EACH ROW EXECUTE FUNCTION count_update();
SELECT zdd.begin_rename('single', 'lastname', 'surname', batch_size => 700, pause_ms => 0) AS s \gset
SELECT zdd.begin_rename('composite', 'lastname', 'surname', batch_size => 400, pause_ms => 0) AS c \gset
SELECT zdd.begin_rename('ident', 'lastname', 'surname', batch_size => 300, pause_ms => 0) AS i \gset
SELECT zdd.begin_rename('nopk', 'lastname', 'surname', batch_size => 500, pause_ms => 0) AS n \gset
SELECT zdd.begin_rename('empty', 'lastname', 'surname', pause_ms => 0) AS e \gset
CALL zdd.wait(:s, '60 s');
CALL zdd.wait(:c, '60 s');
CALL zdd.wait(:i, '60 s');
CALL zdd.wait(:n, '60 s');
CALL zdd.wait(:e, '60 s');
SELECT 'single' AS t, count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches, count(*) FROM single
UNION ALL SELECT 'composite', count(*) FILTER (WHERE surname IS DISTINCT FROM lastname), count(*) FROM composite
UNION ALL SELECT 'ident', count(*) FILTER (WHERE surname IS DISTINCT FROM lastname), count(*) FROM ident
UNION ALL SELECT 'nopk', count(*) FILTER (WHERE surname IS DISTINCT FROM lastname), count(*) FROM nopk
UNION ALL SELECT 'empty', count(*) FILTER (WHERE surname IS DISTINCT FROM lastname), count(*) FROM empty;
SELECT n AS audit_trigger_fired FROM audit;
SELECT "table", phase, backfill, percent, verify_fixed, last_error
FROM zdd.status WHERE id IN (:s, :c, :i, :n, :e) ORDER BY id;
SELECT "table", rows_done, rows_written FROM zdd.status WHERE id IN (:s, :c, :i, :e) ORDER BY id;
-- the history of a backfill
SELECT event, from_state, to_state, detail FROM zdd.history WHERE transition_id = :s ORDER BY id;
-- start_backfill => false, then resume; pause/resume/throttle while running
CREATE TABLE later (id int PRIMARY KEY, lastname text);
INSERT INTO later SELECT g, 'n' || g FROM generate_series(1, 3000) g;
SELECT zdd.begin_rename('later', 'lastname', 'surname', start_backfill => false) AS l \gset
SELECT phase, backfill FROM zdd.status WHERE id = :l;
CALL zdd.wait(:l, '1 s');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.resume(:l);
SELECT zdd.pause(:l);
SELECT phase, backfill FROM zdd.status WHERE id = :l;
CALL zdd.wait(:l, '1 s');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:l, batch_size => 250, pause_ms => 0, max_rows_per_sec => 0, target_batch_ms => 50);
SELECT batch_size, pause_ms, max_rows_per_sec, target_batch_ms FROM zdd.transition WHERE id = :l;
SELECT zdd.resume(:l);
CALL zdd.wait(:l, '60 s');
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches FROM later;
SELECT zdd.pause(:l);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.resume(:l);
\echo :LAST_ERROR_SQLSTATE
-- rows left out of step by writes that bypassed the trigger are fixed
CREATE TABLE bypass (id int PRIMARY KEY, lastname text);
INSERT INTO bypass SELECT g, 'n' || g FROM generate_series(1, 100) g;
SELECT zdd.begin_rename('bypass', 'lastname', 'surname', start_backfill => false) AS b \gset
UPDATE bypass SET lastname = lastname WHERE id <= 10;
SET session_replication_role = replica;
UPDATE bypass SET surname = 'stale' WHERE id <= 3;
RESET session_replication_role;
SELECT count(*) FILTER (WHERE surname = 'stale') AS stale FROM bypass;
SELECT zdd.resume(:b);
CALL zdd.wait(:b, '60 s');
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches FROM bypass;
SELECT backfill, rows_written FROM zdd.status WHERE id = :b;
-- ... and a row a bypassing write leaves out of step during the verify
-- pass (which reads without writing) is fixed by that pass
CREATE TABLE bypass_v (id int PRIMARY KEY, lastname text);
INSERT INTO bypass_v SELECT g, 'n' || g FROM generate_series(1, 100) g;
SELECT zdd.begin_rename('bypass_v', 'lastname', 'surname', batch_size => 10, pause_ms => 200) AS v \gset
CREATE FUNCTION wait_pass(id bigint, want text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE deadline timestamptz := clock_timestamp() + interval '60 s'; got text;
BEGIN
  LOOP
    SELECT t.pass INTO got FROM zdd.transition t WHERE t.id = wait_pass.id;
    EXIT WHEN got = want OR clock_timestamp() > deadline;
    PERFORM pg_sleep(0.02);
  END LOOP;
  RETURN got;
END $$;
SELECT wait_pass(:v, 'verify');
SET session_replication_role = replica;
UPDATE bypass_v SET surname = 'stale' WHERE id = 100;
RESET session_replication_role;
CALL zdd.wait(:v, '60 s');
SELECT surname FROM bypass_v WHERE id = 100;
SELECT verify_fixed, rows_written FROM zdd.status WHERE id = :v;
DROP FUNCTION wait_pass(bigint, text);
SELECT count(zdd.abort(id)) FROM zdd.transition WHERE phase NOT IN ('completed', 'aborted');
DROP TABLE single, composite, ident, nopk, empty, audit, later, bypass, bypass_v;
DROP FUNCTION count_update();
