-- The upgrade path: a database on 0.1.0's SQL objects updates to 0.2.0
-- with ALTER EXTENSION, and then works end to end.
\set SHOW_CONTEXT never
CREATE DATABASE zdd_upgrade;
\c zdd_upgrade
CREATE EXTENSION zdd VERSION '0.1.0';
CREATE TABLE u (id int PRIMARY KEY, lastname text NOT NULL);
INSERT INTO u SELECT g, 'n' || g FROM generate_series(1, 500) g;
SELECT zdd.begin_rename('u', 'lastname', 'surname') AS id \gset
-- the new library's worker waits for the update instead of failing batches
SELECT pg_sleep(2);
SELECT phase, backfill_state, rows_done, failures FROM zdd.transition WHERE id = :id;
ALTER EXTENSION zdd UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'zdd';
SELECT attname FROM pg_attribute WHERE attrelid = 'zdd.transition'::regclass
  AND attname IN ('next_try_at', 'walk_key', 'walk_end', 'wait_reason', 'max_replica_lag') ORDER BY 1;
SELECT pg_get_function_identity_arguments(oid) FROM pg_proc
WHERE proname = 'throttle' AND pronamespace = 'zdd'::regnamespace ORDER BY 1;
SELECT has_table_privilege('pg_monitor', 'zdd.metrics', 'SELECT') AS monitor_reads_metrics;
SELECT polrelid::regclass, polname FROM pg_policy ORDER BY 1;
SELECT reloptions FROM pg_class WHERE oid = 'zdd.status'::regclass;
CALL zdd.wait(:id, '60 s');
SELECT zdd.ready('u', 'surname');
SELECT zdd.complete(:id);
SELECT attname FROM pg_attribute WHERE attrelid = 'u'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
-- a partitioned table through the updated objects
SELECT to_regprocedure('zdd.prepare_partition(bigint, regclass)') IS NOT NULL AS has_prepare_partition;
CREATE TABLE pu (id int, d int, lastname text, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);
CREATE TABLE pu_1 PARTITION OF pu FOR VALUES FROM (0) TO (5);
CREATE TABLE pu_2 PARTITION OF pu FOR VALUES FROM (5) TO (10);
INSERT INTO pu SELECT g, g % 10, 'n' || g FROM generate_series(1, 100) g;
SELECT zdd.begin_rename('pu', 'lastname', 'surname') AS pid \gset
CALL zdd.wait(:pid, '60 s');
SELECT partition, pass, rows_done FROM zdd.status_partitions ORDER BY position;
\c regression
DROP DATABASE zdd_upgrade;
