-- The contract interlock: complete refuses while the old column was
-- written within zdd.complete_quiet_period (the old app version is still
-- live), and while zdd cannot know; force => true overrides. The write
-- log counts writes per side in shared memory.
\set SHOW_CONTEXT never
SELECT pg_catalog.setval('zdd.transition_id_seq', 13000) AS _ \gset
SET zdd.complete_quiet_period = '5min';
CREATE TABLE il (id int PRIMARY KEY, lastname text NOT NULL);
INSERT INTO il SELECT g, 'n' || g FROM generate_series(1, 50) g;
SELECT zdd.begin_rename('il', 'lastname', 'surname', pause_ms => 0) AS id \gset
CALL zdd.wait(:id, '60 s');
-- nothing written yet, but zdd has counted only since begin: refused
DO $$ BEGIN PERFORM zdd.complete(13001);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  RAISE NOTICE '%', regexp_replace(SQLERRM, 'since .* less', 'since <begin>, less');
END $$;
-- each side's writes are counted (rows written through the column)
UPDATE il SET lastname = lastname || '+' WHERE id <= 4;
UPDATE il SET surname = surname || '-' WHERE id <= 2;
INSERT INTO il (id, surname) VALUES (100, 'new app');
INSERT INTO il (id, lastname, surname) VALUES (101, 'both', 'both');
UPDATE il SET id = id + 1000 WHERE id = 50;  -- neither column: not counted
SELECT old_writes, new_writes, last_old_write IS NOT NULL AS old_written,
       last_new_write >= last_old_write AS new_written_after FROM zdd.status WHERE id = :id;
DO $$ BEGIN PERFORM zdd.complete(13001);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  RAISE NOTICE '%', regexp_replace(SQLERRM, '[0-9]+ s ago', 'N s ago');
END $$;
\set VERBOSITY sqlstate
SELECT zdd.complete('il', 'surname');
\set VERBOSITY default
SELECT phase FROM zdd.status WHERE id = :id;
-- force overrides, and the history says so
SELECT zdd.complete('il', 'lastname', force => true);
SELECT phase, old_writes FROM zdd.status WHERE id = :id;
SELECT to_state, detail FROM zdd.history WHERE transition_id = :id AND event = 'phase' ORDER BY id DESC LIMIT 1;

-- a quiet period of 0 turns the interlock off
CREATE TABLE il2 (id int PRIMARY KEY, a text);
INSERT INTO il2 VALUES (1, 'x');
SELECT zdd.begin_rename('il2', 'a', 'b', pause_ms => 0) AS id2 \gset
CALL zdd.wait(:id2, '60 s');
UPDATE il2 SET a = 'y';
SET zdd.complete_quiet_period = 0;
SELECT zdd.complete(:id2);
SET zdd.complete_quiet_period = '5min';

-- a retype that keeps the column's name has no old side to wait for
CREATE TABLE il3 (id int PRIMARY KEY, n int);
INSERT INTO il3 VALUES (1, 1);
SELECT zdd.begin_retype('il3', 'n', 'bigint', pause_ms => 0) AS id3 \gset
CALL zdd.wait(:id3, '60 s');
UPDATE il3 SET n = 2;
SELECT zdd.complete(:id3);
SELECT n, pg_typeof(n) FROM il3;

-- bad input
\set VERBOSITY sqlstate
SELECT zdd.complete(NULL);
SELECT zdd.complete(NULL, force => true);
SET zdd.complete_quiet_period = -1;
SET zdd.complete_quiet_period = 'soon';
