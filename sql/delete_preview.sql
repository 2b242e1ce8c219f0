-- delete_preview: what a plain DELETE would remove, change or be blocked by; and the
-- argument errors of delete_preview and delete_with_backup.
\i test/helpers.sql
SET client_min_messages = warning;
-- Other suites back up at the same time: this one counts its own backups (of its dp_ tables).
CREATE FUNCTION pg_temp.suite_backups() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM batchguard.backups WHERE source_table LIKE 'public.dp\_%'
$$;

CREATE TABLE dp_parent (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE dp_child (id int PRIMARY KEY, parent_id bigint REFERENCES dp_parent ON DELETE CASCADE,
                       note text);
CREATE TABLE dp_grandchild (id int PRIMARY KEY,
                            child_id int NOT NULL REFERENCES dp_child ON DELETE CASCADE);
CREATE TABLE dp_nulled (id int PRIMARY KEY, parent_id bigint REFERENCES dp_parent ON DELETE SET NULL);
CREATE TABLE dp_defaulted (id int PRIMARY KEY,
                           parent_id bigint DEFAULT 1 REFERENCES dp_parent ON DELETE SET DEFAULT);
CREATE TABLE dp_restricted (id int PRIMARY KEY, parent_id bigint REFERENCES dp_parent ON DELETE RESTRICT);
CREATE TABLE dp_noaction (id int PRIMARY KEY, child_id int REFERENCES dp_child);
-- rows referencing a SET NULL row are not touched by the delete
CREATE TABLE dp_under_nulled (id int PRIMARY KEY, nulled_id int REFERENCES dp_nulled ON DELETE CASCADE);
INSERT INTO dp_parent SELECT g, 'parent ' || g FROM generate_series(1, 6) g;
INSERT INTO dp_child SELECT g, g / 10, 'child ' || g FROM generate_series(10, 69) g;
INSERT INTO dp_grandchild SELECT g, g / 10 FROM generate_series(100, 699) g;
INSERT INTO dp_nulled VALUES (1, 1), (2, 2), (3, 3), (4, NULL);
INSERT INTO dp_under_nulled VALUES (1, 1), (2, 2);
INSERT INTO dp_defaulted VALUES (1, 2), (2, 3);
INSERT INTO dp_restricted VALUES (1, 4);
INSERT INTO dp_noaction VALUES (1, 55);

-- cascade two levels, set null, set default: nothing blocks
SELECT table_name, action, rows, estimated_bytes > 0 AS has_bytes
  FROM batchguard.delete_preview('dp_parent', '{2,3}') ORDER BY table_name;
-- restrict (parent 4) and no action (a grandchild of parent 5)
SELECT table_name, action, rows FROM batchguard.delete_preview('dp_parent', '{4}') ORDER BY table_name;
SELECT table_name, action, rows FROM batchguard.delete_preview('dp_parent', '{5}') ORDER BY table_name;
-- ids that match nothing: the source with 0 rows
SELECT table_name, action, rows, estimated_bytes FROM batchguard.delete_preview('dp_parent', '{999}')
 ORDER BY table_name;
-- the preview agrees with what the delete does, and it changed nothing
SELECT (SELECT count(*) FROM dp_parent) AS parents, (SELECT count(*) FROM dp_child) AS children,
       (SELECT count(*) FROM dp_nulled WHERE parent_id IS NULL) AS nulled;
BEGIN;
SELECT jsonb_pretty(r - 'backup') FROM batchguard.delete_with_backup('dp_parent', '{2,3}') r;
SELECT (SELECT count(*) FROM dp_parent) AS parents, (SELECT count(*) FROM dp_child) AS children,
       (SELECT count(*) FROM dp_grandchild) AS grandchildren,
       (SELECT count(*) FROM dp_nulled WHERE parent_id IS NULL) AS nulled,
       (SELECT count(*) FROM dp_under_nulled) AS under_nulled,
       (SELECT array_agg(parent_id ORDER BY id) FROM dp_defaulted) AS defaulted;
ROLLBACK;
-- a blocked delete: the backup rolls back with it
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_parent', '{4}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_parent', '{5}')$$);
SELECT pg_temp.suite_backups() AS new_backups;
SELECT count(*) AS parents FROM dp_parent;

-- the delete removes other rows than were locked and backed up (here the caller's own
-- trigger keeps one): 55000, nothing deleted, no backup kept
CREATE TABLE dp_skip (id int PRIMARY KEY);
INSERT INTO dp_skip VALUES (1), (2);
CREATE FUNCTION dp_keep_two() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN CASE WHEN OLD.id = 2 THEN NULL ELSE OLD END;
END
$$;
CREATE TRIGGER keep_two BEFORE DELETE ON dp_skip FOR EACH ROW EXECUTE FUNCTION dp_keep_two();
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_skip', '{1,2}')$$);
SELECT array_agg(id ORDER BY id) AS rows_kept FROM dp_skip;
SELECT pg_temp.suite_backups() AS new_backups;
DROP TABLE dp_skip;
DROP FUNCTION dp_keep_two();

-- a cascading tree in the source itself, and a partitioned source: delete and restore
CREATE TABLE dp_tree (id int PRIMARY KEY, up int REFERENCES dp_tree ON DELETE CASCADE, v text);
INSERT INTO dp_tree VALUES (1, NULL, 'a'), (2, 1, 'b'), (3, 2, 'c'), (4, NULL, 'd'), (5, 4, 'e');
SELECT * FROM batchguard.delete_preview('dp_tree', '{1}');
SELECT r - 'backup' AS result, r -> 'backup' ->> 'backup_id' AS tree_backup
  FROM batchguard.delete_with_backup('dp_tree', '{1}') r \gset
SELECT :'result' AS result, (SELECT array_agg(id ORDER BY id) FROM dp_tree) AS left_in_tree;
SELECT batchguard.restore_backup(:'tree_backup') -> 'inserted' AS inserted;
SELECT array_agg(id || ':' || coalesce(up::text, '-') ORDER BY id) AS tree FROM dp_tree;
CREATE TABLE dp_part (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE dp_part1 PARTITION OF dp_part FOR VALUES FROM (0) TO (100);
CREATE TABLE dp_part2 PARTITION OF dp_part FOR VALUES FROM (100) TO (200);
CREATE TABLE dp_part_child (id int PRIMARY KEY, part_id int REFERENCES dp_part ON DELETE CASCADE);
INSERT INTO dp_part VALUES (1, 'x'), (150, 'y'), (151, 'z');
INSERT INTO dp_part_child VALUES (1, 1), (2, 150), (3, 151);
SELECT r - 'backup' AS result, r -> 'backup' ->> 'backup_id' AS part_backup
  FROM batchguard.delete_with_backup('dp_part', '{1,150}') r \gset
SELECT :'result' AS result, (SELECT array_agg(id ORDER BY id) FROM dp_part) AS left_in_part;
SELECT batchguard.restore_backup(:'part_backup') -> 'inserted' AS inserted;
SELECT (SELECT array_agg(tableoid::regclass || ':' || id ORDER BY id) FROM dp_part) AS parts,
       (SELECT array_agg(id ORDER BY id) FROM dp_part_child) AS children;
DROP TABLE dp_tree, dp_part_child, dp_part;

-- argument errors
SELECT pg_temp.error_of($$SELECT * FROM batchguard.delete_preview(NULL, '{1}')$$);
SELECT pg_temp.error_of($$SELECT * FROM batchguard.delete_preview('dp_parent', NULL)$$);
SELECT pg_temp.error_of($$SELECT * FROM batchguard.delete_preview('dp_parent', '{}')$$);
SELECT pg_temp.error_of($$SELECT * FROM batchguard.delete_preview('dp_parent', '{abc}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup(NULL, '{1}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_parent', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_parent', '{}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_parent', '{1}', retention => '-1 day')$$);
CREATE TABLE dp_nokey (a int, b int);
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_nokey', '{1}')$$);
CREATE VIEW dp_view AS SELECT * FROM dp_parent;
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_view', '{1}')$$);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_parent', '{1}')$$);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_parent', '{1}')$$);
ROLLBACK;
BEGIN READ ONLY;
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('dp_parent', '{1}')$$);
ROLLBACK;
-- (two backups: the tree and the partitioned table above)
SELECT count(*) AS parents, pg_temp.suite_backups() AS new_backups FROM dp_parent;

DROP TABLE dp_under_nulled, dp_noaction, dp_restricted, dp_defaulted, dp_nulled, dp_grandchild,
           dp_child, dp_nokey;
DROP VIEW dp_view;
DROP TABLE dp_parent;
-- clean up: this suite's backups (the row now, the file at commit) and their audit rows
CREATE TEMP TABLE suite_backups AS
    SELECT backup_id FROM batchguard.backups WHERE source_table LIKE 'public.dp\_%';
SELECT count(*) FILTER (WHERE batchguard.delete_backup(backup_id)) AS deleted FROM suite_backups;
DELETE FROM batchguard.audit WHERE backup_id IN (SELECT backup_id FROM suite_backups);
