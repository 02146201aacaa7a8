-- DDL that would break an open transition is refused before it runs, with
-- the transition named (55006); zdd's own DDL and unrelated DDL pass.
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT pg_catalog.setval('zdd.transition_id_seq', 9700) AS _ \gset
CREATE TABLE guarded (id int PRIMARY KEY, lastname text, other text);
INSERT INTO guarded SELECT g, 'n' || g, 'o' FROM generate_series(1, 50) g;
SELECT zdd.begin_rename('guarded', 'lastname', 'surname', start_backfill => false) AS g \gset
DROP EXTENSION zdd;
DROP EXTENSION zdd CASCADE;
DROP SCHEMA zdd CASCADE;
DROP TABLE guarded;
ALTER TABLE guarded DROP COLUMN lastname;
ALTER TABLE guarded DROP COLUMN surname;
ALTER TABLE guarded ALTER COLUMN surname TYPE varchar(10);
ALTER TABLE guarded RENAME COLUMN lastname TO family_name;
ALTER TABLE guarded RENAME COLUMN surname TO sn;
DROP TRIGGER zz_zdd_sync_9701 ON guarded;
ALTER TABLE guarded DISABLE TRIGGER zz_zdd_sync_9701;
ALTER TABLE guarded DISABLE TRIGGER ALL;
\echo :LAST_ERROR_SQLSTATE
-- unrelated DDL passes
ALTER TABLE guarded ADD COLUMN extra int;
ALTER TABLE guarded DROP COLUMN extra;
ALTER TABLE guarded RENAME COLUMN other TO other2;
CREATE TABLE scratch (a int);
DROP TABLE scratch;
-- nothing was broken: the transition completes
SELECT zdd.resume(:g);
CALL zdd.wait(:g, '60 s');
SELECT zdd.complete(:g);
SELECT attname FROM pg_attribute WHERE attrelid = 'guarded'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
-- with no open transition, the table can go
DROP TABLE guarded;
-- an inheritance child attached during a transition: complete refuses
-- (its rows were never backfilled) until it is detached
CREATE TABLE par (id int PRIMARY KEY, a text);
INSERT INTO par VALUES (1, 'x');
SELECT zdd.begin_rename('par', 'a', 'b', pause_ms => 0) AS p \gset
CALL zdd.wait(:p, '60 s');
CREATE TABLE par_child () INHERITS (par);
SELECT zdd.complete(:p);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE par_child NO INHERIT par;
SELECT zdd.complete(:p);
