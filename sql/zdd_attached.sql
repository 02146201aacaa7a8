-- Everything attached to the column survives the rename (issue 9, first
-- part): serial sequences, column privileges, comment, attribute options,
-- statistics target, extended statistics; what zdd cannot carry yet is
-- refused at begin with nothing changed.
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- transition ids start at 9001 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 9000) AS _ \gset
CREATE ROLE zdd_ro LOGIN;
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, city text);
INSERT INTO users (name, city) SELECT 'n' || g, 'c' || (g % 7) FROM generate_series(1, 300) g;
GRANT SELECT (id, name) ON users TO zdd_ro;
GRANT UPDATE (name) ON users TO zdd_ro WITH GRANT OPTION;
COMMENT ON COLUMN users.name IS 'full name as printed';
ALTER TABLE users ALTER COLUMN name SET (n_distinct = -0.5);
ALTER TABLE users ALTER COLUMN name SET STATISTICS 500;
CREATE STATISTICS users_name_city (ndistinct, dependencies) ON name, city FROM users;
ALTER STATISTICS users_name_city SET STATISTICS 200;
-- the serial column itself, and the text column
SELECT zdd.begin_rename('users', 'id', 'user_id', pause_ms => 0) AS sid \gset
SELECT zdd.begin_rename('users', 'name', 'full_name', pause_ms => 0) AS nid \gset
-- during the transition the read-only role reads the new column already
SET ROLE zdd_ro;
SELECT count(*) AS ro_reads_new_column FROM (SELECT full_name FROM users) s;
RESET ROLE;
SELECT pg_catalog.col_description('users'::regclass, attnum) AS comment,
       (SELECT array_agg(o) FROM unnest(attoptions) o WHERE o NOT LIKE 'pg\_%') AS options, attstattarget
FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'full_name';
CALL zdd.wait(:sid, '60 s');
CALL zdd.wait(:nid, '60 s');
SELECT zdd.complete(:sid);
SELECT zdd.complete(:nid);
\d users
SELECT pg_get_serial_sequence('users', 'user_id') AS sequence;
INSERT INTO users (full_name) VALUES ('after') RETURNING user_id;
SELECT a.attname, x.grantee::regrole, x.privilege_type, x.is_grantable
FROM pg_attribute a, aclexplode(a.attacl) x WHERE a.attrelid = 'users'::regclass AND NOT a.attisdropped ORDER BY 1, 2, 3;
SELECT pg_catalog.col_description('users'::regclass, attnum) AS comment,
       (SELECT array_agg(o) FROM unnest(attoptions) o WHERE o NOT LIKE 'pg\_%') AS options, attstattarget
FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'full_name';
SELECT stxname, stxkind, stxstattarget, (SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
  WHERE attrelid = stxrelid AND attnum = ANY (stxkeys)) AS columns
FROM pg_statistic_ext WHERE stxrelid = 'users'::regclass;
SET ROLE zdd_ro;
SELECT count(full_name) AS ro_reads_after_complete FROM users;
RESET ROLE;

-- an identity column: the new column becomes the identity, its sequence
-- carries on where the old one was
CREATE TABLE tickets (id int GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 5) PRIMARY KEY, t text);
INSERT INTO tickets (t) SELECT 'x' || g FROM generate_series(1, 50) g;
SELECT zdd.begin_rename('tickets', 'id', 'ticket_id', pause_ms => 0) AS tk \gset
INSERT INTO tickets (t) VALUES ('during') RETURNING id, ticket_id;
CALL zdd.wait(:tk, '60 s');
SELECT zdd.complete(:tk);
SELECT attname, attidentity, attnotnull FROM pg_attribute WHERE attrelid = 'tickets'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT pg_get_serial_sequence('tickets', 'ticket_id') AS sequence;
INSERT INTO tickets (t) VALUES ('after') RETURNING ticket_id;
INSERT INTO tickets (ticket_id, t) VALUES (1, 'explicit');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*), count(DISTINCT ticket_id) FROM tickets;

-- twins of a long table name renamed to a long column name: every twin
-- gets a name of its own, within 63 bytes, and its original's name back
CREATE TABLE customer_accounts_history_2024 (id int PRIMARY KEY, lastname text, region text,
  UNIQUE (lastname), UNIQUE (lastname, region));
CREATE INDEX customer_accounts_history_2024_lastname_region_idx ON customer_accounts_history_2024 (lastname, region);
INSERT INTO customer_accounts_history_2024 SELECT g, 'n' || g, 'r' || (g % 3) FROM generate_series(1, 100) g;
SELECT zdd.begin_rename('customer_accounts_history_2024', 'lastname', 'family_name_as_printed_on_passport', pause_ms => 0) AS long \gset
CALL zdd.wait(:long, '60 s');
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'customer_accounts_history_2024'::regclass;
SELECT zdd.complete(:long);
SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'customer_accounts_history_2024'::regclass ORDER BY 1;

-- defaults during the transition: DEFAULT through the new name, explicit
-- values for now() and sequence columns, an explicit NULL, COPY
CREATE SEQUENCE ev_seq;
CREATE TABLE ev (id int PRIMARY KEY DEFAULT nextval('ev_seq'), label text DEFAULT 'none',
                 at timestamptz NOT NULL DEFAULT now(), note text);
INSERT INTO ev (note) SELECT 'x' FROM generate_series(1, 3);
SELECT zdd.begin_rename('ev', 'label', 'tag', start_backfill => false) AS l \gset
SELECT zdd.begin_rename('ev', 'at', 'created_at', start_backfill => false) AS a \gset
SELECT zdd.begin_rename('ev', 'id', 'event_id', start_backfill => false) AS i \gset
UPDATE ev SET tag = 'x1' WHERE id = 1;
UPDATE ev SET tag = DEFAULT WHERE id = 1;
INSERT INTO ev (event_id, tag, created_at) VALUES (500, 't', '2020-01-01');
INSERT INTO ev (event_id, tag) VALUES (501, NULL);
INSERT INTO ev (label) VALUES ('old app');
INSERT INTO ev (event_id, label, tag) VALUES (502, 'maps both', NULL);
COPY ev (id, label, note) FROM stdin;
503	copied	c
\.
SELECT id, event_id, label, tag, at = created_at AS at_in_step, at < '2021-01-01' AS given_time
FROM ev WHERE id = 1 OR id >= 4 ORDER BY id;
SELECT zdd.abort(:l), zdd.abort(:a), zdd.abort(:i);

-- other tables' foreign keys referencing the renamed column: their twins
-- reference the new column; complete swaps them (original names back)
CREATE TABLE suppliers (id int PRIMARY KEY, name text);
INSERT INTO suppliers SELECT g, 's' || g FROM generate_series(1, 20) g;
CREATE TABLE items (id int PRIMARY KEY, supplier_id int REFERENCES suppliers (id) ON DELETE CASCADE);
INSERT INTO items SELECT g, 1 + g % 20 FROM generate_series(1, 200) g;
SELECT zdd.begin_rename('suppliers', 'id', 'supplier_id', pause_ms => 0) AS sup \gset
CALL zdd.wait(:sup, '60 s');
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
WHERE contype = 'f' AND confrelid = 'suppliers'::regclass ORDER BY 2;
DELETE FROM suppliers WHERE id = 1;
SELECT count(*) AS items_left FROM items;
SELECT zdd.complete(:sup);
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE contype = 'f' AND confrelid = 'suppliers'::regclass;
INSERT INTO items VALUES (1000, 999);
\echo :LAST_ERROR_SQLSTATE
-- abort takes the twin off the other table too
CREATE TABLE s2 (id int PRIMARY KEY);
CREATE TABLE i2 (id int PRIMARY KEY, s int REFERENCES s2 (id));
INSERT INTO s2 VALUES (1), (2);
INSERT INTO i2 VALUES (1, 1), (2, 2);
SELECT zdd.begin_rename('s2', 'id', 's2_id', pause_ms => 0) AS s2 \gset
CALL zdd.wait(:s2, '60 s');
SELECT count(*) AS keys_during FROM pg_constraint WHERE conrelid = 'i2'::regclass AND contype = 'f';
SELECT zdd.abort(:s2);
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'i2'::regclass AND contype = 'f';

-- refused up front: a column a stored generated column is computed from
CREATE TABLE gen (id int PRIMARY KEY, price numeric, gross numeric GENERATED ALWAYS AS (price * 1.2) STORED);
SELECT zdd.begin_rename('gen', 'price', 'net_price');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS transitions FROM zdd.transition WHERE tbl = 'gen'::regclass;
