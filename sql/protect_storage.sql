-- Protected tables with file storage (issue 17): a small backup (the rows of a one-row
-- DELETE) is kept in the database, where it costs no fsync of its own at commit; a large
-- one is a file; batchguard.small_backup_in_database = 0 writes every backup to a file.
-- Each restores the rows it holds.
\i test/helpers.sql
SET client_min_messages = warning;
CREATE TABLE ps_doc (id int PRIMARY KEY, body text);
INSERT INTO ps_doc SELECT g, repeat('x', 100) || g FROM generate_series(1, 3000) g;
CREATE FUNCTION pg_temp.ps_contents() RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(to_jsonb(d)::text, ' ' ORDER BY d.id)) FROM ps_doc d
$$;
SELECT pg_temp.ps_contents() AS contents_before \gset
SELECT batchguard.protect_table('ps_doc');
SET batchguard.backup_storage = 'file';
SHOW batchguard.small_backup_in_database;

-- a one-row DELETE: in the database
DELETE FROM ps_doc WHERE id = 1;
SELECT batchguard.last_backup_id() AS small_id \gset
SELECT storage, total_rows, status FROM batchguard.get_backup(:'small_id');
-- 2,499 rows (about 390 kB of rows, more than 256 kB): a file
DELETE FROM ps_doc WHERE id BETWEEN 2 AND 2500;
SELECT batchguard.last_backup_id() AS large_id \gset
SELECT storage, total_rows, status FROM batchguard.get_backup(:'large_id');
-- 0: every backup is a file, however small
SET batchguard.small_backup_in_database = 0;
DELETE FROM ps_doc WHERE id = 2501;
SELECT batchguard.last_backup_id() AS zero_id \gset
SELECT storage, total_rows, status FROM batchguard.get_backup(:'zero_id');
RESET batchguard.small_backup_in_database;
-- database storage: every backup in the database, whatever its size
RESET batchguard.backup_storage;
DELETE FROM ps_doc WHERE id BETWEEN 2502 AND 2900;
SELECT batchguard.last_backup_id() AS database_id \gset
SELECT storage, total_rows, status FROM batchguard.get_backup(:'database_id');

-- every row comes back, from either storage
SELECT batchguard.restore_backup(:'small_id') ->> 'inserted' AS small_restored;
SELECT batchguard.restore_backup(:'large_id') ->> 'inserted' AS large_restored;
SELECT batchguard.restore_backup(:'zero_id') ->> 'inserted' AS zero_restored;
SELECT batchguard.restore_backup(:'database_id') ->> 'inserted' AS database_restored;
SELECT pg_temp.ps_contents() = :'contents_before' AS contents_identical;

-- only a superuser sets it (like backup_storage)
CREATE ROLE regress_ps_user;
SET ROLE regress_ps_user;
\set VERBOSITY sqlstate
SET batchguard.small_backup_in_database = 0;
\set VERBOSITY default
SET batchguard.small_backup_in_database = 0;
RESET ROLE;
DROP ROLE regress_ps_user;
-- out of range: PostgreSQL's own check
SET batchguard.small_backup_in_database = '2GB';

-- clean up: the backups (and files) of this suite, the table
SELECT count(*) FILTER (WHERE batchguard.delete_backup(id)) AS deleted_backups
  FROM unnest(ARRAY[:'small_id', :'large_id', :'zero_id', :'database_id']::uuid[]) id;
DELETE FROM batchguard.audit WHERE backup_id IN (:'small_id', :'large_id', :'zero_id', :'database_id');
SELECT batchguard.unprotect_table('ps_doc');
DROP TABLE ps_doc;
