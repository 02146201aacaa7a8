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
\c regression
DROP DATABASE zdd_upgrade;
