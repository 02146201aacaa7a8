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
ALTER VIEW zdd.status SET (security_invoker = true);

-- The preflight.
CREATE FUNCTION zdd.check_rename(tbl regclass, old_column name, new_column name)
RETURNS TABLE (severity text, object text, finding text, action text)
AS 'MODULE_PATHNAME', 'zdd_check_rename'
LANGUAGE C VOLATILE;
