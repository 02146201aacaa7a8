
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
    start_backfill   boolean DEFAULT true,
    label            text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'zdd_begin_rename'
LANGUAGE C VOLATILE;

-- Starts changing the type of column col to new_type (a type name, with
-- its modifiers: 'bigint', 'numeric(12,2)', 'varchar(80)'): adds the new
-- column (new_column, or a name zdd chooses that complete replaces by
-- col's own), installs the sync trigger applying up (old -> new) and
-- down (new -> old), SQL expressions over the source column's name (NULL:
-- the assignment cast), checks the conversion on a sample of the rows, and
-- starts the backfill at commit. A change PostgreSQL makes without a
-- rewrite or scan (varchar(n) -> text, ...) is done at once under a short
-- lock, and the transition recorded as completed.
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

-- The preflight of begin_retype: its checks (the conversion both ways, a
-- sample of the rows converted) as blockers, what it would do, and what a
-- rename of the column would meet; changes nothing, takes no lock that
-- blocks writes.
CREATE FUNCTION zdd.check_retype(tbl regclass, col name, new_type text, up text DEFAULT NULL,
                                 down text DEFAULT NULL, new_column name DEFAULT NULL)
RETURNS TABLE (severity text, object text, finding text, action text)
AS 'MODULE_PATHNAME', 'zdd_check_retype'
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

-- A preflight, from the catalogs only, changing nothing: what begin_rename
-- would refuse (blocker), what would later block complete or needs the
-- DBA's attention (warning), what zdd carries and how long it will take
-- (note). Blockers first.
CREATE FUNCTION zdd.check_rename(tbl regclass, old_column name, new_column name)
RETURNS TABLE (severity text, object text, finding text, action text)
AS 'MODULE_PATHNAME', 'zdd_check_rename'
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
