-- The bad-input harness (test/bad_input.sql) can fail: calls broken on purpose, each of
-- which leaves behind something PostgreSQL does not undo, must be reported [LEFT BEHIND],
-- and a call that writes a row and fails must not be (PostgreSQL undid the row). A well
-- behaved failing export of ours is run the same way for comparison.
\i test/helpers.sql
\i test/bad_input.sql
SET client_min_messages = warning;
-- File storage: the broken calls below write into the files of backups (with COPY ... TO,
-- as the superuser: core PostgreSQL, so the suite runs on any build of the server).
SET batchguard.backup_storage = 'file';

CREATE ROLE regress_hn_owner;
INSERT INTO bad_input_scope VALUES ('regress\_hn\_%');
CREATE TABLE hn_doc (id int PRIMARY KEY, body text);
INSERT INTO hn_doc SELECT g, 'doc ' || g FROM generate_series(1, 3) g;
GRANT SELECT ON hn_doc TO regress_hn_owner;
SET ROLE regress_hn_owner;
SELECT backup_id AS hn_backup FROM batchguard.export_backup('hn_doc') \gset
RESET ROLE;

-- The database's backup folder, as an absolute path (COPY writes to absolute paths only).
CREATE FUNCTION pg_temp.folder() RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN current_setting('batchguard.backup_directory') LIKE '/%' THEN ''
                ELSE current_setting('data_directory') || '/' END
           || current_setting('batchguard.backup_directory') || '/' || oid
      FROM pg_database WHERE datname = current_database()
$$;
-- Replaces the contents of a file (creating it if needed) with one line of text.
CREATE FUNCTION pg_temp.write_file(path text, line text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT %L) TO %L', line, path);
END
$$;
-- Broken on purpose: writes a file named like a backup of its own transaction, then fails
-- (an export that would not remove its file).
CREATE FUNCTION pg_temp.broken_leaves_a_file() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM pg_temp.write_file(pg_temp.folder() || '/' || gen_random_uuid() || '-' || pg_current_xact_id()
                               || '.jsonl.zst', 'not a backup');
    RAISE EXCEPTION 'broken on purpose';
END
$$;
-- Broken on purpose: overwrites the file of an existing backup, then fails.
CREATE FUNCTION pg_temp.broken_changes_a_file(id uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM pg_temp.write_file(pg_temp.folder() || '/' || b.backup_id || '-' || b.creating_xid || '.jsonl.zst',
                               'x')
       FROM batchguard.backups b WHERE b.backup_id = id;
    RAISE EXCEPTION 'broken on purpose';
END
$$;
-- Writes a row of the owner, then fails: PostgreSQL undoes the row.
CREATE FUNCTION pg_temp.writes_a_row_then_fails() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO batchguard.batches (owner, job_id) VALUES ('regress_hn_owner', 'undone');
    RAISE EXCEPTION 'fails after writing a row';
END
$$;
-- Broken on purpose, a procedure: commits a row of the owner, then fails.
CREATE PROCEDURE pg_temp.broken_commits_then_fails() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO batchguard.batches (owner, job_id) VALUES ('regress_hn_owner', 'committed');
    COMMIT;
    RAISE EXCEPTION 'broken on purpose';
END
$$;

INSERT INTO bad_input (label, statement, broken_on_purpose) VALUES
    ('leaves a file named after its transaction', 'SELECT pg_temp.broken_leaves_a_file()', true),
    ('changes the file of a backup', format('SELECT pg_temp.broken_changes_a_file(%L)', :'hn_backup'), true);
INSERT INTO bad_input (label, statement) VALUES
    ('writes a row, then fails (PostgreSQL undoes it)', 'SELECT pg_temp.writes_a_row_then_fails()');
\i test/bad_input_run.sql
\set bi_label 'commits a row, then fails'
\set bi_call 'CALL pg_temp.broken_commits_then_fails()'
\set bi_broken_on_purpose true
\i test/bad_input_call.sql
-- and pg_batchguard's own failing export, for comparison (a quota it exceeds while writing)
SET batchguard.max_backup_bytes_per_owner = '1kB';
SET ROLE regress_hn_owner;
INSERT INTO bad_input (label, statement) VALUES
    ('export_backup over the quota', $$SELECT batchguard.export_backup('hn_doc')$$);
\i test/bad_input_run.sql
RESET ROLE;
RESET batchguard.max_backup_bytes_per_owner;

SELECT label, broken_on_purpose, left_behind FROM bad_input ORDER BY n;
SELECT * FROM pg_temp.bad_input_counts();

-- clean up what the broken calls left. Core PostgreSQL cannot remove a file, but
-- pg_batchguard removes a backup's file with its row: the file left behind gets a row (a
-- copy of the owner's backup's row under the file's name), and both backups are deleted.
SELECT substring(f FROM '^(.{36})-') AS leaked_id, i.xid AS leaked_xid
  FROM bad_input i, pg_ls_dir(pg_temp.folder()) f
 WHERE i.label = 'leaves a file named after its transaction' AND f LIKE '%-' || i.xid || '.jsonl.zst' \gset
INSERT INTO batchguard.backups
SELECT (jsonb_populate_record(b, jsonb_build_object('backup_id', :'leaked_id', 'creating_xid', :'leaked_xid'))).*
  FROM batchguard.backups b WHERE b.backup_id = :'hn_backup';
SET ROLE regress_hn_owner;
SELECT batchguard.delete_backup(:'leaked_id') AS leaked_deleted, batchguard.delete_backup(:'hn_backup') AS deleted;
RESET ROLE;
DELETE FROM batchguard.audit WHERE owner LIKE 'regress\_hn\_%';
DELETE FROM batchguard.batches WHERE owner LIKE 'regress\_hn\_%';
DROP TABLE hn_doc;
DROP ROLE regress_hn_owner;
