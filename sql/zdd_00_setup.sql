-- Shared setup: the extension, and roles for the privilege tests.
\set SHOW_CONTEXT never
CREATE EXTENSION zdd;
CREATE ROLE zdd_stranger LOGIN;
CREATE ROLE zdd_owners NOLOGIN;
CREATE ROLE zdd_member LOGIN IN ROLE zdd_owners;
GRANT CREATE ON SCHEMA public TO zdd_owners, zdd_stranger;
SELECT extname, extversion FROM pg_extension WHERE extname = 'zdd';
