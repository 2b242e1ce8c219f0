-- Backups: export_backup, the file's contents, backup_rows, read_backup, the lifecycle
-- functions and every error path, with file storage (its files are checked on disk; the
-- same functions over in-database storage: backup_storage). Type round trips live in
-- backup_types; the storage limits in backup_quota. Other suites export at the same time:
-- this one counts its own backups (from its bg_ tables) and its own transactions' files only.
\i test/helpers.sql
SET client_min_messages = warning;
SET batchguard.backup_storage = 'file';

CREATE TABLE bg_parent (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE bg_child (id int PRIMARY KEY, parent_id bigint REFERENCES bg_parent ON DELETE CASCADE,
                       note text);
CREATE TABLE bg_grandchild (id int PRIMARY KEY, child_id int NOT NULL REFERENCES bg_child, x text);
CREATE TABLE bg_tree (id int PRIMARY KEY, up int REFERENCES bg_tree, parent_id bigint REFERENCES bg_parent);
INSERT INTO bg_parent SELECT g, 'parent ' || g FROM generate_series(1, 5) g;
INSERT INTO bg_child SELECT g, g / 10, 'child ' || g FROM generate_series(10, 59) g;
INSERT INTO bg_grandchild SELECT g, g / 10, 'grandchild ' || g FROM generate_series(100, 599) g;
-- a tree hanging off parent 1 (1 <- 2 <- 3), a cycle in the data (4 <-> 5) off parent 2,
-- and a tree nobody exported references (6 <- 7)
INSERT INTO bg_tree VALUES (1, NULL, 1), (2, 1, NULL), (3, 2, NULL), (4, NULL, 2), (5, 4, NULL),
                           (6, NULL, NULL), (7, 6, NULL);
UPDATE bg_tree SET up = 5 WHERE id = 4;

-- The path of a backup's file, relative to the data directory (for pg_stat_file).
CREATE FUNCTION pg_temp.file_of(b batchguard.backups) RETURNS text LANGUAGE sql AS $$
    SELECT 'pg_batchguard/' || d.oid || '/' || b.backup_id || '-' || b.creating_xid || '.jsonl.zst'
      FROM pg_database d WHERE d.datname = current_database()
$$;
CREATE FUNCTION pg_temp.file_exists(path text) RETURNS boolean LANGUAGE sql AS $$
    SELECT (pg_stat_file(path, true)).size IS NOT NULL
$$;

-- Two parents, two levels of children, and the self-referencing tree.
SELECT * FROM batchguard.export_backup('bg_parent', '{1,2}', label => 'two parents') \gset b_
SELECT :'b_label' AS label, :'b_source_table' AS source, :'b_tables' AS tables,
       :'b_row_counts' AS row_counts, :b_total_rows AS total_rows, :'b_status' AS status,
       :'b_include_children' AS include_children, :b_format_version AS format_version;
SELECT b.owner = current_user AS owned, b.compressed_bytes > 0 AS has_bytes,
       b.uncompressed_bytes > b.compressed_bytes AS compressed,
       b.file_sha256 ~ '^[0-9a-f]{64}$' AS file_sha256, b.body_sha256 ~ '^[0-9a-f]{64}$' AS body_sha256,
       b.expires_at - b.created_at = interval '7 days' AS default_retention,
       b.creating_xid::text::bigint > 0 AS has_xid, NOT b.legal_hold AS not_held,
       pg_temp.file_exists(pg_temp.file_of(b)) AS file_exists,
       (pg_stat_file(pg_temp.file_of(b))).size = b.compressed_bytes AS size_matches
  FROM batchguard.backups b WHERE b.backup_id = :'b_backup_id';

-- Every row once, each after its parent: table, key and parent reference.
SELECT n, table_name, coalesce("row"->>'id', '?') AS id, parent_table, parent_key
  FROM batchguard.backup_rows(:'b_backup_id') WITH ORDINALITY AS r(table_name, "row", parent_table, parent_key, n)
 WHERE table_name <> 'public.bg_grandchild' OR "row"->>'id' IN ('100', '101', '299')
 ORDER BY n;
SELECT table_name, count(*) FROM batchguard.backup_rows(:'b_backup_id') GROUP BY 1 ORDER BY 1;
-- parents come before their children
SELECT bool_and(p.n < c.n) AS parents_first
  FROM batchguard.backup_rows(:'b_backup_id') WITH ORDINALITY c(t, r, pt, pk, n)
  JOIN batchguard.backup_rows(:'b_backup_id') WITH ORDINALITY p(t, r, pt, pk, n)
    ON p.t = c.pt AND c.pt <> c.t
   AND p.r->>(CASE c.t WHEN 'public.bg_grandchild' THEN 'id' ELSE 'id' END) = c.pk;

-- The whole file, verified, and chunks of it that add up to the same bytes.
SELECT length(batchguard.read_backup(:'b_backup_id')) = :b_compressed_bytes AS whole,
       sha256(batchguard.read_backup(:'b_backup_id')) = decode(:'b_file_sha256', 'hex') AS sha_matches,
       batchguard.read_backup(:'b_backup_id', 0, 100) || batchguard.read_backup(:'b_backup_id', 100)
           = batchguard.read_backup(:'b_backup_id') AS chunks_add_up,
       length(batchguard.read_backup(:'b_backup_id', :b_compressed_bytes)) AS at_end,
       length(batchguard.read_backup(:'b_backup_id', 5, 0)) AS empty_chunk,
       length(batchguard.read_backup(:'b_backup_id', 0, 1000000000)) = :b_compressed_bytes AS long_length;
-- downloads are audited
SELECT action, detail - 'bytes' - 'length' AS detail FROM batchguard.audit
 WHERE backup_id = :'b_backup_id' ORDER BY audit_id LIMIT 3;

-- LIMIT stops the scan early (in FROM and in the select list) and releases the file.
SELECT count(*) FROM (SELECT * FROM batchguard.backup_rows(:'b_backup_id') LIMIT 3) x;
SELECT (batchguard.backup_rows(:'b_backup_id')).table_name LIMIT 2;

-- get_backup, get_user_backups
SELECT (batchguard.get_backup(:'b_backup_id')).label;
SELECT batchguard.get_backup('00000000-0000-0000-0000-000000000000') IS NULL AS unknown_is_null;
SELECT count(*) AS mine FROM batchguard.get_user_backups() WHERE source_table LIKE 'public.bg\_%';

-- Without children; all rows (ids NULL); an empty id list.
SELECT total_rows, tables, row_counts FROM batchguard.export_backup('bg_parent', '{3}', false);
SELECT total_rows, row_counts FROM batchguard.export_backup('bg_parent');
SELECT total_rows, row_counts FROM batchguard.export_backup('bg_parent', '{}');
SELECT total_rows, row_counts FROM batchguard.export_backup('bg_parent', '{42}');
-- a child table as the source; retention and label
SELECT total_rows, row_counts, expires_at - created_at AS retention, label
  FROM batchguard.export_backup('bg_child', ARRAY['10'], retention => '1 day', label => 'one child');
-- the tree as source: 6 and its subtree
SELECT total_rows, row_counts FROM batchguard.export_backup('bg_tree', '{6}');

-- Composite foreign keys: the parent key is a JSON array of the referenced values.
CREATE TABLE bg_account (id int PRIMARY KEY, region text NOT NULL, code int NOT NULL, UNIQUE (region, code));
CREATE TABLE bg_invoice (id int PRIMARY KEY, region text, code int,
                         FOREIGN KEY (region, code) REFERENCES bg_account (region, code));
INSERT INTO bg_account VALUES (1, 'eu', 7), (2, 'us', 7);
INSERT INTO bg_invoice VALUES (1, 'eu', 7), (2, 'us', 7), (3, NULL, 7);
SELECT backup_id AS composite FROM batchguard.export_backup('bg_account', '{1}') \gset
SELECT table_name, "row"->>'id' AS id, parent_table, parent_key FROM batchguard.backup_rows(:'composite');

-- Identifiers that need quoting, and a text primary key.
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Parent Table" ("Key" text PRIMARY KEY, "select" int);
CREATE TABLE "Odd Schema"."child""s" (id int PRIMARY KEY, "Parent Key" text REFERENCES "Odd Schema"."Parent Table");
INSERT INTO "Odd Schema"."Parent Table" VALUES ('a b', 1), ('c"d', 2), ('e', 3);
INSERT INTO "Odd Schema"."child""s" VALUES (1, 'a b'), (2, 'c"d'), (3, 'e');
SELECT backup_id AS odd, tables FROM batchguard.export_backup('"Odd Schema"."Parent Table"', ARRAY['a b', 'c"d']) \gset
SELECT :'tables' AS tables;
SELECT table_name, "row", parent_table, parent_key FROM batchguard.backup_rows(:'odd');

-- A cycle through two tables ends (the foreign key that closes it is not followed).
CREATE TABLE bg_a (id int PRIMARY KEY, b_id int);
CREATE TABLE bg_b (id int PRIMARY KEY, a_id int REFERENCES bg_a);
ALTER TABLE bg_a ADD FOREIGN KEY (b_id) REFERENCES bg_b;
INSERT INTO bg_a VALUES (1, NULL), (2, NULL);
INSERT INTO bg_b VALUES (10, 1), (20, 2);
UPDATE bg_a SET b_id = 10 WHERE id = 2;
SELECT tables, row_counts FROM batchguard.export_backup('bg_a', '{1}');

-- Partitioned tables: as the source, and as a child.
CREATE TABLE bg_event (id bigint PRIMARY KEY, kind text) PARTITION BY RANGE (id);
CREATE TABLE bg_event_low PARTITION OF bg_event FOR VALUES FROM (0) TO (100);
CREATE TABLE bg_event_high PARTITION OF bg_event FOR VALUES FROM (100) TO (1000);
CREATE TABLE bg_event_note (id int PRIMARY KEY, event_id bigint REFERENCES bg_event, note text)
    PARTITION BY HASH (id);
CREATE TABLE bg_event_note_0 PARTITION OF bg_event_note FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE bg_event_note_1 PARTITION OF bg_event_note FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO bg_event VALUES (1, 'low'), (150, 'high'), (151, 'high');
INSERT INTO bg_event_note SELECT g, CASE WHEN g % 2 = 0 THEN 1 ELSE 150 END, 'n' FROM generate_series(1, 6) g;
SELECT tables, row_counts FROM batchguard.export_backup('bg_event', '{1,150}');
-- a partition as the source finds the foreign keys to its partitioned table
SELECT tables, row_counts FROM batchguard.export_backup('bg_event_high', '{150,151}');

-- No single-column primary key: fine for all rows, an error with ids.
CREATE TABLE bg_log (at int, msg text);
INSERT INTO bg_log VALUES (1, 'x');
SELECT total_rows FROM batchguard.export_backup('bg_log');

-- Errors of export_backup: each leaves no row and no file behind (they run in one
-- transaction, whose id names any file an export in it writes).
BEGIN;
SELECT pg_current_xact_id() AS errors_xid \gset
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_log', '{1}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.export_backup(NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_parent', '{1}', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_parent', '{1,NULL}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_parent', '{abc}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_parent', '{{1},{2}}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_parent', retention => '0')$$);
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_parent', retention => '-1 day')$$);
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_parent', retention => '2 years')$$);
CREATE VIEW bg_view AS SELECT * FROM bg_parent;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_view')$$);
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('no_such_table')$$);
-- an error after the export, in the same statement
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_parent', '{2}'), 1/0$$);
SELECT count(*) AS rows_of_this_transaction FROM batchguard.backups WHERE creating_xid = :'errors_xid';
SELECT pg_temp.files_named_after(:'errors_xid') AS files_of_this_transaction;
COMMIT;
BEGIN READ ONLY;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('bg_parent', '{1}')$$);
ROLLBACK;

-- Transactions: a rolled-back export leaves no file; so does a rolled-back savepoint.
BEGIN;
SELECT pg_temp.file_of(b) AS rolled_back FROM batchguard.export_backup('bg_parent', '{1}') b \gset
SELECT pg_temp.file_exists(:'rolled_back') AS exists_inside;
ROLLBACK;
SELECT pg_temp.file_exists(:'rolled_back') AS exists_after_rollback;
BEGIN;
SAVEPOINT s;
SELECT pg_temp.file_of(b) AS in_savepoint FROM batchguard.export_backup('bg_parent', '{1}') b \gset
ROLLBACK TO SAVEPOINT s;
SELECT pg_temp.file_exists(:'in_savepoint') AS exists_after_rollback_to_savepoint;
SAVEPOINT t;
SELECT pg_temp.file_of(b) AS released FROM batchguard.export_backup('bg_parent', '{1}') b \gset
RELEASE SAVEPOINT t;
COMMIT;
SELECT pg_temp.file_exists(:'released') AS released_savepoint_kept;
-- PREPARE TRANSACTION is refused while an export is pending (0A000): the transaction
-- rolls back, with its file
BEGIN;
SELECT pg_current_xact_id() AS prepared_xid \gset
SELECT label FROM batchguard.export_backup('bg_parent', '{1}', label => 'prepared');
PREPARE TRANSACTION 'bg_export';
SELECT :'SQLSTATE' AS prepare_sqlstate;
SELECT count(*) AS prepared_label FROM batchguard.backups WHERE label = 'prepared';
SELECT count(*) AS no_prepared_xact FROM pg_prepared_xacts WHERE gid = 'bg_export';
SELECT pg_temp.files_named_after(:'prepared_xid') AS prepared_files;

-- Session settings do not change what is written, and are restored afterwards.
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Pacific/Chatham';
SET extra_float_digits = -10;
SET bytea_output = 'escape';
SET IntervalStyle = 'sql_standard';
CREATE TABLE bg_settings (id int PRIMARY KEY, ts timestamptz, d date, f float8, b bytea, i interval);
INSERT INTO bg_settings VALUES (1, '2024-03-04 05:06:07.25+00', '2024-03-04', 0.1 + 0.2, '\x00ff10', '1 day 2 hours');
SELECT backup_id AS settings FROM batchguard.export_backup('bg_settings') \gset
SHOW DateStyle;
SHOW TimeZone;
SHOW extra_float_digits;
SHOW bytea_output;
SHOW IntervalStyle;
SELECT "row" FROM batchguard.backup_rows(:'settings');
RESET DateStyle; RESET TimeZone; RESET extra_float_digits; RESET bytea_output; RESET IntervalStyle;

-- read_backup and backup_rows errors.
SELECT pg_temp.error_of($$SELECT batchguard.read_backup('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.error_of($$SELECT batchguard.read_backup(NULL)$$);
SELECT pg_temp.error_of(format('SELECT batchguard.read_backup(%L, NULL)', :'b_backup_id'));
SELECT pg_temp.error_of(format('SELECT batchguard.read_backup(%L, -1)', :'b_backup_id'));
SELECT pg_temp.error_of(format('SELECT batchguard.read_backup(%L, 0, -1)', :'b_backup_id'));
SELECT pg_temp.error_of(format('SELECT batchguard.read_backup(%L, 100000)', :'b_backup_id'));
SELECT pg_temp.error_of($$SELECT * FROM batchguard.backup_rows('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.error_of($$SELECT * FROM batchguard.backup_rows(NULL)$$);
-- expired (a superuser moves the expiry into the past)
SELECT backup_id AS expiring FROM batchguard.export_backup('bg_parent', '{3}', label => 'expiring') \gset
UPDATE batchguard.backups SET expires_at = now() - interval '1 second' WHERE backup_id = :'expiring';
SELECT replace(pg_temp.error_of(format('SELECT batchguard.read_backup(%L)', :'expiring')), :'expiring', 'ID');
SELECT replace(pg_temp.error_of(format('SELECT * FROM batchguard.backup_rows(%L)', :'expiring')), :'expiring', 'ID');
SELECT (batchguard.get_backup(:'expiring')).status;
-- a legal hold keeps an expired backup readable
SELECT legal_hold, status FROM batchguard.hold_backup(:'expiring');
SELECT length(batchguard.read_backup(:'expiring')) > 0 AS readable_on_hold;
SELECT legal_hold, status FROM batchguard.hold_backup(:'expiring', false);
-- missing file (the row points at a file that is not there)
SELECT backup_id AS missing, creating_xid AS missing_xid
  FROM batchguard.export_backup('bg_parent', '{3}', label => 'missing') \gset
UPDATE batchguard.backups SET creating_xid = '1' WHERE backup_id = :'missing';
SELECT replace(pg_temp.error_of(format('SELECT batchguard.read_backup(%L)', :'missing')), :'missing', 'ID');
SELECT replace(pg_temp.error_of(format('SELECT * FROM batchguard.backup_rows(%L)', :'missing')), :'missing', 'ID');
SELECT (batchguard.get_backup(:'missing')).status;
SELECT status FROM batchguard.get_user_backups() WHERE backup_id = :'missing';
-- checksum mismatch (the recorded SHA-256 no longer matches the file)
SELECT backup_id AS tampered FROM batchguard.export_backup('bg_parent', '{3}', label => 'tampered') \gset
UPDATE batchguard.backups SET file_sha256 = repeat('0', 64) WHERE backup_id = :'tampered';
SELECT replace(pg_temp.error_of(format('SELECT batchguard.read_backup(%L)', :'tampered')), :'tampered', 'ID');
SELECT replace(pg_temp.error_of(format('SELECT count(*) FROM batchguard.backup_rows(%L)', :'tampered')), :'tampered', 'ID');
-- a chunk comes as stored, unverified
SELECT length(batchguard.read_backup(:'tampered', 0, 10)) AS chunk_unverified;

-- delete_backup, extend_backup, hold_backup
SELECT pg_temp.error_of($$SELECT batchguard.delete_backup(NULL)$$);
SELECT batchguard.delete_backup('00000000-0000-0000-0000-000000000000') AS unknown_delete;
SELECT backup_id AS kept, pg_temp.file_of(b) AS kept_file FROM batchguard.export_backup('bg_parent', '{4}', label => 'kept') b \gset
SELECT pg_temp.error_of($$SELECT batchguard.extend_backup('00000000-0000-0000-0000-000000000000', now() + interval '1 day')$$);
SELECT pg_temp.error_of(format('SELECT batchguard.extend_backup(%L, NULL)', :'kept'));
SELECT pg_temp.error_of(format('SELECT batchguard.extend_backup(%L, now() - interval ''1 day'')', :'kept'));
SELECT pg_temp.error_of(format('SELECT batchguard.extend_backup(%L, now() + interval ''1 day'')', :'kept'));
SELECT pg_temp.error_of(format('SELECT batchguard.extend_backup(%L, now() + interval ''400 days'')', :'kept'));
SELECT expires_at > created_at + interval '29 days' AS extended
  FROM batchguard.extend_backup(:'kept', now() + interval '30 days');
SELECT replace(pg_temp.error_of(format('SELECT batchguard.extend_backup(%L, now() + interval ''1 day'')', :'expiring')), :'expiring', 'ID');
SELECT pg_temp.error_of($$SELECT batchguard.hold_backup('00000000-0000-0000-0000-000000000000')$$);
SELECT pg_temp.error_of(format('SELECT batchguard.hold_backup(%L, NULL)', :'kept'));
SELECT legal_hold FROM batchguard.hold_backup(:'kept');
SELECT replace(pg_temp.error_of(format('SELECT batchguard.delete_backup(%L)', :'kept')), :'kept', 'ID');
SELECT legal_hold FROM batchguard.hold_backup(:'kept', false);
BEGIN;
SELECT batchguard.delete_backup(:'kept') AS deleted;
SELECT pg_temp.file_exists(:'kept_file') AS file_kept_until_commit;
ROLLBACK;
SELECT pg_temp.file_exists(:'kept_file') AS file_kept_after_rollback;
SELECT batchguard.delete_backup(:'kept') AS deleted;
SELECT pg_temp.file_exists(:'kept_file') AS file_after_commit;
SELECT batchguard.get_backup(:'kept') IS NULL AS gone;
SELECT batchguard.delete_backup(:'kept') AS deleted_twice;
SELECT action, count(*) FROM batchguard.audit WHERE backup_id = :'kept' GROUP BY 1 ORDER BY 1;

-- PREPARE TRANSACTION is refused after delete_backup too (0A000): the backup stays
SELECT backup_id AS prepared_delete FROM batchguard.export_backup('bg_parent', '{4}', label => 'prepared delete') \gset
BEGIN;
SELECT batchguard.delete_backup(:'prepared_delete') AS deleted;
PREPARE TRANSACTION 'bg_delete';
SELECT :'SQLSTATE' AS prepare_sqlstate;
SELECT (batchguard.get_backup(:'prepared_delete')).status AS still_there;

-- Two calls in one statement: each returned row outlives the other call (a row is built in
-- the caller's memory context, not in SPI's, which every call frees when it ends).
SELECT backup_id AS twice FROM batchguard.export_backup('bg_parent', '{4}', label => 'twice') \gset
SELECT (a).backup_id = :'twice' AS first_intact, (a).legal_hold AS first_held,
       (b).backup_id = :'twice' AS second_intact, (b).legal_hold AS second_held
  FROM (SELECT batchguard.hold_backup(:'twice') a, batchguard.hold_backup(:'twice', false) b OFFSET 0) x;
SELECT (a).label AS first, (b).label AS second, (c).label AS third
  FROM (SELECT batchguard.get_backup(:'twice') a,
               batchguard.extend_backup(:'twice', now() + interval '9 days') b,
               batchguard.get_backup(:'twice') c OFFSET 0) x;

-- every error of a backup function names the backup in its context
SELECT backup_id AS held FROM batchguard.export_backup('bg_parent', '{5}', label => 'held') \gset
SELECT legal_hold FROM batchguard.hold_backup(:'held');
SELECT call, replace(replace(pg_temp.context_of(format(call, id)), :'missing', 'ID'), :'held', 'ID') AS error_and_context
  FROM (VALUES ('SELECT batchguard.read_backup(%L)', :'missing'),
               ('SELECT batchguard.read_backup(%L, 0, 10)', :'missing'),
               ('SELECT batchguard.read_backup(%L, -1)', :'held'),
               ('SELECT count(*) FROM batchguard.backup_rows(%L)', :'missing'),
               ('SELECT batchguard.restore_backup(%L)', :'missing'),
               ('SELECT batchguard.restore_backup(%L, ''merge'')', :'held'),
               ('SELECT batchguard.extend_backup(%L, now() - interval ''1 day'')', :'held'),
               ('SELECT batchguard.extend_backup(%L, NULL)', :'held'),
               ('SELECT batchguard.hold_backup(%L, NULL)', :'held'),
               ('SELECT batchguard.delete_backup(%L)', :'held')) AS t(call, id);
SELECT legal_hold FROM batchguard.hold_backup(:'held', false);

-- clean up: this suite's backups (the row now, the file at commit) and their audit rows
CREATE TEMP TABLE suite_backups AS
    SELECT backup_id FROM batchguard.backups
     WHERE source_table LIKE 'public.bg\_%' OR source_table LIKE '"Odd Schema".%';
UPDATE batchguard.backups SET legal_hold = false WHERE backup_id IN (SELECT backup_id FROM suite_backups);
UPDATE batchguard.backups SET creating_xid = :'missing_xid' WHERE backup_id = :'missing';
SELECT count(*) FILTER (WHERE batchguard.delete_backup(backup_id)) AS deleted FROM suite_backups;
DELETE FROM batchguard.audit WHERE backup_id IN (SELECT backup_id FROM suite_backups UNION SELECT :'kept');
DROP VIEW bg_view;
DROP TABLE bg_grandchild, bg_child, bg_tree, bg_parent, bg_invoice, bg_account, bg_a, bg_b,
           bg_event_note, bg_event, bg_log, bg_settings CASCADE;
DROP SCHEMA "Odd Schema" CASCADE;
