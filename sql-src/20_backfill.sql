
-- 20_backfill: steering the background backfill.

-- true when a and b differ by zdd's equality (binary, NULLs equal): the
-- backfill writes only rows where zdd.differs(new, old).
CREATE FUNCTION zdd.differs(a anyelement, b anyelement)
RETURNS boolean
AS 'MODULE_PATHNAME', 'zdd_differs'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- true when new = up(old) or old = down(new): the sync trigger's rule,
-- through the same conversion core (old_name / new_name: the columns' names
-- the up / down expressions use; NULL conversions: the assignment cast, or
-- nothing between equal types). The backfill and verify passes write only
-- rows where it is false. Arguments 3-6 must be the same for every row of
-- a query.
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

-- The last non-null value in the order the rows come: the walk's batch
-- reads its keys in key order through the primary key index and keeps the
-- last one without sorting them again.
CREATE FUNCTION zdd.later(state anyelement, value anyelement)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'zdd_later'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE AGGREGATE zdd.last(anyelement) (SFUNC = zdd.later, STYPE = anyelement);

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

-- CALL zdd.wait(id, timeout): blocks until the backfill is done (returns
-- the phase), failed or the transition aborted (error 55000), or timeout
-- (error 57014). A procedure: it commits between polls so that it holds
-- no snapshot (which would stall the backfill's concurrent index builds).
CREATE PROCEDURE zdd.wait(id bigint, timeout interval DEFAULT '1 hour', INOUT phase text DEFAULT NULL)
AS 'MODULE_PATHNAME', 'zdd_wait'
LANGUAGE C;

-- The same calls by table and column, or by label (see zdd.find).
CREATE FUNCTION zdd.pause(tbl regclass, column_name name) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.pause(zdd.find(tbl, column_name)) $$;
CREATE FUNCTION zdd.pause(label text) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.pause(zdd.find(label)) $$;
CREATE FUNCTION zdd.resume(tbl regclass, column_name name) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.resume(zdd.find(tbl, column_name)) $$;
CREATE FUNCTION zdd.resume(label text) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.resume(zdd.find(label)) $$;
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
