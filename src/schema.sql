-- pg_batchguard: the schema, its types and the owner identity.
-- (Built into pg_batchguard--<version>.sql by the Makefile, followed by each feature's SQL.)
\echo Use "CREATE EXTENSION pg_batchguard" to load this file. \quit

COMMENT ON SCHEMA batchguard IS 'pg_batchguard: resumable batch jobs and backups before delete';
GRANT USAGE ON SCHEMA batchguard TO PUBLIC;

CREATE FUNCTION batchguard.current_owner() RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'batchguard_current_owner';
COMMENT ON FUNCTION batchguard.current_owner() IS
    'The owner recorded on the rows the caller creates, and the only owner whose rows it sees';
