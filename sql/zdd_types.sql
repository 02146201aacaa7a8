-- Column types, NULLs, TOAST, collations, identifiers.
\set SHOW_CONTEXT never
-- transition ids start at 5001 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 5000) AS _ \gset
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN plain_text AS text;
CREATE TABLE typed (
  id int PRIMARY KEY,
  t text, i int, n numeric(10,2), j jsonb, a int[], e mood, d plain_text,
  v varchar(20), c text COLLATE "C", b bytea, js json, p point);
INSERT INTO typed VALUES (1, 'x', 1, 1.5, '{"a":1}', '{1,2}', 'ok', 'dom', 'vc', 'c', '\x01', '{"b": 2}', '(1,2)');
INSERT INTO typed (id) VALUES (2);
SELECT count(zdd.begin_rename('typed', c, (c || '2')::name, start_backfill => false))
FROM unnest(ARRAY['t', 'i', 'n', 'j', 'a', 'e', 'd', 'v', 'c', 'b', 'js', 'p']) c;
-- the new columns copy type, typmod and collation; nullable; no default
SELECT a.attname, format_type(a.atttypid, a.atttypmod), co.collname, a.attnotnull, a.atthasdef
FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
WHERE a.attrelid = 'typed'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
-- every row rewritten by a no-op UPDATE gets all new columns in step (NULLs too)
UPDATE typed SET id = id;
SELECT id, t2, i2, n2, j2, a2, e2, d2, v2, c2, b2, js2, p2 FROM typed ORDER BY id;
-- writes of the new columns reach the old ones
UPDATE typed SET n2 = 2.25, j2 = '{"z": [1]}', a2 = '{3}', e2 = 'happy', p2 = '(3,4)', js2 = '[1]' WHERE id = 1;
SELECT n, j, a, e, p, js FROM typed WHERE id = 1;
-- NULLs both ways
UPDATE typed SET t = NULL WHERE id = 1;
UPDATE typed SET i2 = NULL WHERE id = 1;
SELECT t, t2, i, i2 FROM typed WHERE id = 1;
-- TOASTed values: compressible and incompressible, > 2 kB
INSERT INTO typed (id, t) VALUES (3, repeat('toast', 20000));
INSERT INTO typed (id, t) SELECT 4, string_agg(md5(g::text), '') FROM generate_series(1, 400) g;
UPDATE typed SET i = 7 WHERE id IN (3, 4);
SELECT id, length(t2), t2 = t AS same, pg_column_size(t2) < length(t2) AS compressed FROM typed WHERE id IN (3, 4) ORDER BY id;
-- the same large value written to both columns: no conflict
UPDATE typed SET t = repeat('toast', 20000), t2 = repeat('toast', 20000) WHERE id = 3;
UPDATE typed SET t2 = t WHERE id = 4;
SELECT count(*) FILTER (WHERE t IS DISTINCT FROM t2) AS mismatches FROM typed;
-- zdd.differs is zdd's equality (binary, NULLs equal), also for json/point
SELECT zdd.differs('a'::text, 'a'), zdd.differs(NULL::int, NULL), zdd.differs(1, NULL),
       zdd.differs('{"a": 1}'::json, '{"a": 1}'), zdd.differs(1.0::numeric, 1.00);
SELECT count(zdd.abort(id)) FROM zdd.transition WHERE tbl = 'typed'::regclass AND phase = 'expanded';
SELECT count(*) AS columns_left FROM pg_attribute WHERE attrelid = 'typed'::regclass AND attnum > 0 AND NOT attisdropped;
DROP TABLE typed;
-- identifiers with quotes, spaces, upper case and non-ASCII, in another schema
CREATE SCHEMA "Sales Ü";
CREATE TABLE "Sales Ü"."Cüstomer ""X""" (id int PRIMARY KEY, "Last Name" text NOT NULL);
INSERT INTO "Sales Ü"."Cüstomer ""X""" VALUES (1, 'a');
SELECT zdd.begin_rename('"Sales Ü"."Cüstomer ""X"""', 'Last Name', 'sürname "2"', start_backfill => false) AS q \gset
INSERT INTO "Sales Ü"."Cüstomer ""X""" (id, "sürname ""2""") VALUES (2, 'b');
UPDATE "Sales Ü"."Cüstomer ""X""" SET "Last Name" = 'c' WHERE id = 1;
SELECT * FROM "Sales Ü"."Cüstomer ""X""" ORDER BY id;
SELECT tbl, old_column, new_column, phase FROM zdd.transition WHERE id = :q;
SELECT zdd.abort(:q);
DROP SCHEMA "Sales Ü" CASCADE;
