
-- 30_complete: the contract step.

-- Completes transition id (phase backfilled): moves the old column's
-- default to the new column, drops the sync trigger and the old column,
-- re-creates its primary key / unique constraints on the twin indexes,
-- records 'completed'. Refuses while other objects depend on the old
-- column (2BP01), and while the old column was written within
-- zdd.complete_quiet_period (55000) unless force.
CREATE FUNCTION zdd.complete(id bigint, force boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'zdd_complete'
LANGUAGE C VOLATILE;

-- The same by table and column, or by label (see zdd.find).
CREATE FUNCTION zdd.complete(tbl regclass, column_name name, force boolean DEFAULT false) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.complete(zdd.find(tbl, column_name), force) $$;
CREATE FUNCTION zdd.complete(label text) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.complete(zdd.find(label)) $$;

-- The write log of the open transitions (shared memory, since the server
-- or the transition started): rows written through each column and the
-- time of the last such write. zdd.status shows it.
CREATE FUNCTION zdd.write_counts()
RETURNS TABLE (id bigint, old_writes bigint, new_writes bigint, last_old_write timestamptz,
               last_new_write timestamptz, counting_since timestamptz)
AS 'MODULE_PATHNAME', 'zdd_write_counts'
LANGUAGE C VOLATILE;
