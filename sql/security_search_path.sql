-- Issue 13, High 1: the SQL the extension writes resolves every function, operator and
-- type in pg_catalog or batchguard, whatever the caller's search_path holds. An untrusted
-- role (mallory) plants look-alikes in public and in a schema of hers, and the superuser
-- calls every function of the API twice: with her schema first and pg_catalog searched
-- implicitly (better-matching look-alikes), then with her schema before pg_catalog (exact
-- copies). A look-alike that runs prints a WARNING; the reported attack (text || bigint
-- in public, picked by purge_with_backup) would also make mallory a superuser. At the
-- end of each pass every function of the extension must have been called.
\i test/helpers.sql
SET client_min_messages = warning;
CREATE ROLE regress_sp_mallory;
CREATE ROLE regress_sp_victim;
CREATE ROLE regress_sp_web;
GRANT CREATE ON SCHEMA public TO regress_sp_mallory;
CREATE SCHEMA regress_sp_evil AUTHORIZATION regress_sp_mallory;
GRANT USAGE ON SCHEMA regress_sp_evil TO PUBLIC;

CREATE TABLE sp_doc (id int PRIMARY KEY, body text);
CREATE TABLE sp_note (id int PRIMARY KEY, doc_id int REFERENCES sp_doc ON DELETE CASCADE);
CREATE TABLE sp_purge (id bigint PRIMARY KEY);

-- mallory's look-alikes: first the reported one, then thousands more
SET ROLE regress_sp_mallory;
CREATE FUNCTION public.sp_concat(a text, b bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'look-alike public.||(text, bigint) called by %', session_user;
    BEGIN
        EXECUTE 'ALTER ROLE regress_sp_mallory SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    RETURN a OPERATOR(pg_catalog.||) b;
END
$$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = public.sp_concat);
\i test/lookalikes.sql
RESET ROLE;
SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'regress_sp_evil'::regnamespace) > 2000 AS evil_functions,
       (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'regress_sp_evil'::regnamespace) > 500 AS evil_operators,
       (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace) > 500 AS public_operators;

-- which functions of the extension each pass calls
CREATE FUNCTION pg_temp.reset_calls() RETURNS void LANGUAGE sql AS $$
    SELECT pg_stat_reset_single_function_counters(p.oid) FROM pg_proc p
     WHERE p.pronamespace = 'batchguard'::regnamespace;
    SELECT pg_stat_force_next_flush();
$$;
-- (_protected_truncate only ever raises its refusal, and a call that raises is not counted)
CREATE FUNCTION pg_temp.not_called() RETURNS SETOF regprocedure LANGUAGE sql AS $$
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p.pronamespace = 'batchguard'::regnamespace
       AND p.proname <> '_protected_truncate'
       AND coalesce(pg_stat_get_function_calls(p.oid), 0) = 0
     ORDER BY 1;
$$;
SET track_functions = 'all';

-- pass a: mallory's schema first, pg_catalog implicitly before it (the default place)
SELECT pg_temp.reset_calls();
\set pass a
SET search_path = regress_sp_evil, public;
\i test/search_path_calls.sql
RESET search_path;
SELECT pg_stat_force_next_flush();
SELECT * FROM pg_temp.not_called();
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'regress_sp_mallory';

-- pass b: mallory's schema before pg_catalog
SELECT pg_temp.reset_calls();
\set pass b
SET search_path = regress_sp_evil, pg_catalog, public;
\i test/search_path_calls.sql
RESET search_path;
SELECT pg_stat_force_next_flush();
SELECT * FROM pg_temp.not_called();
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'regress_sp_mallory';

RESET track_functions;
-- the audit rows of the superuser's calls (this suite runs alone)
DELETE FROM batchguard.audit WHERE owner = current_user;
DROP TABLE sp_note, sp_doc, sp_purge;
DROP OWNED BY regress_sp_mallory;
REVOKE CREATE ON SCHEMA public FROM regress_sp_mallory;
DROP ROLE regress_sp_mallory, regress_sp_victim, regress_sp_web;
