-- zdd install script, assembled from sql-src/*.sql in name order.
-- 00_catalog: the catalog tables. Only zdd's C functions write them (as the
-- extension's owner, after checking the caller owns the table); each role
-- reads the rows of transitions on tables it may SELECT (row-level
-- security), so no role sees another table's row values or keys.

\echo Use "CREATE EXTENSION zdd" to load this file. \quit

-- CREATE EXTENSION uses an existing schema "zdd" as it finds it. Refuse one
-- that another role created (its owner could replace zdd's objects) or
-- that already holds objects.
DO $zdd$
BEGIN
  IF (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'zdd')
       OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'zdd')
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'zdd')
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = 'zdd')
  THEN
    RAISE EXCEPTION 'zdd: schema "zdd" already exists and was not created for this extension'
      USING ERRCODE = '42501',
            HINT = 'zdd installs into a schema "zdd" of its own, owned by the role that creates the extension: drop or rename the existing schema first.';
  END IF;
END
$zdd$;

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
    last_batch_at    timestamptz,
    next_try_at      timestamptz,            -- after a failed batch: not before this
    walk_key         text,                   -- the pass's key (columns, types, operators); '' = ctid
    walk_end         text[]                  -- the pass's last key, fixed when the pass started
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

-- A role sees a transition when it may read the table (its last_error,
-- cursor and history can hold the table's values), or when it started it.
ALTER TABLE zdd.transition ENABLE ROW LEVEL SECURITY;
ALTER TABLE zdd.history ENABLE ROW LEVEL SECURITY;
CREATE POLICY readers ON zdd.transition FOR SELECT
  USING (pg_catalog.has_table_privilege(tbl, 'SELECT') OR pg_catalog.pg_has_role(started_by, 'MEMBER'));
CREATE POLICY readers ON zdd.history FOR SELECT
  USING (EXISTS (SELECT 1 FROM zdd.transition t WHERE t.id OPERATOR(pg_catalog.=) transition_id));

-- An optional name for a transition, unique among open ones (migrations
-- refer to it in later releases).
ALTER TABLE zdd.transition ADD COLUMN label text;
CREATE UNIQUE INDEX transition_open_label_idx ON zdd.transition (label)
  WHERE phase <> ALL (ARRAY['completed', 'aborted']);

-- Type changes (begin_retype): the column types as SQL text (for people),
-- the conversions (NULL: the assignment cast), and whether complete gives
-- the new column the old one's name (new_column not given).
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
