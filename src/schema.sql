-- pg_batchguard: the schema.
-- (Built into pg_batchguard--<version>.sql by the Makefile, followed by each feature's SQL.)
\echo Use "CREATE EXTENSION pg_batchguard" to load this file. \quit

COMMENT ON SCHEMA batchguard IS 'pg_batchguard: resumable batch jobs and backups before delete';
GRANT USAGE ON SCHEMA batchguard TO PUBLIC;
