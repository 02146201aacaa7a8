-- Found from the attacker's side (independent testing, 2026-12-06): each
-- case lost or changed data, made abort impossible, or undid a user's
-- change at complete. Outcomes are row contents, catalog state and
-- SQLSTATEs.
\set VERBOSITY terse
SELECT pg_catalog.setval('zdd.transition_id_seq', 16000) AS _ \gset
CREATE SCHEMA atk;
SET search_path = atk, public;

-- 1. The new app saving a row the backfill has not reached (its new
-- column still NULL) with the value it read must not wipe the old column:
-- a write that changes nothing is no write; old stays the truth.
CREATE TABLE a2 (id int PRIMARY KEY, price numeric(10,2));
INSERT INTO a2 VALUES (1, 15.15), (2, 2.22), (3, 3.33), (4, 4.44);
SELECT zdd.begin_retype('a2', 'price', 'int', up => 'round(price * 100)::int',
       down => 'price_cents / 100.0', new_column => 'price_cents', start_backfill => false) AS a2 \gset
UPDATE a2 SET price_cents = price_cents WHERE id = 1;
SET zdd.side = 'new';
UPDATE a2 SET price_cents = price_cents WHERE id = 2;
RESET zdd.side;
UPDATE a2 SET price_cents = coalesce(price_cents, price_cents) WHERE id = 3;
-- a real write through the new column still wins
UPDATE a2 SET price_cents = 499 WHERE id = 4;
SELECT id, price, price_cents FROM a2 ORDER BY id;
SELECT zdd.abort(:a2);
SELECT id, price FROM a2 ORDER BY id;
-- a rename (the identity conversion) alike
CREATE TABLE r2 (id int PRIMARY KEY, lastname text);
INSERT INTO r2 VALUES (1, 'Lovelace'), (2, 'Hopper');
SELECT zdd.begin_rename('r2', 'lastname', 'surname', start_backfill => false) AS r2 \gset
UPDATE r2 SET surname = surname WHERE id = 1;
UPDATE r2 SET surname = 'Byron' WHERE id = 2;
SELECT id, lastname, surname FROM r2 ORDER BY id;
SELECT zdd.abort(:r2);

-- 2. A BEFORE ROW trigger whose name sorts after zdd's (zz_zdd_sync_<id>)
-- would change a row after the sync: begin refuses it (0A000), the guard
-- refuses creating or renaming one during a transition (55006).
CREATE TABLE tg2 (id int PRIMARY KEY, price numeric(10,2));
INSERT INTO tg2 SELECT g, g FROM generate_series(1, 10) g;
CREATE FUNCTION tg_double() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.price := NEW.price * 2; RETURN NEW; END $$;
CREATE TRIGGER zzz_last BEFORE INSERT OR UPDATE ON tg2 FOR EACH ROW EXECUTE FUNCTION tg_double();
SELECT zdd.begin_retype('tg2', 'price', 'int', up => 'round(price * 100)::int',
       down => 'price_cents / 100.0', new_column => 'price_cents');
\echo :LAST_ERROR_SQLSTATE
SELECT severity FROM zdd.check_retype('tg2', 'price', 'int', up => 'round(price * 100)::int',
       down => 'price_cents / 100.0', new_column => 'price_cents') WHERE finding LIKE '%fire after%';
ALTER TRIGGER zzz_last ON tg2 RENAME TO double_price;
SELECT zdd.begin_retype('tg2', 'price', 'int', up => 'round(price * 100)::int',
       down => 'price_cents / 100.0', new_column => 'price_cents', pause_ms => 0) AS tg2 \gset
ALTER TRIGGER double_price ON tg2 RENAME TO zzz_last;
\echo :LAST_ERROR_SQLSTATE
CREATE TRIGGER zzzz_norm BEFORE UPDATE ON tg2 FOR EACH ROW EXECUTE FUNCTION tg_double();
\echo :LAST_ERROR_SQLSTATE
-- AFTER triggers and statement triggers may sort anywhere
CREATE TRIGGER zzzz_after AFTER UPDATE ON tg2 FOR EACH ROW EXECUTE FUNCTION tg_double();
DROP TRIGGER zzzz_after ON tg2;
CALL zdd.wait(:tg2, '60 s');
UPDATE tg2 SET price = 10 WHERE id = 1;
SELECT id, price, price_cents FROM tg2 WHERE id = 1;
SELECT zdd.complete(:tg2);
SELECT id, price_cents FROM tg2 WHERE id = 1;

-- 3. A volatile default stays with the old column during the transition:
-- an INSERT or COPY that names neither column gets new := up(old), not two
-- independent draws that conflict (23000 before).
CREATE TABLE vd (id int PRIMARY KEY, price numeric(10,2) DEFAULT (random() * 100)::numeric(10,2), note text);
SELECT zdd.begin_retype('vd', 'price', 'int', up => 'round(price * 100)::int',
       down => 'price_cents / 100.0', new_column => 'price_cents', pause_ms => 0) AS vd \gset
SELECT pg_get_expr(adbin, adrelid) IS NULL AS new_column_has_no_default FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = 'vd'::regclass AND a.attname = 'price_cents';
INSERT INTO vd (id, note) VALUES (1, 'insert');
COPY vd (id, note) FROM stdin;
2	old app COPY naming neither column
\.
SELECT count(*) AS rows, count(*) FILTER (WHERE price_cents = round(price * 100)::int) AS in_step FROM vd;
CALL zdd.wait(:vd, '60 s');
SELECT zdd.complete(:vd);
-- complete gives the new column the converted default
SELECT pg_get_expr(adbin, adrelid) LIKE '%random()%' AS converted_default FROM pg_attrdef
WHERE adrelid = 'vd'::regclass;

-- 4. Abort with a self-referencing foreign key: the new column's twin of
-- it references the new column and used to make DROP COLUMN refuse
-- (abort impossible).
CREATE TABLE tree (id serial PRIMARY KEY, parent int REFERENCES tree (id));
INSERT INTO tree (parent) VALUES (NULL);
INSERT INTO tree (parent) VALUES (1), (1), (2);
SELECT zdd.begin_retype('tree', 'id', 'bigint', pause_ms => 0) AS tree \gset
CALL zdd.wait(:tree, '60 s');
SELECT count(*) AS fk_twins FROM pg_constraint WHERE conrelid = 'tree'::regclass AND contype = 'f';
SELECT zdd.abort(:tree);
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'tree'::regclass ORDER BY 1;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tree'::regclass AND attname = 'id';

-- 5. complete keeps what the user changed on the old column during the
-- transition: a REVOKE, a dropped comment, a dropped default; and the
-- index the table is clustered on stays its CLUSTER ON index.
CREATE ROLE zdd_atk_app;
CREATE TABLE keep (id int, v text DEFAULT 'x', CONSTRAINT keep_pk PRIMARY KEY (id));
ALTER TABLE keep CLUSTER ON keep_pk;
INSERT INTO keep (id) SELECT g FROM generate_series(1, 100) g;
GRANT SELECT (id), UPDATE (id) ON keep TO zdd_atk_app;
COMMENT ON COLUMN keep.id IS 'before';
ALTER TABLE keep ALTER COLUMN id SET DEFAULT 7;
SELECT zdd.begin_retype('keep', 'id', 'bigint', pause_ms => 0) AS keep \gset
CALL zdd.wait(:keep, '60 s');
REVOKE UPDATE (id) ON keep FROM zdd_atk_app;
-- a privilege granted on the new column by hand stays
GRANT INSERT (id_zdd_new) ON keep TO zdd_atk_app;
COMMENT ON COLUMN keep.id IS NULL;
ALTER TABLE keep ALTER COLUMN id DROP DEFAULT;
SELECT zdd.complete(:keep);
SELECT has_column_privilege('zdd_atk_app', 'keep', 'id', 'SELECT') AS may_select,
       has_column_privilege('zdd_atk_app', 'keep', 'id', 'UPDATE') AS may_update,
       has_column_privilege('zdd_atk_app', 'keep', 'id', 'INSERT') AS may_insert;
SELECT col_description('keep'::regclass, attnum) AS comment, atthasdef AS has_default,
       format_type(atttypid, atttypmod) AS type
FROM pg_attribute WHERE attrelid = 'keep'::regclass AND attname = 'id';
SELECT indisclustered FROM pg_index WHERE indexrelid = 'keep_pk'::regclass;
REVOKE ALL ON keep FROM zdd_atk_app;
DROP ROLE zdd_atk_app;

-- 6. A partitioned table's foreign key onto the column: PostgreSQL 15
-- cannot add its twin NOT VALID; begin refuses up front (0A000) instead of
-- failing in the twins pass.
CREATE TABLE ref (id serial PRIMARY KEY);
INSERT INTO ref SELECT FROM generate_series(1, 10);
CREATE TABLE ev (ts date NOT NULL, rid int REFERENCES ref (id)) PARTITION BY RANGE (ts);
CREATE TABLE ev_def PARTITION OF ev DEFAULT;
INSERT INTO ev VALUES ('2025-01-01', 1);
SELECT zdd.begin_retype('ref', 'id', 'bigint');
\echo :LAST_ERROR_SQLSTATE
SELECT severity FROM zdd.check_retype('ref', 'id', 'bigint') WHERE severity = 'blocker';
SELECT count(*) AS columns FROM pg_attribute WHERE attrelid = 'ref'::regclass AND attnum > 0 AND NOT attisdropped;

-- 7. An identity key's sequence after complete (a new object: PostgreSQL
-- moves no identity): START, next value, privileges and comment as before.
CREATE ROLE zdd_atk_seq;
CREATE TABLE ident (id int GENERATED BY DEFAULT AS IDENTITY (START WITH 10) PRIMARY KEY, v text);
INSERT INTO ident (v) SELECT 'x' FROM generate_series(1, 100);
GRANT USAGE, SELECT ON SEQUENCE ident_id_seq TO zdd_atk_seq;
COMMENT ON SEQUENCE ident_id_seq IS 'ids';
SELECT zdd.begin_retype('ident', 'id', 'bigint', pause_ms => 0) AS ident \gset
CALL zdd.wait(:ident, '60 s');
SELECT zdd.complete(:ident);
SELECT seqstart, format_type(seqtypid, NULL) AS type FROM pg_sequence WHERE seqrelid = 'ident_id_seq'::regclass;
SELECT has_sequence_privilege('zdd_atk_seq', 'ident_id_seq', 'USAGE') AS may_use,
       obj_description('ident_id_seq'::regclass, 'pg_class') AS comment;
INSERT INTO ident (v) VALUES ('next') RETURNING id;
REVOKE ALL ON SEQUENCE ident_id_seq FROM zdd_atk_seq;
DROP ROLE zdd_atk_seq;

-- 8. Second round on the fixes. A user's trigger named like zdd's
-- (zz_zdd_sync_<digits>, zz_zdd_sync_x) is late too; zdd's own sync trigger
-- cannot be renamed or switched to replica-only; a partition with a late
-- trigger cannot be attached; a revoked grant option stays revoked.
CREATE TABLE g1 (id int PRIMARY KEY, a int);
INSERT INTO g1 SELECT g, g FROM generate_series(1, 10) g;
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.a := NEW.a + 1000; RETURN NEW; END $$;
SELECT zdd.begin_rename('g1', 'a', 'b', pause_ms => 0) AS g1 \gset
CREATE TRIGGER zz_zdd_sync_99 BEFORE INSERT OR UPDATE ON g1 FOR EACH ROW EXECUTE FUNCTION bump();
\echo :LAST_ERROR_SQLSTATE
CREATE TRIGGER zz_zdd_sync_x BEFORE UPDATE ON g1 FOR EACH ROW EXECUTE FUNCTION bump();
\echo :LAST_ERROR_SQLSTATE
-- a name that sorts before zdd's is fine, and may be dropped
CREATE TRIGGER "zz_zdd_sync_" BEFORE UPDATE ON g1 FOR EACH ROW EXECUTE FUNCTION bump();
DROP TRIGGER "zz_zdd_sync_" ON g1;
SELECT format('ALTER TRIGGER zz_zdd_sync_%s ON g1 RENAME TO aaa_sync', :g1) \gexec
\echo :LAST_ERROR_SQLSTATE
SELECT format('ALTER TABLE g1 ENABLE REPLICA TRIGGER zz_zdd_sync_%s', :g1) \gexec
\echo :LAST_ERROR_SQLSTATE
SELECT tgname = 'zz_zdd_sync_' || :g1 AS sync_trigger_kept, tgenabled FROM pg_trigger
WHERE tgrelid = 'g1'::regclass AND NOT tgisinternal;
SELECT zdd.abort(:g1);
CREATE TABLE p (id int, region text, price int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE p_a PARTITION OF p FOR VALUES IN ('a');
INSERT INTO p SELECT g, 'a', g FROM generate_series(1, 10) g;
SELECT zdd.begin_rename('p', 'price', 'cost', pause_ms => 0) AS p \gset
CREATE TABLE p_c (id int NOT NULL, region text NOT NULL, price int, PRIMARY KEY (id, region));
SELECT zdd.prepare_partition(:p, 'p_c');
CREATE TRIGGER zzz_c BEFORE INSERT OR UPDATE ON p_c FOR EACH ROW EXECUTE FUNCTION bump();
ALTER TABLE p ATTACH PARTITION p_c FOR VALUES IN ('c');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'p'::regclass;
SELECT zdd.abort(:p);
CREATE ROLE zdd_atk_alice;
CREATE TABLE c2 (id int PRIMARY KEY, a int);
GRANT SELECT (a), UPDATE (a) ON c2 TO zdd_atk_alice WITH GRANT OPTION;
SELECT zdd.begin_rename('c2', 'a', 'b', pause_ms => 0) AS c2 \gset
REVOKE GRANT OPTION FOR UPDATE (a) ON c2 FROM zdd_atk_alice;
CALL zdd.wait(:c2, '60 s');
SELECT zdd.complete(:c2);
SELECT has_column_privilege('zdd_atk_alice', 'c2', 'b', 'UPDATE') AS may_update,
       has_column_privilege('zdd_atk_alice', 'c2', 'b', 'UPDATE WITH GRANT OPTION') AS may_grant_update,
       has_column_privilege('zdd_atk_alice', 'c2', 'b', 'SELECT WITH GRANT OPTION') AS may_grant_select;
REVOKE ALL ON c2 FROM zdd_atk_alice CASCADE;
DROP ROLE zdd_atk_alice;

-- 9. abort drops a foreign key onto the new column that another role
-- added (as DROP COLUMN ... CASCADE by the owner would), as that table's
-- owner.
CREATE ROLE zdd_atk_owner LOGIN;
CREATE ROLE zdd_atk_other LOGIN;
GRANT CREATE, USAGE ON SCHEMA atk TO zdd_atk_owner, zdd_atk_other;
SET ROLE zdd_atk_owner;
CREATE TABLE ko (id int PRIMARY KEY, v text);
INSERT INTO ko SELECT g, 'x' FROM generate_series(1, 10) g;
GRANT REFERENCES (id) ON ko TO zdd_atk_other;
SELECT zdd.begin_retype('ko', 'id', 'bigint', pause_ms => 0) AS ko \gset
CALL zdd.wait(:ko, '60 s');
SET ROLE zdd_atk_other;
CREATE TABLE kra (id int PRIMARY KEY, kid bigint REFERENCES ko (id_zdd_new));
SET ROLE zdd_atk_owner;
SELECT zdd.abort(:ko);
RESET ROLE;
SELECT count(*) AS fks_onto_ko FROM pg_constraint WHERE confrelid = 'ko'::regclass;
DROP TABLE kra, ko;
REVOKE ALL ON SCHEMA atk FROM zdd_atk_owner, zdd_atk_other;
DROP ROLE zdd_atk_owner;
DROP ROLE zdd_atk_other;

-- 10. A default and comment set by hand on the new column stay through
-- complete (the old column never had them); a late trigger that got past
-- the guard (session_replication_role = replica skips event triggers) is
-- caught by complete (0A000), which then goes through once it is renamed.
CREATE TABLE hd (id int PRIMARY KEY, v int);
INSERT INTO hd SELECT g, g FROM generate_series(1, 10) g;
SELECT zdd.begin_rename('hd', 'v', 'w', pause_ms => 0) AS hd \gset
ALTER TABLE hd ALTER COLUMN w SET DEFAULT 5;
COMMENT ON COLUMN hd.w IS 'set by hand';
CALL zdd.wait(:hd, '60 s');
SET session_replication_role = replica;
CREATE TRIGGER zzz_late BEFORE UPDATE ON hd FOR EACH ROW EXECUTE FUNCTION bump();
RESET session_replication_role;
SELECT zdd.complete(:hd);
\echo :LAST_ERROR_SQLSTATE
ALTER TRIGGER zzz_late ON hd RENAME TO aaa_early;
SELECT zdd.complete(:hd);
SELECT pg_get_expr(d.adbin, d.adrelid) AS default, col_description(a.attrelid, a.attnum) AS comment
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = 'hd'::regclass AND a.attname = 'w';

SELECT count(*) AS transitions_left_open FROM zdd.transition t JOIN pg_class c ON c.oid = t.tbl
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'atk' AND t.phase NOT IN ('completed', 'aborted');
RESET search_path;
