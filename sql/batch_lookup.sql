-- Per-item calls find the caller's batch through a per-session memory of where its row
-- was last seen (src/pg/unique_row.cpp). That memory is a hint only: a batch removed,
-- started again or changed is always found as it is now.
\i test/helpers.sql
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.completed(job text) RETURNS text[] LANGUAGE sql AS $$
    SELECT completed_items FROM batchguard.load_checkpoint(job)
$$;

-- A lazy job cleaned up and used again: the new items go to the new batch. (The first
-- call creates a batch, later ones find it: each job has two items before it goes.)
SELECT batchguard.complete_item('lookup-1', 'a') AS first_batch,
       batchguard.complete_item('lookup-1', 'a2') AS found;
SELECT batchguard.cleanup_checkpoint('lookup-1') AS cleaned_up;
SELECT batchguard.complete_item('lookup-1', 'b') AS second_batch;
SELECT pg_temp.completed('lookup-1') AS completed;
SELECT count(*) AS items_of_removed_batches FROM batchguard.batch_items i
 WHERE i.owner = current_user AND i.item_id IN ('a', 'a2', 'b')
   AND NOT EXISTS (SELECT FROM batchguard.batches b WHERE b.batch_id = i.batch_id);

-- The same job id started as a batch of registered items: the mode of the new batch
-- applies (an unregistered item is an error now).
SELECT batchguard.cleanup_checkpoint('lookup-1') AS cleaned_up;
SELECT pending FROM batchguard.start_batch('lookup-1', '{x,y,w}');
SELECT batchguard.complete_item('lookup-1', 'w') AS found;
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('lookup-1', 'b')$$);
SELECT batchguard.complete_item('lookup-1', 'x') AS registered_item;

-- State changes write a new version of the batch row: found again.
SELECT status FROM batchguard.pause_batch('lookup-1');
SELECT batchguard.complete_item('lookup-1', 'y') AS while_paused;
SELECT status FROM batchguard.resume_batch('lookup-1');
SELECT pg_temp.completed('lookup-1') AS completed;

-- Removed inside a transaction that rolls back: the batch is still there afterwards.
BEGIN;
SELECT batchguard.cleanup_checkpoint('lookup-1') AS cleaned_up;
SELECT batchguard.complete_item('lookup-1', 'z') AS lazy_again,
       batchguard.complete_item('lookup-1', 'z2') AS found;
ROLLBACK;
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('lookup-1', 'z')$$);

-- Pages cut off the end of the table by VACUUM: specs/batch_lookup_vacuum.spec.

SELECT batchguard.cleanup_checkpoint('lookup-1') AS cleaned_up;
