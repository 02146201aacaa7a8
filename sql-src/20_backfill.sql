
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
