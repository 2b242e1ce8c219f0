-- Plain queue, one item per transaction: claim (SKIP LOCKED) then complete.
BEGIN;
UPDATE bench_queue
   SET status = 'running', attempts = attempts + 1, lease_token = nextval('bench_tokens'),
       lease_expires_at = clock_timestamp() + interval '5 minutes', updated_at = clock_timestamp()
 WHERE batch_id = :batch AND item_id IN (
       SELECT item_id FROM bench_queue WHERE batch_id = :batch AND status = 'pending'
        ORDER BY item_id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING item_id \gset
UPDATE bench_queue SET status = 'completed', lease_expires_at = NULL, updated_at = clock_timestamp()
 WHERE batch_id = :batch AND item_id = ':item_id';
COMMIT;
