-- Every suite cleans up after itself (test/schedule runs this one after the others, before
-- maintenance): the database holds no batch, item, backup, audit row or identity mapping,
-- no backup file, and none of the suites' roles, tables, types, schemas or functions.
\i test/helpers.sql
SELECT batchguard.current_owner() IS NOT NULL AS library_loaded;
SELECT (SELECT count(*) FROM batchguard.batches) AS batches,
       (SELECT count(*) FROM batchguard.batch_items) AS items,
       (SELECT count(*) FROM batchguard.backups) AS backups,
       (SELECT count(*) FROM batchguard.audit) AS audit_rows,
       (SELECT count(*) FROM batchguard.identity_map) AS identity_mappings;
-- the database's backup folder holds its owner marker and nothing else (no backup file,
-- hold marker or quarantined orphan)
SELECT f AS file_left
  FROM pg_database d,
       LATERAL (SELECT current_setting('batchguard.backup_directory') || '/' || d.oid AS folder) x,
       LATERAL (SELECT f FROM pg_ls_dir(x.folder, true, false) f
                 WHERE f NOT IN ('pg_batchguard.owner', 'quarantine')
                UNION ALL
                SELECT 'quarantine/' || q FROM pg_ls_dir(x.folder || '/quarantine', true, false) q) y
 WHERE d.datname = current_database()
 ORDER BY 1;
SELECT rolname AS role_left FROM pg_roles WHERE rolname LIKE 'regress\_%' OR rolname LIKE 'batchguard\_%'
 ORDER BY 1;
SELECT n.nspname AS schema_left FROM pg_namespace n
 WHERE n.nspname NOT IN ('public', 'batchguard', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
 ORDER BY 1;
SELECT c.relname AS relation_left FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1;
SELECT t.typname AS type_left FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace ORDER BY 1;
SELECT p.proname AS function_left FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1;
SELECT gid AS prepared_transaction_left FROM pg_prepared_xacts WHERE database = current_database();
