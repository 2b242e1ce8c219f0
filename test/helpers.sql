\set ECHO none
-- Included by every pg_regress suite (\i test/helpers.sql).
-- pg_temp.error_of(statement): 'ok', or the error's SQLSTATE and message. Boolean checks
-- and this helper keep expected output free of timestamps and source line numbers.
-- pg_temp.context_of(statement): the error's SQLSTATE and the lines of its CONTEXT that
-- name pg_batchguard (e.g. 'pg_batchguard backup <id>').
-- pg_temp.files_named_after(xid): the backup files of this database named after a
-- transaction (superuser): what an export in that transaction wrote. Several suites run at
-- once in one database, so they look at their own transactions' files only.
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
CREATE FUNCTION pg_temp.context_of(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    context text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS context = PG_EXCEPTION_CONTEXT;
    RETURN SQLSTATE || ': ' || coalesce((SELECT string_agg(line, ' / ')
                                           FROM regexp_split_to_table(context, E'\n') line
                                          WHERE line LIKE '%pg_batchguard%'), '(no pg_batchguard context)');
END
$$;
CREATE FUNCTION pg_temp.files_named_after(xid text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT count(*)
      FROM pg_database d,
           pg_ls_dir(current_setting('batchguard.backup_directory') || '/' || d.oid, true, false) f
     WHERE d.datname = current_database() AND f LIKE '%-' || xid || '.jsonl.zst'
$$;
\set QUIET off
\set ECHO all
