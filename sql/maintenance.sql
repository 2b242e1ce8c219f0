-- cleanup_expired_backups and run_maintenance as SQL: dry run, legal hold, the caller's own
-- backups versus every owner's (superuser), expired leases, rows whose file vanished.
-- A superuser's calls act on every owner's rows in the database, so this suite runs alone
-- in its group of test/schedule; its first round takes care of anything found before it
-- (nothing, when every suite cleans up after itself: sql/leftovers.sql checks that).
\i test/helpers.sql
SET client_min_messages = warning;
-- the files of file storage (in-database backups have no file to lose)
SET batchguard.backup_storage = 'file';

SET client_min_messages = error;
SELECT batchguard.run_maintenance() IS NOT NULL AS flushed;
SET client_min_messages = warning;

CREATE ROLE regress_mt_alice;
CREATE ROLE regress_mt_bob;
CREATE TABLE mt_doc (id int PRIMARY KEY, body text);
INSERT INTO mt_doc SELECT g, 'doc ' || g FROM generate_series(1, 5) g;
GRANT SELECT ON mt_doc TO regress_mt_alice, regress_mt_bob;

-- three backups each for alice and bob: one to expire, one to expire but held, one to keep
SET ROLE regress_mt_alice;
SELECT backup_id AS a_expire FROM batchguard.export_backup('mt_doc', '{1}', label => 'expire') \gset
SELECT backup_id AS a_held FROM batchguard.export_backup('mt_doc', '{2}', label => 'held') \gset
SELECT backup_id AS a_keep FROM batchguard.export_backup('mt_doc', '{3}', label => 'keep') \gset
SELECT (batchguard.hold_backup(:'a_held')).legal_hold AS a_held_is_held;
SET ROLE regress_mt_bob;
SELECT backup_id AS b_expire FROM batchguard.export_backup('mt_doc', '{1}', label => 'expire') \gset
SELECT backup_id AS b_held FROM batchguard.export_backup('mt_doc', '{2}', label => 'held') \gset
SELECT backup_id AS b_keep FROM batchguard.export_backup('mt_doc', '{3}', label => 'keep') \gset
SELECT (batchguard.hold_backup(:'b_held')).legal_hold AS b_held_is_held;
RESET ROLE;
-- expiry in the past (only a superuser can write the table)
UPDATE batchguard.backups SET expires_at = now() - interval '1 minute'
 WHERE backup_id IN (:'a_expire', :'a_held', :'b_expire', :'b_held');

-- the file paths, to check on disk (pg_stat_file needs superuser)
CREATE FUNCTION pg_temp.file_of(id uuid) RETURNS text LANGUAGE sql AS $$
    SELECT current_setting('batchguard.backup_directory') || '/' ||
           (SELECT oid FROM pg_database WHERE datname = current_database()) || '/' ||
           b.backup_id || '-' || b.creating_xid || '.jsonl.zst'
      FROM batchguard.backups b WHERE b.backup_id = id
$$;
CREATE FUNCTION pg_temp.file_exists(path text) RETURNS boolean LANGUAGE sql AS $$
    SELECT (pg_stat_file(path, true)).size IS NOT NULL
$$;
SELECT pg_temp.file_of(:'a_expire') AS a_expire_file, pg_temp.file_of(:'b_expire') AS b_expire_file \gset
SELECT pg_temp.file_exists(:'a_expire_file') AS a_file_before, pg_temp.file_exists(:'b_expire_file') AS b_file_before;

-- NULL dry_run
SELECT pg_temp.error_of($$SELECT batchguard.cleanup_expired_backups(NULL)$$);

-- alice: a dry run counts her one expired backup (not the held one, not bob's) and removes nothing
SET ROLE regress_mt_alice;
SELECT batchguard.cleanup_expired_backups(dry_run => true) AS alice_dry_run;
SELECT batchguard.cleanup_expired_backups(true) AS alice_dry_run_again;
SELECT count(*) AS alice_rows FROM batchguard.backups;
-- a cleanup in a transaction that rolls back keeps row and file
BEGIN;
SELECT batchguard.cleanup_expired_backups() AS alice_removed_then_rolled_back;
ROLLBACK;
SELECT count(*) AS alice_rows_after_rollback FROM batchguard.backups;
RESET ROLE;
SELECT pg_temp.file_exists(:'a_expire_file') AS a_file_after_rollback;
SET ROLE regress_mt_alice;
-- now for real: her expired backup only
SELECT batchguard.cleanup_expired_backups() AS alice_removed;
SELECT label FROM batchguard.backups ORDER BY label;
SELECT batchguard.cleanup_expired_backups() AS alice_nothing_left;
RESET ROLE;
SELECT pg_temp.file_exists(:'a_expire_file') AS a_file_gone_false,
       pg_temp.file_exists(:'b_expire_file') AS b_file_still_there;
SELECT owner, label FROM batchguard.backups WHERE owner LIKE 'regress_mt_%' ORDER BY 1, 2;
-- the audit says who removed what
SELECT action, owner, actor, detail ? 'expires_at' AS has_expiry FROM batchguard.audit
 WHERE backup_id = :'a_expire' ORDER BY audit_id;

-- a superuser: every owner's (bob's expired one), still never a held one
SELECT batchguard.cleanup_expired_backups(true) AS superuser_dry_run;
SELECT batchguard.cleanup_expired_backups() AS superuser_removed;
SELECT pg_temp.file_exists(:'b_expire_file') AS b_file_gone_false;
SELECT owner, label, legal_hold FROM batchguard.backups WHERE owner LIKE 'regress_mt_%' ORDER BY 1, 2;

-- released holds expire like any other
SET ROLE regress_mt_alice;
SELECT (batchguard.hold_backup(:'a_held', false)).status AS a_released_status;
SELECT batchguard.cleanup_expired_backups() AS alice_removes_released;
RESET ROLE;

-- run_maintenance, as bob: only his own rows; no orphan sweep (superuser only)
SELECT pg_temp.file_of(:'b_keep') AS b_keep_file \gset
-- the row now names a file that does not exist (as after deleting it by hand), and the
-- real file has no row any more: an orphan
UPDATE batchguard.backups SET creating_xid = '1' WHERE backup_id = :'b_keep';
SET ROLE regress_mt_bob;
SET client_min_messages = error;  -- (the WARNING names the backup id)
SELECT key, value FROM jsonb_each(batchguard.run_maintenance()) ORDER BY key;
SET client_min_messages = warning;
SELECT label, status FROM batchguard.backups ORDER BY label;
SELECT key, value FROM jsonb_each(batchguard.run_maintenance()) WHERE value <> '0' ORDER BY key;
RESET ROLE;
SELECT pg_temp.file_exists(:'b_keep_file') AS orphan_kept_for_bob;
-- a superuser's round moves the orphan to quarantine (its transaction ended long ago, no row)
SELECT batchguard.run_maintenance() ->> 'orphan_files_removed' AS superuser_swept;
SELECT pg_temp.file_exists(:'b_keep_file') AS orphan_gone_false;
-- alice's untouched backup still has its file
SELECT pg_temp.file_exists(pg_temp.file_of(:'a_keep')) AS a_keep_file_kept;
-- get_backup and read_backup of the missing one: clear errors, no crash
SET ROLE regress_mt_bob;
SELECT (batchguard.get_backup(:'b_keep')).status AS b_keep_status;
SELECT replace(pg_temp.error_of(format($$SELECT batchguard.read_backup(%L)$$, :'b_keep')), :'b_keep', 'ID');
RESET ROLE;

-- expired leases of every batch: released by a round (pending again, or failed on the last try)
SET ROLE regress_mt_alice;
SELECT count(*) AS started FROM batchguard.start_batch('mt-leases', '{a,b}', max_attempts => 1);
SELECT count(*) AS started FROM batchguard.start_batch('mt-retry', '{c}', max_attempts => 2);
SELECT count(*) AS claimed FROM batchguard.claim_items('mt-leases', 2, lease => interval '1 millisecond');
SELECT count(*) AS claimed FROM batchguard.claim_items('mt-retry', 1, lease => interval '1 millisecond');
SELECT pg_sleep(0.01);
SELECT key, value FROM jsonb_each(batchguard.run_maintenance()) WHERE key LIKE '%leases' ORDER BY key;
SELECT item_id, status, error FROM batchguard.batch_items i
  JOIN batchguard.batches b USING (batch_id) WHERE b.job_id IN ('mt-leases', 'mt-retry') ORDER BY item_id;
RESET ROLE;

-- cleanup
SET ROLE regress_mt_alice;
SELECT batchguard.cleanup_checkpoint('mt-leases'), batchguard.cleanup_checkpoint('mt-retry');
RESET ROLE;
UPDATE batchguard.backups SET legal_hold = false, expires_at = now() - interval '1 minute'
 WHERE owner LIKE 'regress_mt_%';
SELECT batchguard.cleanup_expired_backups() AS removed_at_the_end;
DELETE FROM batchguard.audit WHERE owner LIKE 'regress\_mt\_%';
SELECT count(*) AS rows_left FROM batchguard.backups WHERE owner LIKE 'regress\_mt\_%';
DROP TABLE mt_doc;
DROP ROLE regress_mt_alice, regress_mt_bob;
