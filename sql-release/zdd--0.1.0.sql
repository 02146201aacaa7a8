-- zdd install script, assembled from sql-src/*.sql in name order.
-- 00_catalog: the catalog tables. Only zdd's C functions write them (as the
-- owner of schema zdd, after checking the caller owns the table); everyone
-- may read them.

\echo Use "CREATE EXTENSION zdd" to load this file. \quit

CREATE SEQUENCE zdd.transition_id_seq;
CREATE SEQUENCE zdd.history_id_seq;

-- One row per transition (a column being renamed).
CREATE TABLE zdd.transition (
    id               bigint PRIMARY KEY DEFAULT nextval('zdd.transition_id_seq'),
    tbl              regclass NOT NULL,
    old_column       name NOT NULL,
    new_column       name NOT NULL,
    kind             text NOT NULL DEFAULT 'rename' CHECK (kind IN ('rename')),
    phase            text NOT NULL DEFAULT 'expanded'
                     CHECK (phase IN ('expanded', 'backfilling', 'backfilled', 'completed', 'aborted')),
    started_by       regrole NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at      timestamptz,            -- completed or aborted

    -- backfill state and steering
    backfill_state   text NOT NULL DEFAULT 'pending'
                     CHECK (backfill_state IN ('pending', 'running', 'paused', 'failed', 'done')),
    batch_size       integer NOT NULL CHECK (batch_size > 0),
    target_batch_ms  integer NOT NULL DEFAULT 0 CHECK (target_batch_ms >= 0),  -- 0: fixed batch size
    pause_ms         integer NOT NULL CHECK (pause_ms >= 0),
    max_rows_per_sec integer NOT NULL DEFAULT 0 CHECK (max_rows_per_sec >= 0),  -- 0: no cap

    -- backfill progress (the cursor is advanced in the batch's transaction)
    key_columns      name[],                 -- primary key columns; NULL: ctid ranges
    pass             text NOT NULL DEFAULT 'backfill' CHECK (pass IN ('backfill', 'verify', 'twins')),
    cursor           text[],                 -- last key done (text form) or next ctid page
    rows_done        bigint NOT NULL DEFAULT 0,   -- rows the backfill pass visited
    rows_written     bigint NOT NULL DEFAULT 0,   -- rows the backfill had to write
    rows_total       bigint,                      -- estimate (pg_class.reltuples or count)
    rows_verified    bigint NOT NULL DEFAULT 0,   -- rows the verification pass checked
    verify_fixed     bigint NOT NULL DEFAULT 0,   -- rows the verification pass found out of step
    batches          bigint NOT NULL DEFAULT 0,
    batch_size_now   integer,                     -- adaptive size in use (target_batch_ms > 0)
    rate             double precision,            -- rows/s over recent batches
    worker_pid       integer,
    last_error       text,
    failures         integer NOT NULL DEFAULT 0,  -- consecutive failed batches
    backfill_started_at  timestamptz,
    backfill_finished_at timestamptz,
    last_batch_at    timestamptz
);
CREATE INDEX transition_tbl_idx ON zdd.transition (tbl);

-- Every change of phase or backfill state, who made it and when.
CREATE TABLE zdd.history (
    id            bigint PRIMARY KEY DEFAULT nextval('zdd.history_id_seq'),
    transition_id bigint NOT NULL REFERENCES zdd.transition (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    by_role       name NOT NULL,
    event         text NOT NULL CHECK (event IN ('phase', 'backfill')),
    from_state    text,
    to_state      text NOT NULL,
    detail        text
);
CREATE INDEX history_transition_idx ON zdd.history (transition_id, at);

SELECT pg_catalog.pg_extension_config_dump('zdd.transition', '');
SELECT pg_catalog.pg_extension_config_dump('zdd.history', '');
SELECT pg_catalog.pg_extension_config_dump('zdd.transition_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('zdd.history_id_seq', '');

REVOKE ALL ON zdd.transition, zdd.history, zdd.transition_id_seq, zdd.history_id_seq FROM PUBLIC;
GRANT SELECT ON zdd.transition, zdd.history TO PUBLIC;
GRANT USAGE ON SCHEMA zdd TO PUBLIC;

-- 10_transition: starting and undoing a transition, and the sync trigger.

-- Starts renaming old_column to new_column on tbl: adds new_column (same
-- type, typmod, collation; nullable, no default), installs the sync trigger,
-- records phase 'expanded' and (unless start_backfill is false) starts the
-- background backfill when the calling transaction commits.
-- NULL throttle arguments take the zdd.* settings' values.
CREATE FUNCTION zdd.begin_rename(
    tbl              regclass,
    old_column       name,
    new_column       name,
    batch_size       integer DEFAULT NULL,
    pause_ms         integer DEFAULT NULL,
    max_rows_per_sec integer DEFAULT NULL,
    target_batch_ms  integer DEFAULT NULL,
    start_backfill   boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'zdd_begin_rename'
LANGUAGE C VOLATILE;

-- Undoes a transition in any phase before 'completed': stops its backfill,
-- drops the sync trigger and the new column; the old column is untouched.
CREATE FUNCTION zdd.abort(id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'zdd_abort'
LANGUAGE C VOLATILE STRICT;

-- The BEFORE INSERT OR UPDATE row trigger that keeps old and new in step.
-- Arguments: transition id, old column name, new column name.
CREATE FUNCTION zdd.sync_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'zdd_sync_trigger'
LANGUAGE C;

-- 20_backfill: steering the background backfill.

-- true when a and b differ by zdd's equality (binary, NULLs equal): the
-- backfill writes only rows where zdd.differs(new, old).
CREATE FUNCTION zdd.differs(a anyelement, b anyelement)
RETURNS boolean
AS 'MODULE_PATHNAME', 'zdd_differs'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Pauses the backfill of transition id (effective within one batch).
CREATE FUNCTION zdd.pause(id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'zdd_pause'
LANGUAGE C VOLATILE STRICT;

-- Starts or resumes the backfill: after pause, failure, a stalled worker,
-- or begin_rename(..., start_backfill => false). The worker starts when
-- the calling transaction commits.
CREATE FUNCTION zdd.resume(id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'zdd_resume'
LANGUAGE C VOLATILE STRICT;

-- Changes the throttle; NULL leaves a value unchanged. Effective at the
-- next batch.
CREATE FUNCTION zdd.throttle(
    id               bigint,
    batch_size       integer DEFAULT NULL,
    pause_ms         integer DEFAULT NULL,
    max_rows_per_sec integer DEFAULT NULL,
    target_batch_ms  integer DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'zdd_throttle'
LANGUAGE C VOLATILE;

-- CALL zdd.wait(id, timeout): blocks until the backfill is done (returns
-- the phase), failed or the transition aborted (error 55000), or timeout
-- (error 57014). A procedure: it commits between polls so that it holds
-- no snapshot (which would stall the backfill's concurrent index builds).
CREATE PROCEDURE zdd.wait(id bigint, timeout interval DEFAULT '1 hour', INOUT phase text DEFAULT NULL)
AS 'MODULE_PATHNAME', 'zdd_wait'
LANGUAGE C;

-- 30_complete: the contract step.

-- Completes transition id (phase backfilled): moves the old column's
-- default to the new column, drops the sync trigger and the old column,
-- re-creates its primary key / unique constraints on the twin indexes,
-- records 'completed'. Refuses while other objects depend on the old
-- column (2BP01).
CREATE FUNCTION zdd.complete(id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'zdd_complete'
LANGUAGE C VOLATILE STRICT;

-- 90_status: what a DBA watches with \watch 1.
CREATE VIEW zdd.status AS
SELECT t.id,
       t.tbl AS "table",
       t.old_column,
       t.new_column,
       t.phase,
       CASE WHEN t.phase = 'backfilling' AND t.backfill_state = 'running' AND w.pid IS NULL
            THEN 'stalled' ELSE t.backfill_state END AS backfill,
       t.pass,
       t.rows_done,
       t.rows_total,
       CASE WHEN t.backfill_state = 'done' THEN 100.0
            WHEN t.pass <> 'backfill' THEN 100.0
            WHEN t.rows_total > 0
            THEN pg_catalog.round(LEAST(99.9, 100.0 * t.rows_done / t.rows_total), 1)
       END AS percent,
       pg_catalog.round(t.rate::numeric, 1) AS rows_per_sec,
       CASE WHEN t.pass = 'backfill' AND t.rate > 0 AND t.rows_total IS NOT NULL
            THEN pg_catalog.date_trunc('second', pg_catalog.make_interval(secs => GREATEST(t.rows_total - t.rows_done, 0) / t.rate))
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
       t.failures
FROM zdd.transition t
LEFT JOIN LATERAL (
    SELECT a.pid FROM pg_catalog.pg_stat_activity a
    WHERE a.backend_type = 'zdd backfill' AND a.datid = (SELECT d.oid FROM pg_catalog.pg_database d
                                                         WHERE d.datname = pg_catalog.current_database())
    ORDER BY a.pid = t.worker_pid DESC LIMIT 1) w ON t.phase = 'backfilling';

GRANT SELECT ON zdd.status TO PUBLIC;
