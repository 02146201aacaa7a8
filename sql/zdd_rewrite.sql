-- A table rewritten while a ctid walk runs (no primary key): VACUUM FULL
-- gives every row a new place, pages already walked may then hold rows
-- never visited. The walk notices the new file and restarts its pass from
-- the top: no row is skipped, nothing fails.
\set SHOW_CONTEXT never
SELECT pg_catalog.setval('zdd.transition_id_seq', 14000) AS _ \gset
CREATE TABLE nopk (id int NOT NULL, lastname text NOT NULL);
INSERT INTO nopk SELECT g, 'n' || g FROM generate_series(1, 3000) g;
ANALYZE nopk;
SELECT zdd.begin_rename('nopk', 'lastname', 'surname', batch_size => 50, pause_ms => 150) AS id \gset
-- once the walk has started: free the first pages, rewrite the table
DO $$ BEGIN
  FOR i IN 1..400 LOOP
    EXIT WHEN (SELECT rows_done > 0 FROM zdd.transition WHERE id = 14001);
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT pass, walk_key LIKE 'ctid %' AS walk_on_file FROM zdd.transition WHERE id = :id;
DELETE FROM nopk WHERE id <= 1500;
VACUUM FULL nopk;
CALL zdd.wait(:id, '120 s');
SELECT count(*) FILTER (WHERE detail LIKE 'table rewritten during the % pass: pass restarted') AS restarts
FROM zdd.history WHERE transition_id = :id;
SELECT count(*) AS rows, count(*) FILTER (WHERE surname IS DISTINCT FROM lastname) AS out_of_step FROM nopk;
SELECT zdd.complete(:id);
