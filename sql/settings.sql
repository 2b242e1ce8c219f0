-- The settings: the batchguard. prefix is reserved once the library is loaded (it is here:
-- the extension's functions loaded it), so a misspelt name is an error, not a new
-- placeholder; the documented limits of the compression settings; who may set what.
\i test/helpers.sql
SET client_min_messages = warning;
SELECT batchguard.current_owner() IS NOT NULL AS library_loaded;
SELECT pg_temp.error_of($$SET batchguard.cleanup_intervall = 10$$);
SELECT pg_temp.error_of($$SET batchguard.typo = 'x'$$);
SELECT pg_temp.error_of($$SELECT set_config('batchguard.typo', 'x', false)$$);
SELECT pg_temp.error_of($$ALTER ROLE CURRENT_USER SET batchguard.typo = 'x'$$);
SELECT pg_temp.error_of($$SHOW batchguard.typo$$);
-- compression_level: 1 to 19
SELECT pg_temp.error_of($$SET batchguard.compression_level = 0$$);
SELECT pg_temp.error_of($$SET batchguard.compression_level = 20$$);
SELECT pg_temp.error_of($$SET batchguard.compression_level = 19$$);
RESET batchguard.compression_level;
-- compression_workers: 0 to 8, superuser only
SELECT pg_temp.error_of($$SET batchguard.compression_workers = -1$$);
SELECT pg_temp.error_of($$SET batchguard.compression_workers = 9$$);
SELECT pg_temp.error_of($$SET batchguard.compression_workers = 0$$);
RESET batchguard.compression_workers;
CREATE ROLE regress_st_user;
SET ROLE regress_st_user;
SELECT pg_temp.error_of($$SET batchguard.compression_workers = 2$$);
SELECT pg_temp.error_of($$SET batchguard.compression_level = 5$$);
SELECT pg_temp.error_of($$SET batchguard.notify_interval = '1s'$$);
SELECT pg_temp.error_of($$SET batchguard.max_backup_retention = '1d'$$);
SELECT pg_temp.error_of($$SET batchguard.backup_retention = '1d'$$);
SELECT pg_temp.error_of($$SET batchguard.cleanup_interval = 10$$);
SELECT pg_temp.error_of($$SHOW batchguard.backup_directory$$);
RESET ROLE;
DROP ROLE regress_st_user;
