
-- 90_status: what a DBA watches with \watch 1.
-- security_invoker: each role sees the rows zdd.transition shows it.
CREATE VIEW zdd.status WITH (security_invoker = true) AS
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

GRANT SELECT ON zdd.status TO PUBLIC;

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
