-- No role gains anything through zdd (issue 14): a table owner's code runs
-- as the table owner, never with the rights of whoever started the
-- transition; no superuser-only setting is handed out; no role reads
-- another table's values through zdd's catalog; zdd refuses a schema it
-- did not create.
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- transition ids start at 8001 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 8000) AS _ \gset
CREATE ROLE zdd_alice LOGIN;
CREATE ROLE zdd_mallory LOGIN;
CREATE SCHEMA alice AUTHORIZATION zdd_alice;
CREATE SCHEMA mallory AUTHORIZATION zdd_mallory;
GRANT USAGE ON SCHEMA alice TO zdd_mallory;

-- alice's orders: a foreign key and a guard trigger that writes an audit row
SET ROLE zdd_alice;
CREATE TABLE alice.customers (id int PRIMARY KEY);
INSERT INTO alice.customers VALUES (1);
CREATE TABLE alice.orders (id serial PRIMARY KEY, customer int NOT NULL REFERENCES alice.customers (id), secret text);
CREATE TABLE alice.audit (order_id int);
CREATE FUNCTION alice.guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.customer <> 1 THEN RAISE EXCEPTION 'guard: unknown customer'; END IF;
  INSERT INTO alice.audit VALUES (NEW.id);
  RETURN NEW;
END $$;
CREATE TRIGGER guard BEFORE INSERT ON alice.orders FOR EACH ROW EXECUTE FUNCTION alice.guard();
GRANT INSERT ON alice.orders TO zdd_mallory;
GRANT USAGE ON SEQUENCE alice.orders_id_seq TO zdd_mallory;
INSERT INTO alice.orders (customer, secret) VALUES (1, 'bob@corp.example bad-ssn');
RESET ROLE;

-- mallory's table: an ALWAYS trigger that would make her superuser, another
-- that would write into alice's orders past the FK and the guard, and a
-- CHECK function that records the session's replication role
SET ROLE zdd_mallory;
CREATE TABLE mallory.seen (what text);
CREATE FUNCTION mallory.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'ALTER ROLE zdd_mallory SUPERUSER';
  RETURN NEW;
END $$;
CREATE FUNCTION mallory.plant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO alice.orders (customer, secret) VALUES (999, 'planted');
  RETURN NEW;
END $$;
CREATE FUNCTION mallory.look(v int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  INSERT INTO mallory.seen VALUES (current_user || ' ' || current_setting('session_replication_role'));
  RETURN true;
END $$;
CREATE TABLE mallory.mt (id int PRIMARY KEY, a int, CHECK (mallory.look(id)));
INSERT INTO mallory.mt SELECT g, g FROM generate_series(1, 3) g;
CREATE TRIGGER escalate BEFORE UPDATE ON mallory.mt FOR EACH ROW EXECUTE FUNCTION mallory.escalate();
ALTER TABLE mallory.mt ENABLE ALWAYS TRIGGER escalate;
CREATE TRIGGER plant AFTER UPDATE ON mallory.mt FOR EACH ROW EXECUTE FUNCTION mallory.plant();
ALTER TABLE mallory.mt ENABLE ALWAYS TRIGGER plant;
DELETE FROM mallory.seen;
RESET ROLE;

-- 1 and 2: a superuser starts the transition on mallory's table
SELECT zdd.begin_rename('mallory.mt', 'a', 'b', pause_ms => 0) AS mt \gset
CALL zdd.wait(:mt, '60 s');
SELECT rolsuper FROM pg_roles WHERE rolname = 'zdd_mallory';
SELECT count(*) AS orders, count(*) FILTER (WHERE secret = 'planted') AS planted FROM alice.orders;
SELECT count(*) AS audit_rows FROM alice.audit;
-- the CHECK function ran as mallory, in the default replication role
SELECT DISTINCT what FROM mallory.seen;
SELECT count(*) FILTER (WHERE b IS DISTINCT FROM a) AS mismatches FROM mallory.mt;
SELECT zdd.abort(:mt);

-- 3: alice's failed backfill (a row breaks a NOT VALID check: PostgreSQL's
-- DETAIL shows the row) keeps her row values away from mallory
SET ROLE zdd_alice;
CREATE TABLE alice.people (email text PRIMARY KEY, ssn text);
INSERT INTO alice.people VALUES ('bob@corp.example', 'bad-ssn'), ('eve@corp.example', '123');
ALTER TABLE alice.people ADD CONSTRAINT ssn_ok CHECK (ssn <> 'bad-ssn') NOT VALID;
SELECT zdd.begin_rename('alice.people', 'ssn', 'tax_id', pause_ms => 0) AS people \gset
RESET ROLE;
CALL zdd.wait(:people, '60 s');
SET ROLE zdd_alice;
SELECT "table", phase, backfill, last_error LIKE '%bad-ssn%' AS alice_sees_why FROM zdd.status WHERE id = :people;
SELECT count(*) > 0 AS alice_sees_history FROM zdd.history WHERE transition_id = :people;
SET ROLE zdd_mallory;
SELECT count(*) AS mallory_sees_status FROM zdd.status WHERE id = :people;
SELECT count(*) AS mallory_sees_transition FROM zdd.transition WHERE id = :people;
SELECT count(*) AS mallory_sees_history FROM zdd.history WHERE transition_id = :people;
RESET ROLE;
-- granted SELECT on the table, a role sees the transition
GRANT SELECT ON alice.people TO zdd_mallory;
SET ROLE zdd_mallory;
SELECT count(*) AS mallory_sees_after_grant FROM zdd.status WHERE id = :people;
RESET ROLE;
SELECT zdd.abort(:people);

-- 4: a schema "zdd" that another role created is refused at CREATE EXTENSION
CREATE DATABASE zdd_attack OWNER zdd_mallory;
\c zdd_attack
SET ROLE zdd_mallory;
CREATE SCHEMA zdd;
RESET ROLE;
CREATE EXTENSION zdd;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'zdd';
-- an empty schema the installing superuser made itself is fine
DROP SCHEMA zdd;
CREATE SCHEMA zdd;
CREATE EXTENSION zdd;
SELECT extname FROM pg_extension WHERE extname = 'zdd';
\c regression
DROP DATABASE zdd_attack;
