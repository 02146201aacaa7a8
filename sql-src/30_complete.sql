
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

-- The same by table and column, or by label (see zdd.find).
CREATE FUNCTION zdd.complete(tbl regclass, column_name name) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.complete(zdd.find(tbl, column_name)) $$;
CREATE FUNCTION zdd.complete(label text) RETURNS void
LANGUAGE sql AS $$ SELECT zdd.complete(zdd.find(label)) $$;
