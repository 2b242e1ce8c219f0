-- purge_with_backup: chunks of a start_batch batch, each backed up and deleted on its own;
-- a second CALL resumes (nothing done twice); progress in batch_summary; error paths.
\i test/helpers.sql
SET client_min_messages = warning;

CREATE TABLE pg_conv (id bigint PRIMARY KEY, title text);
CREATE TABLE pg_turn (id int PRIMARY KEY, conv_id bigint REFERENCES pg_conv ON DELETE CASCADE);
INSERT INTO pg_conv SELECT g, 'conv ' || g FROM generate_series(1, 25) g;
INSERT INTO pg_turn SELECT g, g / 10 FROM generate_series(10, 259) g;
CREATE TEMP TABLE pg_before AS
    SELECT 'conv ' || to_jsonb(c)::text AS r FROM pg_conv c
    UNION ALL SELECT 'turn ' || to_jsonb(t)::text FROM pg_turn t;

-- ids: three chunks of at most 2 of the 5 ids (one id does not exist)
CALL batchguard.purge_with_backup('purge-ids', 'pg_conv', ARRAY['1', '2', '3', '5', '8', '99'], chunk_size => 2);
SELECT job_id, status, total_items, completed, pending, progress FROM batchguard.batch_summary WHERE job_id = 'purge-ids';
SELECT item_id, status, result -> 'deleted' AS deleted, result -> 'rows' AS backed_up
  FROM batchguard.batch_items i JOIN batchguard.batches b USING (batch_id)
 WHERE b.job_id = 'purge-ids' ORDER BY item_id;
SELECT array_agg(id ORDER BY id) AS left_convs FROM pg_conv WHERE id <= 9;
-- calling again finds every chunk done: nothing more happens
CALL batchguard.purge_with_backup('purge-ids', 'pg_conv', ARRAY['1', '2', '3', '5', '8', '99'], chunk_size => 2);
SELECT count(*) AS backups FROM batchguard.backups WHERE label LIKE 'purge purge-ids %';

-- all rows, chunks of 10
CALL batchguard.purge_with_backup('purge-all', 'pg_conv', chunk_size => 10, all_rows => true,
                                  retention => '1 day');
SELECT job_id, status, total_items, completed, pending, progress FROM batchguard.batch_summary WHERE job_id = 'purge-all';
SELECT (SELECT count(*) FROM pg_conv) AS convs, (SELECT count(*) FROM pg_turn) AS turns;
SELECT bool_and(expires_at - created_at = interval '1 day') AS retention_kept, sum(total_rows) AS rows
  FROM batchguard.backups WHERE label LIKE 'purge purge-all %';

-- every row comes back from the backups of both purges
SELECT count(*) AS restored_batches FROM batchguard.backups b,
       batchguard.restore_backup(b.backup_id) r
 WHERE b.label LIKE 'purge purge-%' AND b.total_rows > 0;
SELECT NOT EXISTS (SELECT r FROM pg_before EXCEPT ALL
                   (SELECT 'conv ' || to_jsonb(c)::text FROM pg_conv c
                    UNION ALL SELECT 'turn ' || to_jsonb(t)::text FROM pg_turn t)) AS all_back,
       (SELECT count(*) FROM pg_conv) AS convs, (SELECT count(*) FROM pg_turn) AS turns;

-- pause_batch and cancel_batch stop a running purge after its current chunk (here the
-- caller's own trigger pauses or cancels it while chunk 3 deletes its rows); resume_batch
-- and another CALL finish it
CREATE FUNCTION pg_stop_purge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.id = 12 THEN
        PERFORM CASE TG_ARGV[0] WHEN 'pause' THEN batchguard.pause_batch('purge-stop')
                                ELSE batchguard.cancel_batch('purge-stop') END;
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER stop_purge BEFORE DELETE ON pg_conv FOR EACH ROW EXECUTE FUNCTION pg_stop_purge('pause');
CALL batchguard.purge_with_backup('purge-stop', 'pg_conv', chunk_size => 5, all_rows => true);
SELECT status, completed, total_items FROM batchguard.batch_summary WHERE job_id = 'purge-stop';
SELECT min(id) AS first_left FROM pg_conv;
-- paused: another CALL does nothing
CALL batchguard.purge_with_backup('purge-stop', 'pg_conv', chunk_size => 5, all_rows => true);
SELECT status, completed FROM batchguard.batch_summary WHERE job_id = 'purge-stop';
DROP TRIGGER stop_purge ON pg_conv;
SELECT status FROM batchguard.resume_batch('purge-stop');
CALL batchguard.purge_with_backup('purge-stop', 'pg_conv', chunk_size => 5, all_rows => true);
SELECT status, completed FROM batchguard.batch_summary WHERE job_id = 'purge-stop';
SELECT batchguard.cleanup_checkpoint('purge-stop') AS cleaned;
INSERT INTO pg_conv SELECT g, 'conv ' || g FROM generate_series(1, 25) g;
CREATE TRIGGER stop_purge BEFORE DELETE ON pg_conv FOR EACH ROW EXECUTE FUNCTION pg_stop_purge('cancel');
CALL batchguard.purge_with_backup('purge-stop', 'pg_conv', chunk_size => 5, all_rows => true);
SELECT status, completed, total_items FROM batchguard.batch_summary WHERE job_id = 'purge-stop';
DROP TRIGGER stop_purge ON pg_conv;
SELECT status FROM batchguard.resume_batch('purge-stop');
CALL batchguard.purge_with_backup('purge-stop', 'pg_conv', chunk_size => 5, all_rows => true);
SELECT status, completed, (SELECT count(*) FROM pg_conv) AS convs_left
  FROM batchguard.batch_summary WHERE job_id = 'purge-stop';
DROP FUNCTION pg_stop_purge();
INSERT INTO pg_conv SELECT g, 'conv ' || g FROM generate_series(1, 25) g;

-- errors, each with its SQLSTATE (a CALL cannot run inside error_of: a function is an
-- atomic context, refused like a transaction block)
CALL batchguard.purge_with_backup('purge-x', 'pg_conv');
\echo SQLSTATE :SQLSTATE
CALL batchguard.purge_with_backup('purge-x', 'pg_conv', ARRAY['1'], all_rows => true);
\echo SQLSTATE :SQLSTATE
CALL batchguard.purge_with_backup('purge-x', 'pg_conv', ARRAY['1'], chunk_size => 0);
\echo SQLSTATE :SQLSTATE
CALL batchguard.purge_with_backup(NULL, 'pg_conv', ARRAY['1']);
\echo SQLSTATE :SQLSTATE
CALL batchguard.purge_with_backup('purge-x', NULL, ARRAY['1']);
\echo SQLSTATE :SQLSTATE
CALL batchguard.purge_with_backup('purge-ids', 'pg_turn', ARRAY['10']);
\echo SQLSTATE :SQLSTATE
BEGIN;
CALL batchguard.purge_with_backup('purge-x', 'pg_conv', ARRAY['1']);
\echo SQLSTATE :SQLSTATE
ROLLBACK;
SELECT pg_temp.error_of($$CALL batchguard.purge_with_backup('purge-x', 'pg_conv', ARRAY['1'])$$);
-- a top-level DO block is not a transaction block: the purge runs
DO $$ BEGIN CALL batchguard.purge_with_backup('purge-x', 'pg_conv', ARRAY['1']); END $$;
SET default_transaction_isolation = 'repeatable read';
CALL batchguard.purge_with_backup('purge-x', 'pg_conv', ARRAY['1']);
\echo SQLSTATE :SQLSTATE
RESET default_transaction_isolation;
SELECT count(*) AS convs, (SELECT count(*) FROM batchguard.batch_summary WHERE job_id = 'purge-x') AS batches
  FROM pg_conv;

-- clean up: the batches, this suite's backups and their audit rows
SELECT batchguard.cleanup_checkpoint(job_id) FROM (VALUES ('purge-ids'), ('purge-all'), ('purge-x'), ('purge-stop')) j(job_id);
CREATE TEMP TABLE suite_backups AS
    SELECT backup_id FROM batchguard.backups WHERE source_table = 'public.pg_conv';
SELECT count(*) FILTER (WHERE batchguard.delete_backup(backup_id)) AS deleted FROM suite_backups;
DELETE FROM batchguard.audit WHERE backup_id IN (SELECT backup_id FROM suite_backups);
DROP TABLE pg_turn, pg_conv;
