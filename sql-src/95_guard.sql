
-- 95_guard: DDL that would break an open transition is refused before it
-- runs (DROP EXTENSION zdd, DROP TABLE, DROP/ALTER TYPE/RENAME of either
-- column, dropping or disabling a sync trigger, a BEFORE ROW trigger that
-- would fire after the sync trigger). See src/guard.cpp.
CREATE FUNCTION zdd.guard() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'zdd_guard'
LANGUAGE C;
CREATE EVENT TRIGGER zdd_guard ON ddl_command_start
  WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP TABLE', 'DROP TRIGGER', 'ALTER TABLE',
              'CREATE TRIGGER', 'ALTER TRIGGER')
  EXECUTE FUNCTION zdd.guard();
