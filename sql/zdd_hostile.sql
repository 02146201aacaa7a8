-- Odd tables and hostile settings (issue 8): each case either works with
-- no row lost, or is refused up front with a clear SQLSTATE and nothing
-- changed.
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- transition ids start at 7001 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 7000) AS _ \gset

-- 2. inheritance: a parent with children, and a child, are refused
CREATE TABLE meas (id int PRIMARY KEY, city text);
CREATE TABLE meas_c () INHERITS (meas);
INSERT INTO meas VALUES (1, 'a');
INSERT INTO meas_c SELECT g, 'c' || g FROM generate_series(2, 50) g;
SELECT zdd.begin_rename('meas', 'city', 'town');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('meas_c', 'city', 'town');
\echo :LAST_ERROR_SQLSTATE
-- temporary tables and tables with rules are refused
CREATE TEMP TABLE tmp (id int PRIMARY KEY, a text);
SELECT zdd.begin_rename('tmp', 'a', 'b');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE ruled (id int PRIMARY KEY, a text);
CREATE TABLE ruled_log (id int);
CREATE RULE ruled_upd AS ON UPDATE TO ruled DO ALSO INSERT INTO ruled_log VALUES (NEW.id);
SELECT zdd.begin_rename('ruled', 'a', 'b');
\echo :LAST_ERROR_SQLSTATE
-- 4. FORCE ROW LEVEL SECURITY that filters the owner's view: refused
CREATE ROLE zdd_tenant_owner LOGIN;
CREATE TABLE tenants (id int PRIMARY KEY, tenant text, lastname text);
INSERT INTO tenants SELECT g, 't' || (g % 3), 'n' || g FROM generate_series(1, 300) g;
ALTER TABLE tenants OWNER TO zdd_tenant_owner;
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY only_t1 ON tenants USING (tenant = 't1');
SET ROLE zdd_tenant_owner;
SELECT zdd.begin_rename('tenants', 'lastname', 'surname');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- nothing changed by any of those
SELECT count(*) AS transitions FROM zdd.transition WHERE id BETWEEN 7001 AND 7999;
SELECT attrelid::regclass, attname FROM pg_attribute
WHERE attrelid IN ('meas'::regclass, 'meas_c'::regclass, 'ruled'::regclass, 'tenants'::regclass)
  AND attname IN ('town', 'b', 'surname');
-- FORCE added during the transition: the backfill fails with the reason,
-- it never reports backfilled with rows it could not see
ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY;
SET ROLE zdd_tenant_owner;
SELECT zdd.begin_rename('tenants', 'lastname', 'surname', batch_size => 10, pause_ms => 200) AS rls \gset
RESET ROLE;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CALL zdd.wait(:rls, '60 s');
SELECT phase, backfill, last_error LIKE '%row-level security%' AS rls_named FROM zdd.status WHERE id = :rls;
SELECT zdd.complete(:rls);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE tenants NO FORCE ROW LEVEL SECURITY;
SELECT zdd.abort(:rls);

-- 3. zdd.side = 'new' never invents a write: a statement that wrote
-- neither column leaves the old one alone, and an INSERT that leaves the
-- old column at its default keeps the default
CREATE TABLE cust (id int PRIMARY KEY, lastname text DEFAULT 'anon', note text);
INSERT INTO cust SELECT g, 'n' || g, '' FROM generate_series(1, 5) g;
SELECT zdd.begin_rename('cust', 'lastname', 'surname', start_backfill => false) AS side \gset
SET zdd.side = 'new';
UPDATE cust SET note = 'x' WHERE id <= 2;
INSERT INTO cust (id, note) VALUES (6, 'default');
-- the new app writes the new column: it wins over nothing
UPDATE cust SET surname = 'new3' WHERE id = 3;
-- both written and different: the declared side settles it
UPDATE cust SET surname = 'new4', lastname = 'old4' WHERE id = 4;
INSERT INTO cust (id, lastname, surname) VALUES (7, 'old7', 'new7');
SET zdd.side = 'old';
UPDATE cust SET surname = 'new5', lastname = 'old5' WHERE id = 5;
RESET zdd.side;
SELECT id, lastname, surname, note FROM cust ORDER BY id;
SELECT zdd.abort(:side);

-- 9. the trigger's cache survives both columns changing type (a by-value
-- default cached, then a by-reference one)
CREATE TABLE retyped (id int PRIMARY KEY, a int DEFAULT 5);
SELECT zdd.begin_rename('retyped', 'a', 'b', start_backfill => false) AS retyped \gset
INSERT INTO retyped (id) VALUES (1);
-- (zdd's guard refuses this DDL during a transition: a superuser bypasses
-- event triggers with session_replication_role = replica)
SET session_replication_role = replica;
ALTER TABLE retyped ALTER COLUMN a TYPE text, ALTER COLUMN b TYPE text;
RESET session_replication_role;
INSERT INTO retyped (id) VALUES (2);
INSERT INTO retyped (id, b) VALUES (3, 'three');
SELECT * FROM retyped ORDER BY id;
SELECT zdd.abort(:retyped);

-- 11. extension-type primary keys walk with their own operators
CREATE EXTENSION citext;
CREATE EXTENSION isn;
CREATE TABLE ci (k citext PRIMARY KEY, lastname text);
INSERT INTO ci SELECT 'Key' || g, 'n' || g FROM generate_series(1, 300) g;
CREATE TABLE ean (k ean13 PRIMARY KEY, lastname text);
-- valid EAN-13 numbers: 12 digits and their check digit
INSERT INTO ean SELECT (d || (10 - (SELECT sum(substr(d, i, 1)::int * CASE WHEN i % 2 = 0 THEN 3 ELSE 1 END)
                                   FROM generate_series(1, 12) i) % 10) % 10)::ean13, 'n' || g
FROM (SELECT g, '978' || lpad(g::text, 9, '0') AS d FROM generate_series(1, 200) g) s;
SELECT zdd.begin_rename('ci', 'lastname', 'surname', batch_size => 7, pause_ms => 0) AS ci \gset
SELECT zdd.begin_rename('ean', 'lastname', 'surname', batch_size => 7, pause_ms => 0) AS ean \gset
CALL zdd.wait(:ci, '60 s');
CALL zdd.wait(:ean, '60 s');
SELECT "table", rows_done, rows_written, verify_fixed, last_error FROM zdd.status WHERE id IN (:ci, :ean) ORDER BY id;
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches, count(*) FROM ci;
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches, count(*) FROM ean;
SELECT zdd.abort(:ci), zdd.abort(:ean);

-- 10. role settings that would change what a batch means are pinned
CREATE ROLE zdd_rr LOGIN;
ALTER ROLE zdd_rr SET default_transaction_isolation = 'serializable';
ALTER ROLE zdd_rr SET default_transaction_read_only = on;
ALTER ROLE zdd_rr SET row_security = on;
ALTER ROLE zdd_rr SET statement_timeout = '1ms';
CREATE TABLE rr (id int PRIMARY KEY, lastname text);
INSERT INTO rr SELECT g, 'n' || g FROM generate_series(1, 2000) g;
ALTER TABLE rr OWNER TO zdd_rr;
SET ROLE zdd_rr;
SELECT zdd.begin_rename('rr', 'lastname', 'surname', batch_size => 300, pause_ms => 0) AS rr \gset
RESET ROLE;
CALL zdd.wait(:rr, '60 s');
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches FROM rr;

-- 8. the primary key dropped mid-walk fails that transition with its own
-- error; another transition of the same role finishes; resume restarts
-- the pass with the table's current key (here: ctid ranges)
CREATE TABLE dropkey (id int PRIMARY KEY, lastname text);
INSERT INTO dropkey SELECT g, 'n' || g FROM generate_series(1, 100) g;
CREATE TABLE other (id int PRIMARY KEY, lastname text);
INSERT INTO other SELECT g, 'n' || g FROM generate_series(1, 1000) g;
SELECT zdd.begin_rename('dropkey', 'lastname', 'surname', batch_size => 1, pause_ms => 500) AS dk \gset
CREATE FUNCTION wait_walking(bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  WHILE (SELECT rows_done FROM zdd.transition WHERE id = $1) = 0 LOOP PERFORM pg_sleep(0.05); END LOOP;
END $$;
SELECT wait_walking(:dk);
ALTER TABLE dropkey DROP CONSTRAINT dropkey_pkey;
SELECT zdd.begin_rename('other', 'lastname', 'surname', pause_ms => 0) AS oth \gset
CALL zdd.wait(:dk, '60 s');
\echo :LAST_ERROR_SQLSTATE
SELECT phase, backfill, last_error LIKE 'zdd: the primary key of public.dropkey changed during the backfill pass%' AS key_changed
FROM zdd.status WHERE id = :dk;
CALL zdd.wait(:oth, '60 s');
SELECT zdd.throttle(:dk, batch_size => 1000, pause_ms => 0);
SELECT zdd.resume(:dk);
CALL zdd.wait(:dk, '60 s');
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS mismatches, count(*) FROM dropkey;

-- 12. a self-referencing foreign key on the renamed column, and a column
-- named like a keyword inside a type name ("zone")
CREATE TABLE tree (id int PRIMARY KEY, parent int REFERENCES tree (id), zone text,
                   at timestamptz DEFAULT now(),
                   CHECK (zone <> 'x' AND at > '2000-01-01'::timestamp with time zone));
CREATE INDEX tree_zone_at ON tree (zone, at) WHERE at > '2000-01-01'::timestamp with time zone;
INSERT INTO tree SELECT g, NULLIF(g - 1, 0), 'z' || g FROM generate_series(1, 100) g;
SELECT zdd.begin_rename('tree', 'id', 'node_id', pause_ms => 0) AS tid \gset
SELECT zdd.begin_rename('tree', 'zone', 'region', pause_ms => 0) AS tz \gset
CALL zdd.wait(:tid, '60 s');
CALL zdd.wait(:tz, '60 s');
SELECT zdd.complete(:tid);
SELECT zdd.complete(:tz);
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'tree'::regclass ORDER BY conname;
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'tree'::regclass ORDER BY 1;
INSERT INTO tree (node_id, parent, region) VALUES (101, 100, 'r');
INSERT INTO tree (node_id, parent, region) VALUES (102, 999, 'r');
\echo :LAST_ERROR_SQLSTATE

-- 12. the rights the twins need are checked at begin, not after the backfill
CREATE ROLE zdd_nocreate LOGIN;
CREATE SCHEMA locked;
CREATE TABLE locked.t (id int PRIMARY KEY, a text);
CREATE INDEX ON locked.t (a);
ALTER TABLE locked.t OWNER TO zdd_nocreate;
GRANT USAGE ON SCHEMA locked TO zdd_nocreate;
SET ROLE zdd_nocreate;
SELECT zdd.begin_rename('locked.t', 'a', 'b');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS new_columns FROM pg_attribute WHERE attrelid = 'locked.t'::regclass AND attname = 'b';

-- 5. complete re-reads what protects the old column under its lock: a
-- unique index, CHECK, NOT NULL and replica identity added after the twins
-- pass block it (nothing changed) until resume builds their twins
CREATE TABLE late (id int PRIMARY KEY, lastname text, other int);
INSERT INTO late SELECT g, 'n' || g, g FROM generate_series(1, 200) g;
SELECT zdd.begin_rename('late', 'lastname', 'surname', pause_ms => 0) AS late \gset
CALL zdd.wait(:late, '60 s');
CREATE UNIQUE INDEX late_lastname_key ON late (lastname);
ALTER TABLE late ADD CONSTRAINT late_lastname_len CHECK (length(lastname) < 50);
ALTER TABLE late ALTER COLUMN lastname SET NOT NULL;
ALTER TABLE late REPLICA IDENTITY USING INDEX late_lastname_key;
\set VERBOSITY default
SELECT zdd.complete(:late);
\set VERBOSITY terse
SELECT attname FROM pg_attribute WHERE attrelid = 'late'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT zdd.resume(:late);
CALL zdd.wait(:late, '60 s');
SELECT zdd.complete(:late);
SELECT a.attname, a.attnotnull FROM pg_attribute a WHERE attrelid = 'late'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'late'::regclass ORDER BY conname;
SELECT c.relname, i.indisreplident, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'late'::regclass ORDER BY 1;
INSERT INTO late (id, surname, other) VALUES (201, 'n1', 0);
\echo :LAST_ERROR_SQLSTATE

-- 1. the wait result survives SPI_finish: many polls, then the phase
CREATE TABLE waited (id int PRIMARY KEY, lastname text);
INSERT INTO waited SELECT g, 'n' || g FROM generate_series(1, 400) g;
SELECT zdd.begin_rename('waited', 'lastname', 'surname', batch_size => 20, pause_ms => 50) AS w \gset
CALL zdd.wait(:w, '60 s');
CALL zdd.wait(:w, '60 s');
