
-- 05_partitions: a transition on a partitioned table walks each leaf
-- partition with its own cursor (src/partitions.cpp). One row per leaf
-- the transition covers; the transition's own row keeps the totals.
CREATE TABLE zdd.transition_leaf (
    transition_id bigint NOT NULL REFERENCES zdd.transition (id) ON DELETE CASCADE,
    leaf          regclass NOT NULL,
    leaf_name     text NOT NULL,             -- schema-qualified, at the time it joined
    position      integer NOT NULL,          -- walk order (partition tree order)
    -- the leaf's pass: backfill → verify → done; detached: left the table
    pass          text NOT NULL DEFAULT 'backfill'
                  CHECK (pass IN ('backfill', 'verify', 'done', 'detached')),
    cursor        text[],
    walk_key      text,
    walk_end      text[],
    sync_trigger  oid,                       -- the leaf's clone of the sync trigger (new at each ATTACH)
    rows_total    bigint,                    -- estimate when it joined
    rows_done     bigint NOT NULL DEFAULT 0,
    rows_written  bigint NOT NULL DEFAULT 0,
    rows_verified bigint NOT NULL DEFAULT 0,
    verify_fixed  bigint NOT NULL DEFAULT 0,
    joined_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at   timestamptz,
    PRIMARY KEY (transition_id, leaf)
);
SELECT pg_catalog.pg_extension_config_dump('zdd.transition_leaf', '');
REVOKE ALL ON zdd.transition_leaf FROM PUBLIC;
GRANT SELECT ON zdd.transition_leaf TO PUBLIC;
ALTER TABLE zdd.transition_leaf ENABLE ROW LEVEL SECURITY;
CREATE POLICY readers ON zdd.transition_leaf FOR SELECT
  USING (EXISTS (SELECT 1 FROM zdd.transition t WHERE t.id OPERATOR(pg_catalog.=) transition_id));

-- Readies table tbl to be attached to the partitioned table of open
-- transition id: adds the new column (the parent's type, collation and
-- default), fills it from the old one, NOT NULL and the parent's CHECK
-- constraints on it as the parent has them. After ATTACH PARTITION the
-- backfill walks it like every other partition (complete waits for that).
CREATE FUNCTION zdd.prepare_partition(id bigint, tbl regclass) RETURNS void
AS 'MODULE_PATHNAME', 'zdd_prepare_partition'
LANGUAGE C VOLATILE STRICT;

-- zdd.status_partitions: one row per leaf partition of a transition on a
-- partitioned table, with its own pass and progress (security_invoker:
-- the rows zdd.transition_leaf shows the role).
CREATE VIEW zdd.status_partitions WITH (security_invoker = true) AS
SELECT l.transition_id AS id,
       t.tbl AS "table",
       l.leaf AS partition,
       l.leaf_name,
       l.position,
       l.pass,
       l.rows_done,
       l.rows_total,
       l.rows_written,
       l.rows_verified,
       l.verify_fixed,
       CASE WHEN l.pass IN ('done', 'detached') THEN 100.0
            WHEN GREATEST(l.rows_total, l.rows_done) > 0
            THEN pg_catalog.round(LEAST(99.9, 50.0 * (l.rows_done + l.rows_verified)
                                               / GREATEST(l.rows_total, l.rows_done)), 1)
            ELSE 0.0 END AS percent,
       l.joined_at,
       l.finished_at
FROM zdd.transition_leaf l JOIN zdd.transition t ON t.id = l.transition_id
ORDER BY l.transition_id, l.position;

GRANT SELECT ON zdd.status_partitions TO PUBLIC;
