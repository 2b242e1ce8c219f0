-- Checkpoint and resume: every function, its results for unknown jobs, its error paths.
-- The suite's batches belong to its own role (other suites run at the same time).
\i test/helpers.sql
SET client_min_messages = warning;
CREATE ROLE regress_cp_owner;
SET ROLE regress_cp_owner;

-- Identity
SELECT batchguard.current_owner() = current_user AS owner_is_current_user;

-- save_checkpoint creates the batch on first use and returns counts
SELECT job_id, status, total_items, completed, failed, pending, running, percentage
  FROM batchguard.save_checkpoint('conv-1', '{t1,t2,t3}',
                                  '[{"item_id": "t4", "error": "timeout", "detail": {"code": 504}}]', 10);
-- saving the same checkpoint twice changes nothing
SELECT completed, failed, pending FROM batchguard.save_checkpoint('conv-1', '{t1,t2,t3}',
       '[{"item_id": "t4", "error": "timeout", "detail": {"code": 504}}]', 10);
-- the fast path: only the new items; duplicates in a list are fine
SELECT completed, failed, pending FROM batchguard.save_checkpoint('conv-1', '{t5,t5,t6}');
-- completed wins over failed, and a completed item never becomes failed
SELECT completed, failed FROM batchguard.save_checkpoint('conv-1', '{t7}',
       '[{"item_id": "t7", "error": "x"}, {"item_id": "t1", "error": "late"}]');
-- a failed item named twice keeps the last error
SELECT completed, failed FROM batchguard.save_checkpoint('conv-1', '{}',
       '[{"item_id": "t8", "error": "first"}, {"item_id": "t8", "error": "second", "detail": null}]');
SELECT job_id, completed_items, failed_items, total_items, percentage, status
  FROM batchguard.load_checkpoint('conv-1');
SELECT updated_at >= (SELECT created_at FROM batchguard.batches WHERE job_id = 'conv-1') AS updated_after_creation
  FROM batchguard.load_checkpoint('conv-1');

-- unknown jobs
SELECT batchguard.load_checkpoint('nope') IS NULL AS load_unknown_is_null;
SELECT batchguard.calculate_progress('nope') IS NULL AS progress_unknown_is_null;
SELECT batchguard.is_item_completed('nope', 't1') AS completed_in_unknown;
SELECT batchguard.filter_pending_items('nope', '{b,a,b,c,a}') AS unknown_job_keeps_all;
SELECT batchguard.cleanup_checkpoint('nope') AS cleanup_unknown;
SELECT pg_temp.error_of($$SELECT batchguard.retry_failed('nope')$$);

-- filter_pending_items: order kept, each once, completed and failed removed
SELECT batchguard.filter_pending_items('conv-1', '{t9,t1,t4,t10,t9,t2,t11}');
SELECT batchguard.filter_pending_items('conv-1', '{}') AS empty_input;
SELECT batchguard.is_item_completed('conv-1', 't1') AS t1_done,
       batchguard.is_item_completed('conv-1', 't4') AS t4_failed_is_not_completed,
       batchguard.is_item_completed('conv-1', 'zz') AS unknown_item;

-- complete_item / fail_item
SELECT batchguard.complete_item('conv-1', 't9', '{"tokens": 812}') AS first_time,
       batchguard.complete_item('conv-1', 't9') AS second_time;
SELECT result FROM batchguard.batch_items WHERE item_id = 't9';
SELECT batchguard.fail_item('conv-1', 't9', 'too late') AS fail_completed;
SELECT batchguard.fail_item('conv-1', 't10', 'rate limited', '{"retry_after": 30}') AS fail_new,
       batchguard.fail_item('conv-1', 't10', 'again') AS fail_failed;
SELECT error, error_detail FROM batchguard.batch_items WHERE item_id = 't10';
SELECT batchguard.complete_item('conv-1', 't10') AS complete_failed;
SELECT status, error IS NULL AS error_cleared FROM batchguard.batch_items WHERE item_id = 't10';
-- lazy mode: complete_item and fail_item create the caller's batch
SELECT batchguard.complete_item('lazy-1', 'a') AS created_by_complete,
       batchguard.fail_item('lazy-2', 'a', 'e') AS created_by_fail;
SELECT job_id, status, total_items, completed, failed, percentage
  FROM batchguard.calculate_progress('lazy-1');

-- retry_failed
SELECT batchguard.save_checkpoint('retry', '{}', '[{"item_id": "a", "error": "e"},
                                                  {"item_id": "b", "error": "e"},
                                                  {"item_id": "c", "error": "e"}]', 3) IS NOT NULL AS saved;
SELECT status FROM batchguard.calculate_progress('retry');
SELECT batchguard.retry_failed('retry', '{a,zz}') AS retried_one;
SELECT batchguard.retry_failed('retry') AS retried_rest;
SELECT batchguard.retry_failed('retry') AS nothing_left;
SELECT status, pending, failed FROM batchguard.calculate_progress('retry');

-- derived status: completed, failed
SELECT status, percentage FROM batchguard.save_checkpoint('done', '{a,b}', '[]', 2);
SELECT status, percentage FROM batchguard.save_checkpoint('half-failed', '{a}', '[{"item_id": "b", "error": "e"}]', 2);
SELECT status, total_items, percentage, eta IS NULL AS no_eta FROM batchguard.save_checkpoint('no-total', '{a}');

-- get_incomplete_checkpoints: running, paused and failed batches, newest first
SELECT job_id, status FROM batchguard.get_incomplete_checkpoints();

-- batch_summary
SELECT job_id, status, completed, failed, pending, percentage, progress
  FROM batchguard.batch_summary ORDER BY job_id;

-- cleanup_checkpoint removes the batch and its items
SELECT batchguard.cleanup_checkpoint('conv-1') AS removed, batchguard.cleanup_checkpoint('conv-1') AS again;
SELECT count(*) AS items_left FROM batchguard.batch_items i
 WHERE NOT EXISTS (SELECT FROM batchguard.batches b WHERE b.batch_id = i.batch_id);
SELECT batchguard.filter_pending_items('conv-1', '{t1,t2}') AS discarded_job_has_all_pending;

-- totals
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('retry', '{}', '[]', 2)$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('retry', '{}', '[]', -1)$$);
SELECT total_items FROM batchguard.save_checkpoint('retry', '{}', '[]', 5);
SELECT total_items FROM batchguard.save_checkpoint('retry', '{}', '[]', NULL) AS total_kept;

-- bad input: NULLs
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint(NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{}', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{a,NULL}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.load_checkpoint(NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.cleanup_checkpoint(NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.calculate_progress(NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.filter_pending_items(NULL, '{a}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.filter_pending_items('j', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.filter_pending_items('j', '{a,NULL}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.is_item_completed(NULL, 'a')$$);
SELECT pg_temp.error_of($$SELECT batchguard.is_item_completed('j', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.complete_item(NULL, 'a')$$);
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('j', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.fail_item(NULL, 'a', 'e')$$);
SELECT pg_temp.error_of($$SELECT batchguard.fail_item('j', NULL, 'e')$$);
SELECT pg_temp.error_of($$SELECT batchguard.fail_item('j', 'a', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.retry_failed(NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.retry_failed('retry', '{a,NULL}')$$);
-- bad input: empty, too long and multi-dimensional ids
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('', 'a')$$);
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('j', '')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{a,""}')$$);
SELECT pg_temp.error_of(format('SELECT batchguard.complete_item(%L, %L)', repeat('j', 1025), 'a'));
SELECT pg_temp.error_of(format('SELECT batchguard.complete_item(%L, %L)', 'j', repeat('i', 1025)));
SELECT pg_temp.error_of(format('SELECT batchguard.filter_pending_items(%L, ARRAY[%L])', 'j', repeat('i', 1025)));
SELECT pg_temp.error_of($$SELECT batchguard.filter_pending_items('j', '{{a,b},{c,d}}')$$);
SELECT batchguard.complete_item(repeat('j', 1024), repeat('i', 1024)) AS longest_ids_work;
SELECT batchguard.is_item_completed(repeat('j', 1024), repeat('i', 1024)) AS and_are_found;
SELECT batchguard.complete_item(repeat('j', 256), repeat('é', 128)) AS multibyte_256_bytes;
-- bad input: malformed failed_items
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{}', '{"item_id": "a"}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{}', '["a"]')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{}', '[{"error": "e"}]')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": 1, "error": "e"}]')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": "a"}]')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": "a", "error": null}]')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": "a", "error": "e", "detail": [1]}]')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": "", "error": "e"}]')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('j', '{ok}', '[{"item_id": "a", "error": "e"}, 7]')$$);
SELECT pg_temp.error_of($$SELECT batchguard.fail_item('j', 'a', 'e', '"not an object"')$$);
-- nothing of the rejected calls above was recorded
SELECT batchguard.load_checkpoint('j') IS NULL AS no_batch_j;

-- leases: a token on an unknown job, or on an item without that lease
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('nope', 'a', NULL, 42)$$);
SELECT pg_temp.error_of($$SELECT batchguard.fail_item('lazy-1', 'zz', 'e', NULL, 42)$$);
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('lazy-1', 'a', NULL, 42)$$);

-- a batch of registered items refuses items it does not know (start_batch registers them)
RESET ROLE;
UPDATE batchguard.batches SET items_registered = true WHERE job_id = 'retry' AND owner = 'regress_cp_owner';
SET ROLE regress_cp_owner;
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('retry', 'typo')$$);
SELECT pg_temp.error_of($$SELECT batchguard.fail_item('retry', 'typo', 'e')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('retry', '{a,typo}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('retry', '{}', '[{"item_id": "typo", "error": "e"}]')$$);
SELECT batchguard.complete_item('retry', 'a') AS registered_item_completes;
SELECT completed FROM batchguard.calculate_progress('retry');

-- errors name the job in their context
SELECT batchguard.save_checkpoint('ctx', '{}', '[]', -1);
SELECT batchguard.save_checkpoint('retry', '{}', '[]', 1);

-- the tables are read-only to callers, even to their owner's rows
RESET ROLE;
CREATE ROLE regress_bg_alice;
CREATE ROLE regress_bg_bob;
SET ROLE regress_bg_alice;
SELECT batchguard.complete_item('shared-name', 'a') AS alice_writes;
SELECT pg_temp.error_of($$INSERT INTO batchguard.batches (owner, job_id) VALUES ('regress_bg_alice', 'x')$$);
SELECT pg_temp.error_of($$UPDATE batchguard.batch_items SET status = 'pending'$$);
SELECT pg_temp.error_of($$DELETE FROM batchguard.batches$$);

-- job ids are per owner: the same name, two batches, neither sees the other
SET ROLE regress_bg_bob;
SELECT batchguard.current_owner();
SELECT batchguard.load_checkpoint('shared-name') IS NULL AS bob_sees_nothing,
       batchguard.calculate_progress('shared-name') IS NULL AS no_progress,
       batchguard.is_item_completed('shared-name', 'a') AS not_completed_for_bob,
       batchguard.filter_pending_items('shared-name', '{a,b}') AS all_pending_for_bob,
       batchguard.cleanup_checkpoint('shared-name') AS cannot_discard;
SELECT pg_temp.error_of($$SELECT batchguard.retry_failed('shared-name')$$);
SELECT batchguard.complete_item('shared-name', 'b') AS bob_writes_his_own;
SELECT count(*) AS bob_batches FROM batchguard.batches;
SELECT job_id, completed FROM batchguard.batch_summary;
SELECT job_id FROM batchguard.get_incomplete_checkpoints();
SET ROLE regress_bg_alice;
SELECT completed_items FROM batchguard.load_checkpoint('shared-name');
SELECT count(*) AS alice_items FROM batchguard.batch_items;
-- the summary counts with the caller's row security, even for a forged batch row
SELECT completed FROM batchguard._batch_progress(
    (SELECT b FROM batchguard.batches b WHERE job_id = 'shared-name'));
RESET ROLE;
SELECT owner, job_id FROM batchguard.batches WHERE job_id = 'shared-name' ORDER BY owner;
SELECT batch_id AS bob_batch FROM batchguard.batches WHERE owner = 'regress_bg_bob' \gset
SELECT completed AS superuser_counts_bobs FROM batchguard._batch_progress(
    (SELECT b FROM batchguard.batches b WHERE owner = 'regress_bg_bob'));
SET ROLE regress_bg_alice;
SELECT completed AS alice_counts_none_of_bobs FROM batchguard._batch_progress(
    ROW(:bob_batch, 'regress_bg_bob', 'shared-name', false, NULL, '{}', 3, 'active',
        now(), NULL, NULL)::batchguard.batches);
RESET ROLE;

-- progress bar helper
SELECT batchguard._progress_bar(0), batchguard._progress_bar(42.5), batchguard._progress_bar(100, 10),
       batchguard._progress_bar(NULL, 5);
SELECT pg_temp.error_of($$SELECT batchguard._progress_bar(10, 0)$$);

-- a search_path that shadows pg_catalog objects captures nothing
CREATE SCHEMA evil;
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;
SET search_path = evil, pg_catalog;
SELECT batchguard.complete_item('search-path', 'a') AS recorded;
SELECT updated_at > '2001-01-01' AS real_clock FROM batchguard.batch_items WHERE item_id = 'a' AND batch_id =
       (SELECT batch_id FROM batchguard.batches WHERE job_id = 'search-path');
RESET search_path;
SELECT batchguard.cleanup_checkpoint('search-path') AS cleaned;
DROP SCHEMA evil CASCADE;

-- Results are filled by column name from the row type the database has, never by position:
-- a database still at an older version may have other columns than this library knows.
-- Declared here with reordered, missing and unknown columns over the same C functions.
CREATE SCHEMA regress_row_types;
CREATE TYPE regress_row_types.progress AS (updated_at timestamptz, completed bigint,
                                           not_known text, job_id text, total_items bigint);
CREATE FUNCTION regress_row_types.calculate_progress(job_id text) RETURNS regress_row_types.progress
    LANGUAGE c STABLE AS '$libdir/pg_batchguard', 'batchguard_calculate_progress';
CREATE FUNCTION regress_row_types.get_incomplete_checkpoints() RETURNS SETOF regress_row_types.progress
    LANGUAGE c STABLE AS '$libdir/pg_batchguard', 'batchguard_get_incomplete_checkpoints';
CREATE TYPE regress_row_types.checkpoint AS (status text, job_id text, not_known int);
CREATE FUNCTION regress_row_types.load_checkpoint(job_id text) RETURNS regress_row_types.checkpoint
    LANGUAGE c STABLE AS '$libdir/pg_batchguard', 'batchguard_load_checkpoint';
CREATE FUNCTION regress_row_types.claim_items(job_id text, max_items int, lease interval, worker text)
    RETURNS TABLE (attempt int, item_id text)
    LANGUAGE c VOLATILE AS '$libdir/pg_batchguard', 'batchguard_claim_items';
SELECT status FROM batchguard.start_batch('row-types', '{a,b,c}');
SELECT batchguard.complete_item('row-types', 'a') AS completed;
SELECT updated_at IS NOT NULL AS has_updated_at, completed, not_known, job_id, total_items
  FROM regress_row_types.calculate_progress('row-types');
SELECT completed, not_known, total_items FROM regress_row_types.get_incomplete_checkpoints()
 WHERE job_id = 'row-types';
SELECT * FROM regress_row_types.load_checkpoint('row-types');
SELECT * FROM regress_row_types.claim_items('row-types', 2, '1 minute', NULL);
DROP SCHEMA regress_row_types CASCADE;
SELECT batchguard.cleanup_checkpoint('row-types') AS discarded;

-- clean up: every batch of the suite's roles
SET ROLE regress_bg_alice;
SELECT count(batchguard.cleanup_checkpoint(job_id)) AS alice_cleaned FROM batchguard.batches;
SET ROLE regress_bg_bob;
SELECT count(batchguard.cleanup_checkpoint(job_id)) AS bob_cleaned FROM batchguard.batches;
SET ROLE regress_cp_owner;
SELECT count(batchguard.cleanup_checkpoint(job_id)) AS owner_cleaned FROM batchguard.batches;
RESET ROLE;
SELECT count(*) AS rows_left FROM batchguard.batches
 WHERE owner IN ('regress_cp_owner', 'regress_bg_alice', 'regress_bg_bob');
DROP ROLE regress_bg_alice, regress_bg_bob, regress_cp_owner;
