-- The sync trigger's rules (SPEC 4), with the backfill not started so that
-- only the trigger writes.
\set SHOW_CONTEXT never
-- transition ids start at 4001 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 4000) AS _ \gset
CREATE TABLE customer (id int PRIMARY KEY, lastname text NOT NULL DEFAULT '', note text);
INSERT INTO customer VALUES (1, 'Smith', NULL), (2, 'Jones', NULL), (3, 'Brown', NULL);
SELECT zdd.begin_rename('customer', 'lastname', 'surname', start_backfill => false) AS id \gset
-- rows from before: surname still NULL (nobody wrote them)
SELECT id, lastname, surname FROM customer ORDER BY id;
-- INSERT, old app: only lastname → surname := lastname
INSERT INTO customer (id, lastname) VALUES (10, 'Old');
-- INSERT, new app: only surname → lastname (NOT NULL, default '') := surname
INSERT INTO customer (id, surname) VALUES (11, 'New');
-- INSERT, both equal → kept
INSERT INTO customer (id, lastname, surname) VALUES (12, 'Both', 'Both');
-- INSERT, lastname explicitly at its default and surname given → lastname := surname
INSERT INTO customer (id, lastname, surname) VALUES (13, '', 'FromNew');
-- INSERT, both given and different → class-23 error naming both columns
INSERT INTO customer (id, lastname, surname) VALUES (14, 'A', 'B');
\echo :LAST_ERROR_SQLSTATE
-- INSERT, both NULL → NOT NULL of lastname still enforced
INSERT INTO customer (id, lastname) VALUES (15, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT id, lastname, surname FROM customer WHERE id >= 10 ORDER BY id;
-- UPDATE of old only → new follows
UPDATE customer SET lastname = 'Smyth' WHERE id = 1;
-- UPDATE of new only → old follows
UPDATE customer SET surname = 'Jonas' WHERE id = 2;
-- UPDATE of neither column: the out-of-step row gets surname := lastname
UPDATE customer SET note = 'touched' WHERE id = 3;
-- UPDATE of both, consistent
UPDATE customer SET lastname = 'Twin', surname = 'Twin' WHERE id = 10;
-- UPDATE of both, conflicting → error, row unchanged
UPDATE customer SET lastname = 'X', surname = 'Y' WHERE id = 11;
\echo :LAST_ERROR_SQLSTATE
-- UPDATE naming both but changing only one → the changed one wins
UPDATE customer SET lastname = lastname, surname = 'Changed' WHERE id = 12;
-- UPDATE setting the new column to NULL → lastname NOT NULL violation
UPDATE customer SET surname = NULL WHERE id = 13;
\echo :LAST_ERROR_SQLSTATE
SELECT id, lastname, surname, note FROM customer ORDER BY id;
-- multi-row UPDATE and INSERT ... ON CONFLICT DO UPDATE
UPDATE customer SET lastname = upper(lastname) WHERE id IN (1, 2);
INSERT INTO customer (id, lastname) VALUES (1, 'conflict') ON CONFLICT (id) DO UPDATE SET lastname = excluded.lastname;
INSERT INTO customer (id, surname) VALUES (2, 'conflict2') ON CONFLICT (id) DO UPDATE SET surname = excluded.surname;
-- COPY writes through the trigger too
COPY customer (id, lastname) FROM stdin;
20	copied
\.
SELECT id, lastname, surname FROM customer WHERE id IN (1, 2, 20) ORDER BY id;
-- zdd.side decides without heuristics
SET zdd.side = 'new';
UPDATE customer SET lastname = 'ignored', surname = 'NewWins' WHERE id = 20;
INSERT INTO customer (id, lastname, surname) VALUES (21, 'ignored', 'NewSide');
SET zdd.side = 'old';
UPDATE customer SET lastname = 'OldWins', surname = 'ignored' WHERE id = 3;
INSERT INTO customer (id, lastname, surname) VALUES (22, 'OldSide', 'ignored');
RESET zdd.side;
SET zdd.side = 'sideways';
\echo :LAST_ERROR_SQLSTATE
SELECT id, lastname, surname FROM customer WHERE id IN (3, 20, 21, 22) ORDER BY id;
-- per role
ALTER ROLE zdd_member SET zdd.side = 'new';
SELECT rolname, setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE rolname = 'zdd_member';
ALTER ROLE zdd_member RESET zdd.side;
-- a user BEFORE trigger that normalises lastname runs first: surname gets its result
CREATE FUNCTION trim_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.lastname := btrim(NEW.lastname); RETURN NEW; END $$;
CREATE TRIGGER a_trim BEFORE INSERT OR UPDATE ON customer FOR EACH ROW EXECUTE FUNCTION trim_name();
INSERT INTO customer (id, lastname) VALUES (30, '  Padded  ');
SELECT id, '"' || lastname || '"' AS lastname, '"' || surname || '"' AS surname FROM customer WHERE id = 30;
DROP TRIGGER a_trim ON customer;
-- every row was written since begin, so every row is in step
SELECT count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS out_of_step FROM customer;
-- the trigger refuses to be misused
CREATE TABLE misuse (a text, b text);
CREATE TRIGGER bad AFTER INSERT ON misuse FOR EACH ROW EXECUTE FUNCTION zdd.sync_trigger('1', 'a', 'b');
INSERT INTO misuse VALUES ('x', 'y');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.sync_trigger();
\echo :LAST_ERROR_SQLSTATE
DROP TABLE misuse;
SELECT zdd.abort(:id);
DROP TABLE customer;
DROP FUNCTION trim_name();
-- A fixed-length value is written over the row's own bytes when the row
-- stores one: rows with a dropped column, NULL and variable-length columns
-- before it, by-value and by-reference types, the other columns untouched.
CREATE TABLE inplace (id int PRIMARY KEY, gone text, note text, u uuid, n int, tail text);
ALTER TABLE inplace DROP COLUMN gone;
INSERT INTO inplace SELECT g, CASE WHEN g % 2 = 0 THEN repeat('x', g) END,
       ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, g, 't' || g
FROM generate_series(1, 6) g;
SELECT zdd.begin_rename('inplace', 'u', 'u2', start_backfill => false) AS u \gset
SELECT zdd.begin_retype('inplace', 'n', 'bigint', new_column => 'n2', start_backfill => false) AS n \gset
-- every row stores both new columns, then the old app writes the old ones
UPDATE inplace SET u = u, n = n;
UPDATE inplace SET u = ('00000000-0000-0000-0001-' || lpad(id::text, 12, '0'))::uuid, n = n * 100
WHERE id <= 4;
-- a row whose new columns are NULL is formed again (not in place)
UPDATE inplace SET u2 = NULL, n2 = NULL WHERE id = 6;
SET session_replication_role = replica;
UPDATE inplace SET u2 = NULL, n2 = NULL WHERE id = 5;
RESET session_replication_role;
UPDATE inplace SET u = ('00000000-0000-0000-0002-' || lpad(id::text, 12, '0'))::uuid, n = -n WHERE id >= 5;
-- the new app writes the new columns
UPDATE inplace SET u2 = ('00000000-0000-0000-0003-' || lpad(id::text, 12, '0'))::uuid, n2 = n2 + 1 WHERE id = 1;
SELECT id, note, u, u2, n, n2, tail FROM inplace ORDER BY id;
SELECT count(*) FILTER (WHERE u2 IS DISTINCT FROM u OR n2 IS DISTINCT FROM n) AS out_of_step FROM inplace;
SELECT zdd.abort(:n);
SELECT zdd.abort(:u);
DROP TABLE inplace;
