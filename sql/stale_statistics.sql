-- Calls on a batch started after batchguard.batch_items was last analyzed. The
-- statistics then know nothing of the new batch_id (the planner estimates it at one row),
-- which must not turn any per-call statement into a scan of the whole batch: each call
-- below on a 5,000-item batch must read far fewer rows than the batch holds. Rows read =
-- heap tuples of sequential scans plus entries returned by any index of the table, counted
-- by the statistics of the current transaction (exact and per backend).
\i test/helpers.sql
SET client_min_messages = warning;
-- No autoanalyze in the middle of the suite; reset at the end.
ALTER TABLE batchguard.batch_items SET (autovacuum_enabled = off);

-- Rows of batchguard.batch_items (table and indexes) that a statement read.
CREATE FUNCTION pg_temp.rows_read_by(statement text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    before bigint;
    after bigint;
    relations oid[] := ARRAY(SELECT 'batchguard.batch_items'::regclass::oid
                             UNION ALL
                             SELECT indexrelid FROM pg_index
                              WHERE indrelid = 'batchguard.batch_items'::regclass);
BEGIN
    SELECT sum(pg_stat_get_xact_tuples_returned(r)) INTO before FROM unnest(relations) AS r;
    EXECUTE statement;
    SELECT sum(pg_stat_get_xact_tuples_returned(r)) INTO after FROM unnest(relations) AS r;
    RETURN after - before;
END
$$;
-- The statement reads fewer than 500 rows (the batch holds 5,000): 'ok', or what it read.
CREATE FUNCTION pg_temp.reads_few(statement text) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE WHEN n < 500 THEN 'ok' ELSE 'read ' || n || ' rows' END
      FROM pg_temp.rows_read_by(statement) AS n
$$;
CREATE FUNCTION pg_temp.tokens(job text, n int) RETURNS bigint[] LANGUAGE sql AS $$
    SELECT array_agg(lease_token ORDER BY item_id)
      FROM (SELECT i.lease_token, i.item_id FROM batchguard.batch_items i
              JOIN batchguard.batches b USING (batch_id)
             WHERE b.job_id = job AND b.owner = batchguard.current_owner()
               AND i.status = 'running'
             ORDER BY i.item_id LIMIT n) AS t
$$;

-- Batch A is in the statistics; batch B, started afterwards, is not.
SELECT pending FROM batchguard.start_batch('stats-a', ARRAY(
    SELECT 'item-' || lpad(g::text, 5, '0') FROM generate_series(1, 5000) AS g));
ANALYZE batchguard.batch_items;
SELECT pending FROM batchguard.start_batch('stats-b', ARRAY(
    SELECT 'item-' || lpad(g::text, 5, '0') FROM generate_series(1, 5000) AS g));

-- claim_items (issue 16, target 7): the claim and the update of the claimed rows
SELECT pg_temp.reads_few($$SELECT * FROM batchguard.claim_items('stats-b', 10)$$) AS claim;
SELECT pg_temp.reads_few($$SELECT * FROM batchguard.claim_items('stats-b', 10)$$) AS claim_again;
SELECT pg_temp.reads_few($$SELECT * FROM batchguard.claim_items('stats-b', 10, worker => 'w')$$)
       AS claim_with_worker;
SELECT running FROM batchguard.calculate_progress('stats-b');
-- complete_items and heartbeat find the items by their lease tokens
SELECT pg_temp.reads_few(format('SELECT batchguard.heartbeat(%L, %L)', 'stats-b',
                                pg_temp.tokens('stats-b', 5))) AS heartbeat;
SELECT pg_temp.reads_few(format('SELECT batchguard.complete_items(%L, %L)', 'stats-b',
                                pg_temp.tokens('stats-b', 5))) AS complete_items;
-- single items
SELECT pg_temp.reads_few($$SELECT batchguard.complete_item('stats-b', 'item-04000')$$)
       AS complete_item;
SELECT pg_temp.reads_few($$SELECT batchguard.fail_item('stats-b', 'item-04001', 'e')$$)
       AS fail_item;
SELECT pg_temp.reads_few($$SELECT batchguard.is_item_completed('stats-b', 'item-04000')$$)
       AS is_item_completed;
SELECT pg_temp.reads_few($$SELECT batchguard.retry_failed('stats-b', '{item-04001}')$$)
       AS retry_failed_ids;
SELECT pg_temp.reads_few($$SELECT batchguard.filter_pending_items('stats-b', '{item-04000,item-04002}')$$)
       AS filter_pending_items;
SELECT pg_temp.reads_few($$SELECT batchguard.add_items('stats-b', '{new-1,new-2}')$$) AS add_items;
SELECT completed, failed, pending, running FROM batchguard.calculate_progress('stats-b');

-- Expired leases (moved into the past directly): a claim hands the first ones out again,
-- resume_batch releases the rest.
SELECT count(*) AS claimed FROM batchguard.claim_items('stats-b', 20);
UPDATE batchguard.batch_items SET lease_expires_at = lease_expires_at - interval '1 day'
 WHERE status = 'running'
   AND batch_id = (SELECT batch_id FROM batchguard.batches WHERE job_id = 'stats-b');
SELECT pg_temp.reads_few($$SELECT * FROM batchguard.claim_items('stats-b', 10)$$)
       AS claim_expired;
SELECT count(*) FILTER (WHERE attempts = 2) AS second_attempts, count(*) AS running
  FROM batchguard.batch_items
 WHERE status = 'running'
   AND batch_id = (SELECT batch_id FROM batchguard.batches WHERE job_id = 'stats-b');
SELECT status, pending, running FROM batchguard.resume_batch('stats-b');

-- The same calls on batch A, whose rows the statistics know, read as little.
SELECT pg_temp.reads_few($$SELECT * FROM batchguard.claim_items('stats-a', 10)$$) AS claim_a;
SELECT pg_temp.reads_few(format('SELECT batchguard.complete_items(%L, %L)', 'stats-a',
                                pg_temp.tokens('stats-a', 5))) AS complete_items_a;

SELECT batchguard.cleanup_checkpoint('stats-a') AND batchguard.cleanup_checkpoint('stats-b')
       AS cleaned_up;
ALTER TABLE batchguard.batch_items RESET (autovacuum_enabled);

-- restore_backup with on_conflict 'skip' or 'update' into tables its delete emptied and
-- VACUUM ANALYZE then found empty: the planner takes them for free to scan, but the
-- statement looks each backed-up row up in a table its own INSERT is filling. Blocks of
-- the two tables the restore reads or writes stay proportional to its rows (scanning the
-- growing table once per row touched 326,000 blocks here, against 39,000).
CREATE TABLE stale_parent (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = off);
CREATE TABLE stale_child (id int PRIMARY KEY, parent_id int NOT NULL
                          REFERENCES stale_parent ON DELETE CASCADE, body text)
    WITH (autovacuum_enabled = off);
CREATE FUNCTION pg_temp.restore_touches_few(mode text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    backup uuid;
    before bigint;
    touched bigint;
    tables oid[] := ARRAY['stale_parent'::regclass::oid, 'stale_child'::regclass::oid];
BEGIN
    SELECT sum(pg_stat_get_xact_blocks_fetched(r)) INTO before FROM unnest(tables) AS r;
    SELECT backup_id INTO backup FROM batchguard.backups
     WHERE source_table = 'public.stale_parent' ORDER BY created_at DESC LIMIT 1;
    PERFORM batchguard.restore_backup(backup, on_conflict => mode);
    SELECT sum(pg_stat_get_xact_blocks_fetched(r)) - before INTO touched
      FROM unnest(tables) AS r;
    -- 12,000 rows restored
    RETURN CASE WHEN touched < 120000 THEN 'ok' ELSE 'touched ' || touched || ' blocks' END;
END
$$;
INSERT INTO stale_parent SELECT g, 'note ' || g FROM generate_series(1, 3000) AS g;
INSERT INTO stale_child SELECT g, (g - 1) / 3 + 1, 'body ' || g FROM generate_series(1, 9000) AS g;
SELECT batchguard.delete_with_backup('stale_parent', ARRAY(SELECT id::text FROM stale_parent))
       ->> 'deleted' AS deleted;
VACUUM ANALYZE stale_parent, stale_child;
SELECT pg_temp.restore_touches_few('skip') AS restore_skip;
SELECT batchguard.delete_with_backup('stale_parent', ARRAY(SELECT id::text FROM stale_parent))
       ->> 'deleted' AS deleted;
VACUUM ANALYZE stale_parent, stale_child;
SELECT pg_temp.restore_touches_few('update') AS restore_update;
SELECT count(*) AS parents, (SELECT count(*) FROM stale_child) AS children FROM stale_parent;
-- clean up: the two backups and their audit rows
CREATE TEMP TABLE stale_backups AS
    SELECT backup_id FROM batchguard.backups WHERE source_table = 'public.stale_parent';
SELECT count(*) AS removed FROM stale_backups s, batchguard.delete_backup(s.backup_id);
DELETE FROM batchguard.audit WHERE backup_id IN (SELECT backup_id FROM stale_backups);
DROP TABLE stale_child, stale_parent, stale_backups;
