-- Included by every pg_regress suite (\i test/helpers.sql).
-- pg_temp.error_of(statement): 'ok', or the error's SQLSTATE and message. Boolean checks
-- and this helper keep expected output free of timestamps and source line numbers.
\set QUIET on
CREATE FUNCTION pg_temp.error_of(statement text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
\set QUIET off
