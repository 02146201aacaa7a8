-- Partitioned tables: one transition on the parent covers every partition
-- (range, list, hash, sub-partitions, default partition, leaves without a
-- primary key); each leaf walked with its own cursor; twins of indexes
-- (primary key and unique ones included), CHECK, NOT NULL and foreign keys;
-- partitions attached and detached during the transition; refusals.
\set SHOW_CONTEXT never
SELECT pg_catalog.setval('zdd.transition_id_seq', 15000) AS _ \gset
CREATE TABLE ref (id int PRIMARY KEY);
INSERT INTO ref SELECT generate_series(1, 10);
-- range by ts, one range sub-partitioned by hash, a default partition
CREATE TABLE events (
  id int NOT NULL, ts int NOT NULL,
  kind text NOT NULL DEFAULT 'none' CHECK (length(kind) < 20),
  ref int REFERENCES ref,
  PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
CREATE TABLE events_a PARTITION OF events FOR VALUES FROM (0) TO (10);
CREATE TABLE events_b PARTITION OF events FOR VALUES FROM (10) TO (20) PARTITION BY HASH (id);
CREATE TABLE events_b0 PARTITION OF events_b FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE events_b1 PARTITION OF events_b FOR VALUES WITH (modulus 2, remainder 1);
CREATE TABLE events_rest PARTITION OF events DEFAULT;
CREATE INDEX events_kind_idx ON events (kind);
CREATE UNIQUE INDEX events_kind_uq ON events (kind, id, ts) WHERE kind <> 'x';
INSERT INTO events SELECT g, g % 25, 'k' || (g % 7), 1 + g % 10 FROM generate_series(1, 3000) g;
-- refusals, nothing changed: the partition key (any level), a partition itself
SELECT zdd.begin_rename('events', 'ts', 'at');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('events', 'id', 'ident');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.begin_rename('events_a', 'kind', 'category');
\echo :LAST_ERROR_SQLSTATE
-- an index defined on one partition only would be lost by complete
CREATE INDEX events_a_local ON events_a (lower(kind));
SELECT zdd.begin_rename('events', 'kind', 'category');
\echo :LAST_ERROR_SQLSTATE
DROP INDEX events_a_local;
-- another table's foreign key referencing the column
CREATE TABLE keyed (code text, n int, PRIMARY KEY (code, n)) PARTITION BY LIST (n);
CREATE TABLE keyed_1 PARTITION OF keyed FOR VALUES IN (1);
CREATE TABLE keyed_user (code text, n int, FOREIGN KEY (code, n) REFERENCES keyed);
SELECT zdd.begin_rename('keyed', 'code', 'label');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS transitions FROM zdd.transition WHERE tbl IN ('events'::regclass, 'keyed'::regclass);
SELECT count(*) AS new_columns FROM pg_attribute WHERE attname IN ('category', 'at', 'ident', 'label')
  AND attrelid IN (SELECT relid FROM pg_partition_tree('events') UNION ALL SELECT relid FROM pg_partition_tree('keyed'));

-- the rename: one transition, one trigger on the parent (cloned to every
-- partition), one leaf row per leaf partition
SELECT zdd.begin_rename('events', 'kind', 'category', pause_ms => 0) AS ev \gset
SELECT zdd.begin_rename('events', 'ref', 'ref_id', pause_ms => 0) AS evref \gset
SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgname = 'zz_zdd_sync_' || :ev ORDER BY 1;
CALL zdd.wait(:ev, '60 s');
CALL zdd.wait(:evref, '60 s');
SELECT phase, backfill, pass, rows_done, rows_total, twins FROM zdd.status WHERE id = :ev;
SELECT partition, position, pass, rows_done, rows_written, rows_verified, percent
FROM zdd.status_partitions WHERE id = :ev ORDER BY position;
SELECT count(*) FILTER (WHERE kind IS DISTINCT FROM category) AS out_of_step,
       count(*) FILTER (WHERE ref IS DISTINCT FROM ref_id) AS ref_out_of_step FROM events;
-- twins: on the parent (attached leaf indexes), the primary key's and the
-- unique index's on each leaf, CHECK and NOT NULL recursing, the foreign
-- key on each leaf and the parent
SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid IN ('events'::regclass, 'events_b0'::regclass) ORDER BY c.relname;
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
WHERE conrelid IN ('events'::regclass, 'events_b0'::regclass) ORDER BY 1, 2;
SELECT attrelid::regclass, attnotnull FROM pg_attribute WHERE attname = 'category' AND attrelid IN
  (SELECT relid FROM pg_partition_tree('events')) ORDER BY 1;
-- both app versions, through the parent (rows routed to a leaf) and a leaf
INSERT INTO events (id, ts, category) VALUES (9001, 3, 'new app');
INSERT INTO events (id, ts, kind) VALUES (9002, 13, 'old app');
INSERT INTO events (id, ts) VALUES (9003, 30);
INSERT INTO events_a (id, ts, category, ref_id) VALUES (9004, 4, 'direct', 2);
UPDATE events SET category = 'moved', ts = 5 WHERE id = 9002;
SELECT id, ts, kind, category, ref, ref_id, tableoid::regclass FROM events WHERE id > 9000 ORDER BY id;

-- complete: one lock set (parent, then every partition); each leaf's twin
-- becomes its constraint, the parent's attaches them
SELECT zdd.complete(:ev);
SELECT zdd.complete(:evref);
SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid IN ('events'::regclass, 'events_b0'::regclass) ORDER BY c.relname;
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid IN ('events'::regclass, 'events_b0'::regclass) ORDER BY 1, 2;
SELECT relid, parentrelid FROM pg_partition_tree('events_pkey') ORDER BY 1;
SELECT attrelid::regclass, attname FROM pg_attribute WHERE attnum > 0 AND NOT attisdropped
  AND attrelid IN ('events'::regclass, 'events_rest'::regclass) ORDER BY 1, attnum;
SELECT count(*) AS sync_triggers FROM pg_trigger WHERE tgname LIKE 'zz_zdd_sync_%'
  AND tgrelid IN (SELECT relid FROM pg_partition_tree('events'));
SELECT count(*), count(DISTINCT category), sum(id) FROM events;
INSERT INTO events (id, ts, category, ref_id) VALUES (1, 1, 'k1', 1);
\echo :LAST_ERROR_SQLSTATE

-- int -> bigint primary key of a list-partitioned table with identity
CREATE TABLE orders (id int GENERATED BY DEFAULT AS IDENTITY, month int NOT NULL, total numeric,
  PRIMARY KEY (id, month)) PARTITION BY LIST (month);
CREATE TABLE orders_1 PARTITION OF orders FOR VALUES IN (1);
CREATE TABLE orders_2 PARTITION OF orders FOR VALUES IN (2);
CREATE TABLE orders_3 PARTITION OF orders FOR VALUES IN (3);
INSERT INTO orders (month, total) SELECT 1 + g % 3, g FROM generate_series(1, 3000) g;
SELECT zdd.begin_retype('orders', 'id', 'bigint', pause_ms => 0) AS ord \gset
CALL zdd.wait(:ord, '60 s');
INSERT INTO orders (month, total) VALUES (2, 1) RETURNING id;
SELECT zdd.complete(:ord);
SELECT attrelid::regclass, format_type(atttypid, atttypmod), attidentity FROM pg_attribute
WHERE attname = 'id' AND attrelid IN (SELECT relid FROM pg_partition_tree('orders')) ORDER BY 1;
SELECT relid, parentrelid FROM pg_partition_tree('orders_pkey') ORDER BY 1;
INSERT INTO orders (month, total) VALUES (3, 2) RETURNING id;
INSERT INTO orders (id, month) VALUES (3000000000, 1) RETURNING id;
SELECT count(*), sum(id) FILTER (WHERE id < 10000) FROM orders;

-- no primary key: each leaf walked by ctid, or by its own key; a leaf with
-- its columns in another order and a dropped column
CREATE TABLE logs (n int, msg text) PARTITION BY RANGE (n);
CREATE TABLE logs_1 PARTITION OF logs FOR VALUES FROM (0) TO (1000);
CREATE TABLE logs_2 (x int, msg text, n int PRIMARY KEY);
ALTER TABLE logs_2 DROP COLUMN x;
ALTER TABLE logs ATTACH PARTITION logs_2 FOR VALUES FROM (1000) TO (2000);
INSERT INTO logs SELECT g, 'm' || g FROM generate_series(0, 1999) g;
SELECT zdd.begin_rename('logs', 'msg', 'message', pause_ms => 0, batch_size => 300) AS lg \gset
CALL zdd.wait(:lg, '60 s');
SELECT partition, pass, rows_done, rows_verified FROM zdd.status_partitions WHERE id = :lg ORDER BY position;
SELECT count(*) FILTER (WHERE msg IS DISTINCT FROM message) AS out_of_step FROM logs;

-- a partition attached during the transition: refused without the new
-- column (55006, with the recipe); prepare_partition adds and fills it;
-- once attached it is walked before complete may run
CREATE TABLE logs_3 (n int, msg text);
INSERT INTO logs_3 SELECT g, 'm' || g FROM generate_series(2000, 2099) g;
ALTER TABLE logs ATTACH PARTITION logs_3 FOR VALUES FROM (2000) TO (3000);
\echo :LAST_ERROR_SQLSTATE
-- (the table's own triggers do not fire for the fill, as for the backfill)
CREATE TABLE fired (n int);
CREATE FUNCTION note_fired() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO fired VALUES (1); RETURN NEW; END$$;
CREATE TRIGGER logs_3_audit BEFORE UPDATE ON logs_3 FOR EACH ROW EXECUTE FUNCTION note_fired();
SELECT zdd.prepare_partition(:lg, 'logs_3');
SELECT count(*) FILTER (WHERE msg IS DISTINCT FROM message) AS out_of_step,
       (SELECT count(*) FROM fired) AS user_trigger_fired FROM logs_3;
-- a write before the attach (no sync trigger yet): the walk fixes it
UPDATE logs_3 SET msg = 'late' WHERE n = 2000;
ALTER TABLE logs ATTACH PARTITION logs_3 FOR VALUES FROM (2000) TO (3000);
SELECT zdd.complete(:lg);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.resume(:lg);
CALL zdd.wait(:lg, '60 s');
SELECT partition, pass, rows_done FROM zdd.status_partitions WHERE id = :lg ORDER BY position;
SELECT n, msg, message FROM logs WHERE n = 2000;
-- a partitioned table attached as a sub-partition, prepared the same way
CREATE TABLE logs_4 (n int, msg text) PARTITION BY RANGE (n);
CREATE TABLE logs_4a PARTITION OF logs_4 FOR VALUES FROM (3000) TO (3500);
CREATE TABLE logs_4b PARTITION OF logs_4 FOR VALUES FROM (3500) TO (4000);
INSERT INTO logs_4 SELECT g, 'm' || g FROM generate_series(3000, 3999, 10) g;
SELECT zdd.prepare_partition(:lg, 'logs_4');
ALTER TABLE logs ATTACH PARTITION logs_4 FOR VALUES FROM (3000) TO (4000);
SELECT zdd.resume(:lg);
CALL zdd.wait(:lg, '60 s');
SELECT partition, pass, rows_done FROM zdd.status_partitions WHERE id = :lg ORDER BY position;
SELECT tableoid::regclass, count(*), count(*) FILTER (WHERE msg IS DISTINCT FROM message) AS out_of_step
FROM logs GROUP BY 1 ORDER BY 1;
-- a partition detached during the transition leaves it (both columns stay
-- on the detached table, without the sync trigger)
ALTER TABLE logs DETACH PARTITION logs_1;
SELECT zdd.complete(:lg);
SELECT partition, pass FROM zdd.status_partitions WHERE id = :lg ORDER BY position;
SELECT attname FROM pg_attribute WHERE attrelid = 'logs_1'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'logs_1'::regclass;
SELECT count(*), count(message) FROM logs;
INSERT INTO logs (n, message) VALUES (3001, 'after');
SELECT n, message, tableoid::regclass FROM logs WHERE n = 3001;

-- abort: the new column leaves every partition, the old is untouched
SELECT zdd.begin_rename('orders', 'total', 'amount', pause_ms => 0) AS ab \gset
CALL zdd.wait(:ab, '60 s');
SELECT zdd.abort(:ab);
SELECT count(*) AS amount_columns FROM pg_attribute WHERE attname = 'amount' AND NOT attisdropped
  AND attrelid IN (SELECT relid FROM pg_partition_tree('orders'));
SELECT count(*) AS sync_triggers FROM pg_trigger WHERE tgname LIKE 'zz_zdd_sync_%'
  AND tgrelid IN (SELECT relid FROM pg_partition_tree('orders'));
SELECT count(*), sum(total) FROM orders;
-- a type change of a partition key column is refused as well
SELECT zdd.begin_retype('logs', 'n', 'bigint');
\echo :LAST_ERROR_SQLSTATE
-- prepare_partition refuses a closed transition, and bad input
SELECT zdd.prepare_partition(:ab, 'logs_1');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.prepare_partition(999999, 'logs_1');
\echo :LAST_ERROR_SQLSTATE
-- the preflight reports the partition key as a blocker and changes nothing
SELECT severity, finding FROM zdd.check_rename('events', 'id', 'ident') WHERE severity = 'blocker';
SELECT count(*) AS ident_columns FROM pg_attribute WHERE attname = 'ident'
  AND attrelid IN (SELECT relid FROM pg_partition_tree('events'));
-- the guard covers a partition's cloned sync trigger; a partition may be dropped
CREATE TABLE gp (id int PRIMARY KEY, d int, v text) PARTITION BY HASH (id);
CREATE TABLE gp_0 PARTITION OF gp FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE gp_1 PARTITION OF gp FOR VALUES WITH (modulus 2, remainder 1);
INSERT INTO gp SELECT g, g, 'v' || g FROM generate_series(1, 100) g;
SELECT zdd.begin_rename('gp', 'v', 'val', start_backfill => false) AS gp \gset
ALTER TABLE gp_0 DISABLE TRIGGER ALL;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE gp_0 DISABLE TRIGGER USER;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE gp_1;
SELECT zdd.resume(:gp);
CALL zdd.wait(:gp, '60 s');
SELECT leaf_name, pass, rows_done FROM zdd.status_partitions WHERE id = :gp ORDER BY position;
SELECT count(*) FILTER (WHERE v IS DISTINCT FROM val) AS out_of_step, count(*) FROM gp;
SELECT zdd.complete(:gp);
-- the columns an INSERT through the parent named reach the leaf's sync
-- trigger: an old column left to its volatile default is not given (for
-- COPY, which names nothing, a value off its default counts as given)
CREATE TABLE vd (id int, d int, v text DEFAULT 'r' || random()::text) PARTITION BY LIST (d);
CREATE TABLE vd_1 PARTITION OF vd FOR VALUES IN (1);
SELECT zdd.begin_rename('vd', 'v', 'w', start_backfill => false) AS vd \gset
INSERT INTO vd (id, d, w) VALUES (1, 1, 'new app');
INSERT INTO vd (id, d, v) VALUES (2, 1, 'old app');
SELECT id, v, w FROM vd ORDER BY id;
SELECT zdd.abort(:vd);
-- a partition key expression on the column is the partition key too
CREATE TABLE ex (id int, ts timestamptz, v text) PARTITION BY RANGE (((ts AT TIME ZONE 'UTC')::date));
CREATE TABLE ex_1 PARTITION OF ex FOR VALUES FROM ('2020-01-01') TO ('2030-01-01');
SELECT zdd.begin_rename('ex', 'ts', 'at');
\echo :LAST_ERROR_SQLSTATE
-- a default or comment set on one partition only is refused
ALTER TABLE ex_1 ALTER COLUMN v SET DEFAULT 'local';
SELECT zdd.begin_rename('ex', 'v', 'w');
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE ex_1 ALTER COLUMN v DROP DEFAULT;
-- a partition detached, written and attached again in one go (no batch
-- saw it detached) is walked again: its clone of the sync trigger is new
CREATE TABLE rt (id int, d int, v text, PRIMARY KEY (id, d)) PARTITION BY LIST (d);
CREATE TABLE rt_1 PARTITION OF rt FOR VALUES IN (1);
CREATE TABLE rt_2 PARTITION OF rt FOR VALUES IN (2);
ALTER TABLE rt_1 REPLICA IDENTITY USING INDEX rt_1_pkey;
INSERT INTO rt SELECT g, 1 + g % 2, 'v' || g FROM generate_series(1, 200) g;
SELECT zdd.begin_retype('rt', 'id', 'bigint', pause_ms => 0) AS rt \gset
CALL zdd.wait(:rt, '60 s');
BEGIN;
ALTER TABLE rt DETACH PARTITION rt_2;
UPDATE rt_2 SET id = id + 1000 WHERE id < 50;
ALTER TABLE rt ATTACH PARTITION rt_2 FOR VALUES IN (2);
COMMIT;
SELECT zdd.complete(:rt);
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.resume(:rt);
CALL zdd.wait(:rt, '60 s');
SELECT leaf_name, pass, rows_done FROM zdd.status_partitions WHERE id = :rt ORDER BY position;
SELECT count(*) FILTER (WHERE id IS DISTINCT FROM id_zdd_new) AS out_of_step FROM rt;
SELECT zdd.complete(:rt);
SELECT sum(id), count(*) FROM rt;
SELECT c.relname, c.relreplident, i.indexrelid::regclass AS identity_index FROM pg_class c
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisreplident WHERE c.relname IN ('rt_1', 'rt_2') ORDER BY 1;
