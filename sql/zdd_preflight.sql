-- zdd.check_rename: the preflight, from the catalogs only, changing nothing.
\set SHOW_CONTEXT never
CREATE TABLE pf_country (code text PRIMARY KEY);
CREATE TABLE pf (id int PRIMARY KEY, name text NOT NULL, city text REFERENCES pf_country (code),
                 len int GENERATED ALWAYS AS (length(name)) STORED);
CREATE INDEX pf_name_idx ON pf (name);
CREATE VIEW pf_names AS SELECT name FROM pf;
CREATE FUNCTION pf_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER pf_name_changed BEFORE UPDATE OF city ON pf FOR EACH ROW EXECUTE FUNCTION pf_touch();
CREATE ROLE zdd_pf_reader;
GRANT SELECT (id, city) ON pf TO zdd_pf_reader;
CREATE PUBLICATION pf_pub FOR TABLE pf;
-- a column begin_rename would refuse: computed into a stored generated column
SELECT severity, object, finding FROM zdd.check_rename('pf', 'name', 'full_name');
-- a column it accepts: warnings and notes only
SELECT severity, object, finding, action FROM zdd.check_rename('pf', 'city', 'town');
-- several blockers at once
SELECT severity, finding FROM zdd.check_rename('pf', 'nosuch', 'id');
-- nothing changed
SELECT count(*) AS transitions FROM zdd.transition WHERE tbl = 'pf'::regclass;
SELECT count(*) AS columns FROM pg_attribute WHERE attrelid = 'pf'::regclass AND attnum > 0;
DROP PUBLICATION pf_pub;
