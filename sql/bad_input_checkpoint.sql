-- Bad inputs to the checkpoint, lease and identity functions: every call must fail with a
-- clear SQLSTATE and message (or, where the design says so, succeed harmlessly), leave
-- nothing behind once its transaction ended (test/bad_input.sql says how that is checked),
-- and treat another owner's job exactly like a job nobody has. Each error must come from
-- the check its label names. The counts at the end say how many inputs were tried, and
-- how many PostgreSQL refused before any function of ours ran.
\i test/helpers.sql
\i test/bad_input.sql
SET client_min_messages = warning;

CREATE ROLE regress_bad_alice;
CREATE ROLE regress_bad_bob;
INSERT INTO bad_input_scope VALUES ('regress\_bad\_%');

-- alice's jobs: a registered batch with a completed, a failed and a running item, and a
-- lazy one; bob's own registered batch 'jb' gives the validation errors something to hit.
SET ROLE regress_bad_alice;
SELECT status FROM batchguard.start_batch('alice-job', '{a,b,c,d,e}', max_attempts => 2);
SELECT count(*) FROM batchguard.claim_items('alice-job', 3);
SELECT batchguard.complete_item('alice-job', 'a'), batchguard.fail_item('alice-job', 'b', 'boom');
SELECT status FROM batchguard.save_checkpoint('alice-lazy', '{x,y}', '[{"item_id": "z", "error": "e"}]');
RESET ROLE;
SELECT string_agg(lease_token::text, ',') AS alice_tokens
  FROM batchguard.batch_items WHERE owner = 'regress_bad_alice' AND lease_token IS NOT NULL \gset
SET ROLE regress_bad_bob;
SELECT status FROM batchguard.start_batch('jb', '{1,2,3}');
SELECT count(*) FROM batchguard.claim_items('jb', 1);
RESET ROLE;

SET ROLE regress_bad_bob;
-- NULL in every argument position where NULL is an error
INSERT INTO bad_input (label, statement) VALUES
    ('save_checkpoint job_id', $$SELECT batchguard.save_checkpoint(NULL)$$),
    ('save_checkpoint completed_items', $$SELECT batchguard.save_checkpoint('j', NULL)$$),
    ('save_checkpoint failed_items', $$SELECT batchguard.save_checkpoint('j', '{}', NULL)$$),
    ('save_checkpoint NULL element', $$SELECT batchguard.save_checkpoint('j', ARRAY[NULL]::text[])$$),
    ('save_checkpoint failed [null]', $$SELECT batchguard.save_checkpoint('j', '{}', '[null]')$$),
    ('load_checkpoint job_id', $$SELECT batchguard.load_checkpoint(NULL)$$),
    ('cleanup_checkpoint job_id', $$SELECT batchguard.cleanup_checkpoint(NULL)$$),
    ('calculate_progress job_id', $$SELECT batchguard.calculate_progress(NULL)$$),
    ('filter_pending_items job_id', $$SELECT batchguard.filter_pending_items(NULL, '{a}')$$),
    ('filter_pending_items items', $$SELECT batchguard.filter_pending_items('j', NULL)$$),
    ('filter_pending_items NULL element', $$SELECT batchguard.filter_pending_items('j', ARRAY['a', NULL])$$),
    ('is_item_completed job_id', $$SELECT batchguard.is_item_completed(NULL, 'a')$$),
    ('is_item_completed item_id', $$SELECT batchguard.is_item_completed('j', NULL)$$),
    ('complete_item job_id', $$SELECT batchguard.complete_item(NULL, 'a')$$),
    ('complete_item item_id', $$SELECT batchguard.complete_item('j', NULL)$$),
    ('fail_item job_id', $$SELECT batchguard.fail_item(NULL, 'a', 'e')$$),
    ('fail_item item_id', $$SELECT batchguard.fail_item('j', NULL, 'e')$$),
    ('fail_item error', $$SELECT batchguard.fail_item('j', 'a', NULL)$$),
    ('retry_failed job_id', $$SELECT batchguard.retry_failed(NULL)$$),
    ('retry_failed NULL element', $$SELECT batchguard.retry_failed('jb', ARRAY[NULL]::text[])$$),
    ('start_batch job_id', $$SELECT batchguard.start_batch(NULL)$$),
    ('start_batch NULL element', $$SELECT batchguard.start_batch('j', ARRAY['a', NULL])$$),
    ('start_batch metadata', $$SELECT batchguard.start_batch('j', '{a}', metadata => NULL)$$),
    ('start_batch max_attempts', $$SELECT batchguard.start_batch('j', '{a}', max_attempts => NULL)$$),
    ('add_items job_id', $$SELECT batchguard.add_items(NULL, '{a}')$$),
    ('add_items items', $$SELECT batchguard.add_items('jb', NULL)$$),
    ('add_items NULL element', $$SELECT batchguard.add_items('jb', ARRAY['9', NULL])$$),
    ('claim_items job_id', $$SELECT * FROM batchguard.claim_items(NULL)$$),
    ('claim_items max_items', $$SELECT * FROM batchguard.claim_items('jb', NULL)$$),
    ('claim_items lease', $$SELECT * FROM batchguard.claim_items('jb', 1, NULL)$$),
    ('complete_items job_id', $$SELECT batchguard.complete_items(NULL, '{1}')$$),
    ('complete_items lease_tokens', $$SELECT batchguard.complete_items('jb', NULL)$$),
    ('complete_items NULL element', $$SELECT batchguard.complete_items('jb', ARRAY[NULL]::bigint[])$$),
    ('heartbeat job_id', $$SELECT batchguard.heartbeat(NULL, '{1}')$$),
    ('heartbeat lease_tokens', $$SELECT batchguard.heartbeat('jb', NULL)$$),
    ('heartbeat lease', $$SELECT batchguard.heartbeat('jb', '{1}', NULL)$$),
    ('heartbeat NULL element', $$SELECT batchguard.heartbeat('jb', ARRAY[NULL]::bigint[])$$),
    ('pause_batch job_id', $$SELECT batchguard.pause_batch(NULL)$$),
    ('cancel_batch job_id', $$SELECT batchguard.cancel_batch(NULL)$$),
    ('resume_batch job_id', $$SELECT batchguard.resume_batch(NULL)$$),
    ('resume_batch retry_failed', $$SELECT batchguard.resume_batch('jb', NULL)$$)
;
\i test/bad_input_run.sql

-- empty ids and arrays, out-of-range numbers and intervals
INSERT INTO bad_input (label, statement) VALUES
    ('save_checkpoint empty job', $$SELECT batchguard.save_checkpoint('')$$),
    ('start_batch empty job', $$SELECT batchguard.start_batch('')$$),
    ('complete_item empty job', $$SELECT batchguard.complete_item('', 'a')$$),
    ('complete_item empty item', $$SELECT batchguard.complete_item('j', '')$$),
    ('fail_item empty item', $$SELECT batchguard.fail_item('j', '', 'e')$$),
    ('is_item_completed empty item', $$SELECT batchguard.is_item_completed('jb', '')$$),
    ('filter_pending_items empty job', $$SELECT batchguard.filter_pending_items('', '{a}')$$),
    ('filter_pending_items empty array', $$SELECT batchguard.filter_pending_items('jb', '{}')$$),
    ('filter_pending_items empty element', $$SELECT batchguard.filter_pending_items('jb', '{""}')$$),
    ('filter_pending_items 2-D array', $$SELECT batchguard.filter_pending_items('jb', '{{1,2},{3,4}}')$$),
    ('save_checkpoint empty element', $$SELECT batchguard.save_checkpoint('j', '{""}')$$),
    ('start_batch empty array', $$SELECT job_id, status, total_items FROM batchguard.start_batch('j2', '{}')$$),
    ('start_batch duplicate items', $$SELECT job_id, total_items FROM batchguard.start_batch('j2', '{a,a,b}')$$),
    ('add_items empty array', $$SELECT batchguard.add_items('jb', '{}')$$),
    ('add_items empty element', $$SELECT batchguard.add_items('jb', '{""}')$$),
    ('complete_items empty array', $$SELECT batchguard.complete_items('jb', '{}')$$),
    ('heartbeat empty array', $$SELECT batchguard.heartbeat('jb', '{}')$$),
    ('retry_failed empty array', $$SELECT batchguard.retry_failed('jb', '{}')$$),
    ('claim_items max_items 0', $$SELECT * FROM batchguard.claim_items('jb', 0)$$),
    ('claim_items max_items -1', $$SELECT * FROM batchguard.claim_items('jb', -1)$$),
    ('claim_items max_items 10001', $$SELECT * FROM batchguard.claim_items('jb', 10001)$$),
    ('claim_items max_items int max', $$SELECT * FROM batchguard.claim_items('jb', 2147483647)$$),
    ('claim_items lease negative', $$SELECT * FROM batchguard.claim_items('jb', 1, '-1 minute')$$),
    ('claim_items lease zero', $$SELECT * FROM batchguard.claim_items('jb', 1, '0')$$),
    ('claim_items lease 1 month -40 days', $$SELECT * FROM batchguard.claim_items('jb', 1, '1 month -40 days')$$),
    ('claim_items lease enormous', $$SELECT * FROM batchguard.claim_items('jb', 1, '178000000 years')$$),
    ('claim_items lease max interval', $$SELECT * FROM batchguard.claim_items('jb', 1, interval '2147483647 months 2147483647 days 9223372036 seconds')$$),
    ('heartbeat lease negative', $$SELECT batchguard.heartbeat('jb', '{1}', '-5 minutes')$$),
    ('heartbeat lease enormous', $$SELECT batchguard.heartbeat('jb', '{1}', '178000000 years')$$),
    ('heartbeat token 0', $$SELECT batchguard.heartbeat('jb', '{0}')$$),
    ('heartbeat token negative', $$SELECT batchguard.heartbeat('jb', '{-9223372036854775808}')$$),
    ('complete_items token max', $$SELECT batchguard.complete_items('jb', '{9223372036854775807}')$$),
    ('complete_item stale token', $$SELECT batchguard.complete_item('jb', '1', lease_token => -1)$$),
    ('complete_item token on pending item', $$SELECT batchguard.complete_item('jb', '2', lease_token => 1)$$),
    ('complete_item unregistered item', $$SELECT batchguard.complete_item('jb', 'nope')$$),
    ('fail_item unregistered item', $$SELECT batchguard.fail_item('jb', 'nope', 'e')$$),
    ('retry_failed unregistered item', $$SELECT batchguard.retry_failed('jb', '{nope}')$$),
    ('save_checkpoint total -1', $$SELECT batchguard.save_checkpoint('j', '{}', '[]', -1)$$),
    ('save_checkpoint total below known', $$SELECT batchguard.save_checkpoint('jb', '{}', '[]', 1)$$),
    ('start_batch total -5', $$SELECT batchguard.start_batch('j', total_items => -5)$$),
    ('start_batch total below items', $$SELECT batchguard.start_batch('j', '{a,b,c}', total_items => 2)$$),
    ('start_batch max_attempts 0', $$SELECT batchguard.start_batch('j', max_attempts => 0)$$),
    ('start_batch max_attempts int min', $$SELECT batchguard.start_batch('j', max_attempts => -2147483648)$$),
    ('start_batch metadata array', $$SELECT batchguard.start_batch('j', metadata => '[]')$$),
    ('start_batch metadata string', $$SELECT batchguard.start_batch('j', metadata => '"x"')$$),
    ('start_batch metadata JSON null', $$SELECT batchguard.start_batch('j', metadata => 'null')$$),
    ('save_checkpoint failed object', $$SELECT batchguard.save_checkpoint('j', '{}', '{"a": 1}')$$),
    ('save_checkpoint failed number', $$SELECT batchguard.save_checkpoint('j', '{}', '[1]')$$),
    ('save_checkpoint failed id null', $$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": null, "error": "e"}]')$$),
    ('save_checkpoint failed id empty', $$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": "", "error": "e"}]')$$),
    ('save_checkpoint failed id number', $$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": 7, "error": "e"}]')$$),
    ('save_checkpoint failed no error', $$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": "a"}]')$$),
    ('save_checkpoint failed no id', $$SELECT batchguard.save_checkpoint('j', '{}', '[{"error": "e"}]')$$),
    ('save_checkpoint failed bare string', $$SELECT batchguard.save_checkpoint('j', '{}', '["x"]')$$),
    ('fail_item detail string', $$SELECT batchguard.fail_item('j', 'a', 'e', detail => '"x"')$$),
    ('complete_item on cancelled batch', $$SELECT (batchguard.cancel_batch('jb')).status, batchguard.complete_item('jb', '2')$$),
    ('claim_items on paused batch', $$SELECT (batchguard.pause_batch('jb')).status, (SELECT count(*) FROM batchguard.claim_items('jb', 5))$$)
;
\i test/bad_input_run.sql

-- ids of 1 MiB, invalid byte sequences, and ids crafted as SQL injection
INSERT INTO bad_input (label, statement) VALUES
    ('save_checkpoint 1 MiB job', $$SELECT batchguard.save_checkpoint(repeat('j', 1048576))$$),
    ('start_batch 1 MiB job', $$SELECT batchguard.start_batch(repeat('j', 1048576))$$),
    ('load_checkpoint 1 MiB job', $$SELECT batchguard.load_checkpoint(repeat('j', 1048576))$$),
    ('calculate_progress 1 MiB job', $$SELECT batchguard.calculate_progress(repeat('j', 1048576))$$),
    ('cleanup_checkpoint 1 MiB job', $$SELECT batchguard.cleanup_checkpoint(repeat('j', 1048576))$$),
    ('claim_items 1 MiB job', $$SELECT * FROM batchguard.claim_items(repeat('j', 1048576))$$),
    ('pause_batch 1 MiB job', $$SELECT batchguard.pause_batch(repeat('j', 1048576))$$),
    ('complete_item 1 MiB item', $$SELECT batchguard.complete_item('jb', repeat('i', 1048576))$$),
    ('fail_item 1 MiB item', $$SELECT batchguard.fail_item('j', repeat('i', 1048576), 'e')$$),
    ('is_item_completed 1 MiB item', $$SELECT batchguard.is_item_completed('jb', repeat('i', 1048576))$$),
    ('filter_pending_items 1 MiB item', $$SELECT batchguard.filter_pending_items('jb', ARRAY[repeat('i', 1048576)])$$),
    ('save_checkpoint 1 MiB item', $$SELECT batchguard.save_checkpoint('j', ARRAY[repeat('i', 1048576)])$$),
    ('start_batch 1 MiB item', $$SELECT batchguard.start_batch('j', ARRAY['a', repeat('i', 1048576)])$$),
    ('add_items 1 MiB item', $$SELECT batchguard.add_items('jb', ARRAY[repeat('i', 1048576)])$$),
    ('save_checkpoint failed 1 MiB id', $$SELECT batchguard.save_checkpoint('j', '{}', jsonb_build_array(jsonb_build_object('item_id', repeat('i', 1048576), 'error', 'e')))$$),
    ('fail_item 1 MiB error', $$SELECT batchguard.fail_item('jb', '3', repeat('e', 1048576))$$),
    ('invalid UTF-8 0xff', E'SELECT batchguard.complete_item(''j'', E''\\xff'')'),
    ('invalid UTF-8 truncated', E'SELECT batchguard.complete_item(''j'', E''a\\xc3'')'),
    ('invalid UTF-8 overlong NUL', E'SELECT batchguard.start_batch(E''\\xc0\\x80'')'),
    ('invalid UTF-8 surrogate', E'SELECT batchguard.save_checkpoint(''j'', ARRAY[E''\\xed\\xa0\\x80''])'),
    ('invalid UTF-8 via convert_from', $$SELECT batchguard.complete_item('j', convert_from('\xc328'::bytea, 'UTF8'))$$),
    ('lone surrogate escape', $$SELECT batchguard.complete_item('j', U&'\D800')$$),
    ('NUL in jsonb detail', $$SELECT batchguard.fail_item('j', 'a', 'e', '{"x": "\u0000"}')$$),
    ('NUL escape in failed_items', $$SELECT batchguard.save_checkpoint('j', '{}', '[{"item_id": "a\u0000b"}]')$$),
    ('injection in job id', $$SELECT job_id, total_items FROM batchguard.save_checkpoint($q$x'); DELETE FROM batchguard.batches; --$q$, '{a}')$$),
    ('injection in item id', $$SELECT batchguard.filter_pending_items('jb', ARRAY[$q$1' OR '1'='1$q$, '1'])$$),
    ('injection in job id of claim', $$SELECT * FROM batchguard.claim_items($q$jb' OR owner <> '$q$)$$),
    ('injection in is_item_completed', $$SELECT batchguard.is_item_completed('jb', $q$x' OR true --$q$)$$),
    ('quote-ident-like job id', $$SELECT batchguard.load_checkpoint('"jb"')$$),
    ('another job via LIKE wildcard', $$SELECT batchguard.load_checkpoint('alice%')$$),
    ('another job via regex', $$SELECT batchguard.calculate_progress('.*')$$),
    ('worker name 1 MiB', $$SELECT count(*) FROM batchguard.claim_items('jb', 1, worker => repeat('w', 1048576))$$)
;
\i test/bad_input_run.sql

-- alice's job ids and lease tokens, from bob: exactly like a job nobody has, and alice's
-- rows stay as they were
SELECT label, pg_temp.same_as_unknown(label, call, 'alice-job', 'nobody-job', 'regress_bad_alice')
  FROM (VALUES
    ('load_checkpoint', 'SELECT batchguard.load_checkpoint(%s)'),
    ('calculate_progress', 'SELECT batchguard.calculate_progress(%s)'),
    ('cleanup_checkpoint', 'SELECT batchguard.cleanup_checkpoint(%s)'),
    ('filter_pending_items', 'SELECT batchguard.filter_pending_items(%s, ''{a,b,c,a,zz}'')'),
    ('is_item_completed', 'SELECT batchguard.is_item_completed(%s, ''a'')'),
    ('save_checkpoint', 'SELECT job_id, status, total_items, completed FROM batchguard.save_checkpoint(%s, ''{a}'')'),
    ('complete_item', 'SELECT batchguard.complete_item(%s, ''a'')'),
    ('fail_item', 'SELECT batchguard.fail_item(%s, ''c'', ''e'')'),
    ('complete_item with token', 'SELECT batchguard.complete_item(%s, ''c'', lease_token => 1)'),
    ('retry_failed', 'SELECT batchguard.retry_failed(%s)'),
    ('retry_failed items', 'SELECT batchguard.retry_failed(%s, ''{b}'')'),
    ('start_batch', 'SELECT job_id, status, total_items FROM batchguard.start_batch(%s, ''{a}'')'),
    ('add_items', 'SELECT batchguard.add_items(%s, ''{q}'')'),
    ('claim_items', 'SELECT * FROM batchguard.claim_items(%s)'),
    ('complete_items', format('SELECT batchguard.complete_items(%%s, ''{%s}'')', :'alice_tokens')),
    ('heartbeat', format('SELECT batchguard.heartbeat(%%s, ''{%s}'')', :'alice_tokens')),
    ('pause_batch', 'SELECT batchguard.pause_batch(%s)'),
    ('cancel_batch', 'SELECT batchguard.cancel_batch(%s)'),
    ('resume_batch', 'SELECT batchguard.resume_batch(%s)'),
    ('resume_batch retry', 'SELECT batchguard.resume_batch(%s, true)')
  ) AS t(label, call);
SELECT label, pg_temp.same_as_unknown(label, call, 'alice-lazy', 'nobody-lazy', 'regress_bad_alice')
  FROM (VALUES
    ('load_checkpoint (lazy)', 'SELECT batchguard.load_checkpoint(%s)'),
    ('filter_pending_items (lazy)', 'SELECT batchguard.filter_pending_items(%s, ''{x,y,z}'')'),
    ('is_item_completed (lazy)', 'SELECT batchguard.is_item_completed(%s, ''x'')'),
    ('cleanup_checkpoint (lazy)', 'SELECT batchguard.cleanup_checkpoint(%s)'),
    ('complete_item (lazy)', 'SELECT batchguard.complete_item(%s, ''x'')'),
    ('pause_batch (lazy)', 'SELECT batchguard.pause_batch(%s)')
  ) AS t(label, call);
-- alice's lease tokens used on bob's own job touch nothing of alice's; bob cannot see
-- alice's rows, nor write the tables directly (the column exists: only the privilege stops it)
INSERT INTO bad_input (label, statement, mask, mask_as) VALUES
    ('alice tokens on bob job', format($$SELECT batchguard.complete_items('jb', '{%s}'), batchguard.heartbeat('jb', '{%s}')$$, :'alice_tokens', :'alice_tokens'), 'lease \d+', 'lease N');
INSERT INTO bad_input (label, statement) VALUES
    ('read another owner rows', $$SELECT count(*) FROM batchguard.batch_items WHERE owner = 'regress_bad_alice'$$),
    ('update batches', $$SELECT pg_temp.error_of('UPDATE batchguard.batches SET state = ''paused''')$$),
    ('delete items', $$SELECT pg_temp.error_of('DELETE FROM batchguard.batch_items')$$),
    ('map_identity as non-superuser', $$SELECT batchguard.map_identity('regress_bad_bob', 'x.y')$$),
    ('unmap_identity as non-superuser', $$SELECT batchguard.unmap_identity('regress_bad_bob')$$),
    ('pick an identity', $$SELECT set_config('request.jwt.claims', '{"sub": "regress_bad_alice"}', false), batchguard.current_owner()$$);
\i test/bad_input_run.sql
RESET ROLE;

-- identity mapping: NULLs and bad settings (as the superuser)
INSERT INTO bad_input (label, statement) VALUES
    ('map_identity role', $$SELECT batchguard.map_identity(NULL, 'x.y')$$),
    ('map_identity setting', $$SELECT batchguard.map_identity('regress_bad_bob', NULL)$$),
    ('map_identity empty setting', $$SELECT batchguard.map_identity('regress_bad_bob', '')$$),
    ('map_identity injection setting', $$SELECT batchguard.map_identity('regress_bad_bob', $q$x'; DROP TABLE t; --$q$)$$),
    ('map_identity empty json_key', $$SELECT batchguard.map_identity('regress_bad_bob', 'x.y', '')$$),
    ('map_identity unknown role oid', $$SELECT batchguard.map_identity(4294967295::oid::regrole, 'x.y')$$),
    ('map_identity role 0', $$SELECT batchguard.map_identity(0::oid::regrole, 'x.y')$$),
    ('unmap_identity role', $$SELECT batchguard.unmap_identity(NULL)$$),
    ('unmap_identity unknown role oid', $$SELECT batchguard.unmap_identity(4294967295::oid::regrole)$$)
;
\i test/bad_input_run.sql

-- a mapped role without, or with a broken, identity
SELECT batchguard.map_identity('regress_bad_bob', 'bad.claims', 'sub');
SET ROLE regress_bad_bob;
INSERT INTO bad_input (label, statement) VALUES
    ('mapped, identity unset', $$SELECT batchguard.save_checkpoint('j')$$),
    ('mapped, identity empty', $$SELECT set_config('bad.claims', '', true), batchguard.complete_item('j', 'a')$$),
    ('mapped, claims not JSON', $$SELECT set_config('bad.claims', '{sub', true), batchguard.start_batch('j')$$),
    ('mapped, sub missing', $$SELECT set_config('bad.claims', '{"x": 1}', true), batchguard.load_checkpoint('j')$$),
    ('mapped, sub empty', $$SELECT set_config('bad.claims', '{"sub": ""}', true), batchguard.current_owner()$$),
    ('mapped, sub JSON null', $$SELECT set_config('bad.claims', '{"sub": null}', true), batchguard.current_owner()$$),
    ('mapped, sub an object', $$SELECT set_config('bad.claims', '{"sub": {"a": 1}}', true), batchguard.current_owner()$$),
    ('mapped, claims an array', $$SELECT set_config('bad.claims', '[1]', true), batchguard.current_owner()$$),
    ('mapped, sub naming alice', $$SELECT set_config('bad.claims', '{"sub": "regress_bad_alice"}', true), batchguard.current_owner(), batchguard.load_checkpoint('alice-job')$$),
    ('mapped, sub 1 MiB', $$SELECT length(batchguard.current_owner()) FROM (SELECT set_config('bad.claims', json_build_object('sub', repeat('u', 1048576))::text, true)) s$$),
    ('mapped, sub 1 MiB, save', $$SELECT status FROM (SELECT set_config('bad.claims', json_build_object('sub', repeat('u', 1048576))::text, true)) s, batchguard.save_checkpoint('j', '{a}')$$),
    ('mapped, sub 1025 bytes', $$SELECT length(batchguard.current_owner()) FROM (SELECT set_config('bad.claims', json_build_object('sub', repeat('u', 1025))::text, true)) s$$),
    ('mapped, sub 1024 bytes (the limit), save', $$SELECT status, length(batchguard.current_owner()) FROM (SELECT set_config('bad.claims', json_build_object('sub', repeat('u', 1024))::text, true)) s, batchguard.save_checkpoint(repeat('j', 1024), '{a}')$$)
;
\i test/bad_input_run.sql
RESET ROLE;
SELECT batchguard.unmap_identity('regress_bad_bob');

SELECT batch_id AS alice_batch_id FROM batchguard.batches
 WHERE owner = 'regress_bad_alice' AND job_id = 'alice-job' \gset
-- the four-argument map_identity, adopt_owner, and the internal helpers (any role can call
-- those): NULLs, unknown roles, forged rows, numbers out of every range
INSERT INTO bad_input (label, statement) VALUES
    ('map_identity session_role NULL', $$SELECT batchguard.map_identity('regress_bad_bob', 'x.y', NULL, NULL)$$),
    ('map_identity session_role unknown', $$SELECT batchguard.map_identity('regress_bad_bob', 'x.y', NULL, 4294967295::oid::regrole)$$),
    ('map_identity session_role 0', $$SELECT batchguard.map_identity('regress_bad_bob', 'x.y', NULL, 0::oid::regrole)$$),
    ('adopt_owner role', $$SELECT batchguard.adopt_owner(NULL)$$),
    ('adopt_owner unknown role oid', $$SELECT batchguard.adopt_owner(4294967295::oid::regrole)$$),
    ('adopt_owner without rows', $$SELECT batchguard.adopt_owner('regress_bad_bob')$$)
;
\i test/bad_input_run.sql
SET ROLE regress_bad_bob;
INSERT INTO bad_input (label, statement) VALUES
    ('map_identity (4) as non-superuser', $$SELECT batchguard.map_identity('regress_bad_bob', 'x.y', NULL, 'regress_bad_bob')$$),
    ('adopt_owner as non-superuser', $$SELECT batchguard.adopt_owner('regress_bad_bob')$$),
    ('_batch_progress NULL', $$SELECT batchguard._batch_progress(NULL)$$),
    ('_batch_progress all NULL', $$SELECT batchguard._batch_progress(ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::batchguard.batches)$$),
    ('_batch_progress forged alice row', format($$SELECT p.completed, p.failed, p.status FROM batchguard._batch_progress(ROW(%s, 'regress_bad_alice', 'alice-job', true, NULL, '{}', 2, 'active', now(), NULL, NULL)::batchguard.batches) p$$, :alice_batch_id)),
    ('_batch_progress unknown state', $$SELECT batchguard._batch_progress(ROW(-1, 'x', 'j', false, NULL, '{}', 3, 'running', now(), NULL, NULL)::batchguard.batches)$$),
    ('_progress_bar 1e300', $$SELECT batchguard._progress_bar(1e300)$$),
    ('_progress_bar -1e300', $$SELECT batchguard._progress_bar(-1e300)$$),
    ('_progress_bar NaN', $$SELECT batchguard._progress_bar('NaN')$$),
    ('_progress_bar Infinity', $$SELECT batchguard._progress_bar('Infinity')$$),
    ('_progress_bar -Infinity', $$SELECT batchguard._progress_bar('-Infinity')$$),
    ('_progress_bar width NULL', $$SELECT batchguard._progress_bar(50, NULL)$$),
    ('_progress_bar width -1', $$SELECT batchguard._progress_bar(50, -1)$$)
;
\i test/bad_input_run.sql
RESET ROLE;

-- One element more than a call accepts (the documented limit of 1,000,000): refused at
-- once, before any work; the limit itself is accepted. (No lease token is negative.)
CREATE TABLE big_arrays AS
    SELECT array_agg(g::text) AS texts, array_agg(-g) AS tokens,
           array_agg(g::text) FILTER (WHERE g <= 1000000) AS texts_1m,
           array_agg(-g) FILTER (WHERE g <= 1000000) AS tokens_1m
      FROM generate_series(1, 1000001) g;
GRANT SELECT ON big_arrays TO regress_bad_bob;
SET ROLE regress_bad_bob;
INSERT INTO bad_input (label, statement) VALUES
    ('filter_pending_items over the limit', $$SELECT cardinality(batchguard.filter_pending_items('jb', texts)) FROM big_arrays$$),
    ('complete_items over the limit', $$SELECT batchguard.complete_items('jb', tokens) FROM big_arrays$$),
    ('heartbeat over the limit', $$SELECT batchguard.heartbeat('jb', tokens) FROM big_arrays$$),
    ('add_items over the limit', $$SELECT batchguard.add_items('jb', texts) FROM big_arrays$$),
    ('retry_failed over the limit', $$SELECT batchguard.retry_failed('jb', texts) FROM big_arrays$$),
    ('start_batch over the limit', $$SELECT status FROM big_arrays, batchguard.start_batch('j10m', texts)$$),
    ('save_checkpoint over the limit', $$SELECT status FROM big_arrays, batchguard.save_checkpoint('j10m', texts)$$),
    ('save_checkpoint failed_items over the limit', $$SELECT status FROM big_arrays, batchguard.save_checkpoint('j10m', '{}', to_jsonb(tokens))$$),
    ('filter_pending_items 1M (the limit)', $$SELECT cardinality(batchguard.filter_pending_items('jb', texts_1m)) FROM big_arrays$$),
    ('heartbeat 1M (the limit)', $$SELECT batchguard.heartbeat('jb', tokens_1m) FROM big_arrays$$);
\i test/bad_input_run.sql
SELECT batchguard.filter_pending_items('jb', '{1,2,3,4}') AS still_works;
RESET ROLE;
DROP TABLE big_arrays;

-- alice's rows are as she left them
SET ROLE regress_bad_alice;
SELECT item_id, status, attempts FROM batchguard.batch_items ORDER BY item_id;
SELECT job_id, status, completed, failed FROM batchguard.get_incomplete_checkpoints() ORDER BY job_id;
RESET ROLE;

SELECT * FROM pg_temp.bad_input_counts();
-- the inputs that PostgreSQL refused before any function of ours ran (they test PostgreSQL)
SELECT label FROM bad_input WHERE rejected_early ORDER BY n;
DELETE FROM batchguard.batch_items WHERE owner LIKE 'regress\_bad\_%';
DELETE FROM batchguard.batches WHERE owner LIKE 'regress\_bad\_%';
DROP ROLE regress_bad_alice;
DROP ROLE regress_bad_bob;
