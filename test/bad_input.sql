\set ECHO none
-- Included by the bad_input_* suites (\i test/bad_input.sql, after test/helpers.sql), which
-- then set the owners whose rows are theirs:
--     INSERT INTO bad_input_scope VALUES ('regress\_bad\_%');   -- a LIKE pattern
-- and queue bad inputs, as the role that is to run them, then run the queue:
--     INSERT INTO bad_input (label, statement) VALUES ('NULL job', 'SELECT batchguard.f(NULL)'), ...;
--     \i test/bad_input_run.sql
-- A CALL (a procedure that may commit) runs at top level instead, one at a time:
--     \set bi_label 'purge: chunk_size 0'
--     \set bi_call 'CALL batchguard.purge_with_backup(...)'
--     \i test/bad_input_call.sql
--
-- How an input runs (test/bad_input_run.sql, one transaction of its own each):
--   1. pg_temp.bad_input_attempt(n): a snapshot of the suite's state (pg_temp.snapshot); is
--      the statement rejected before any function runs (EXPLAIN fails: PostgreSQL's parser
--      or a type's input function)? If not, the statement runs in a subtransaction that is
--      left to fail: its result (jsonb of its rows) or 'SQLSTATE: message', plus
--      ' [changed]' when it succeeded and changed the suite's state; a success is then
--      rolled back too, so that every input starts from the same state.
--   2. COMMIT: what the failed (or rolled-back) call queued for commit time happens now.
--   3. pg_temp.bad_input_verdict(n), after that transaction ended: ' [LEFT BEHIND]' when the
--      state differs from the snapshot taken before, or a backup file named after the
--      input's transaction exists without its row.
-- PostgreSQL itself undoes the rows a failed statement wrote. What a failed call can leave
-- behind is what PostgreSQL does not undo: backup files (created, changed or removed),
-- work a procedure committed before it failed, actions queued for commit time, session
-- settings. The snapshot covers those: the rows of the suite's owners, the identity
-- mappings of its roles, their backups' in-database chunks and the size and time of every
-- file of their backups, the batchguard.* settings. sql/bad_input_harness.sql proves that
-- the check fires.
--
-- pg_temp.same_as_unknown(label, statement with %s, foreign id, unknown id, victim): true
--   when the statement behaves the same for another owner's id as for an id nobody has
--   (result or error, with the id replaced), and the other owner's rows did not change.
\set QUIET on
-- The owners (LIKE patterns) whose rows, identity mappings and backup files the snapshot covers.
CREATE TEMP TABLE bad_input_scope (owner_pattern text NOT NULL);
-- One row per bad input, in the order queued; filled in as it runs.
CREATE TEMP TABLE bad_input (
    n serial PRIMARY KEY,
    label text NOT NULL,
    statement text NOT NULL,
    -- 'select', or 'call' (test/bad_input_call.sql), or 'compare' (same_as_unknown)
    via text NOT NULL DEFAULT 'select',
    -- sql/bad_input_harness.sql's calls broken on purpose, which the check must catch
    broken_on_purpose boolean NOT NULL DEFAULT false,
    before text,            -- the snapshot before
    xid text,               -- the transaction the input ran in
    outcome text,           -- its result or its error
    rejected_early boolean, -- rejected before any function ran (EXPLAIN failed)
    left_behind boolean,    -- the state after its transaction differs from before
    mask text,              -- a regular expression: what matches it in the outcome is
    mask_as text            -- shown as this (e.g. lease tokens, which differ from run to run)
);
GRANT ALL ON bad_input, bad_input_scope TO PUBLIC;
GRANT ALL ON SEQUENCE bad_input_n_seq TO PUBLIC;

-- A digest of the state of the owners matching who (default: the suite's scope). It runs as
-- the superuser that created it, so row security hides nothing from it.
CREATE FUNCTION pg_temp.snapshot(who text DEFAULT NULL) RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    WITH scope AS (SELECT coalesce(who, s.owner_pattern) AS pattern FROM pg_temp.bad_input_scope s
                   UNION SELECT who WHERE who IS NOT NULL),
         folder AS (SELECT current_setting('batchguard.backup_directory') || '/' || d.oid AS path
                      FROM pg_database d WHERE d.datname = current_database())
    SELECT md5(concat_ws('|',
        (SELECT string_agg(to_jsonb(b)::text, ',' ORDER BY b.batch_id) FROM batchguard.batches b
          WHERE EXISTS (SELECT FROM scope WHERE b.owner LIKE scope.pattern)),
        (SELECT string_agg(to_jsonb(i)::text, ',' ORDER BY i.batch_id, i.item_id)
           FROM batchguard.batch_items i
          WHERE EXISTS (SELECT FROM scope WHERE i.owner LIKE scope.pattern)),
        (SELECT string_agg(to_jsonb(b)::text || ':' || coalesce(f.size::text || '@' || f.modification, 'no file'),
                           ',' ORDER BY b.backup_id)
           FROM batchguard.backups b, folder,
                LATERAL pg_stat_file(folder.path || '/' || b.backup_id || '-' || b.creating_xid || '.jsonl.zst',
                                     true) f
          WHERE EXISTS (SELECT FROM scope WHERE b.owner LIKE scope.pattern)),
        (SELECT string_agg(to_jsonb(a)::text, ',' ORDER BY a.audit_id) FROM batchguard.audit a
          WHERE EXISTS (SELECT FROM scope WHERE a.owner LIKE scope.pattern)),
        (SELECT string_agg(c.backup_id || '/' || c.chunk || ':' || md5(c.data), ',' ORDER BY c.backup_id, c.chunk)
           FROM batchguard.backup_chunks c JOIN batchguard.backups b USING (backup_id)
          WHERE EXISTS (SELECT FROM scope WHERE b.owner LIKE scope.pattern)),
        (SELECT string_agg(to_jsonb(m)::text, ',' ORDER BY m::text) FROM batchguard.identity_map m
          WHERE EXISTS (SELECT FROM scope WHERE m.role::text LIKE scope.pattern)),
        (SELECT string_agg(s.name || '=' || s.setting, ',' ORDER BY s.name) FROM pg_settings s
          WHERE s.name LIKE 'batchguard.%')))
$$;

-- Backup files named after transaction xid that have no row: what a call running in that
-- transaction left behind once it ended.
CREATE FUNCTION pg_temp.files_without_row(xid text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT count(*)
      FROM pg_database d,
           pg_ls_dir(current_setting('batchguard.backup_directory') || '/' || d.oid, true, false) f
     WHERE d.datname = current_database() AND f LIKE '%-' || xid || '.jsonl.zst'
       AND NOT EXISTS (SELECT FROM batchguard.backups b
                        WHERE f = b.backup_id || '-' || b.creating_xid || '.jsonl.zst')
$$;

-- The rows of a statement as text, without what differs from run to run.
CREATE FUNCTION pg_temp.result_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE 'SELECT coalesce(jsonb_agg(to_jsonb(q)), ''[]'')::text FROM (' || statement || ') q'
       INTO result;
    result := regexp_replace(result, '"\d{4}-\d\d-\d\dT[^"]*"', '"<time>"', 'g');
    result := regexp_replace(result, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
                             '<uuid>', 'g');
    RETURN result;
END
$$;

-- Step 1 of an input (see above). Runs as the current role, in the input's transaction.
CREATE PROCEDURE pg_temp.bad_input_attempt(i int) LANGUAGE plpgsql AS $$
DECLARE
    input record;
    snapshot_before text := pg_temp.snapshot();
    result text;
    early boolean := false;
BEGIN
    SELECT * INTO input FROM pg_temp.bad_input WHERE n = i;
    -- EXPLAIN parses the statement, reads its literals (types' input functions), checks the
    -- privileges to execute its functions and plans it, calling none of the functions but
    -- those the planner folds (immutable ones of constant arguments, ours among them). An
    -- error of EXPLAIN is PostgreSQL's when parse analysis alone (PREPARE) fails too, or
    -- when it is the executor's privilege check (42501); otherwise one of our functions
    -- failed while being folded, and it counts as ours.
    BEGIN
        EXECUTE 'EXPLAIN SELECT * FROM (' || input.statement || ') q';
    EXCEPTION WHEN OTHERS THEN
        result := left(SQLSTATE || ': ' || SQLERRM, 200);
        early := true;
        IF SQLSTATE <> '42501' THEN
            BEGIN
                EXECUTE 'PREPARE bad_input_parse_only AS SELECT * FROM (' || input.statement || ') q';
                DEALLOCATE bad_input_parse_only;
                early := false;
            EXCEPTION WHEN OTHERS THEN
                NULL;
            END;
        END IF;
    END;
    IF NOT early THEN
        BEGIN
            result := left(pg_temp.result_of(input.statement), 200);
            IF pg_temp.snapshot() <> snapshot_before THEN
                result := result || ' [changed]';
            END IF;
            RAISE EXCEPTION 'roll back' USING ERRCODE = 'ZZ999';
        EXCEPTION
            WHEN SQLSTATE 'ZZ999' THEN
                NULL;
            WHEN OTHERS OR query_canceled THEN
                result := left(SQLSTATE || ': ' || SQLERRM, 200);
        END;
    END IF;
    UPDATE pg_temp.bad_input
       SET before = snapshot_before, xid = pg_current_xact_id()::text, outcome = result,
           rejected_early = early
     WHERE n = i;
END
$$;

-- Step 3 (see above): after the input's transaction ended. For a call, the outcome comes
-- from psql (:SQLSTATE and :LAST_ERROR_MESSAGE).
CREATE FUNCTION pg_temp.bad_input_verdict(i int, state text DEFAULT NULL, message text DEFAULT NULL)
RETURNS TABLE (label text, outcome text) LANGUAGE plpgsql AS $$
DECLARE
    input record;
    changed boolean;
BEGIN
    SELECT * INTO input FROM pg_temp.bad_input b WHERE b.n = i;
    IF input.via = 'call' THEN
        input.outcome := CASE WHEN state = '00000' THEN 'ok' ELSE left(state || ': ' || message, 200) END;
    END IF;
    changed := pg_temp.snapshot() <> input.before
               OR (input.xid IS NOT NULL AND pg_temp.files_without_row(input.xid) > 0);
    IF input.mask IS NOT NULL THEN
        input.outcome := regexp_replace(input.outcome, input.mask, input.mask_as, 'g');
    END IF;
    UPDATE pg_temp.bad_input b SET outcome = input.outcome, left_behind = changed WHERE b.n = i;
    RETURN QUERY SELECT input.label,
        input.outcome
        || CASE WHEN input.rejected_early THEN ' [before any function ran]' ELSE '' END
        || CASE WHEN changed THEN ' [LEFT BEHIND]' ELSE '' END;
END
$$;

-- For test/bad_input_call.sql: queues a call and takes the snapshot before it.
CREATE FUNCTION pg_temp.bad_input_call(label text, statement text, broken_on_purpose boolean)
RETURNS int LANGUAGE sql AS $$
    INSERT INTO pg_temp.bad_input (label, statement, via, broken_on_purpose, before)
    VALUES (label, statement, 'call', broken_on_purpose, pg_temp.snapshot())
    RETURNING n
$$;

-- The counts a suite ends with: how many inputs, how many PostgreSQL refused before any
-- function ran (they test PostgreSQL, not pg_batchguard), how many of ours failed or
-- succeeded, and how many left something behind (none may, except the harness's own
-- broken-on-purpose calls).
CREATE FUNCTION pg_temp.bad_input_counts()
RETURNS TABLE (bad_inputs_tried bigint, rejected_before_any_function bigint, errors_of_ours bigint,
               succeeded bigint, left_changes_behind bigint) LANGUAGE sql AS $$
    SELECT count(*),
           count(*) FILTER (WHERE rejected_early),
           count(*) FILTER (WHERE NOT coalesce(rejected_early, false) AND outcome ~ '^[0-9A-Z]{5}: '),
           count(*) FILTER (WHERE outcome !~ '^[0-9A-Z]{5}: '),
           count(*) FILTER (WHERE left_behind AND NOT broken_on_purpose)
      FROM pg_temp.bad_input WHERE NOT broken_on_purpose
$$;

-- The foreign-id comparison: both statements run and are rolled back in subtransactions;
-- a successful call that changed the victim's rows is seen before its rollback.
CREATE FUNCTION pg_temp.same_as_unknown(label text, statement text, foreign_id text,
                                        unknown_id text, victim text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    before text := pg_temp.snapshot(victim);
    with_foreign text;
    with_unknown text;
    victim_unchanged boolean;
BEGIN
    BEGIN
        BEGIN
            with_foreign := pg_temp.result_of(format(statement, quote_literal(foreign_id)));
        EXCEPTION WHEN OTHERS THEN
            with_foreign := SQLSTATE || ': ' || SQLERRM;
        END;
        with_foreign := replace(with_foreign, foreign_id, 'ID');
        victim_unchanged := pg_temp.snapshot(victim) = before;
        RAISE EXCEPTION 'roll back' USING ERRCODE = 'ZZ999';
    EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
        NULL;
    END;
    BEGIN
        BEGIN
            with_unknown := pg_temp.result_of(format(statement, quote_literal(unknown_id)));
        EXCEPTION WHEN OTHERS THEN
            with_unknown := SQLSTATE || ': ' || SQLERRM;
        END;
        with_unknown := replace(with_unknown, unknown_id, 'ID');
        RAISE EXCEPTION 'roll back' USING ERRCODE = 'ZZ999';
    EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
        NULL;
    END;
    INSERT INTO pg_temp.bad_input (label, statement, via, outcome, rejected_early, left_behind)
    VALUES (label, statement, 'compare', with_foreign, false, NOT victim_unchanged);
    IF with_foreign IS DISTINCT FROM with_unknown OR NOT victim_unchanged THEN
        RAISE WARNING '%: foreign % / unknown % / victim unchanged %', label, with_foreign,
            with_unknown, victim_unchanged;
        RETURN false;
    END IF;
    RETURN true;
END
$$;
\set QUIET off
\set ECHO all
