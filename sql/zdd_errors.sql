-- Bad input: a clear error with the right SQLSTATE, and nothing changed.
-- Also: abort restores the table exactly, privileges, hostile search_path.
\set SHOW_CONTEXT never
-- transition ids start at 3001 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 3000) AS _ \gset
CREATE TABLE t (id int PRIMARY KEY, lastname text NOT NULL DEFAULT 'x' CHECK (lastname <> ''),
                g int GENERATED ALWAYS AS (id * 2) STORED, ident int GENERATED ALWAYS AS IDENTITY);
CREATE INDEX t_lastname_idx ON t (lastname);
INSERT INTO t (id, lastname) VALUES (1, 'a'), (2, 'b');
CREATE VIEW v AS SELECT * FROM t;
CREATE MATERIALIZED VIEW mv AS SELECT * FROM t;
CREATE SEQUENCE s;
CREATE TABLE parted (id int, lastname text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
CREATE DOMAIN checked_text AS text CHECK (VALUE <> '');
CREATE TABLE dom (id int PRIMARY KEY, d checked_text);
SELECT zdd.begin_rename('nosuch', 'a', 'b');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'nosuch', 'b');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'ctid', 'b');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'g', 'g2');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('dom', 'd', 'd2');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'lastname', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'lastname', 'xmin');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'lastname', 'lastname');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('v', 'lastname', 'surname');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('mv', 'lastname', 'surname');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('s', 'last_value', 'lv');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t_lastname_idx', 'lastname', 'surname');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('parted_1', 'lastname', 'surname');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('pg_class', 'relname', 'rn');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('zdd.transition', 'phase', 'ph');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename(NULL, 'lastname', 'surname');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'lastname', 'surname', batch_size => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'lastname', 'surname', pause_ms => -5);
\echo :LAST_ERROR_SQLSTATE
-- nothing changed by any of those
SELECT count(*) AS transitions FROM zdd.transition WHERE tbl IN ('t'::regclass, 'dom'::regclass);
SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 ORDER BY attnum;
-- snapshot of the table, to show abort restores it exactly
CREATE TEMP TABLE before AS
SELECT (SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod) || ':' || attnotnull, ',' ORDER BY attnum)
        FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped) AS cols,
       (SELECT string_agg(pg_get_constraintdef(oid), ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 't'::regclass) AS cons,
       (SELECT string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY indexrelid) FROM pg_index WHERE indrelid = 't'::regclass) AS idx,
       (SELECT string_agg(pg_get_expr(adbin, adrelid), ',' ORDER BY adnum) FROM pg_attrdef WHERE adrelid = 't'::regclass) AS defs;
-- a column already in an open transition, on either side
SELECT zdd.begin_rename('t', 'lastname', 'surname', start_backfill => false) AS id \gset
SELECT zdd.begin_rename('t', 'lastname', 'other');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'surname', 'other');
\echo :LAST_ERROR_SQLSTATE
-- unknown ids, calls in the wrong phase
SELECT zdd.abort(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.complete(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.pause(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.complete(:id);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.pause(:id);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:id, batch_size => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle(:id, max_rows_per_sec => -1);
\echo :LAST_ERROR_SQLSTATE
CALL zdd.wait(:id, '1 s');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
CALL zdd.wait(:id, '1 s');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- not the owner: 42501, nothing changed; a member of the owning role may
SET ROLE zdd_stranger;
SELECT zdd.abort(:id);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('t', 'id', 'id2');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO zdd.transition (tbl, old_column, new_column, started_by, batch_size, pause_ms)
VALUES ('t', 'a', 'b', 10::oid::regrole, 1, 1);
\echo :LAST_ERROR_SQLSTATE
-- and sees none of the transitions on tables it may not read
SELECT count(*) AS visible FROM zdd.status;
RESET ROLE;
SELECT phase FROM zdd.transition WHERE id = :id;
-- abort restores the table exactly: columns, constraints, indexes, defaults, triggers, rows
SELECT zdd.abort(:id);
SELECT (SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod) || ':' || attnotnull, ',' ORDER BY attnum)
        FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped) IS NOT DISTINCT FROM cols AS same_columns,
       (SELECT string_agg(pg_get_constraintdef(oid), ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 't'::regclass) IS NOT DISTINCT FROM cons AS same_constraints,
       (SELECT string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY indexrelid) FROM pg_index WHERE indrelid = 't'::regclass) IS NOT DISTINCT FROM idx AS same_indexes,
       (SELECT string_agg(pg_get_expr(adbin, adrelid), ',' ORDER BY adnum) FROM pg_attrdef WHERE adrelid = 't'::regclass) IS NOT DISTINCT FROM defs AS same_defaults,
       (SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass) AS triggers
FROM before;
SELECT * FROM t ORDER BY id;
SELECT phase FROM zdd.transition WHERE id = :id;
SELECT event, from_state, to_state, by_role = current_user AS by_me FROM zdd.history WHERE transition_id = :id ORDER BY id;
SELECT zdd.abort(:id);
\echo :LAST_ERROR_SQLSTATE
-- a member of the owning role may start a transition
ALTER TABLE t OWNER TO zdd_owners;
SET ROLE zdd_member;
SELECT zdd.begin_rename('t', 'lastname', 'surname', start_backfill => false) AS id2 \gset
SELECT zdd.abort(:id2);
RESET ROLE;
-- a hostile search_path changes nothing zdd does
CREATE SCHEMA evil;
CREATE TABLE evil.transition (id bigint);
CREATE FUNCTION evil.quote_ident(text) RETURNS text LANGUAGE sql AS $$ SELECT 'pwned' $$;
CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
SET search_path = evil, public, pg_catalog;
SELECT zdd.begin_rename('t', 'lastname', 'surname', start_backfill => false) AS id3 \gset
SELECT old_column, new_column, phase FROM zdd.transition WHERE id = :id3;
SELECT zdd.abort(:id3);
RESET search_path;
DROP SCHEMA evil CASCADE;
DROP TABLE t, dom, parted CASCADE;
DROP SEQUENCE s;
DROP DOMAIN checked_text;
