-- The backfill's keyset cursor survives between batches as text: it must
-- read back as exactly the key it was written from, whatever the worker
-- role's output settings (extra_float_digits, DateStyle, IntervalStyle).
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- transition ids start at 6001 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 6000) AS _ \gset
CREATE ROLE zdd_lossy LOGIN;
CREATE SCHEMA lossy AUTHORIZATION zdd_lossy;
-- the worker connects as zdd_lossy and so runs with these settings
ALTER ROLE zdd_lossy SET extra_float_digits = -10;
ALTER ROLE zdd_lossy SET DateStyle = 'SQL, DMY';
ALTER ROLE zdd_lossy SET IntervalStyle = 'sql_standard';
SET ROLE zdd_lossy;
-- float keys a 5-digit output would round UP past their neighbours
CREATE TABLE lossy.f (k float8 PRIMARY KEY, lastname text);
INSERT INTO lossy.f SELECT 1.4999 + g * 1e-9, 'n' || g FROM generate_series(1, 50) g;
INSERT INTO lossy.f SELECT 2 + g, 'm' || g FROM generate_series(1, 50) g;
-- timestamp and interval keys (composite)
CREATE TABLE lossy.ts (at timestamp, span interval, lastname text, PRIMARY KEY (at, span));
INSERT INTO lossy.ts SELECT timestamp '2026-01-01 00:00:00.000001' + g * interval '1 day 1 microsecond',
       g * interval '1 mon 1 day 1.5 s', 'n' || g FROM generate_series(1, 80) g;
-- key columns named like the batch statement's own names
CREATE TABLE lossy.names (zdd_cursor int, l text, zdd_rows int, zdd_off int, zdd_k1 int, lastname text,
                          PRIMARY KEY (l, zdd_cursor, zdd_rows, zdd_off, zdd_k1));
INSERT INTO lossy.names SELECT g % 3, 'x' || (g / 3), g % 2, g % 5, -g, 'n' || g FROM generate_series(1, 90) g;
SELECT zdd.begin_rename('lossy.f', 'lastname', 'surname', batch_size => 1, pause_ms => 0) AS f \gset
SELECT zdd.begin_rename('lossy.ts', 'lastname', 'surname', batch_size => 3, pause_ms => 0) AS t \gset
SELECT zdd.begin_rename('lossy.names', 'lastname', 'surname', batch_size => 7, pause_ms => 0) AS n \gset
CALL zdd.wait(:f, '60 s');
CALL zdd.wait(:n, '60 s');
CALL zdd.wait(:t, '60 s');
-- every row visited once by each pass, none skipped, none out of step
SELECT "table", phase, backfill, rows_done, rows_written, verify_fixed, last_error
FROM zdd.status WHERE id IN (:f, :t, :n) ORDER BY id;
SELECT rows_verified FROM zdd.transition WHERE id IN (:f, :t, :n) ORDER BY id;
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches, count(*) FROM lossy.f;
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches, count(*) FROM lossy.ts;
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches, count(*) FROM lossy.names;
SELECT count(zdd.abort(id)) FROM zdd.transition WHERE id IN (:f, :t, :n);
RESET ROLE;
-- zdd.last: the last non-null value in the order the rows come (the
-- batch's last key, read in key order)
SELECT zdd.last(x) FROM (SELECT x FROM generate_series(1, 5) x ORDER BY x DESC) s;
SELECT zdd.last(x) FROM (VALUES ('b'::text), (NULL), ('a'), (NULL)) v(x);
SELECT zdd.last(x) IS NULL AS none FROM (SELECT 1 WHERE false) s(x);
DROP SCHEMA lossy CASCADE;
DROP ROLE zdd_lossy;
