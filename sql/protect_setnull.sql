-- Protected tables and ON DELETE SET NULL / SET DEFAULT children (issue 17): the rows those
-- actions change land, with their old values, in the deleting transaction's one backup as
-- changed rows; restore_backup puts the old values back. Other UPDATEs are not backed up.
\i test/helpers.sql
SET client_min_messages = warning;
CREATE TEMP TABLE ps_start AS SELECT now() AS t;
CREATE TEMP VIEW ps_new_backups AS
    SELECT b.* FROM batchguard.backups b
     WHERE b.created_at >= (SELECT s.t FROM pg_temp.ps_start s)
       AND b.source_table LIKE 'public.ps\_%';

CREATE TABLE ps_team (id int PRIMARY KEY, name text);
CREATE TABLE ps_lead (id int PRIMARY KEY, name text);
-- two SET NULL keys to two protected tables, one SET DEFAULT key
CREATE TABLE ps_task (id int PRIMARY KEY, title text,
                      team_id int REFERENCES ps_team ON DELETE SET NULL,
                      lead_id int REFERENCES ps_lead ON DELETE SET NULL,
                      backup_team int DEFAULT 0 REFERENCES ps_team ON DELETE SET DEFAULT);
-- PostgreSQL 15's SET NULL (columns): only team_id is set, the tenant stays
CREATE TABLE ps_tenant_team (tenant int, id int, PRIMARY KEY (tenant, id));
CREATE TABLE ps_member (id int PRIMARY KEY, tenant int NOT NULL, team_id int,
                        FOREIGN KEY (tenant, team_id) REFERENCES ps_tenant_team ON DELETE SET NULL (team_id));
ALTER TABLE ps_tenant_team ADD COLUMN team_ref int REFERENCES ps_team ON DELETE CASCADE;
-- without a primary key
CREATE TABLE ps_tag (team_id int REFERENCES ps_team ON DELETE SET NULL, tag text);
-- partitioned
CREATE TABLE ps_event (id int, region text, team_id int REFERENCES ps_team ON DELETE SET NULL,
                       PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE ps_event_eu PARTITION OF ps_event FOR VALUES IN ('eu');
CREATE TABLE ps_event_us PARTITION OF ps_event FOR VALUES IN ('us');
-- a SET NULL key to a table no protection covers
CREATE TABLE ps_free (id int PRIMARY KEY);
ALTER TABLE ps_task ADD COLUMN free_id int REFERENCES ps_free ON DELETE SET NULL;

INSERT INTO ps_team SELECT g, 'team ' || g FROM generate_series(0, 12) g;
INSERT INTO ps_lead SELECT g, 'lead ' || g FROM generate_series(1, 12) g;
INSERT INTO ps_free SELECT g FROM generate_series(1, 12) g;
INSERT INTO ps_task SELECT g, 'task ' || g, g % 12 + 1, (g + 5) % 12 + 1, (g + 7) % 12 + 1, g % 12 + 1
  FROM generate_series(1, 48) g;
INSERT INTO ps_tenant_team SELECT t, g, g FROM generate_series(1, 2) t, generate_series(1, 12) g;
INSERT INTO ps_member SELECT g, g % 2 + 1, g % 12 + 1 FROM generate_series(1, 48) g;
INSERT INTO ps_tag SELECT g % 12 + 1, 'tag ' || g FROM generate_series(1, 24) g;
INSERT INTO ps_tag SELECT 4, 'tag 3' FROM generate_series(1, 2);  -- three identical rows
INSERT INTO ps_event SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g % 12 + 1
  FROM generate_series(1, 48) g;
CREATE FUNCTION pg_temp.ps_contents() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(r, ' ' ORDER BY r) FROM (
        SELECT 'team' || to_jsonb(t)::text AS r FROM ps_team t
        UNION ALL SELECT 'lead' || to_jsonb(l)::text FROM ps_lead l
        UNION ALL SELECT 'task' || to_jsonb(t)::text FROM ps_task t
        UNION ALL SELECT 'tenant_team' || to_jsonb(t)::text FROM ps_tenant_team t
        UNION ALL SELECT 'member' || to_jsonb(m)::text FROM ps_member m
        UNION ALL SELECT 'tag' || to_jsonb(t)::text FROM ps_tag t
        UNION ALL SELECT 'event' || to_jsonb(e)::text FROM ps_event e
        UNION ALL SELECT 'free' || to_jsonb(f)::text FROM ps_free f) x
$$;
-- the contents before each check, and a check that they are back
CREATE TEMP TABLE ps_saved (contents text);
CREATE FUNCTION pg_temp.ps_save() RETURNS void LANGUAGE sql AS $$
    DELETE FROM ps_saved; INSERT INTO ps_saved SELECT pg_temp.ps_contents();
$$;
CREATE FUNCTION pg_temp.ps_back() RETURNS boolean LANGUAGE sql AS $$
    SELECT pg_temp.ps_contents() = (SELECT contents FROM ps_saved);
$$;
-- a backup's lines per table, and what the delete did to the table's rows
CREATE FUNCTION pg_temp.ps_lines(id uuid) RETURNS TABLE (table_name text, action text, columns text, n bigint)
LANGUAGE sql AS $$
    SELECT r.table_name, a.value ->> 'action', a.value ->> 'columns', count(*)
      FROM batchguard.backup_rows(id) r
      JOIN batchguard.backups b ON b.backup_id = id
      LEFT JOIN LATERAL jsonb_each(b.delete_actions) a ON a.key = r.table_name
     GROUP BY 1, 2, 3 ORDER BY 1, 2
$$;

-- protect: the children reached through SET NULL / SET DEFAULT keys are covered (and the
-- tables their own cascades reach); the ones with such keys get an UPDATE trigger
SELECT batchguard.protect_table('ps_team');
SELECT batchguard.protect_table('ps_lead');
SELECT table_name, covered_tables FROM batchguard.protected_tables
 WHERE table_name::text LIKE 'ps_%' ORDER BY table_name::text;
SELECT tgrelid::regclass AS table_name, string_agg(tgname, ', ' ORDER BY tgname) AS triggers
  FROM pg_trigger WHERE tgname LIKE 'batchguard%' AND tgrelid::regclass::text LIKE 'ps_%'
 GROUP BY tgrelid ORDER BY tgrelid::regclass::text;

-- one DELETE: the team, the tenant teams its cascade removes, and the rows every SET NULL /
-- SET DEFAULT key changes, in one backup
SELECT pg_temp.ps_save();
DELETE FROM ps_team WHERE id = 1;
SELECT count(*) AS backups, max(row_counts::text) AS row_counts FROM ps_new_backups;
SELECT * FROM pg_temp.ps_lines(batchguard.last_backup_id());
-- old values: the task rows still name team 1 (team_id or backup_team)
SELECT row ->> 'id' AS id, row ->> 'team_id' AS team_id, row ->> 'backup_team' AS backup_team
  FROM batchguard.backup_rows(batchguard.last_backup_id()) WHERE table_name = 'public.ps_task'
 ORDER BY (row ->> 'id')::int;
SELECT row FROM batchguard.backup_rows(batchguard.last_backup_id())
 WHERE table_name = 'public.ps_member' ORDER BY (row ->> 'id')::int LIMIT 2;
SELECT count(*) AS tasks_changed FROM ps_task WHERE team_id IS NULL OR backup_team = 0;
SELECT batchguard.restore_backup(batchguard.last_backup_id()) - 'backup_id' AS restored;
SELECT pg_temp.ps_back() AS contents_back;

-- UPDATEs of the referencing columns by the application are not backed up
SELECT count(*) AS backups_before FROM ps_new_backups \gset
UPDATE ps_task SET team_id = NULL WHERE id = 2;
UPDATE ps_task SET team_id = 5, backup_team = 6 WHERE id = 3;
UPDATE ps_member SET team_id = NULL WHERE id = 4;
UPDATE ps_tag SET team_id = NULL WHERE tag = 'tag 5';
UPDATE ps_event SET team_id = NULL WHERE id = 6;
UPDATE ps_task SET title = 'renamed' WHERE id = 7;
UPDATE ps_task SET lead_id = NULL WHERE id = 8;
SELECT count(*) - :backups_before AS new_backups FROM ps_new_backups;
-- nor deletes of a table no protection covers (ps_free), whose key sets ps_task's free_id
DELETE FROM ps_free WHERE id = 3;
SELECT count(*) - :backups_before AS new_backups,
       (SELECT count(*) FROM ps_task WHERE free_id IS NULL) AS tasks_unset FROM ps_new_backups;

-- a row changed twice (two keys) and a row changed then deleted, in one transaction: one
-- line each, with the values from before the transaction
SELECT pg_temp.ps_save();
BEGIN;
DELETE FROM ps_team WHERE id = 2;
DELETE FROM ps_lead WHERE id = 7;      -- tasks 1, 13, 25, 37: team_id, then lead_id
DELETE FROM ps_task WHERE id = 13;     -- changed twice, now gone
UPDATE ps_task SET title = 'edited' WHERE id = 25;  -- changed, then edited: the edit stays
DELETE FROM ps_tag WHERE team_id IS NULL AND tag = 'tag 1';
COMMIT;
SELECT row ->> 'id' AS id, row ->> 'title' AS title, row ->> 'team_id' AS team_id, row ->> 'lead_id' AS lead_id
  FROM batchguard.backup_rows(batchguard.last_backup_id())
 WHERE table_name = 'public.ps_task' AND (row ->> 'id')::int IN (1, 13, 25) ORDER BY 1;
SELECT * FROM pg_temp.ps_lines(batchguard.last_backup_id());
SELECT batchguard.restore_backup(batchguard.last_backup_id()) ->> 'updated' AS updated;
UPDATE ps_task SET title = 'task 25' WHERE id = 25;
SELECT pg_temp.ps_back() AS contents_back;

-- a rolled-back savepoint: its changed rows are not in the backup, and a delete of an
-- earlier changed row that it rolled back leaves that row changed
SELECT pg_temp.ps_save();
BEGIN;
DELETE FROM ps_team WHERE id = 4;
SAVEPOINT s1;
DELETE FROM ps_team WHERE id = 5;
DELETE FROM ps_task WHERE id = 3;      -- changed by team 4's delete
ROLLBACK TO s1;
SAVEPOINT s2;
DELETE FROM ps_lead WHERE id = 11;
RELEASE s2;
COMMIT;
SELECT * FROM pg_temp.ps_lines(batchguard.last_backup_id());
SELECT (SELECT count(*) FROM ps_team WHERE id = 5) AS team_5_kept, (SELECT team_id FROM ps_task WHERE id = 3) AS task_3_team;
SELECT batchguard.restore_backup(batchguard.last_backup_id()) ->> 'updated' AS updated;
SELECT pg_temp.ps_back() AS contents_back;
-- a rolled-back transaction: no backup
SELECT count(*) AS backups_before FROM ps_new_backups \gset
BEGIN;
DELETE FROM ps_team WHERE id = 6;
ROLLBACK;
SELECT count(*) - :backups_before AS new_backups, (SELECT count(*) FROM ps_task WHERE team_id = 6) > 0 AS tasks_kept
  FROM ps_new_backups;

-- delete_with_backup and purge_with_backup on a protected table: one backup each, not two
SELECT pg_temp.ps_save();
SELECT count(*) AS backups_before FROM ps_new_backups \gset
SELECT r -> 'tables' AS tables FROM batchguard.delete_with_backup('ps_lead', '{7}') r;
SELECT count(*) - :backups_before AS new_backups FROM ps_new_backups;
SELECT batchguard.restore_backup(b.backup_id) ->> 'updated' AS updated
  FROM ps_new_backups b ORDER BY b.created_at DESC LIMIT 1;
CALL batchguard.purge_with_backup('ps-purge', 'ps_lead', ARRAY['8'], chunk_size => 1);
SELECT count(*) - :backups_before AS new_backups FROM ps_new_backups;
SELECT batchguard.restore_backup(b.backup_id) ->> 'updated' AS updated
  FROM ps_new_backups b ORDER BY b.created_at DESC LIMIT 1;
SELECT batchguard.cleanup_checkpoint('ps-purge');
SELECT pg_temp.ps_back() AS contents_back;

-- the deleting role must be able to read the rows a delete changes (foreign-key actions
-- bypass its privileges and row security): else the delete is refused
CREATE ROLE regress_ps_app;
GRANT SELECT, INSERT, DELETE ON ps_lead TO regress_ps_app;
GRANT INSERT, UPDATE ON ps_task TO regress_ps_app;
SET ROLE regress_ps_app;
SELECT pg_temp.error_of($$DELETE FROM ps_lead WHERE id = 10$$);
RESET ROLE;
GRANT SELECT ON ps_task TO regress_ps_app;
ALTER TABLE ps_task ENABLE ROW LEVEL SECURITY;
CREATE POLICY ps_all ON ps_task USING (true);
SET ROLE regress_ps_app;
SELECT pg_temp.error_of($$DELETE FROM ps_lead WHERE id = 10$$);
RESET ROLE;
ALTER TABLE ps_task DISABLE ROW LEVEL SECURITY;
DROP POLICY ps_all ON ps_task;
SELECT pg_temp.ps_save();
SET ROLE regress_ps_app;
DELETE FROM ps_lead WHERE id = 10;
SELECT owner, row_counts FROM batchguard.backups WHERE backup_id = batchguard.last_backup_id();
SELECT batchguard.restore_backup(batchguard.last_backup_id()) ->> 'updated' AS updated;
RESET ROLE;
SELECT pg_temp.ps_back() AS contents_back;

-- covered SET NULL children refuse TRUNCATE and the dropping of their triggers
SELECT pg_temp.error_of($$TRUNCATE ps_tag$$);
SELECT pg_temp.error_of($$DROP TRIGGER batchguard_protect_changes ON ps_task$$);

-- one DELETE that changes a row through one key (SET NULL from node 1) and then removes it
-- through another (CASCADE from node 2): the table's DELETE trigger fires before its UPDATE
-- trigger (PostgreSQL queues a statement event again after each action), and the row
-- still comes back with the values it had before
CREATE TABLE ps_node (id int PRIMARY KEY);
CREATE TABLE ps_edge (id int PRIMARY KEY, src int REFERENCES ps_node ON DELETE CASCADE,
                      dst int REFERENCES ps_node ON DELETE SET NULL);
INSERT INTO ps_node VALUES (1), (2);
INSERT INTO ps_edge VALUES (1, 2, 1), (2, NULL, 2), (3, 1, 2);
CREATE TEMP TABLE ps_edge_before AS SELECT * FROM ps_edge;
SELECT batchguard.protect_table('ps_node');
DELETE FROM ps_node;
SELECT table_name, row FROM batchguard.backup_rows(batchguard.last_backup_id())
 ORDER BY table_name, (row ->> 'id')::int;
SELECT batchguard.restore_backup(batchguard.last_backup_id()) - 'backup_id' - 'tables' AS restored;
SELECT NOT EXISTS (SELECT * FROM ps_edge_before EXCEPT SELECT * FROM ps_edge)
       AND (SELECT count(*) FROM ps_edge) = 3 AS edges_back;
SELECT batchguard.unprotect_table('ps_node');

-- a key that is ON UPDATE SET NULL too: a transaction that only updates a parent's key
-- makes no backup; one that deletes a parent backs up what the delete changed
CREATE TABLE ps_code (code text PRIMARY KEY);
CREATE TABLE ps_ref (id int PRIMARY KEY,
                     code text REFERENCES ps_code ON DELETE SET NULL ON UPDATE SET NULL);
INSERT INTO ps_code VALUES ('a'), ('b'), ('c');
INSERT INTO ps_ref VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'c');
SELECT batchguard.protect_table('ps_code');
SELECT count(*) AS backups_before FROM ps_new_backups \gset
UPDATE ps_code SET code = 'a2' WHERE code = 'a';
SELECT count(*) - :backups_before AS new_backups, (SELECT code FROM ps_ref WHERE id = 1) AS ref_1
  FROM ps_new_backups;
DELETE FROM ps_code WHERE code = 'c';
SELECT * FROM pg_temp.ps_lines(batchguard.last_backup_id());
SELECT batchguard.restore_backup(batchguard.last_backup_id()) ->> 'updated' AS updated;
SELECT string_agg(id || '=' || coalesce(code, 'NULL'), ' ' ORDER BY id) AS refs FROM ps_ref;
SELECT batchguard.unprotect_table('ps_code');

-- a SET NULL key added after protect_table: protect_table again covers it
CREATE TABLE ps_late (id int PRIMARY KEY, lead_id int REFERENCES ps_lead ON DELETE SET NULL);
INSERT INTO ps_late SELECT id, id FROM ps_lead;
DELETE FROM ps_lead WHERE id = 12;
SELECT count(*) AS late_rows_in_backup FROM batchguard.backup_rows(batchguard.last_backup_id())
 WHERE table_name = 'public.ps_late';
SELECT batchguard.protect_table('ps_lead');
SELECT covered_tables FROM batchguard.protected_tables WHERE table_name = 'ps_lead'::regclass;
DELETE FROM ps_lead WHERE id = 3;
SELECT * FROM pg_temp.ps_lines(batchguard.last_backup_id());

-- unprotect: the UPDATE triggers go with the others
SELECT batchguard.unprotect_table('ps_team'), batchguard.unprotect_table('ps_lead');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'batchguard%';
SELECT count(*) AS backups_before FROM ps_new_backups \gset
DELETE FROM ps_team WHERE id = 7;
SELECT count(*) - :backups_before AS new_backups FROM ps_new_backups;

-- clean up
CREATE TEMP TABLE ps_backups AS SELECT backup_id FROM ps_new_backups;
WITH gone AS (DELETE FROM batchguard.audit WHERE backup_id IN (SELECT backup_id FROM ps_backups) RETURNING 1)
SELECT count(*) > 0 AS audit_rows_deleted FROM gone;
DELETE FROM batchguard.backups WHERE backup_id IN (SELECT backup_id FROM ps_backups);
DROP TABLE ps_edge, ps_node, ps_ref, ps_code, ps_late, ps_event, ps_tag, ps_member, ps_tenant_team, ps_task, ps_free, ps_lead, ps_team;
DELETE FROM batchguard.owner_roles WHERE role_name = 'regress_ps_app';
DROP ROLE regress_ps_app;
