-- zdd 0.1.0 → 0.2.0: what this release changes in zdd's SQL objects.
\echo Use "ALTER EXTENSION zdd UPDATE TO '0.2.0'" to load this file. \quit

-- Backfill: retry time after a failure, and each pass's fixed walk.
ALTER TABLE zdd.transition
  ADD COLUMN next_try_at timestamptz,
  ADD COLUMN walk_key    text,
  ADD COLUMN walk_end    text[];
-- A pass in flight restarts from the top under the new walk rules.
UPDATE zdd.transition SET cursor = NULL WHERE phase = 'backfilling';

-- Each role reads only transitions on tables it may SELECT.
ALTER TABLE zdd.transition ENABLE ROW LEVEL SECURITY;
ALTER TABLE zdd.history ENABLE ROW LEVEL SECURITY;
CREATE POLICY readers ON zdd.transition FOR SELECT
  USING (pg_catalog.has_table_privilege(tbl, 'SELECT') OR pg_catalog.pg_has_role(started_by, 'MEMBER'));
CREATE POLICY readers ON zdd.history FOR SELECT
  USING (EXISTS (SELECT 1 FROM zdd.transition t WHERE t.id OPERATOR(pg_catalog.=) transition_id));

-- The preflight.
CREATE FUNCTION zdd.check_rename(tbl regclass, old_column name, new_column name)
RETURNS TABLE (severity text, object text, finding text, action text)
AS 'MODULE_PATHNAME', 'zdd_check_rename'
LANGUAGE C VOLATILE;

-- Labels, re-runs, and every call by table and column or by label.
ALTER TABLE zdd.transition ADD COLUMN label text;
CREATE UNIQUE INDEX transition_open_label_idx ON zdd.transition (label)
  WHERE phase <> ALL (ARRAY['completed', 'aborted']);
DROP FUNCTION zdd.begin_rename(regclass, name, name, integer, integer, integer, integer, boolean);
CREATE FUNCTION zdd.begin_rename(
    tbl              regclass,
    old_column       name,
    new_column       name,
    batch_size       integer DEFAULT NULL,
    pause_ms         integer DEFAULT NULL,
    max_rows_per_sec integer DEFAULT NULL,
    target_batch_ms  integer DEFAULT NULL,
    start_backfill   boolean DEFAULT true,
    label            text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'zdd_begin_rename'
LANGUAGE C VOLATILE;

-- Finding a transition without its id: by table and column (either side's
-- name; the open transition, else the latest), or by label. 42704 when
-- there is none.
CREATE FUNCTION zdd.find(tbl regclass, column_name name)
RETURNS bigint LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE found bigint;
BEGIN
  SELECT t.id INTO found FROM zdd.transition t
  WHERE t.tbl = find.tbl AND find.column_name IN (t.old_column, t.new_column)
  ORDER BY t.phase <> ALL (ARRAY['completed', 'aborted']) DESC, t.id DESC LIMIT 1;
  IF found IS NULL THEN
    RAISE EXCEPTION 'zdd: no transition on column "%" of %', column_name, tbl
      USING ERRCODE = '42704', HINT = 'SELECT * FROM zdd.status lists the transitions.';
  END IF;
  RETURN found;
END $$;

CREATE FUNCTION zdd.find(label text)
RETURNS bigint LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE found bigint;
BEGIN
  SELECT t.id INTO found FROM zdd.transition t WHERE t.label = find.label
  ORDER BY t.phase <> ALL (ARRAY['completed', 'aborted']) DESC, t.id DESC LIMIT 1;
  IF found IS NULL THEN
    RAISE EXCEPTION 'zdd: no transition labelled "%"', label
      USING ERRCODE = '42704', HINT = 'SELECT * FROM zdd.status lists the transitions.';
  END IF;
  RETURN found;
END $$;

-- The same calls by table and column, or by label.
CREATE FUNCTION zdd.abort(tbl regclass, column_name name) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.abort(zdd.find(tbl, column_name)) $$;
CREATE FUNCTION zdd.abort(label text) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.abort(zdd.find(label)) $$;

-- The same calls by table and column, or by label (see zdd.find).
CREATE FUNCTION zdd.pause(tbl regclass, column_name name) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.pause(zdd.find(tbl, column_name)) $$;
CREATE FUNCTION zdd.pause(label text) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.pause(zdd.find(label)) $$;
CREATE FUNCTION zdd.resume(tbl regclass, column_name name) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.resume(zdd.find(tbl, column_name)) $$;
CREATE FUNCTION zdd.resume(label text) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.resume(zdd.find(label)) $$;
-- throttle gains the health limits (issue 11).
DROP FUNCTION zdd.throttle(bigint, integer, integer, integer, integer);
-- Changes the throttle and the transition's health limits; NULL leaves a
-- value unchanged. Effective at the next batch. The limits override the
-- zdd.max_* settings for this transition (0 / false: that signal off):
-- max_replica_lag as a size ('100MB'), max_replica_delay and
-- max_transaction_age as intervals, max_dead_tuples as a share (0.5).
CREATE FUNCTION zdd.throttle(
    id                  bigint,
    batch_size          integer DEFAULT NULL,
    pause_ms            integer DEFAULT NULL,
    max_rows_per_sec    integer DEFAULT NULL,
    target_batch_ms     integer DEFAULT NULL,
    max_replica_lag     text DEFAULT NULL,
    max_replica_delay   interval DEFAULT NULL,
    max_archive_backlog integer DEFAULT NULL,
    max_dead_tuples     double precision DEFAULT NULL,
    wait_for_autovacuum boolean DEFAULT NULL,
    max_transaction_age interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'zdd_throttle'
LANGUAGE C VOLATILE;
CREATE FUNCTION zdd.throttle(
    tbl regclass, column_name name, batch_size integer DEFAULT NULL, pause_ms integer DEFAULT NULL,
    max_rows_per_sec integer DEFAULT NULL, target_batch_ms integer DEFAULT NULL,
    max_replica_lag text DEFAULT NULL, max_replica_delay interval DEFAULT NULL,
    max_archive_backlog integer DEFAULT NULL, max_dead_tuples double precision DEFAULT NULL,
    wait_for_autovacuum boolean DEFAULT NULL, max_transaction_age interval DEFAULT NULL)
RETURNS void LANGUAGE sql
AS $$ SELECT zdd.throttle(zdd.find(tbl, column_name), batch_size, pause_ms, max_rows_per_sec,
                          target_batch_ms, max_replica_lag, max_replica_delay, max_archive_backlog,
                          max_dead_tuples, wait_for_autovacuum, max_transaction_age) $$;
-- No such overload of zdd.wait: CALL zdd.wait(1, '1 min') would resolve to
-- it (int4 casts to regclass implicitly). A CALL argument may be a function
-- call: CALL zdd.wait(zdd.find('customer', 'lastname'), '10 min').

-- The same by table and column, or by label (see zdd.find).
-- complete gains force (the write interlock); not STRICT any more.
DROP FUNCTION zdd.complete(bigint);
CREATE FUNCTION zdd.complete(id bigint, force boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'zdd_complete'
LANGUAGE C VOLATILE;
CREATE FUNCTION zdd.write_counts()
RETURNS TABLE (id bigint, old_writes bigint, new_writes bigint, last_old_write timestamptz,
               last_new_write timestamptz, counting_since timestamptz)
AS 'MODULE_PATHNAME', 'zdd_write_counts'
LANGUAGE C VOLATILE;
CREATE FUNCTION zdd.complete(tbl regclass, column_name name, force boolean DEFAULT false) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.complete(zdd.find(tbl, column_name), force) $$;
CREATE FUNCTION zdd.complete(label text) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.complete(zdd.find(label)) $$;

-- Type changes: catalog columns, the conversion core for SQL, begin_retype.
ALTER TABLE zdd.transition
  ADD COLUMN old_type text,
  ADD COLUMN new_type text,
  ADD COLUMN up_expr text,
  ADD COLUMN down_expr text,
  ADD COLUMN keep_name boolean NOT NULL DEFAULT false,
  DROP CONSTRAINT transition_kind_check,
  ADD CONSTRAINT transition_kind_check CHECK (kind IN ('rename', 'retype'));
-- The twins pass's progress: twins that exist of those needed.
ALTER TABLE zdd.transition ADD COLUMN twins_done integer, ADD COLUMN twins_total integer;
CREATE FUNCTION zdd.in_step(old_value "any", new_value "any", old_name text, new_name text,
                            up text, down text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'zdd_in_step'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- up(old_value), of new_value's type: what the backfill writes.
CREATE FUNCTION zdd.up(old_value "any", new_value anyelement, old_name text, new_name text,
                       up text, down text)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'zdd_up'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION zdd.begin_retype(
    tbl              regclass,
    col              name,
    new_type         text,
    up               text DEFAULT NULL,
    down             text DEFAULT NULL,
    new_column       name DEFAULT NULL,
    batch_size       integer DEFAULT NULL,
    pause_ms         integer DEFAULT NULL,
    max_rows_per_sec integer DEFAULT NULL,
    target_batch_ms  integer DEFAULT NULL,
    start_backfill   boolean DEFAULT true,
    label            text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'zdd_begin_retype'
LANGUAGE C VOLATILE;

-- The last non-null value in the order the rows come: the walk's batch
-- reads its keys in key order through the primary key index and keeps the
-- last one without sorting them again.
CREATE FUNCTION zdd.later(state anyelement, value anyelement)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'zdd_later'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE AGGREGATE zdd.last(anyelement) (SFUNC = zdd.later, STYPE = anyelement);

-- The preflight of begin_retype: its checks (the conversion both ways, a
-- sample of the rows converted) as blockers, what it would do, and what a
-- rename of the column would meet; changes nothing, takes no lock that
-- blocks writes.
CREATE FUNCTION zdd.check_retype(tbl regclass, col name, new_type text, up text DEFAULT NULL,
                                 down text DEFAULT NULL, new_column name DEFAULT NULL)
RETURNS TABLE (severity text, object text, finding text, action text)
AS 'MODULE_PATHNAME', 'zdd_check_retype'
LANGUAGE C VOLATILE;

-- Health (the backfill waits while the cluster is unhealthy, see
-- src/health.cpp): state 'waiting' and why; how long it waited; what the
-- last check and batch measured; and the transition's own limits, set by
-- zdd.throttle (NULL: the zdd.* setting applies).
ALTER TABLE zdd.transition
  DROP CONSTRAINT transition_backfill_state_check,
  ADD CONSTRAINT transition_backfill_state_check
    CHECK (backfill_state IN ('pending', 'running', 'waiting', 'paused', 'failed', 'done')),
  ADD COLUMN wait_reason text,                    -- state 'waiting': the signal over its limit
  ADD COLUMN waiting_since timestamptz,           -- state 'waiting': since when
  ADD COLUMN waited interval NOT NULL DEFAULT '0',  -- earlier waits, summed
  ADD COLUMN lag_bytes bigint,                    -- largest replica / slot lag at the last check
  ADD COLUMN last_batch_ms integer,
  ADD COLUMN failures_total bigint NOT NULL DEFAULT 0,  -- failed batches, ever
  ADD COLUMN max_replica_lag bigint CHECK (max_replica_lag >= 0),
  ADD COLUMN max_replica_delay_ms integer CHECK (max_replica_delay_ms >= 0),
  ADD COLUMN max_archive_backlog integer CHECK (max_archive_backlog >= 0),
  ADD COLUMN max_dead_tuples double precision CHECK (max_dead_tuples >= 0),
  ADD COLUMN wait_for_autovacuum boolean,
  ADD COLUMN max_transaction_age_s integer CHECK (max_transaction_age_s >= 0);

-- What begin put on the new column from the old one (privileges, default
-- text, comment): complete tells a change the user made on the old column
-- since (a REVOKE, a dropped default or comment) from what they set on the
-- new column themselves.
ALTER TABLE zdd.transition
  ADD COLUMN begin_acl aclitem[],
  ADD COLUMN begin_default text,
  ADD COLUMN begin_comment text;

-- true once column_name of tbl is ready for the new app version: the
-- newest transition that introduces it (a rename's new name, or the new
-- column of a retype) is backfilled — every row in step, twins built — or
-- completed, and the column is there. A retype that keeps the column's
-- name is ready once completed (before, the name still holds the old
-- type). Cheap (one index probe, its plan cached per session: about 8 µs
-- a call): apps may call it per request, e.g. to toggle a feature flag.
-- false for a column no transition introduced.
CREATE FUNCTION zdd.ready(tbl regclass, column_name name)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
  RETURN COALESCE((
    SELECT CASE WHEN t.keep_name THEN t.phase OPERATOR(pg_catalog.=) 'completed'
                ELSE t.phase OPERATOR(pg_catalog.=) ANY (ARRAY['backfilled', 'completed']) END
    FROM zdd.transition t
    WHERE t.tbl OPERATOR(pg_catalog.=) ready.tbl
      AND CASE WHEN t.keep_name THEN t.old_column ELSE t.new_column END
          OPERATOR(pg_catalog.=) ready.column_name
      AND t.phase OPERATOR(pg_catalog.<>) 'aborted'
    ORDER BY t.id DESC LIMIT 1), false)
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
              WHERE a.attrelid OPERATOR(pg_catalog.=) ready.tbl
                AND a.attname OPERATOR(pg_catalog.=) ready.column_name AND NOT a.attisdropped);
END
$$;

-- The status view: each role sees its own transitions; the label, kind
-- and conversion shown.
CREATE OR REPLACE VIEW zdd.status WITH (security_invoker = true) AS
SELECT t.id,
       t.tbl AS "table",
       t.old_column,
       t.new_column,
       t.phase,
       CASE WHEN t.phase IN ('aborted', 'completed') AND t.backfill_state <> 'done' THEN 'stopped'
            WHEN t.phase = 'backfilling' AND t.backfill_state IN ('running', 'waiting') AND w.pid IS NULL
            THEN 'stalled' ELSE t.backfill_state END AS backfill,
       t.pass,
       t.rows_done,
       t.rows_total,
       -- progress of the current pass: backfill, then verify (rows_total is
       -- the rows the backfill pass found), then twins (steps done of total)
       CASE WHEN t.backfill_state = 'done' THEN 100.0
            WHEN t.pass = 'twins' AND t.twins_total > 0
            THEN pg_catalog.round(LEAST(99.9, 100.0 * t.twins_done / t.twins_total), 1)
            WHEN t.pass = 'twins' THEN NULL
            WHEN t.rows_total > 0
            THEN pg_catalog.round(LEAST(99.9, 100.0 * CASE t.pass WHEN 'verify' THEN t.rows_verified
                                                                   ELSE t.rows_done END / t.rows_total), 1)
       END AS percent,
       -- rate and ETA only while batches run (never stale while paused or done)
       CASE WHEN t.phase = 'backfilling' AND t.backfill_state = 'running'
            THEN pg_catalog.round(t.rate::numeric, 1) END AS rows_per_sec,
       CASE WHEN t.phase = 'backfilling' AND t.backfill_state = 'running'
             AND t.pass IN ('backfill', 'verify') AND t.rate > 0 AND t.rows_total IS NOT NULL
            THEN pg_catalog.date_trunc('second', pg_catalog.make_interval(secs =>
                   (GREATEST(t.rows_total - CASE t.pass WHEN 'verify' THEN t.rows_verified ELSE t.rows_done END, 0)
                    + CASE t.pass WHEN 'backfill' THEN t.rows_total ELSE 0 END) / t.rate))
       END AS eta,
       COALESCE(t.batch_size_now, t.batch_size) AS batch_size,
       t.pause_ms,
       t.max_rows_per_sec,
       t.verify_fixed,
       w.pid AS worker_pid,
       t.last_error,
       t.started_by,
       t.created_at,
       t.updated_at,
       t.backfill_started_at,
       t.backfill_finished_at,
       t.rows_written,
       t.batches,
       t.failures,
       t.label,
       t.kind,
       CASE WHEN t.kind = 'retype' THEN t.old_type || ' -> ' || t.new_type END AS conversion,
       wc.old_writes,
       wc.new_writes,
       wc.last_old_write,
       wc.last_new_write,
       CASE WHEN t.twins_total IS NOT NULL THEN t.twins_done || '/' || t.twins_total END AS twins,
       -- health: why the backfill waits, how long it waited in all, the
       -- largest replica / slot lag at the last check
       CASE WHEN t.backfill_state = 'waiting' THEN t.wait_reason END AS wait_reason,
       pg_catalog.date_trunc('second', t.waited + CASE WHEN t.backfill_state = 'waiting'
           THEN pg_catalog.clock_timestamp() - t.waiting_since ELSE interval '0' END) AS waited,
       t.lag_bytes AS replica_lag_bytes,
       t.last_batch_ms
FROM zdd.transition t
LEFT JOIN zdd.write_counts() wc ON wc.id = t.id AND t.phase <> ALL (ARRAY['completed', 'aborted'])
LEFT JOIN LATERAL (
    SELECT a.pid FROM pg_catalog.pg_stat_activity a
    WHERE a.backend_type = 'zdd backfill' AND a.datid = (SELECT d.oid FROM pg_catalog.pg_database d
                                                         WHERE d.datname = pg_catalog.current_database())
    ORDER BY a.pid = t.worker_pid DESC LIMIT 1) w ON t.phase = 'backfilling'
ORDER BY t.id;


-- 95_guard: DDL that would break an open transition is refused before it
-- runs (DROP EXTENSION zdd, DROP TABLE, DROP/ALTER TYPE/RENAME of either
-- column, dropping or disabling a sync trigger, a BEFORE ROW trigger that
-- would fire after the sync trigger). See src/guard.cpp.
CREATE FUNCTION zdd.guard() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'zdd_guard'
LANGUAGE C;
CREATE EVENT TRIGGER zdd_guard ON ddl_command_start
  WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP TABLE', 'DROP TRIGGER', 'ALTER TABLE',
              'CREATE TRIGGER', 'ALTER TRIGGER')
  EXECUTE FUNCTION zdd.guard();

-- zdd.metrics: one row per open transition and metric, the shape
-- monitoring scrapers expect (docs/postgres_exporter.yaml turns it into
-- Prometheus series). Not security_invoker: it shows numbers, names and
-- states only (no key, value or error text), so pg_monitor may read it
-- without rights on the tables.
CREATE VIEW zdd.metrics AS
SELECT t.id,
       COALESCE(pg_catalog.format('%I.%I', n.nspname, c.relname), t.tbl::pg_catalog.oid::pg_catalog.text)
         AS "table",
       t.old_column,
       t.new_column,
       t.phase,
       CASE WHEN t.backfill_state IN ('running', 'waiting') AND w.pid IS NULL THEN 'stalled'
            ELSE t.backfill_state END AS state,
       m.metric,
       m.value
FROM zdd.transition t
LEFT JOIN pg_catalog.pg_class c ON c.oid = t.tbl
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN zdd.write_counts() wc ON wc.id = t.id
LEFT JOIN LATERAL (
    SELECT a.pid FROM pg_catalog.pg_stat_activity a
    WHERE a.backend_type = 'zdd backfill' AND a.datid = (SELECT d.oid FROM pg_catalog.pg_database d
                                                         WHERE d.datname = pg_catalog.current_database())
    LIMIT 1) w ON t.phase = 'backfilling'
CROSS JOIN LATERAL (VALUES
    ('rows_done', t.rows_done::float8),
    ('rows_total', t.rows_total::float8),
    ('rows_written', t.rows_written::float8),
    ('rows_verified', t.rows_verified::float8),
    ('verify_fixed', t.verify_fixed::float8),
    ('rate', CASE WHEN t.backfill_state = 'running' THEN COALESCE(t.rate, 0) ELSE 0 END),
    ('batch_ms', t.last_batch_ms::float8),
    ('batches', t.batches::float8),
    ('lag_bytes', t.lag_bytes::float8),
    ('waiting', CASE WHEN t.backfill_state = 'waiting' THEN 1 ELSE 0 END::float8),
    ('waiting_seconds', pg_catalog.date_part('epoch', t.waited
        + CASE WHEN t.backfill_state = 'waiting' THEN pg_catalog.clock_timestamp() - t.waiting_since
               ELSE interval '0' END)),
    ('failures', t.failures_total::float8),
    ('old_writes', wc.old_writes::float8),
    ('new_writes', wc.new_writes::float8)) AS m(metric, value)
WHERE t.phase <> ALL (ARRAY['completed', 'aborted'])
ORDER BY t.id, m.metric;

REVOKE ALL ON zdd.metrics FROM PUBLIC;
GRANT SELECT ON zdd.metrics TO pg_monitor;
