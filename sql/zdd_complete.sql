-- Twins and complete: NOT NULL, CHECK, FK, unique/partial/expression/PK
-- indexes, default; refused calls; a dependent view blocks complete.
\set SHOW_CONTEXT never
-- transition ids start at 2001 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 2000) AS _ \gset
CREATE TABLE ref (code text PRIMARY KEY);
INSERT INTO ref VALUES ('a'), ('b');
CREATE TABLE customer (
  id int,
  lastname text NOT NULL DEFAULT 'none' CHECK (lastname <> '' AND length(lastname) < 100),
  code text REFERENCES ref (code) ON DELETE SET NULL,
  PRIMARY KEY (lastname, id));
CREATE UNIQUE INDEX customer_lastname_key ON customer (lastname);
CREATE INDEX customer_lower ON customer (lower(lastname)) WHERE lastname <> 'x';
CREATE INDEX customer_multi ON customer (id, lastname DESC NULLS LAST);
INSERT INTO customer SELECT g, 'n' || g, 'a' FROM generate_series(1, 2000) g;
SELECT zdd.begin_rename('customer', 'lastname', 'surname', pause_ms => 0) AS id \gset
SELECT zdd.begin_rename('customer', 'code', 'ref_code', pause_ms => 0) AS code \gset
CALL zdd.wait(:id, '60 s');
CALL zdd.wait(:code, '60 s');
-- the twins, while old and new both live (phase backfilled)
SELECT attname, attnotnull, atthasdef FROM pg_attribute
WHERE attrelid = 'customer'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
WHERE conrelid = 'customer'::regclass ORDER BY conname;
SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'customer'::regclass ORDER BY c.relname;
-- twins enforce: the unique twin refuses a duplicate written through the new column
INSERT INTO customer (id, surname, ref_code) VALUES (9999, 'n1', 'a');
\echo :LAST_ERROR_SQLSTATE
-- a view on the old column blocks complete (2BP01), listing it
CREATE VIEW names AS SELECT lastname FROM customer;
SELECT zdd.complete(:id);
\echo :LAST_ERROR_SQLSTATE
SELECT phase FROM zdd.transition WHERE id = :id;
DROP VIEW names;
-- complete
SELECT zdd.complete(:id);
SELECT zdd.complete(:code);
SELECT attname, attnotnull, pg_get_expr(d.adbin, d.adrelid) AS def FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = 'customer'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'customer'::regclass ORDER BY conname;
SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'customer'::regclass ORDER BY c.relname;
SELECT count(*) AS sync_triggers FROM pg_trigger WHERE tgrelid = 'customer'::regclass AND NOT tgisinternal;
INSERT INTO customer (id, ref_code) VALUES (10000, 'b');
SELECT id, surname, ref_code FROM customer WHERE id IN (1, 10000) ORDER BY id;
SELECT count(*) FROM customer;
SELECT event, from_state, to_state FROM zdd.history WHERE transition_id = :id AND event = 'phase' ORDER BY id;
-- completed transitions refuse abort, complete, resume
SELECT zdd.abort(:id);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.complete(:id);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.resume(:id);
\echo :LAST_ERROR_SQLSTATE
-- abort after the twins were built leaves the old column exactly as it was
CREATE TABLE t2 (id int PRIMARY KEY, lastname text NOT NULL CHECK (lastname <> ''));
CREATE INDEX t2_lastname ON t2 (lastname);
INSERT INTO t2 SELECT g, 'n' || g FROM generate_series(1, 500) g;
SELECT zdd.begin_rename('t2', 'lastname', 'surname', pause_ms => 0) AS t2 \gset
CALL zdd.wait(:t2, '60 s');
SELECT count(*) AS twin_indexes FROM pg_index WHERE indrelid = 't2'::regclass;
SELECT zdd.abort(:t2);
SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 't2'::regclass ORDER BY c.relname;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 't2'::regclass ORDER BY conname;
SELECT count(*) FROM t2;
DROP TABLE customer, ref, t2;
