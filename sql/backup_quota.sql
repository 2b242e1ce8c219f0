-- The storage limits: batchguard.max_backup_bytes (all backup files of the database) and
-- batchguard.max_backup_bytes_per_owner, checked before an export (the limit is already
-- reached) and while it writes. An export stopped by either leaves no row and no file.
-- The total counts every owner's backups: this suite runs alone in its group of test/schedule.
-- File storage, so that "no file" is something an export could get wrong.
\i test/helpers.sql
SET client_min_messages = warning;
SET batchguard.backup_storage = 'file';
CREATE ROLE regress_qt_owner;
CREATE TABLE qt_doc (id int PRIMARY KEY, body text);
INSERT INTO qt_doc SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 2000) g;
GRANT SELECT ON qt_doc TO regress_qt_owner;
SET ROLE regress_qt_owner;
SELECT total_rows FROM batchguard.export_backup('qt_doc', '{1,2,3}');
RESET ROLE;
SELECT sum(compressed_bytes) AS used, (SELECT compressed_bytes FROM batchguard.backups
                                        WHERE owner = 'regress_qt_owner') AS owner_used
  FROM batchguard.backups \gset
SELECT :used = :owner_used AS only_this_suite_has_backups;

BEGIN;
SELECT pg_current_xact_id() AS quota_xid \gset
-- the owner's quota is already reached
SELECT set_config('batchguard.max_backup_bytes_per_owner', :owner_used || 'B', true) IS NOT NULL AS set;
SET LOCAL ROLE regress_qt_owner;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('qt_doc', '{4}')$$) AS owner_full;
RESET ROLE;
-- the owner's quota leaves 4 kB: the export of every row stops while it writes
SELECT set_config('batchguard.max_backup_bytes_per_owner', (:owner_used + 4096) || 'B', true) IS NOT NULL AS set;
SET LOCAL ROLE regress_qt_owner;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('qt_doc')$$) AS owner_exceeded_while_writing;
RESET ROLE;
SET LOCAL batchguard.max_backup_bytes_per_owner = -1;
-- the same for the total of the database's backups
SELECT set_config('batchguard.max_backup_bytes', :used || 'B', true) IS NOT NULL AS set;
SET LOCAL ROLE regress_qt_owner;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('qt_doc', '{4}')$$) AS total_full;
RESET ROLE;
SELECT set_config('batchguard.max_backup_bytes', (:used + 4096) || 'B', true) IS NOT NULL AS set;
SET LOCAL ROLE regress_qt_owner;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('qt_doc')$$) AS total_exceeded_while_writing;
-- within both limits, an export works
SELECT total_rows FROM batchguard.export_backup('qt_doc', '{4}');
RESET ROLE;
SELECT count(*) AS rows_of_this_transaction FROM batchguard.backups WHERE creating_xid = :'quota_xid';
SELECT pg_temp.files_named_after(:'quota_xid') AS files_of_this_transaction;
ROLLBACK;
SELECT pg_temp.files_named_after(:'quota_xid') AS files_after_rollback;

-- -1 is no limit; other values below 0 are refused
SELECT pg_temp.error_of($$SET batchguard.max_backup_bytes = -2$$);
SELECT pg_temp.error_of($$SET batchguard.max_backup_bytes_per_owner = -2$$);

-- clean up
SET ROLE regress_qt_owner;
SELECT count(*) FILTER (WHERE batchguard.delete_backup(backup_id)) AS deleted FROM batchguard.backups;
RESET ROLE;
DELETE FROM batchguard.audit WHERE owner = 'regress_qt_owner';
DROP TABLE qt_doc;
DROP ROLE regress_qt_owner;
