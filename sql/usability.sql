-- What a new user trips over (issue 18's "friction"): strict batches instead of lazy ones,
-- empty backups, reviving an expired backup, and errors that say what to do: SQLSTATE,
-- message and, where the point is the advice, detail and hint.
\i test/helpers.sql
SET client_min_messages = notice;
-- pg_temp.full_error_of(statement): SQLSTATE, message, detail and hint of its error.
CREATE FUNCTION pg_temp.full_error_of(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE state text; message text; detail text; hint text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN state || ': ' || message || E'\nDETAIL: ' || detail || E'\nHINT: ' || hint;
END
$$;

CREATE ROLE regress_us_alice;
SET ROLE regress_us_alice;

-- batchguard.lazy_batches = off: a mistyped job id is an error, not a new batch
SELECT status FROM batchguard.start_batch('us-job', ARRAY['a', 'b', 'c']);
SET batchguard.lazy_batches = off;
SELECT pg_temp.full_error_of($$SELECT batchguard.complete_item('us-jbo', 'a')$$);
SELECT pg_temp.error_of($$SELECT batchguard.fail_item('us-jbo', 'a', 'boom')$$);
SELECT pg_temp.error_of($$SELECT batchguard.save_checkpoint('us-jbo', ARRAY['a'])$$);
SELECT count(*) AS batches_created FROM batchguard.batches WHERE job_id = 'us-jbo';
-- an existing batch works as before (twice: the second call takes the fast path)
SELECT batchguard.complete_item('us-job', 'a') AS completed;
SELECT batchguard.complete_item('us-job', 'b') AS completed;
SELECT completed, failed FROM batchguard.save_checkpoint('us-job', ARRAY['c']);
RESET batchguard.lazy_batches;
SELECT batchguard.complete_item('us-lazy', 'a') AS lazy_batch_created;
SELECT batchguard.cleanup_checkpoint('us-job') AND batchguard.cleanup_checkpoint('us-lazy') AS cleaned;

-- PB001 says what became of the lease
SELECT status FROM batchguard.start_batch('us-lease', ARRAY['x', 'y']);
SELECT lease_token AS x_token FROM batchguard.claim_items('us-lease', 1, '1 hour') \gset
SELECT regexp_replace(pg_temp.full_error_of(format(
    $$SELECT batchguard.complete_item('us-lease', 'y', NULL, %s)$$, :x_token)), 'lease \d+', 'lease N', 'g')
    AS never_its_lease;
-- x's lease expires and another worker claims it: the first token is refused
RESET ROLE;
UPDATE batchguard.batch_items SET lease_expires_at = now() - interval '1 second' WHERE item_id = 'x'
   AND batch_id = (SELECT batch_id FROM batchguard.batches WHERE job_id = 'us-lease');
SET ROLE regress_us_alice;
SELECT item_id, attempt FROM batchguard.claim_items('us-lease', 2, '1 hour');
SELECT regexp_replace(pg_temp.full_error_of(format(
    $$SELECT batchguard.complete_item('us-lease', 'x', NULL, %s)$$, :x_token)), 'lease \d+', 'lease N', 'g')
    AS handed_on;
SELECT batchguard.cleanup_checkpoint('us-lease') AS cleaned;

RESET ROLE;
-- empty backups: a NOTICE, or with allow_empty_backups = off an error and nothing written
CREATE TABLE us_doc (id int PRIMARY KEY, body text);
INSERT INTO us_doc VALUES (1, 'one');
GRANT SELECT, UPDATE, DELETE ON us_doc TO regress_us_alice;
SET ROLE regress_us_alice;
\set VERBOSITY terse
SELECT total_rows FROM batchguard.export_backup('us_doc', ARRAY['42']) \gset
\set VERBOSITY default
SELECT :total_rows AS empty_backup_rows;
SET batchguard.allow_empty_backups = off;
SELECT pg_temp.full_error_of($$SELECT batchguard.export_backup('us_doc', ARRAY['42'])$$);
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('us_doc', ARRAY['42'])$$);
SELECT count(*) AS backups FROM batchguard.get_user_backups();
RESET batchguard.allow_empty_backups;

-- extend_backup revives an expired backup the cleanup has not removed, like hold_backup
SELECT backup_id AS expiring FROM batchguard.export_backup('us_doc', ARRAY['1']) \gset
RESET ROLE;
UPDATE batchguard.backups SET expires_at = now() - interval '1 second' WHERE backup_id = :'expiring';
SET ROLE regress_us_alice;
SELECT (batchguard.get_backup(:'expiring')).status AS before_extend;
SELECT regexp_replace(pg_temp.full_error_of(format('SELECT batchguard.read_backup(%L)', :'expiring')),
                      '[0-9a-f-]{36}', 'ID', 'g') AS read_expired;
SELECT status, expires_at > now() AS in_future
  FROM batchguard.extend_backup(:'expiring', now() + interval '1 day');
SELECT length(batchguard.read_backup(:'expiring')) > 0 AS readable_again;

-- a download in chunks is audited once when it starts and once when it reaches the end
SELECT compressed_bytes AS size FROM batchguard.get_backup(:'expiring') \gset
SELECT count(*) AS audited_before FROM batchguard.audit
 WHERE backup_id = :'expiring' AND action = 'download' \gset
SELECT length(batchguard.read_backup(:'expiring', 0, 100))
     + length(batchguard.read_backup(:'expiring', 100, 100))
     + length(batchguard.read_backup(:'expiring', 200)) = :size AS chunks_read;
SELECT length(batchguard.read_backup(:'expiring', 100, 10)) AS out_of_order_chunk;
SELECT length(batchguard.read_backup(:'expiring')) = :size AS whole_file;
SELECT detail - 'length' AS detail FROM batchguard.audit
 WHERE backup_id = :'expiring' AND action = 'download' ORDER BY audit_id OFFSET :audited_before;

-- delete_with_backup: which table, and why
RESET ROLE;
CREATE TABLE us_parent (id int PRIMARY KEY);
CREATE TABLE us_child (id int PRIMARY KEY, parent int REFERENCES us_parent ON DELETE CASCADE);
INSERT INTO us_parent VALUES (1);
INSERT INTO us_child VALUES (10, 1);
GRANT SELECT, DELETE ON us_parent, us_child TO regress_us_alice;
SET ROLE regress_us_alice;
SELECT pg_temp.full_error_of($$SELECT batchguard.delete_with_backup('us_parent', ARRAY['1'])$$)
    AS without_update;
RESET ROLE;
GRANT UPDATE ON us_parent, us_child TO regress_us_alice;
REVOKE SELECT ON us_child FROM regress_us_alice;
SET ROLE regress_us_alice;
SELECT pg_temp.full_error_of($$SELECT batchguard.delete_with_backup('us_parent', ARRAY['1'])$$)
    AS child_not_readable;
RESET ROLE;
GRANT SELECT ON us_child TO regress_us_alice;
ALTER TABLE us_child ENABLE ROW LEVEL SECURITY;
-- row security that hides a row the cascade removes: the backup would lack it, so the
-- delete raises after comparing what it did with the backup (nothing is deleted)
CREATE POLICY us_not_ten ON us_child USING (id <> 10);
SET ROLE regress_us_alice;
SELECT pg_temp.full_error_of($$SELECT batchguard.delete_with_backup('us_parent', ARRAY['1'])$$)
    AS child_row_security;
RESET ROLE;
SELECT count(*) AS parents_left FROM us_parent;

-- restore_backup: one conflicting row is "1 row ... exists"
SET ROLE regress_us_alice;
SELECT backup_id AS one_row FROM batchguard.export_backup('us_doc', ARRAY['1'], include_children => false) \gset
RESET ROLE;
GRANT INSERT ON us_doc TO regress_us_alice;
SET ROLE regress_us_alice;
SELECT pg_temp.error_of(format('SELECT batchguard.restore_backup(%L)', :'one_row')) AS one_conflict;

-- claims that are not JSON name the setting; a retention over the limit says the limit
RESET ROLE;
CREATE ROLE regress_us_web;
SELECT batchguard.map_identity('regress_us_web', 'us.claims', 'sub');
SET ROLE regress_us_web;
SELECT set_config('us.claims', 'not json', false) IS NOT NULL AS claims_set;
SELECT pg_temp.full_error_of($$SELECT batchguard.current_owner()$$) AS claims_not_json;
RESET ROLE;
RESET us.claims;
SELECT batchguard.unmap_identity('regress_us_web');
SET ROLE regress_us_alice;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('us_doc', retention => '1000 years')$$);
-- an export's error names the table being exported, not a backup that never existed
SET batchguard.allow_empty_backups = off;
DO $$
DECLARE context text;
BEGIN
    PERFORM batchguard.export_backup('us_doc', ARRAY['42']);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS context = PG_EXCEPTION_CONTEXT;
    RAISE NOTICE 'context: %', split_part(context, E'\n', 1);
END
$$;
RESET batchguard.allow_empty_backups;

-- clean up
SET client_min_messages = warning;
SELECT bool_and(batchguard.delete_backup(backup_id)) AS deleted FROM batchguard.get_user_backups();
RESET ROLE;
DELETE FROM batchguard.audit WHERE owner = 'regress_us_alice';
DROP TABLE us_child, us_parent, us_doc;
DROP ROLE regress_us_alice, regress_us_web;
