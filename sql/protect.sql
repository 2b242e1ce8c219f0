-- Protected tables (issue 17): every DELETE on a protected table, and what its ON DELETE
-- CASCADE foreign keys remove, lands in one backup per transaction, written at commit
-- (SET NULL / SET DEFAULT children: protect_setnull);
-- TRUNCATE and DROP are refused; the backups restore with restore_backup.
\i test/helpers.sql
SET client_min_messages = warning;
-- backups made in this suite: counted from here
CREATE TEMP TABLE pt_start AS SELECT now() AS t;
CREATE TEMP VIEW pt_new_backups AS
    SELECT b.* FROM batchguard.backups b
     WHERE b.created_at >= (SELECT s.t FROM pg_temp.pt_start s)
       AND b.source_table LIKE 'public.pt\_%';

CREATE TABLE pt_conv (id int PRIMARY KEY, title text, created timestamptz DEFAULT '2024-01-02 03:04:05+00');
CREATE TABLE pt_turn (id int PRIMARY KEY, conv_id int NOT NULL REFERENCES pt_conv ON DELETE CASCADE,
                      body text, score float8);
CREATE TABLE pt_note (id int PRIMARY KEY, turn_id int REFERENCES pt_turn ON DELETE CASCADE, note jsonb);
INSERT INTO pt_conv (id, title) SELECT g, 'conv ' || g FROM generate_series(1, 20) g;
INSERT INTO pt_turn SELECT g, (g - 1) / 3 + 1, 'turn ' || g, g / 7.0 FROM generate_series(1, 60) g;
INSERT INTO pt_note SELECT g, g, jsonb_build_object('n', g, 'null', null) FROM generate_series(1, 60, 2) g;
-- the contents of the test tables, as text, to compare with after a restore
CREATE FUNCTION pg_temp.pt_contents() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(r, ' ' ORDER BY r) FROM (
        SELECT 'conv' || to_jsonb(c)::text AS r FROM pt_conv c
        UNION ALL SELECT 'turn' || to_jsonb(t)::text FROM pt_turn t
        UNION ALL SELECT 'note' || to_jsonb(n)::text FROM pt_note n) x
$$;
SELECT pg_temp.pt_contents() AS contents_before \gset

-- protect: the table, and the tables its cascades reach, two levels deep
SELECT batchguard.protect_table('pt_conv', retention => '2 days');
SELECT table_name, protected_by = current_user AS by_me, retention, include_children, covered_tables
  FROM batchguard.protected_tables WHERE table_name::text LIKE 'pt_%';
SELECT tgrelid::regclass AS table_name, string_agg(tgname, ', ' ORDER BY tgname) AS triggers
  FROM pg_trigger WHERE tgname LIKE 'batchguard%' AND tgrelid::regclass::text LIKE 'pt_%'
 GROUP BY tgrelid ORDER BY tgrelid::regclass::text;

-- DELETE ... WHERE: the row, its turns and their notes (two cascade levels) in one backup
DELETE FROM pt_conv WHERE id = 1;
SELECT count(*) AS backups, max(source_table) AS source, max(row_counts::text) AS row_counts,
       bool_and(expires_at - created_at = '2 days') AS retention_2_days,
       bool_and(format_version = 2) AS format_2
  FROM pt_new_backups;
SELECT batchguard.last_backup_id() = (SELECT backup_id FROM pt_new_backups) AS last_backup_id;
SELECT table_name, row FROM batchguard.backup_rows(batchguard.last_backup_id()) ORDER BY table_name, row::text;

-- DELETE ... USING, DELETE ... RETURNING, a writable CTE: each its own backup
DELETE FROM pt_turn t USING pt_conv c WHERE t.conv_id = c.id AND c.title = 'conv 2';
SELECT row_counts FROM batchguard.backups WHERE backup_id = batchguard.last_backup_id();
DELETE FROM pt_note WHERE id = 13 RETURNING id, note;
SELECT row_counts FROM batchguard.backups WHERE backup_id = batchguard.last_backup_id();
WITH gone AS (DELETE FROM pt_conv WHERE id IN (3, 4) RETURNING id) SELECT count(*) AS deleted FROM gone;
SELECT row_counts FROM batchguard.backups WHERE backup_id = batchguard.last_backup_id();
SELECT count(*) AS backups FROM pt_new_backups;

-- several statements in one transaction: one backup; its id is known before COMMIT
BEGIN;
DELETE FROM pt_conv WHERE id = 5;
DELETE FROM pt_turn WHERE id = 20;
SELECT batchguard.last_backup_id() AS pending_id \gset
SELECT count(*) AS backups_before_commit FROM pt_new_backups;
COMMIT;
SELECT count(*) AS backups, (SELECT row_counts FROM batchguard.backups WHERE backup_id = :'pending_id')
  FROM pt_new_backups;
SELECT batchguard.last_backup_id() = :'pending_id' AS same_id;

-- a rolled-back transaction: no backup; a rolled-back savepoint: its rows are not in it
BEGIN;
DELETE FROM pt_conv WHERE id = 8;
ROLLBACK;
SELECT count(*) AS backups, (SELECT count(*) FROM pt_conv WHERE id = 8) AS conv_8_kept FROM pt_new_backups;
BEGIN;
DELETE FROM pt_conv WHERE id = 9;
SAVEPOINT s1;
DELETE FROM pt_conv WHERE id = 10;
SAVEPOINT s2;
DELETE FROM pt_turn WHERE id = 34;
ROLLBACK TO s1;
SAVEPOINT s3;
DELETE FROM pt_note WHERE id = 35;
RELEASE s3;
COMMIT;
SELECT table_name, row ->> 'id' AS id FROM batchguard.backup_rows(batchguard.last_backup_id()) ORDER BY table_name, (row ->> 'id')::int;
SELECT (SELECT count(*) FROM pt_conv WHERE id = 10) AS conv_10_kept, (SELECT count(*) FROM pt_turn WHERE id = 34) AS turn_34_kept;
-- a transaction that deletes nothing makes no backup, and last_backup_id() says so
DELETE FROM pt_conv WHERE id = 999;
SELECT batchguard.last_backup_id() IS NULL AS no_backup;
BEGIN;
DELETE FROM pt_conv WHERE false;
SAVEPOINT s1;
DELETE FROM pt_conv WHERE id = 11;
SELECT batchguard.last_backup_id() IS NOT NULL AS pending;
ROLLBACK TO s1;
SELECT batchguard.last_backup_id() IS NULL AS nothing_pending;
COMMIT;
SELECT count(*) AS backups, batchguard.last_backup_id() IS NULL AS no_backup FROM pt_new_backups;

-- every backup restores (the latest first), and the tables are as they were
SELECT count(*) AS restored FROM (SELECT batchguard.restore_backup(backup_id) FROM pt_new_backups ORDER BY created_at DESC) r;
SELECT pg_temp.pt_contents() = :'contents_before' AS all_rows_back;

-- delete_with_backup on a protected table: one backup, not two
SELECT count(*) AS backups_before FROM pt_new_backups \gset
SELECT r -> 'backup' -> 'row_counts' AS row_counts FROM batchguard.delete_with_backup('pt_conv', '{12}') r;
SELECT count(*) - :backups_before AS new_backups FROM pt_new_backups;
-- and in one transaction with a plain DELETE: two backups, each row in one of them
BEGIN;
SELECT r -> 'backup' -> 'total_rows' AS rows FROM batchguard.delete_with_backup('pt_conv', '{13}') r;
DELETE FROM pt_conv WHERE id = 14;
COMMIT;
SELECT count(*) - :backups_before AS new_backups FROM pt_new_backups;
SELECT row_counts FROM batchguard.backups WHERE backup_id = batchguard.last_backup_id();

-- a table with user triggers: they read the same transition table, before and after ours
CREATE TABLE pt_log (tg text, n bigint);
CREATE FUNCTION pt_log_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pt_log SELECT TG_NAME, count(*) FROM gone;
    RETURN NULL;
END $$;
CREATE FUNCTION pt_keep_title() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.title = 'keep me' THEN RETURN NULL; END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER a_log AFTER DELETE ON pt_conv REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION pt_log_deleted();
CREATE TRIGGER z_log AFTER DELETE ON pt_conv REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION pt_log_deleted();
CREATE TRIGGER keep BEFORE DELETE ON pt_conv FOR EACH ROW EXECUTE FUNCTION pt_keep_title();
UPDATE pt_conv SET title = 'keep me' WHERE id = 16;
DELETE FROM pt_conv WHERE id IN (15, 16);
SELECT * FROM pt_log ORDER BY tg;
SELECT table_name, row ->> 'id' AS id FROM batchguard.backup_rows(batchguard.last_backup_id())
 WHERE table_name = 'public.pt_conv';
DROP TRIGGER a_log ON pt_conv;
DROP TRIGGER z_log ON pt_conv;
DROP TRIGGER keep ON pt_conv;

-- ALTER TABLE that adds or drops columns keeps protection working
ALTER TABLE pt_conv ADD COLUMN extra text DEFAULT 'x';
ALTER TABLE pt_conv DROP COLUMN created;
DELETE FROM pt_conv WHERE id = 17;
SELECT row FROM batchguard.backup_rows(batchguard.last_backup_id()) WHERE table_name = 'public.pt_conv';
SELECT batchguard.restore_backup(batchguard.last_backup_id()) ->> 'inserted' AS restored;
SELECT * FROM pt_conv WHERE id = 17;
-- but not between two deletes of one transaction
BEGIN;
DELETE FROM pt_conv WHERE id = 18;
ALTER TABLE pt_conv DROP COLUMN extra;
SELECT pg_temp.error_of($$DELETE FROM pt_conv WHERE id = 19$$);
ROLLBACK;

-- a partitioned table: deletes through the parent and on any partition are covered
CREATE TABLE pt_event (id int, region text, payload text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE pt_event_eu PARTITION OF pt_event FOR VALUES IN ('eu') PARTITION BY RANGE (id);
CREATE TABLE pt_event_eu_low PARTITION OF pt_event_eu FOR VALUES FROM (0) TO (100);
CREATE TABLE pt_event_eu_high PARTITION OF pt_event_eu FOR VALUES FROM (100) TO (MAXVALUE);
CREATE TABLE pt_event_us PARTITION OF pt_event FOR VALUES IN ('us');
INSERT INTO pt_event SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'p' || g FROM generate_series(1, 200) g;
CREATE TEMP TABLE pt_event_before AS SELECT * FROM pt_event;
SELECT batchguard.protect_table('pt_event');
SELECT covered_tables FROM batchguard.protected_tables WHERE table_name = 'pt_event'::regclass;
DELETE FROM pt_event WHERE id IN (1, 2, 150);
SELECT row_counts FROM batchguard.backups WHERE backup_id = batchguard.last_backup_id();
SELECT batchguard.last_backup_id() AS event_backup_1 \gset
DELETE FROM pt_event_eu_high WHERE id = 152;
SELECT row_counts FROM batchguard.backups WHERE backup_id = batchguard.last_backup_id();
SELECT batchguard.last_backup_id() AS event_backup_2 \gset
DELETE FROM pt_event_us WHERE id = 3;
SELECT row_counts FROM batchguard.backups WHERE backup_id = batchguard.last_backup_id();
SELECT batchguard.last_backup_id() AS event_backup_3 \gset
SELECT pg_temp.error_of($$TRUNCATE pt_event_eu_low$$);
SELECT count(*) AS restored FROM (VALUES (:'event_backup_1'::uuid), (:'event_backup_2'), (:'event_backup_3')) b(id),
       batchguard.restore_backup(b.id) r;
SELECT NOT EXISTS (SELECT * FROM pt_event_before EXCEPT SELECT * FROM pt_event)
       AND (SELECT count(*) FROM pt_event) = 200 AS events_back;

-- TRUNCATE and DROP TABLE are refused, with a hint
\set VERBOSITY default
TRUNCATE pt_note;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE pt_conv CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE pt_conv CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE pt_note;
\echo :LAST_ERROR_SQLSTATE
DROP TABLE pt_event_us;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER batchguard_protect ON pt_note;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT pg_temp.error_of($$DROP TABLE pt_turn CASCADE$$);

-- a failed backup prevents the delete: the commit fails and every row is still there
SELECT count(*) AS convs_before FROM pt_conv \gset
SELECT count(*) AS backups_before FROM pt_new_backups \gset
BEGIN;
SET LOCAL batchguard.max_backup_bytes_per_owner = '1kB';
DELETE FROM pt_conv WHERE id >= 19;
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) = :convs_before AS rows_kept FROM pt_conv;
SELECT count(*) - :backups_before AS new_backups FROM pt_new_backups;
-- nor can such a transaction be prepared
BEGIN;
DELETE FROM pt_conv WHERE id = 19;
PREPARE TRANSACTION 'pt_prepared';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) = :convs_before AS rows_kept FROM pt_conv;

-- privileges: only the owner protects; the deleting role must be able to read every row it
-- deletes, cascaded rows included, and row security must not apply to it
CREATE ROLE regress_pt_app;
CREATE ROLE regress_pt_other;
GRANT SELECT, DELETE ON pt_conv TO regress_pt_app;
GRANT DELETE ON pt_turn, pt_note TO regress_pt_app;
GRANT DELETE ON pt_conv TO regress_pt_other;
SET ROLE regress_pt_app;
SELECT pg_temp.error_of($$SELECT batchguard.protect_table('pt_conv')$$);
SELECT pg_temp.error_of($$SELECT batchguard.unprotect_table('pt_conv')$$);
-- pt_turn rows would cascade from conv 19; the role cannot read pt_turn
SELECT pg_temp.error_of($$DELETE FROM pt_conv WHERE id = 19$$);
RESET ROLE;
GRANT SELECT ON pt_turn, pt_note TO regress_pt_app;
SET ROLE regress_pt_other;
SELECT pg_temp.error_of($$DELETE FROM pt_conv$$);
RESET ROLE;
ALTER TABLE pt_turn ENABLE ROW LEVEL SECURITY;
CREATE POLICY pt_all ON pt_turn USING (true);
SET ROLE regress_pt_app;
SELECT pg_temp.error_of($$DELETE FROM pt_conv WHERE id = 19$$);
RESET ROLE;
ALTER TABLE pt_turn DISABLE ROW LEVEL SECURITY;
SET ROLE regress_pt_app;
DELETE FROM pt_conv WHERE id = 19;
SELECT owner, row_counts FROM batchguard.backups WHERE backup_id = batchguard.last_backup_id();
RESET ROLE;
-- one transaction, one owner
BEGIN;
DELETE FROM pt_note WHERE id = 49;
SET LOCAL ROLE regress_pt_app;
SELECT replace(pg_temp.error_of($$DELETE FROM pt_note WHERE id = 51$$), session_user, 'SESSION_USER');
ROLLBACK;

-- bad input
SELECT pg_temp.error_of($$SELECT batchguard.protect_table(NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.protect_table('pt_conv', include_children => NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.protect_table('pt_conv', retention => '-1 day')$$);
SELECT pg_temp.error_of($$SELECT batchguard.protect_table('pt_conv', retention => '1000 years')$$);
CREATE VIEW pt_view AS SELECT * FROM pt_conv;
SELECT pg_temp.error_of($$SELECT batchguard.protect_table('pt_view')$$);
SELECT pg_temp.error_of($$SELECT batchguard.protect_table('pt_missing')$$);
SELECT pg_temp.error_of($$SELECT batchguard.unprotect_table(NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.unprotect_table('pt_view')$$);
SELECT batchguard.unprotect_table('pt_log') AS was_protected;

-- protect again with include_children => false: the children lose their triggers
SELECT batchguard.protect_table('pt_conv', include_children => false);
SELECT table_name, retention, include_children, covered_tables
  FROM batchguard.protected_tables WHERE table_name::text LIKE 'pt_%' ORDER BY table_name::text;
SELECT tgrelid::regclass AS table_name, count(*) AS triggers
  FROM pg_trigger WHERE tgname LIKE 'batchguard%' AND tgrelid::regclass::text LIKE 'pt_%'
 GROUP BY tgrelid ORDER BY tgrelid::regclass::text;

-- unprotect: plain deletes make no backup any more, TRUNCATE and DROP work
SELECT batchguard.unprotect_table('pt_conv'), batchguard.unprotect_table('pt_event');
SELECT count(*) AS backups_before FROM pt_new_backups \gset
DELETE FROM pt_conv WHERE id = 20;
TRUNCATE pt_event;
SELECT count(*) - :backups_before AS new_backups, batchguard.last_backup_id() IS NOT NULL AS session_id_kept
  FROM pt_new_backups;
SELECT count(*) AS protected FROM batchguard.protected_tables WHERE table_name::text LIKE 'pt_%';
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'batchguard%';

-- clean up: this suite's backups (their chunks go with their rows) and audit rows
CREATE TEMP TABLE pt_backups AS SELECT backup_id FROM pt_new_backups;
DELETE FROM batchguard.audit WHERE backup_id IN (SELECT backup_id FROM pt_backups);
SELECT count(*) AS deleted_backups FROM pt_backups;
DELETE FROM batchguard.backups WHERE backup_id IN (SELECT backup_id FROM pt_backups);
DROP VIEW pt_view;
DROP TABLE pt_note, pt_turn, pt_conv, pt_log, pt_event;
DROP FUNCTION pt_log_deleted(), pt_keep_title();
DROP ROLE regress_pt_app;
DROP ROLE regress_pt_other;
