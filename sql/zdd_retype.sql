-- Type changes (begin_retype): every conversion path, from the attacker's
-- side too. Outcomes are row contents, types, constraint and sequence
-- state, and SQLSTATEs.
\set SHOW_CONTEXT errors
\set VERBOSITY default
SELECT pg_catalog.setval('zdd.transition_id_seq', 12000) AS _ \gset
CREATE SCHEMA rt;
SET search_path = rt, public;

-- 1. The integer -> bigint primary key, serial, referenced by another
-- table: the cast both ways, the new column takes the old name at complete.
CREATE TABLE orders (id serial PRIMARY KEY, note text);
CREATE TABLE order_items (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders (id), qty int);
INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 500) g;
INSERT INTO order_items (order_id, qty) SELECT g, g % 3 FROM generate_series(1, 500) g;
SELECT zdd.begin_retype('orders', 'id', 'bigint', pause_ms => 0) AS pk \gset
-- a re-run of the same request returns it
SELECT zdd.begin_retype('orders', 'id', 'bigint') = :pk AS same_id;
SELECT kind, conversion, new_column FROM zdd.status WHERE id = :pk;
-- the old app inserts (the sequence stays with id), the trigger fills the twin
INSERT INTO orders (note) VALUES ('old app') RETURNING id, id_zdd_new;
CALL zdd.wait(:pk, '60 s');
SELECT count(*) AS out_of_step FROM orders WHERE id_zdd_new IS DISTINCT FROM id;
-- the twins pass as steps done of total: NOT NULL, primary key, incoming FK
SELECT twins, percent FROM zdd.status WHERE id = :pk;
SELECT zdd.complete(:pk);
\d orders
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'order_items'::regclass ORDER BY 1;
SELECT seqtypid::regtype, seqmax FROM pg_sequence WHERE seqrelid = 'orders_id_seq'::regclass;
SELECT pg_get_serial_sequence('orders', 'id') AS owned_sequence;
SELECT setval('orders_id_seq', 2147483646) AS _ \gset
INSERT INTO orders (note) SELECT 'past 2^31' FROM generate_series(1, 3);
SELECT max(id), pg_typeof(max(id)) FROM orders;
-- the foreign key still guards order_items (int referencing bigint)
INSERT INTO order_items (order_id) VALUES (999999);

-- 2. An identity primary key int -> bigint: the identity moves, its
-- sequence no longer capped at int's maximum.
CREATE TABLE tickets (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, t text);
INSERT INTO tickets (t) SELECT 't' || g FROM generate_series(1, 50) g;
SELECT zdd.begin_retype('tickets', 'id', 'bigint', pause_ms => 0) AS tk \gset
INSERT INTO tickets (t) VALUES ('during') RETURNING id, id_zdd_new;
CALL zdd.wait(:tk, '60 s');
SELECT zdd.complete(:tk);
SELECT attname, format_type(atttypid, atttypmod), attidentity FROM pg_attribute
WHERE attrelid = 'tickets'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT s.seqtypid::regtype, s.seqmax, s.seqstart FROM pg_sequence s
WHERE s.seqrelid = pg_get_serial_sequence('rt.tickets', 'id')::regclass;
INSERT INTO tickets (t) VALUES ('after') RETURNING id;
INSERT INTO tickets (id, t) VALUES (1000, 'no');

-- 3. Expressions: dollars -> cents under a new name, both app versions
-- writing; a lossy down (cents the old column cannot hold exactly) is in
-- step and never overwritten by the backfill or the verify pass.
CREATE TABLE prices (id int PRIMARY KEY, dollars int CHECK (dollars >= 0));
INSERT INTO prices SELECT g, g FROM generate_series(1, 100) g;
INSERT INTO prices VALUES (101, NULL);
SELECT zdd.begin_retype('prices', 'dollars', 'integer', up => 'dollars * 100', down => 'cents / 100',
                        new_column => 'cents', start_backfill => false, pause_ms => 0) AS pr \gset
INSERT INTO prices (id, cents) VALUES (200, 155) RETURNING dollars, cents;        -- new app, lossy down
INSERT INTO prices (id, dollars) VALUES (201, 7) RETURNING dollars, cents;        -- old app
UPDATE prices SET cents = 1999 WHERE id = 1 RETURNING dollars, cents;             -- new app
UPDATE prices SET dollars = 3 WHERE id = 2 RETURNING dollars, cents;              -- old app
UPDATE prices SET dollars = 4, cents = 400 WHERE id = 3 RETURNING dollars, cents; -- both, in step
UPDATE prices SET dollars = 5, cents = 1 WHERE id = 4;                            -- both, not in step
SET zdd.side = 'new';
UPDATE prices SET dollars = 5, cents = 601 WHERE id = 4 RETURNING dollars, cents;
RESET zdd.side;
SELECT zdd.resume(:pr);
CALL zdd.wait(:pr, '60 s');
SELECT id, dollars, cents FROM prices WHERE id IN (1, 2, 3, 4, 5, 101, 200, 201) ORDER BY id;
SELECT count(*) AS out_of_step FROM prices
WHERE cents IS DISTINCT FROM dollars * 100 AND dollars IS DISTINCT FROM cents / 100;
-- the CHECK twin is the original's text over the new column, validated
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'prices'::regclass AND contype = 'c' ORDER BY 1;
SELECT zdd.complete(:pr);
SELECT attname FROM pg_attribute WHERE attrelid = 'prices'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

-- 4. A change PostgreSQL makes without rewrite: done at once, index kept.
CREATE TABLE codes (id int PRIMARY KEY, code varchar(20) COLLATE "C" UNIQUE);
INSERT INTO codes SELECT g, 'c' || g FROM generate_series(1, 100) g;
SELECT relfilenode AS idx_before FROM pg_class WHERE relname = 'codes_code_key' \gset
SELECT zdd.begin_retype('codes', 'code', 'text') AS fast \gset
SELECT phase, backfill, kind, conversion FROM zdd.status WHERE id = :fast;
SELECT format_type(atttypid, atttypmod), collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
WHERE attrelid = 'codes'::regclass AND attname = 'code';
SELECT relfilenode = :idx_before AS index_kept FROM pg_class WHERE relname = 'codes_code_key';

-- 5. Narrowing: the sample finds a value that does not convert, names its
-- key, changes nothing.
CREATE TABLE names (id int PRIMARY KEY, name varchar(40));
INSERT INTO names SELECT g, 'name ' || g FROM generate_series(1, 30) g;
INSERT INTO names VALUES (31, 'a name far longer than ten');
SELECT zdd.begin_retype('names', 'name', 'varchar(10)');
SELECT count(*) AS columns FROM pg_attribute WHERE attrelid = 'names'::regclass AND attnum > 0 AND NOT attisdropped;
DELETE FROM names WHERE id = 31;
SELECT zdd.begin_retype('names', 'name', 'varchar(10)', pause_ms => 0) AS nm \gset
-- an app write that does not convert fails with the conversion's SQLSTATE
\set VERBOSITY verbose
INSERT INTO names VALUES (32, 'also far longer than ten');
\set VERBOSITY default
SELECT count(*) FROM names WHERE id = 32;
-- NULLs convert to NULL
INSERT INTO names VALUES (33, NULL) RETURNING name, name_zdd_new;
CALL zdd.wait(:nm, '60 s');
SELECT zdd.complete(:nm);
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'names'::regclass AND attname = 'name';

-- 6. TOAST: large text documents -> jsonb. No assignment cast exists
-- (refused, naming the types); explicit conversions both ways.
CREATE TABLE docs (id int PRIMARY KEY, body text);
INSERT INTO docs SELECT g, (SELECT json_agg(json_build_object('k', i, 'v', repeat('x', 50)))::text
                            FROM generate_series(1, 3000) i) FROM generate_series(1, 5) g;
SELECT zdd.begin_retype('docs', 'body', 'jsonb');
SELECT zdd.begin_retype('docs', 'body', 'jsonb', up => 'body::jsonb', down => 'body_zdd_new::text',
                        pause_ms => 0) AS dc \gset
UPDATE docs SET body_zdd_new = '{"new": true}' WHERE id = 1 RETURNING body;
CALL zdd.wait(:dc, '60 s');
SELECT count(*) AS out_of_step FROM docs WHERE body_zdd_new IS DISTINCT FROM body::jsonb;
SELECT id, pg_column_size(body_zdd_new) > 2000 AS toasted FROM docs ORDER BY id;
SELECT zdd.abort(:dc);
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'docs'::regclass AND attname = 'body';

-- 7. A CHECK that no longer holds after the conversion fails the twins
-- pass naming the constraint; it is never dropped. Abort undoes all.
CREATE TABLE meters (id int PRIMARY KEY, km numeric CHECK (km < 1000));
INSERT INTO meters SELECT g, g FROM generate_series(1, 20) g;
SELECT zdd.begin_retype('meters', 'km', 'bigint', up => '(km * 1000)::bigint', down => 'm / 1000.0',
                        new_column => 'm', pause_ms => 0) AS mt \gset
DO $$ BEGIN
  FOR i IN 1..300 LOOP
    EXIT WHEN (SELECT last_error IS NOT NULL FROM zdd.transition WHERE id = 12006);
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT phase, last_error FROM zdd.transition WHERE id = :mt;
SELECT zdd.abort(:mt);
SELECT conname FROM pg_constraint WHERE conrelid = 'meters'::regclass ORDER BY 1;
SELECT attname FROM pg_attribute WHERE attrelid = 'meters'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

-- 8. Abort in every phase restores the table (incoming foreign key twins
-- included).
CREATE TABLE a1 (id int PRIMARY KEY);
CREATE TABLE a1_ref (a int REFERENCES a1 (id));
INSERT INTO a1 SELECT generate_series(1, 10);
INSERT INTO a1_ref SELECT generate_series(1, 10);
SELECT zdd.begin_retype('a1', 'id', 'bigint', start_backfill => false) AS ab \gset
SELECT zdd.abort(:ab);
SELECT zdd.begin_retype('a1', 'id', 'bigint', pause_ms => 0) AS ab \gset
CALL zdd.wait(:ab, '60 s');
SELECT count(*) AS ref_twins FROM pg_constraint WHERE conrelid = 'a1_ref'::regclass;
SELECT zdd.abort(:ab);
SELECT count(*) AS ref_constraints FROM pg_constraint WHERE conrelid = 'a1_ref'::regclass;
\d a1

-- 9. Bad input: a clear error with its SQLSTATE, nothing changed.
\set VERBOSITY sqlstate
SELECT zdd.begin_retype('a1', 'id', 'no_such_type');
SELECT zdd.begin_retype('a1', 'id', 'date');
SELECT zdd.begin_retype('a1', 'id', 'integer');
SELECT zdd.begin_retype('a1', 'nope', 'bigint');
SELECT zdd.begin_retype('a1', 'id', NULL);
SELECT zdd.begin_retype('a1', 'id', 'bigint', up => 'id FROM pg_class');
SELECT zdd.begin_retype('a1', 'id', 'bigint', up => '1; DROP TABLE a1');
SELECT zdd.begin_retype('a1', 'id', 'bigint', up => '42');
SELECT zdd.begin_retype('a1', 'id', 'bigint', up => 'other_column + 1');
SELECT zdd.begin_retype('a1', 'id', 'bigint', up => '(SELECT 1)');
SELECT zdd.begin_retype('a1', 'id', 'bigint', up => 'id + random()::int');
\set VERBOSITY default
CREATE TABLE ts (id int PRIMARY KEY, at timestamp);
SELECT zdd.begin_retype('ts', 'at', 'timestamptz');
CREATE INDEX ON ts ((at + interval '1 day'));
SELECT zdd.begin_retype('ts', 'at', 'timestamptz', up => 'at AT TIME ZONE ''UTC''', down => 'at_zdd_new AT TIME ZONE ''UTC''');
-- 10. The preflight reports what begin_retype would do or refuse, and
-- changes nothing.
CREATE TABLE pf (id int PRIMARY KEY, v varchar(40), n int);
INSERT INTO pf VALUES (1, 'short', 1), (2, 'a value longer than ten', 2);
SELECT severity, finding FROM zdd.check_retype('pf', 'v', 'varchar(10)') WHERE severity = 'blocker';
SELECT severity, finding, action FROM zdd.check_retype('pf', 'v', 'text');
SELECT severity, finding, action FROM zdd.check_retype('pf', 'n', 'bigint') WHERE object LIKE 'column%';
SELECT severity, finding FROM zdd.check_retype('pf', 'n', 'bigint', up => 'n * 2') WHERE severity <> 'note';
SELECT count(*) AS columns FROM pg_attribute WHERE attrelid = 'pf'::regclass AND attnum > 0;
-- 11. A table never analyzed: rows_total is the planner's estimate from
-- the table's size, not unknown (the status' percent and ETA need it).
CREATE TABLE fresh (id int PRIMARY KEY, v int);
INSERT INTO fresh SELECT g, g FROM generate_series(1, 20000) g;
SELECT reltuples < 0 AS never_analyzed FROM pg_class WHERE oid = 'fresh'::regclass;
SELECT zdd.begin_rename('fresh', 'v', 'w', batch_size => 1, pause_ms => 60000) AS fr \gset
SELECT rows_total BETWEEN 5000 AND 80000 AS sane_estimate FROM zdd.transition WHERE id = :fr;
SELECT zdd.abort(:fr);
SELECT count(*) AS transitions_left_open FROM zdd.transition t JOIN pg_class c ON c.oid = t.tbl
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'rt' AND t.phase NOT IN ('completed', 'aborted');
SELECT count(*) AS stray_columns FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'rt' AND a.attname LIKE '%zdd%' AND NOT a.attisdropped;
RESET search_path;
