-- From a deploy pipeline: re-runs return the open transition, every call
-- finds a transition by table and column (either side's name) or by label.
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- transition ids start at 9501 in this file, whatever ran before
SELECT pg_catalog.setval('zdd.transition_id_seq', 9500) AS _ \gset
CREATE TABLE pipe (id int PRIMARY KEY, lastname text NOT NULL);
INSERT INTO pipe SELECT g, 'n' || g FROM generate_series(1, 500) g;
SELECT zdd.begin_rename('pipe', 'lastname', 'surname', pause_ms => 0, label => 'pipe-surname');
-- the same migration run again: the same id, a notice, nothing changed
SELECT zdd.begin_rename('pipe', 'lastname', 'surname', pause_ms => 0, label => 'pipe-surname');
SELECT count(*) AS transitions FROM zdd.transition WHERE tbl = 'pipe'::regclass;
-- a different request on a column in a transition names that transition
SELECT zdd.begin_rename('pipe', 'lastname', 'family_name');
SELECT zdd.begin_rename('pipe', 'surname', 'x');
-- a label already used by an open transition
CREATE TABLE pipe2 (id int PRIMARY KEY, a text);
SELECT zdd.begin_rename('pipe2', 'a', 'b', label => 'pipe-surname');
\echo :LAST_ERROR_SQLSTATE
-- found by either column's name and by label
SELECT zdd.find('pipe', 'lastname') = zdd.find('pipe', 'surname') AS same,
       zdd.find('pipe-surname') = zdd.find('pipe', 'lastname') AS by_label;
SELECT zdd.find('pipe', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.find('no such label');
\echo :LAST_ERROR_SQLSTATE
CALL zdd.wait(zdd.find('pipe', 'surname'), '60 s');
SELECT zdd.pause('pipe', 'lastname');
\echo :LAST_ERROR_SQLSTATE
SELECT zdd.throttle('pipe', 'lastname', batch_size => 100);
SELECT label, phase, batch_size FROM zdd.status WHERE "table" = 'pipe'::regclass;
SELECT zdd.complete('pipe-surname');
-- after complete: the same call again says what happened to it
SELECT zdd.complete('pipe', 'surname');
\echo :LAST_ERROR_SQLSTATE
-- the label is free again once its transition ended
SELECT zdd.begin_rename('pipe2', 'a', 'b', label => 'pipe-surname', start_backfill => false) > 0 AS relabelled;
SELECT zdd.abort('pipe-surname');
SELECT zdd.abort('pipe2', 'a');
\echo :LAST_ERROR_SQLSTATE
