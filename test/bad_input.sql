-- Included by the bad_input_* suites (\i test/bad_input.sql, after test/helpers.sql).
-- pg_temp.snapshot(owner): a digest of every row of the extension's tables (of one owner, or
--   all), of the in-database backup chunks and of the database's backup file names; it
--   runs as the superuser that created it, so row security hides nothing from it.
-- pg_temp.try(label, statement): runs the statement as the current role, returns its result
--   (jsonb of its rows) or 'SQLSTATE: message', appends ' [changed]' when anything changed,
--   then rolls the statement back so the next one starts from the same state. Each call is
--   counted in bad_input_tried.
-- pg_temp.same_as_unknown(label, statement with %s, foreign id, unknown id): true when the
--   statement behaves the same for another owner's id as for an id nobody has (result or
--   error, with the id replaced), and the other owner's rows did not change.
\set QUIET on
CREATE TABLE bad_input_tried (label text NOT NULL, outcome text NOT NULL);
GRANT SELECT, INSERT ON bad_input_tried TO PUBLIC;
CREATE FUNCTION pg_temp.snapshot(who text DEFAULT NULL) RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(to_jsonb(b)::text, ',' ORDER BY b.batch_id) FROM batchguard.batches b
          WHERE who IS NULL OR b.owner = who),
        (SELECT string_agg(to_jsonb(i)::text, ',' ORDER BY i.batch_id, i.item_id)
           FROM batchguard.batch_items i WHERE who IS NULL OR i.owner = who),
        (SELECT string_agg(to_jsonb(b)::text, ',' ORDER BY b.backup_id) FROM batchguard.backups b
          WHERE who IS NULL OR b.owner = who),
        (SELECT string_agg(to_jsonb(a)::text, ',' ORDER BY a.audit_id) FROM batchguard.audit a
          WHERE who IS NULL OR a.owner = who),
        (SELECT string_agg(c.backup_id || '/' || c.chunk || ':' || md5(c.data), ',' ORDER BY c.backup_id, c.chunk)
           FROM batchguard.backup_chunks c JOIN batchguard.backups b USING (backup_id)
          WHERE who IS NULL OR b.owner = who),
        (SELECT string_agg(to_jsonb(m)::text, ',' ORDER BY m::text) FROM batchguard.identity_map m),
        (SELECT string_agg(f, ',' ORDER BY f)
           FROM pg_ls_dir('pg_batchguard/' || (SELECT oid FROM pg_database
                                               WHERE datname = current_database()), true, false) f)))
$$;
CREATE FUNCTION pg_temp.run(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE 'SELECT coalesce(jsonb_agg(to_jsonb(q)), ''[]'')::text FROM (' || statement || ') q'
       INTO result;
    -- timestamps and generated ids differ from run to run
    result := regexp_replace(result, '"\d{4}-\d\d-\d\dT[^"]*"', '"<time>"', 'g');
    result := regexp_replace(result, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
                             '<uuid>', 'g');
    RETURN result;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE FUNCTION pg_temp.try(label text, statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    before text := pg_temp.snapshot();
    outcome text;
BEGIN
    BEGIN
        outcome := pg_temp.run(statement);
        IF pg_temp.snapshot() <> before THEN
            outcome := outcome || ' [changed]';
        END IF;
        RAISE EXCEPTION 'roll back' USING ERRCODE = 'ZZ999';
    EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
        NULL;
    END;
    INSERT INTO bad_input_tried VALUES (label, outcome);
    RETURN left(outcome, 200);
END
$$;
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
        with_foreign := replace(pg_temp.run(format(statement, quote_literal(foreign_id))),
                                foreign_id, 'ID');
        victim_unchanged := pg_temp.snapshot(victim) = before;
        RAISE EXCEPTION 'roll back' USING ERRCODE = 'ZZ999';
    EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
        NULL;
    END;
    BEGIN
        with_unknown := replace(pg_temp.run(format(statement, quote_literal(unknown_id))),
                                unknown_id, 'ID');
        RAISE EXCEPTION 'roll back' USING ERRCODE = 'ZZ999';
    EXCEPTION WHEN SQLSTATE 'ZZ999' THEN
        NULL;
    END;
    INSERT INTO bad_input_tried VALUES (label, with_foreign);
    IF with_foreign IS DISTINCT FROM with_unknown OR NOT victim_unchanged THEN
        RAISE WARNING '%: foreign % / unknown % / victim unchanged %', label, with_foreign,
            with_unknown, victim_unchanged;
        RETURN false;
    END IF;
    RETURN true;
END
$$;
-- pg_temp.try_cancellable(label, statement): like try, for statements that may run into
--   statement_timeout: 'finished or cancelled', or the error, and ' [changed]'.
CREATE FUNCTION pg_temp.try_cancellable(label text, statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    before text := pg_temp.snapshot();
    outcome text;
BEGIN
    BEGIN
        EXECUTE statement;
        outcome := 'finished or cancelled';
        IF pg_temp.snapshot() <> before THEN
            outcome := outcome || ' [changed]';
        END IF;
        RAISE EXCEPTION 'roll back' USING ERRCODE = 'ZZ999';
    EXCEPTION
        WHEN SQLSTATE 'ZZ999' THEN
            NULL;
        WHEN query_canceled THEN
            outcome := 'finished or cancelled';
        WHEN OTHERS THEN
            outcome := SQLSTATE || ': ' || SQLERRM;
    END;
    INSERT INTO bad_input_tried VALUES (label, outcome);
    RETURN outcome;
END
$$;
\set QUIET off
