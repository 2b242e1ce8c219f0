-- Concurrent workers: registered items, leases with fencing, pause/cancel/resume and
-- progress events. Every function, its results, and every error path (SQLSTATE and message).
-- The suite's batches belong to its own role (other suites run at the same time); the
-- events themselves are checked in specs/progress_events.spec.
\i test/helpers.sql
SET client_min_messages = warning;
CREATE ROLE regress_ls_owner;
-- Lease tokens are numbers from a sequence: errors show them as N.
CREATE FUNCTION pg_temp.err(statement text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(pg_temp.error_of(statement), 'lease \d+', 'lease N', 'g')
$$;
-- The state of a batch's items, to show that a failed call changed nothing.
CREATE FUNCTION pg_temp.items(job text) RETURNS TABLE (item_id text, status text, attempts int,
                                                       leased boolean, error text)
LANGUAGE sql AS $$
    SELECT i.item_id, i.status::text, i.attempts, i.lease_expires_at IS NOT NULL, i.error
      FROM batchguard.batch_items i JOIN batchguard.batches b USING (batch_id)
     WHERE b.job_id = job AND b.owner = batchguard.current_owner()
     ORDER BY i.item_id
$$;
CREATE FUNCTION pg_temp.token(job text, item text) RETURNS bigint LANGUAGE sql AS $$
    SELECT i.lease_token FROM batchguard.batch_items i JOIN batchguard.batches b USING (batch_id)
     WHERE b.job_id = job AND i.item_id = item AND b.owner = batchguard.current_owner()
$$;

SET ROLE regress_ls_owner;

----------------------------------------------------------------------------------------
-- start_batch
SELECT job_id, status, total_items, completed, failed, pending, running, percentage
  FROM batchguard.start_batch('gen', '{t1,t2,t3,t2,t4}', metadata => '{"model": "m1"}',
                              max_attempts => 2);
SELECT items_registered, total_items, metadata, max_attempts, state
  FROM batchguard.batches WHERE job_id = 'gen';
SELECT * FROM pg_temp.items('gen');
-- no items yet, an explicit total, the defaults
SELECT job_id, status, total_items, pending, percentage
  FROM batchguard.start_batch('empty', total_items => 10);
SELECT items_registered, total_items, metadata, max_attempts FROM batchguard.batches WHERE job_id = 'empty';
-- no items yet and no total: running (items come with add_items), not complete
SELECT job_id, status, total_items, pending FROM batchguard.start_batch('none');
-- an existing job id, whether started or created lazily by save_checkpoint
SELECT pg_temp.err($$SELECT batchguard.start_batch('gen', '{x}')$$);
SELECT completed FROM batchguard.save_checkpoint('lazy', '{a}');
SELECT pg_temp.err($$SELECT batchguard.start_batch('lazy')$$);
-- bad input: nothing is created
SELECT pg_temp.err($$SELECT batchguard.start_batch(NULL)$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('')$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('bad', '{a,NULL}')$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('bad', '{a,""}')$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('bad', '{{a},{b}}')$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('bad', total_items => -1)$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('bad', '{a,b,c,a}', total_items => 2)$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('bad', metadata => NULL)$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('bad', metadata => '[1]')$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('bad', max_attempts => NULL)$$);
SELECT pg_temp.err($$SELECT batchguard.start_batch('bad', max_attempts => 0)$$);
SELECT count(*) AS bad_batches FROM batchguard.batches WHERE job_id = 'bad';
-- a total equal to the number of distinct items is fine
SELECT total_items, pending FROM batchguard.start_batch('exact', '{a,b,a}', total_items => 2);

----------------------------------------------------------------------------------------
-- add_items: only new items count
SELECT batchguard.add_items('gen', '{t4,t5,t6,t5}') AS added;
SELECT batchguard.add_items('gen', '{t5}') AS added_again,
       batchguard.add_items('gen', '{}') AS added_nothing;
SELECT total_items, pending FROM batchguard.calculate_progress('gen');
-- a lazy batch can register items too: they become claimable
SELECT batchguard.add_items('lazy', '{b,a}') AS added_to_lazy;
SELECT pg_temp.err($$SELECT batchguard.add_items('nope', '{a}')$$);
SELECT pg_temp.err($$SELECT batchguard.add_items(NULL, '{a}')$$);
SELECT pg_temp.err($$SELECT batchguard.add_items('gen', NULL)$$);
SELECT pg_temp.err($$SELECT batchguard.add_items('gen', '{t7,NULL}')$$);
SELECT count(*) AS items_unchanged FROM pg_temp.items('gen');

----------------------------------------------------------------------------------------
-- claim_items: disjoint leases, in item order, attempt 1
SELECT item_id, lease_token > 0 AS has_token, attempt
  FROM batchguard.claim_items('gen', 2, '1 hour', 'worker-a');
SELECT item_id, attempt FROM batchguard.claim_items('gen', 3, worker => 'worker-b');
SELECT * FROM pg_temp.items('gen');
SELECT item_id, worker FROM batchguard.batch_items WHERE status = 'running' ORDER BY item_id;
-- the lease runs from the clock (not from the transaction's start): expiry is about now + lease
BEGIN;
SELECT pg_sleep(0.2);
SELECT item_id FROM batchguard.start_batch('clock', '{k}'), batchguard.claim_items('clock', 1, '1 minute');
SELECT lease_expires_at > now() + interval '1 minute 150 milliseconds' AS from_the_clock
  FROM batchguard.batch_items WHERE lease_token = pg_temp.token('clock', 'k');
ROLLBACK;
SELECT bool_and(lease_expires_at BETWEEN clock_timestamp() + interval '59 minutes'
                                     AND clock_timestamp() + interval '1 hour') AS hour_lease
  FROM batchguard.batch_items WHERE worker = 'worker-a' AND status = 'running';
-- tokens are distinct
SELECT count(DISTINCT lease_token) = count(*) AS distinct_tokens
  FROM batchguard.batch_items WHERE status = 'running';
SELECT running, pending FROM batchguard.calculate_progress('gen');
-- one item left; then nothing to hand out while every lease is live
SELECT item_id, attempt FROM batchguard.claim_items('gen', 10);
SELECT count(*) AS nothing_left FROM batchguard.claim_items('gen', 10);

-- bad input changes nothing
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen', 0)$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen', -1)$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen', 10001)$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen', 1, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen', 1, '0')$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen', 1, '-5 minutes')$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen', 1, '1 day -25 hours')$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen', 1, '1 hour', '')$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items(NULL)$$);
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('nope')$$);
-- claim_items needs READ COMMITTED
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('none')$$);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('none')$$);
ROLLBACK;
-- the maximum itself is accepted
SELECT count(*) AS claimed_from_empty FROM batchguard.claim_items('none', 10000);
SELECT * FROM pg_temp.items('gen');

----------------------------------------------------------------------------------------
-- complete_items
SELECT batchguard.complete_items('gen', ARRAY[pg_temp.token('gen', 't1'), pg_temp.token('gen', 't2'),
                                              pg_temp.token('gen', 't1')]) AS completed;
-- the holder repeating its call: nothing new, no error
SELECT batchguard.complete_items('gen', ARRAY[pg_temp.token('gen', 't1')]) AS repeated;
SELECT batchguard.complete_items('gen', '{}') AS none_given;
-- a token that is no lease of this batch, and a good token with a bad one: all or nothing
SELECT pg_temp.err($$SELECT batchguard.complete_items('gen', '{-1}')$$);
SELECT pg_temp.err(format('SELECT batchguard.complete_items(%L, ARRAY[%s, -1])',
                          'gen', pg_temp.token('gen', 't3')));
SELECT status FROM batchguard.batch_items WHERE item_id = 't3' AND lease_token = pg_temp.token('gen', 't3');
-- another batch's token
SELECT item_id FROM batchguard.claim_items('lazy');
SELECT pg_temp.err(format('SELECT batchguard.complete_items(%L, ARRAY[%s])', 'gen', pg_temp.token('lazy', 'b')));
SELECT pg_temp.err($$SELECT batchguard.complete_items('gen', NULL)$$);
SELECT pg_temp.err($$SELECT batchguard.complete_items('gen', '{1,NULL}')$$);
SELECT pg_temp.err($$SELECT batchguard.complete_items('gen', '{{1},{2}}')$$);
SELECT pg_temp.err($$SELECT batchguard.complete_items('nope', '{1}')$$);
SELECT pg_temp.err($$SELECT batchguard.complete_items(NULL, '{1}')$$);
SELECT * FROM pg_temp.items('gen');

----------------------------------------------------------------------------------------
-- heartbeat extends exactly the leases named
SELECT batchguard.heartbeat('gen', ARRAY[pg_temp.token('gen', 't3'), pg_temp.token('gen', 't1'), -7],
                            '2 hours') AS extended;
SELECT item_id, lease_expires_at > clock_timestamp() + interval '119 minutes' AS two_hours
  FROM batchguard.batch_items WHERE status = 'running' AND batch_id =
       (SELECT batch_id FROM batchguard.batches WHERE job_id = 'gen') ORDER BY item_id;
-- from the clock, not from the start of the transaction
BEGIN;
SELECT pg_sleep(0.2);
SELECT batchguard.heartbeat('gen', ARRAY[pg_temp.token('gen', 't4')], '1 minute') AS extended;
SELECT lease_expires_at > now() + interval '1 minute 150 milliseconds' AS from_the_clock
  FROM batchguard.batch_items WHERE lease_token = pg_temp.token('gen', 't4');
COMMIT;
SELECT batchguard.heartbeat('gen', '{}') AS nothing_named;
-- an item its holder failed: completing it again under that lease changes nothing
SELECT batchguard.fail_item('gen', 't4', 'gave up', NULL, pg_temp.token('gen', 't4')) AS failed_by_holder;
SELECT batchguard.complete_items('gen', ARRAY[pg_temp.token('gen', 't4')]) AS completed_after_fail;
SELECT pg_temp.err($$SELECT batchguard.heartbeat('gen', NULL)$$);
SELECT pg_temp.err($$SELECT batchguard.heartbeat('gen', '{NULL}')$$);
SELECT pg_temp.err($$SELECT batchguard.heartbeat('gen', '{1}', NULL)$$);
SELECT pg_temp.err($$SELECT batchguard.heartbeat('gen', '{1}', '-1 second')$$);
SELECT pg_temp.err($$SELECT batchguard.heartbeat('nope', '{1}')$$);

----------------------------------------------------------------------------------------
-- expired leases: re-claimed with a new token and the next attempt; the old holder is fenced
SELECT job_id FROM batchguard.start_batch('exp', '{e1,e2}', max_attempts => 2);
SELECT item_id, attempt FROM batchguard.claim_items('exp', 2, '1 millisecond', 'slow');
CREATE TEMP TABLE old_leases AS
    SELECT item_id, lease_token FROM batchguard.batch_items WHERE worker = 'slow';
SELECT pg_sleep(0.05);
-- an expired lease that nobody claimed again can still be completed by its holder
SELECT batchguard.complete_item('exp', 'e2', '{"by": "slow"}',
                                (SELECT lease_token FROM old_leases WHERE item_id = 'e2')) AS late_but_ok;
SELECT item_id, attempt FROM batchguard.claim_items('exp', 5, '1 hour', 'fast');
-- the old holder of e1: its transaction (and its output) must roll back
CREATE TEMP TABLE output (item_id text);
BEGIN;
INSERT INTO output VALUES ('e1');
SELECT pg_temp.err(format('SELECT batchguard.complete_item(%L, %L, NULL, %s)', 'exp', 'e1',
                          (SELECT lease_token FROM old_leases WHERE item_id = 'e1')));
SELECT pg_temp.err(format('SELECT batchguard.fail_item(%L, %L, %L, NULL, %s)', 'exp', 'e1', 'x',
                          (SELECT lease_token FROM old_leases WHERE item_id = 'e1')));
SELECT pg_temp.err(format('SELECT batchguard.complete_items(%L, ARRAY[%s])', 'exp',
                          (SELECT lease_token FROM old_leases WHERE item_id = 'e1')));
ROLLBACK;
SELECT count(*) AS output_rows FROM output;
-- heartbeat with the stale token extends nothing
SELECT batchguard.heartbeat('exp', ARRAY(SELECT lease_token FROM old_leases)) AS stale_extended;
-- a token of another item is refused too
SELECT pg_temp.err(format('SELECT batchguard.complete_item(%L, %L, NULL, %s)', 'exp', 'e1',
                          (SELECT lease_token FROM old_leases WHERE item_id = 'e2')));
-- the new holder completes it, once
SELECT batchguard.complete_item('exp', 'e1', '{"by": "fast"}', pg_temp.token('exp', 'e1')) AS first,
       batchguard.complete_item('exp', 'e1', '{"by": "fast"}', pg_temp.token('exp', 'e1')) AS repeated;
SELECT item_id, status, attempts, result FROM batchguard.batch_items
 WHERE batch_id = (SELECT batch_id FROM batchguard.batches WHERE job_id = 'exp') ORDER BY item_id;

-- an expired lease on the last attempt fails the item, saying so
SELECT job_id FROM batchguard.start_batch('last', '{l1,l2,l3}', max_attempts => 1);
SELECT item_id, attempt FROM batchguard.claim_items('last', 2, '1 millisecond', 'w-last');
SELECT pg_sleep(0.05);
SELECT item_id, attempt FROM batchguard.claim_items('last', 5);
SELECT item_id, status, attempts, error, error_detail - 'lease_expired_at' AS detail,
       error_detail ? 'lease_expired_at' AS has_expiry
  FROM batchguard.batch_items
 WHERE batch_id = (SELECT batch_id FROM batchguard.batches WHERE job_id = 'last') ORDER BY item_id;
SELECT status, completed, failed, running FROM batchguard.calculate_progress('last');

-- an item that becomes claimable behind the items this session claimed last is found too
SELECT job_id FROM batchguard.start_batch('behind', '{h1,h2,h3,h4}');
SELECT item_id FROM batchguard.claim_items('behind', 1, '1 hour');
SELECT item_id FROM batchguard.claim_items('behind', 1, '1 hour');
-- h1's lease expires (made so by hand, by the superuser: no timing in the test)
RESET ROLE;
UPDATE batchguard.batch_items SET lease_expires_at = clock_timestamp() - interval '1 second'
 WHERE item_id = 'h1' AND batch_id = (SELECT batch_id FROM batchguard.batches
                                       WHERE job_id = 'behind' AND owner = 'regress_ls_owner');
SET ROLE regress_ls_owner;
SELECT item_id, attempt FROM batchguard.claim_items('behind', 5, '1 hour') ORDER BY item_id;

----------------------------------------------------------------------------------------
-- pause, cancel, resume
SELECT job_id FROM batchguard.start_batch('ctl', '{c1,c2,c3,c4}', max_attempts => 2);
SELECT item_id FROM batchguard.claim_items('ctl', 1, '1 hour');
SELECT pg_temp.token('ctl', 'c1') AS c1_token \gset
SELECT item_id FROM batchguard.claim_items('ctl', 1, '1 millisecond');
SELECT status, running FROM batchguard.pause_batch('ctl');
SELECT state, state_changed_at IS NOT NULL AS changed_at_set FROM batchguard.batches WHERE job_id = 'ctl';
SELECT count(*) AS claimed_while_paused FROM batchguard.claim_items('ctl', 5);
SELECT status FROM batchguard.pause_batch('ctl');  -- again: no change
SELECT status FROM batchguard.calculate_progress('ctl');
-- a paused batch is still incomplete; leases already handed out can be completed
SELECT status FROM batchguard.get_incomplete_checkpoints() WHERE job_id = 'ctl';
SELECT batchguard.complete_item('ctl', 'c1', NULL, :c1_token) AS completed_while_paused;
SELECT pg_sleep(0.05);
-- resume releases the expired lease (attempts left: pending again) and un-pauses
SELECT status, pending, running FROM batchguard.resume_batch('ctl');
SELECT * FROM pg_temp.items('ctl');
SELECT state FROM batchguard.batches WHERE job_id = 'ctl';
SELECT item_id, attempt FROM batchguard.claim_items('ctl', 1);
SELECT pg_temp.token('ctl', 'c2') AS c2_token \gset
-- fail one, cancel: nothing is handed out, leases already handed out can be completed,
-- pause is refused, resume reopens
SELECT batchguard.fail_item('ctl', 'c3', 'bad input') AS failed_c3;
SELECT status FROM batchguard.cancel_batch('ctl');
SELECT count(*) AS claimed_while_cancelled FROM batchguard.claim_items('ctl', 5);
SELECT batchguard.complete_items('ctl', ARRAY[:c2_token]::bigint[]) AS completed_while_cancelled;
SELECT pg_temp.err($$SELECT batchguard.pause_batch('ctl')$$);
SELECT status FROM batchguard.cancel_batch('ctl');
SELECT count(*) AS cancelled_is_not_incomplete FROM batchguard.get_incomplete_checkpoints() WHERE job_id = 'ctl';
SELECT status, failed, pending FROM batchguard.resume_batch('ctl', retry_failed => true);
SELECT * FROM pg_temp.items('ctl');
SELECT pg_temp.err($$SELECT batchguard.resume_batch('ctl', NULL)$$);
SELECT pg_temp.err($$SELECT batchguard.resume_batch('nope')$$);
SELECT pg_temp.err($$SELECT batchguard.pause_batch('nope')$$);
SELECT pg_temp.err($$SELECT batchguard.cancel_batch('nope')$$);
SELECT pg_temp.err($$SELECT batchguard.pause_batch(NULL)$$);
-- resume fails an expired item on its last attempt
SELECT job_id FROM batchguard.start_batch('ctl1', '{k1}', max_attempts => 1);
SELECT item_id, attempt FROM batchguard.claim_items('ctl1', 1, '1 millisecond');
SELECT pg_sleep(0.05);
SELECT status, failed FROM batchguard.resume_batch('ctl1');
SELECT error FROM batchguard.batch_items WHERE item_id = 'k1';

----------------------------------------------------------------------------------------
-- progress events: the channel, the setting
SELECT batchguard.progress_channel() ~ '^batchguard_progress_[0-9a-f]{32}$' AS channel_shape,
       octet_length(batchguard.progress_channel()) <= 63 AS fits_identifier,
       batchguard.progress_channel() = batchguard.progress_channel() AS stable;
SHOW batchguard.notify_interval;
SET batchguard.notify_interval = '1s';
SHOW batchguard.notify_interval;
SET batchguard.notify_interval = 0;
SELECT pg_temp.err($$SET batchguard.notify_interval = -1$$);
SELECT pg_temp.err($$SET batchguard.notify_interval = '2h'$$);
RESET batchguard.notify_interval;
-- a prepared transaction is not refused because of an event (that it sends none is checked
-- in specs/progress_events.spec)
BEGIN;
SELECT batchguard.add_items('gen', '{t8}') AS added_in_2pc;
PREPARE TRANSACTION 'leases_2pc';
COMMIT PREPARED 'leases_2pc';

----------------------------------------------------------------------------------------
-- other owners: their jobs are unknown, with the same error; job ids are per owner
RESET ROLE;
CREATE ROLE regress_ls_other;
SET ROLE regress_ls_owner;
SELECT batchguard.progress_channel() AS main_channel \gset
SET ROLE regress_ls_other;
SELECT batchguard.progress_channel() <> :'main_channel' AS channel_per_owner;
SELECT pg_temp.err($$SELECT batchguard.add_items('gen', '{x}')$$) =
       replace(pg_temp.err($$SELECT batchguard.add_items('nope', '{x}')$$), 'nope', 'gen')
       AS add_items_same_error;
SELECT pg_temp.err($$SELECT * FROM batchguard.claim_items('gen')$$);
SELECT pg_temp.err($$SELECT batchguard.complete_items('gen', '{1}')$$);
SELECT pg_temp.err($$SELECT batchguard.heartbeat('gen', '{1}')$$);
SELECT pg_temp.err($$SELECT batchguard.pause_batch('gen')$$);
SELECT pg_temp.err($$SELECT batchguard.cancel_batch('gen')$$);
SELECT pg_temp.err($$SELECT batchguard.resume_batch('gen')$$);
SELECT pg_temp.err($$SELECT batchguard.complete_item('gen', 't3', NULL, 1)$$);
SELECT pg_temp.err($$SELECT batchguard.fail_item('gen', 't3', 'x', NULL, 1)$$);
-- the same job id is a different batch for this owner
SELECT job_id, pending FROM batchguard.start_batch('gen', '{o1}');
SELECT count(*) AS visible_batches FROM batchguard.batches;
SET ROLE regress_ls_owner;
SELECT state, pending FROM batchguard.batches b, batchguard.calculate_progress('gen')
 WHERE b.job_id = 'gen' AND b.owner = current_user;
RESET ROLE;
SELECT count(*) AS batches_of_other_role FROM batchguard.batches WHERE owner = 'regress_ls_other';

-- clean up: every batch of the suite's roles, and the roles
SET ROLE regress_ls_other;
SELECT batchguard.cleanup_checkpoint('gen') AS cleaned;
SET ROLE regress_ls_owner;
SELECT count(batchguard.cleanup_checkpoint(job_id)) AS owner_cleaned FROM batchguard.batches;
RESET ROLE;
SELECT count(*) AS rows_left FROM batchguard.batches WHERE owner IN ('regress_ls_owner', 'regress_ls_other');
DROP TABLE old_leases, output;
DROP ROLE regress_ls_owner, regress_ls_other;
