-- Where backups live: in the database (the default: batchguard.backup_chunks, WAL-logged
-- with the exporting transaction) or in files. The same functions work over both; the
-- statuses say when a file cannot be read here (missing, unreadable, detached);
-- move_backups_to_database() moves file backups into the database; every error path.
\i test/helpers.sql
SET client_min_messages = warning;

CREATE TABLE bs_doc (id int PRIMARY KEY, body text);
CREATE TABLE bs_note (id int PRIMARY KEY, doc_id int REFERENCES bs_doc ON DELETE CASCADE, body text);
INSERT INTO bs_doc SELECT g, 'doc ' || g FROM generate_series(1, 20) g;
INSERT INTO bs_note SELECT g, 1 + g % 20, 'note ' || g FROM generate_series(1, 100) g;
-- several MiB of hex digits that zstd cannot shrink much: a backup of several chunks
CREATE TABLE bs_big (id int PRIMARY KEY, noise text);
INSERT INTO bs_big
SELECT g, (SELECT string_agg(md5(g || '-' || i), '') FROM generate_series(1, 60) i)
  FROM generate_series(1, 3000) g;
CREATE ROLE regress_bs_user;
GRANT SELECT ON bs_doc, bs_note TO regress_bs_user;

-- The default storage is the database.
SELECT backup_id AS d FROM batchguard.export_backup('bs_doc', '{1,2}', label => 'in the database') \gset
SHOW batchguard.backup_storage;
SELECT storage, file_folder IS NULL AS no_folder, file_cluster IS NULL AS no_cluster, status
  FROM batchguard.backups WHERE backup_id = :'d';
SELECT count(*) AS chunks,
       sum(octet_length(data)) = (SELECT compressed_bytes FROM batchguard.backups WHERE backup_id = :'d') AS sizes_match
  FROM batchguard.backup_chunks WHERE backup_id = :'d';
SELECT encode(sha256(batchguard.read_backup(:'d')), 'hex') = file_sha256 AS whole_read_verified,
       substring(batchguard.read_backup(:'d', 0, 4) FROM 1 FOR 4) = '\x28b52ffd'::bytea AS zstd_frame
  FROM batchguard.backups WHERE backup_id = :'d';
SELECT table_name, parent_table, count(*) FROM batchguard.backup_rows(:'d') GROUP BY 1, 2 ORDER BY 1;
SELECT status, storage FROM batchguard.get_backup(:'d');
SELECT count(*) FROM batchguard.get_user_backups() WHERE backup_id = :'d' AND status = 'ok';

-- A backup of several chunks: reads across chunk boundaries give the bytes of the whole.
SELECT backup_id AS big FROM batchguard.export_backup('bs_big', label => 'big') \gset
SELECT count(*) > 2 AS several_chunks, max(octet_length(data)) AS largest_chunk
  FROM batchguard.backup_chunks WHERE backup_id = :'big';
SELECT bool_and(batchguard.read_backup(:'big', o, 5000) = substring(w FROM o + 1 FOR 5000)) AS chunks_match
  FROM (SELECT batchguard.read_backup(:'big') w) x,
       (VALUES (0), (1046000), (1048575), (1048576), (2097000), (2097152)) v(o);
SELECT length(batchguard.read_backup(:'big', compressed_bytes - 10)) AS tail_bytes
  FROM batchguard.backups WHERE backup_id = :'big';
SELECT count(*) AS big_rows FROM batchguard.backup_rows(:'big');
SELECT count(*) AS first_rows FROM (SELECT * FROM batchguard.backup_rows(:'big') LIMIT 3) x;

-- Delete with backup and restore, in the database.
SELECT (batchguard.delete_with_backup('bs_doc', '{3,4}') -> 'backup' ->> 'backup_id') AS del \gset
SELECT storage, total_rows FROM batchguard.backups WHERE backup_id = :'del';
SELECT r ->> 'inserted' AS dry_inserted FROM batchguard.restore_backup(:'del', dry_run => true) r;
SELECT r ->> 'inserted' AS inserted FROM batchguard.restore_backup(:'del') r;
SELECT count(*) AS docs FROM bs_doc;

-- A rolled-back savepoint takes its chunks with it; a quota stops an export with nothing left.
BEGIN;
SAVEPOINT s;
SELECT backup_id AS rolled_back FROM batchguard.export_backup('bs_doc', '{5}') \gset
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS chunks_after_rollback FROM batchguard.backup_chunks WHERE backup_id = :'rolled_back';
COMMIT;
SET batchguard.max_backup_bytes_per_owner = '1kB';
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bs_big')$$);
RESET batchguard.max_backup_bytes_per_owner;
SELECT count(*) AS orphan_chunks FROM batchguard.backup_chunks c
 WHERE NOT EXISTS (SELECT FROM batchguard.backups b WHERE b.backup_id = c.backup_id);

-- Constraints made immediate by the caller do not break an export (the chunks are
-- written before their backups row).
BEGIN;
SET CONSTRAINTS ALL IMMEDIATE;
SELECT count(*) AS exported FROM batchguard.export_backup('bs_doc', '{6}');
COMMIT;

-- A prepared transaction may export to the database (nothing node-local is pending).
BEGIN;
SELECT backup_id AS prepared FROM batchguard.export_backup('bs_doc', '{7}') \gset
PREPARE TRANSACTION 'regress_bs_prepared';
COMMIT PREPARED 'regress_bs_prepared';
SELECT status FROM batchguard.get_backup(:'prepared');

-- Hold, expiry and deletion remove the chunks with the row (or keep both).
SELECT legal_hold FROM batchguard.hold_backup(:'d');
UPDATE batchguard.backups SET expires_at = now() - interval '1 second' WHERE backup_id IN (:'d', :'big');
SELECT batchguard.cleanup_expired_backups() >= 1 AS cleaned;
SELECT backup_id = :'d' AS held_kept, count(c.*) > 0 AS with_chunks
  FROM batchguard.backups b LEFT JOIN batchguard.backup_chunks c USING (backup_id)
 WHERE backup_id IN (:'d', :'big') GROUP BY backup_id;
SELECT count(*) AS big_chunks_left FROM batchguard.backup_chunks WHERE backup_id = :'big';
SELECT legal_hold FROM batchguard.hold_backup(:'d', false);
SELECT batchguard.delete_backup(:'d') AS deleted;
SELECT count(*) AS chunks_left FROM batchguard.backup_chunks WHERE backup_id = :'d';
SELECT action FROM batchguard.audit WHERE backup_id = :'d' ORDER BY audit_id;

-- Callers read backups through the functions only; the storage is the superuser's choice.
SET ROLE regress_bs_user;
SELECT pg_temp.error_of('SELECT count(*) FROM batchguard.backup_chunks');
SELECT pg_temp.error_of($$SET batchguard.backup_storage = 'file'$$);
SELECT backup_id AS theirs FROM batchguard.export_backup('bs_doc', '{8}') \gset
SELECT storage, length(batchguard.read_backup(:'theirs')) > 0 AS readable FROM batchguard.get_backup(:'theirs');
SELECT pg_temp.error_of('SELECT batchguard.attach_backup_files()');
SELECT pg_temp.error_of('SELECT batchguard.move_backups_to_database()');
RESET ROLE;
SELECT pg_temp.error_of($$SET batchguard.backup_storage = 'tape'$$);

-- File storage: the same functions; the row says where the file is.
SET batchguard.backup_storage = 'file';
SELECT backup_id AS f FROM batchguard.export_backup('bs_doc', '{9,10}', label => 'file') \gset
SELECT storage, file_folder = (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS own_folder,
       file_cluster = (SELECT system_identifier FROM pg_control_system()) AS this_cluster,
       status
  FROM batchguard.backups WHERE backup_id = :'f';
SELECT (pg_stat_file(current_setting('batchguard.backup_directory') || '/' || file_folder || '/' ||
                     backup_id || '-' || creating_xid || '.jsonl.zst')).size = compressed_bytes AS file_written
  FROM batchguard.backups WHERE backup_id = :'f';
SELECT count(*) AS no_chunks FROM batchguard.backup_chunks WHERE backup_id = :'f';
SELECT encode(sha256(batchguard.read_backup(:'f')), 'hex') = file_sha256 AS verified,
       (SELECT count(*) FROM batchguard.backup_rows(:'f')) AS file_rows
  FROM batchguard.backups WHERE backup_id = :'f';

-- Restored from a dump of another database: detached, never missing.
SELECT file_folder AS own_folder FROM batchguard.backups WHERE backup_id = :'f' \gset
UPDATE batchguard.backups SET file_folder = '1' WHERE backup_id = :'f';
SELECT status FROM batchguard.get_backup(:'f');
SELECT replace(pg_temp.error_of(format('SELECT batchguard.read_backup(%L)', :'f')), :'f', 'ID');
SELECT replace(pg_temp.error_of(format('SELECT count(*) FROM batchguard.backup_rows(%L)', :'f')), :'f', 'ID');
SELECT replace(pg_temp.error_of(format('SELECT batchguard.restore_backup(%L, dry_run => true)', :'f')), :'f', 'ID');
-- ... or of another cluster.
UPDATE batchguard.backups SET file_folder = :'own_folder', file_cluster = 1 WHERE backup_id = :'f';
SELECT status FROM batchguard.get_backup(:'f');
SET client_min_messages = error;  -- the round also reports what earlier suites left
SELECT batchguard.run_maintenance() IS NOT NULL AS round;
SET client_min_messages = warning;
SELECT status AS stored_status FROM batchguard.backups WHERE backup_id = :'f';
-- The documented step puts it back in this database's folder.
SELECT batchguard.attach_backup_files() AS attached;
SELECT status, file_cluster = (SELECT system_identifier FROM pg_control_system()) AS this_cluster
  FROM batchguard.get_backup(:'f');
SELECT batchguard.attach_backup_files() AS attached_again;
SELECT pg_temp.error_of($$SELECT batchguard.attach_backup_files('relative/path')$$);
SELECT pg_temp.error_of($$SELECT batchguard.attach_backup_files('')$$);

-- A file that is gone: missing (and a read says so).
SELECT backup_id AS gone, creating_xid AS gone_xid
  FROM batchguard.export_backup('bs_doc', '{11}', label => 'gone') \gset
UPDATE batchguard.backups SET creating_xid = '1' WHERE backup_id = :'gone';
SELECT status FROM batchguard.get_backup(:'gone');
SELECT replace(pg_temp.error_of(format('SELECT batchguard.read_backup(%L)', :'gone')), :'gone', 'ID');

-- Moving file backups into the database: the bytes move, verified; the file goes at commit.
SELECT current_setting('batchguard.backup_directory') || '/' || file_folder || '/' || backup_id || '-' ||
       creating_xid || '.jsonl.zst' AS f_path
  FROM batchguard.backups WHERE backup_id = :'f' \gset
SELECT batchguard.move_backups_to_database(ARRAY[:'f']::uuid[]) AS moved;
SELECT storage, file_folder IS NULL AS no_folder, status,
       encode(sha256(batchguard.read_backup(:'f')), 'hex') = file_sha256 AS verified
  FROM batchguard.get_backup(:'f');
SELECT (pg_stat_file(:'f_path', true)).size IS NULL AS file_removed;
SELECT action FROM batchguard.audit WHERE backup_id = :'f' AND action = 'move';
SELECT batchguard.move_backups_to_database(ARRAY[:'f']::uuid[]) AS moved_again;
SELECT replace(pg_temp.error_of(format('SELECT batchguard.move_backups_to_database(ARRAY[%L]::uuid[])', :'gone')),
               :'gone', 'ID');
SELECT pg_temp.error_of($$SELECT batchguard.move_backups_to_database(ARRAY[NULL]::uuid[])$$);
-- its file back under its name, so that the deletion removes it (no orphan left behind)
UPDATE batchguard.backups SET creating_xid = :'gone_xid' WHERE backup_id = :'gone';
SELECT batchguard.delete_backup(:'gone') AS deleted_gone;
RESET batchguard.backup_storage;

-- Tampered chunks are caught.
SELECT backup_id AS t FROM batchguard.export_backup('bs_doc', '{12}') \gset
UPDATE batchguard.backup_chunks SET data = overlay(data PLACING '\x00'::bytea FROM 40) WHERE backup_id = :'t';
SELECT replace(pg_temp.error_of(format('SELECT batchguard.read_backup(%L)', :'t')), :'t', 'ID');
UPDATE batchguard.backup_chunks SET data = data || '\x00'::bytea WHERE backup_id = :'t';
SELECT replace(pg_temp.error_of(format('SELECT count(*) FROM batchguard.backup_rows(%L)', :'t')), :'t', 'ID');

-- Clean up (as the superuser that ran the suite).
DELETE FROM batchguard.backups WHERE source_table IN ('public.bs_doc', 'public.bs_big');
-- and the audit rows of its calls (this suite runs alone in its group of test/schedule)
DELETE FROM batchguard.audit WHERE owner IN (current_user, 'regress_bs_user');
SELECT count(*) AS chunks_left FROM batchguard.backup_chunks c
 WHERE NOT EXISTS (SELECT FROM batchguard.backups b WHERE b.backup_id = c.backup_id);
DROP TABLE bs_note, bs_doc, bs_big;
DROP ROLE regress_bs_user;
