-- Every function of the API, called by a superuser whose search_path an untrusted role
-- planted look-alikes on (included twice by sql/security_search_path.sql, with :pass set).
-- The statements of this file name no operator, function or type of PostgreSQL's without
-- pg_catalog: a look-alike that runs here was picked by the extension's own SQL.
\set lazy sp- :pass -lazy
\set leased sp- :pass -leased
\set purge sp- :pass -purge
INSERT INTO sp_doc VALUES (1, 'one'), (2, 'two'), (3, 'three');
INSERT INTO sp_note VALUES (11, 1), (21, 2), (22, 2);
INSERT INTO sp_purge VALUES (1), (2), (3), (4), (5);

-- checkpoint & resume
SELECT (batchguard.save_checkpoint(:'lazy', ARRAY['a', 'b'], '[{"item_id": "c", "error": "e"}]', 10)).completed;
SELECT (batchguard.load_checkpoint(:'lazy')).completed_items;
SELECT (batchguard.calculate_progress(:'lazy')).status;
SELECT job_id FROM batchguard.get_incomplete_checkpoints() WHERE job_id OPERATOR(pg_catalog.=) :'lazy';
SELECT batchguard.filter_pending_items(:'lazy', ARRAY['a', 'x', 'x', 'c']);
SELECT batchguard.is_item_completed(:'lazy', 'a'), batchguard.is_item_completed(:'lazy', 'x');
SELECT batchguard.complete_item(:'lazy', 'x', '{"ok": true}');
SELECT batchguard.fail_item(:'lazy', 'y', 'broken', '{"why": "test"}');
SELECT batchguard.retry_failed(:'lazy');
SELECT status, completed, progress FROM batchguard.batch_summary WHERE job_id OPERATOR(pg_catalog.=) :'lazy';
SELECT (batchguard._batch_progress(b)).pending FROM batchguard.batches b WHERE b.job_id OPERATOR(pg_catalog.=) :'lazy';
SELECT batchguard._progress_bar(50), batchguard._progress_bar(NULL, 4);
SELECT batchguard.progress_channel() IS NOT NULL AS has_channel;

-- concurrent workers
SELECT (batchguard.start_batch(:'leased', ARRAY['i1', 'i2', 'i3'], metadata => '{"k": 1}')).pending;
SELECT batchguard.add_items(:'leased', ARRAY['i3', 'i4']);
SELECT ARRAY(SELECT lease_token FROM batchguard.claim_items(:'leased', 2, worker => 'w')) AS tokens \gset
SELECT batchguard.heartbeat(:'leased', :'tokens');
SELECT batchguard.complete_items(:'leased', :'tokens');
SELECT (batchguard.pause_batch(:'leased')).status;
SELECT (batchguard.resume_batch(:'leased', retry_failed => true)).status;
SELECT (batchguard.cancel_batch(:'leased')).status;
SELECT batchguard.cleanup_checkpoint(:'leased'), batchguard.cleanup_checkpoint(:'lazy');

-- identity
SELECT batchguard.current_owner(), batchguard._is_admin();
SELECT batchguard.map_identity('regress_sp_web', 'request.jwt.claims', 'sub');
BEGIN;
SET LOCAL ROLE regress_sp_web;
SELECT pg_catalog.set_config('request.jwt.claims', '{"sub": "user-1"}', true) IS NOT NULL AS claims_set;
SELECT batchguard.current_owner();
SELECT (batchguard.save_checkpoint('web-job', ARRAY['a'])).completed;
SELECT batchguard.cleanup_checkpoint('web-job');
COMMIT;
SELECT batchguard.map_identity('regress_sp_web', 'request.jwt.claims', 'sub', 'regress_sp_web');
SELECT batchguard.unmap_identity('regress_sp_web');
SELECT batchguard.adopt_owner('regress_sp_victim');

-- backups
SELECT backup_id AS sp_backup FROM batchguard.export_backup('sp_doc', '{1}', label => 'sp') \gset
SELECT total_rows, tables FROM batchguard.get_backup(:'sp_backup');
SELECT pg_catalog.count(*) AS mine FROM batchguard.get_user_backups() WHERE label OPERATOR(pg_catalog.=) 'sp';
SELECT batchguard.read_backup(:'sp_backup') IS NOT NULL AS whole,
       pg_catalog.length(batchguard.read_backup(:'sp_backup', 0, 4)) AS chunk;
SELECT table_name, parent_table FROM batchguard.backup_rows(:'sp_backup') ORDER BY 1;
SELECT expires_at IS NOT NULL AS extended
  FROM batchguard.extend_backup(:'sp_backup', pg_catalog.now() OPERATOR(pg_catalog.+) interval '30 days');
SELECT legal_hold FROM batchguard.hold_backup(:'sp_backup');
SELECT legal_hold FROM batchguard.hold_backup(:'sp_backup', false);
SELECT batchguard.delete_backup(:'sp_backup');
-- file storage: a backup made as a file, moved into the database; nothing to re-attach
SET batchguard.backup_storage = 'file';
SELECT backup_id AS sp_file FROM batchguard.export_backup('sp_doc', '{1}', label => 'sp-file') \gset
RESET batchguard.backup_storage;
SELECT batchguard.move_backups_to_database(ARRAY[:'sp_file']::pg_catalog.uuid[]) AS moved;
SELECT storage, status FROM batchguard.get_backup(:'sp_file');
SELECT batchguard.attach_backup_files() AS attached;
SELECT batchguard.delete_backup(:'sp_file');
SELECT * FROM batchguard.delete_preview('sp_doc', '{2}') ORDER BY 1, 2;
SELECT (r OPERATOR(pg_catalog.->) 'backup') OPERATOR(pg_catalog.->>) 'backup_id' AS deleted_backup,
       r OPERATOR(pg_catalog.->) 'deleted' AS deleted
  FROM batchguard.delete_with_backup('sp_doc', '{2}', label => 'sp-delete') AS r \gset
SELECT :'deleted' AS deleted;
SELECT batchguard.restore_backup(:'deleted_backup', dry_run => true) OPERATOR(pg_catalog.-) 'backup_id';
SELECT batchguard.restore_backup_into(:'deleted_backup', '{"public.sp_doc": "sp_doc"}', 'skip', true)
       OPERATOR(pg_catalog.-) 'backup_id';
SELECT batchguard.restore_backup(:'deleted_backup') OPERATOR(pg_catalog.-) 'backup_id';
SELECT id, body FROM sp_doc ORDER BY id;
CALL batchguard.purge_with_backup(:'purge', 'sp_purge', chunk_size => 2, all_rows => true);
SELECT status, completed FROM batchguard.batch_summary WHERE job_id OPERATOR(pg_catalog.=) :'purge';
SELECT id FROM sp_purge;
-- protected tables: a plain DELETE backed up at commit (TRUNCATE and DROP refused: in
-- sql/protect.sql, errors here would show this file's line numbers)
SELECT batchguard.protect_table('sp_doc', retention => '2 days');
SELECT table_name, retention, covered_tables FROM batchguard.protected_tables;
DELETE FROM sp_doc WHERE id OPERATOR(pg_catalog.=) 3;
SELECT total_rows, row_counts FROM batchguard.get_backup(batchguard.last_backup_id());
SELECT batchguard.restore_backup(batchguard.last_backup_id()) OPERATOR(pg_catalog.-) 'backup_id';
SELECT batchguard.delete_backup(batchguard.last_backup_id());
SELECT batchguard.unprotect_table('sp_doc');
SET client_min_messages = error;  -- without preloading, export_progress warns once that it is empty
SELECT pg_catalog.count(*) AS running_exports FROM batchguard.export_progress;
SET client_min_messages = warning;

-- maintenance: a superuser's dry run; the rounds as an ordinary role (its own rows only)
SELECT batchguard.cleanup_expired_backups(true) IS NOT NULL AS counted;
SET ROLE regress_sp_victim;
SELECT batchguard.cleanup_expired_backups() AS removed;
SELECT batchguard.run_maintenance() IS NOT NULL AS maintained;
CALL batchguard.maintain();
RESET ROLE;

-- clean up this pass
SELECT batchguard.cleanup_checkpoint(:'purge');
SELECT pg_catalog.count(batchguard.delete_backup(backup_id)) AS backups_deleted
  FROM batchguard.backups
 WHERE label OPERATOR(pg_catalog.=) 'sp-delete'
    OR label OPERATOR(pg_catalog.~~) ('purge ' OPERATOR(pg_catalog.||) :'purge' OPERATOR(pg_catalog.||) ' %');
DELETE FROM sp_note;
DELETE FROM sp_doc;
DELETE FROM sp_purge;
