-- Bad inputs to the backup functions: NULLs, relations that are not plain tables with a
-- primary key, ids that do not fit the key, retention out of range, offsets and lengths
-- out of range, expired backups, and another owner's backup ids on every function (each
-- exactly like a backup nobody has, changing nothing of the owner's). Every call must
-- fail with a clear SQLSTATE and message, from the check its label names, or succeed
-- harmlessly, and leave nothing behind once its transaction ended (test/bad_input.sql says
-- how that is checked). The counts at the end say how many were tried, and how many
-- PostgreSQL refused before any function of ours ran.
\i test/helpers.sql
\i test/bad_input.sql
SET client_min_messages = warning;
-- File storage: a file is what PostgreSQL does not undo when a call fails (in-database
-- chunks are rows of the failed transaction).
SET batchguard.backup_storage = 'file';

CREATE ROLE regress_badb_alice;
CREATE ROLE regress_badb_bob;
INSERT INTO bad_input_scope VALUES ('regress\_badb\_%');
CREATE TABLE bi_doc (id int PRIMARY KEY, body text);
CREATE TABLE bi_note (id int PRIMARY KEY, doc_id int REFERENCES bi_doc ON DELETE CASCADE);
CREATE TABLE bi_nopk (id int, body text);
CREATE TABLE bi_pair (a int, b text, PRIMARY KEY (a, b));
CREATE TABLE bi_uuid (id uuid PRIMARY KEY);
CREATE TABLE bi_parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE bi_parted_1 PARTITION OF bi_parted FOR VALUES FROM (0) TO (100);
CREATE VIEW bi_view AS SELECT * FROM bi_doc;
CREATE MATERIALIZED VIEW bi_matview AS SELECT * FROM bi_doc;
CREATE SEQUENCE bi_seq;
CREATE TYPE bi_type AS (x int);
CREATE FOREIGN DATA WRAPPER bi_dummy_fdw;
CREATE SERVER bi_dummy_server FOREIGN DATA WRAPPER bi_dummy_fdw;
CREATE FOREIGN TABLE bi_foreign (id int) SERVER bi_dummy_server;
CREATE TABLE "bi; DROP TABLE bi_doc; --" (id int PRIMARY KEY);
-- bob may read, lock and delete bi_owned's rows; bi_nodelete's he may read and lock only
CREATE TABLE bi_owned (id int PRIMARY KEY);
CREATE TABLE bi_nodelete (id int PRIMARY KEY);
INSERT INTO bi_owned SELECT generate_series(1, 5);
INSERT INTO bi_nodelete SELECT generate_series(1, 5);
GRANT SELECT, UPDATE, DELETE ON bi_owned TO regress_badb_bob;
GRANT SELECT, UPDATE ON bi_nodelete TO regress_badb_bob;
INSERT INTO bi_doc SELECT g, 'doc ' || g FROM generate_series(1, 5) g;
INSERT INTO bi_note VALUES (1, 1);
INSERT INTO bi_nopk VALUES (1, 'a'), (1, 'b');
INSERT INTO bi_pair VALUES (1, 'x');
INSERT INTO bi_parted VALUES (1);
GRANT SELECT ON bi_doc, bi_note, bi_nopk, bi_pair, bi_uuid, bi_parted, bi_parted_1, bi_view,
    bi_matview, bi_foreign, "bi; DROP TABLE bi_doc; --" TO regress_badb_alice, regress_badb_bob;

SET ROLE regress_badb_alice;
SELECT backup_id AS alice_backup FROM batchguard.export_backup('bi_doc', '{1,2}') \gset
RESET ROLE;
SET ROLE regress_badb_bob;
SELECT backup_id AS bob_backup FROM batchguard.export_backup('bi_doc', '{3}') \gset
SELECT backup_id AS bob_expired FROM batchguard.export_backup('bi_doc', '{4}') \gset
RESET ROLE;
-- bob's second backup expired (the clean-up has not run yet)
UPDATE batchguard.backups SET created_at = now() - interval '8 days', expires_at = now() - interval '1 day'
 WHERE backup_id = :'bob_expired';

SET ROLE regress_badb_bob;
-- NULLs, and relations that cannot be backed up
INSERT INTO bad_input (label, statement) VALUES
    ('export_backup source', $$SELECT batchguard.export_backup(NULL)$$),
    ('export_backup NULL element', $$SELECT batchguard.export_backup('bi_doc', ARRAY['1', NULL])$$),
    ('export_backup include_children', $$SELECT batchguard.export_backup('bi_doc', '{1}', NULL)$$),
    ('get_backup backup_id', $$SELECT batchguard.get_backup(NULL)$$),
    ('read_backup backup_id', $$SELECT batchguard.read_backup(NULL)$$),
    ('read_backup offset', format($$SELECT batchguard.read_backup(%L, NULL)$$, :'bob_backup')),
    ('backup_rows backup_id', $$SELECT * FROM batchguard.backup_rows(NULL)$$),
    ('delete_backup backup_id', $$SELECT batchguard.delete_backup(NULL)$$),
    ('extend_backup backup_id', $$SELECT batchguard.extend_backup(NULL, now() + interval '1 day')$$),
    ('extend_backup until', format($$SELECT batchguard.extend_backup(%L, NULL)$$, :'bob_backup')),
    ('hold_backup backup_id', $$SELECT batchguard.hold_backup(NULL)$$),
    ('restore_backup backup_id', $$SELECT batchguard.restore_backup(NULL)$$),
    ('restore_backup on_conflict', format($$SELECT batchguard.restore_backup(%L, NULL)$$, :'bob_backup')),
    ('restore_backup dry_run', format($$SELECT batchguard.restore_backup(%L, 'error', NULL)$$, :'bob_backup')),
    ('restore_backup unknown on_conflict', format($$SELECT batchguard.restore_backup(%L, 'merge')$$, :'bob_backup')),
    ('restore_backup_into backup_id', $$SELECT batchguard.restore_backup_into(NULL, '{}')$$),
    ('restore_backup_into targets', format($$SELECT batchguard.restore_backup_into(%L, NULL)$$, :'bob_backup')),
    ('restore_backup_into on_conflict', format($$SELECT batchguard.restore_backup_into(%L, '{}', NULL)$$, :'bob_backup')),
    ('restore_backup_into dry_run', format($$SELECT batchguard.restore_backup_into(%L, '{}', 'error', NULL)$$, :'bob_backup')),
    ('restore_backup_into targets not an object', format($$SELECT batchguard.restore_backup_into(%L, '["public.bi_doc"]')$$, :'bob_backup')),
    ('restore_backup_into target not a name', format($$SELECT batchguard.restore_backup_into(%L, '{"public.bi_doc": 1}')$$, :'bob_backup')),
    ('restore_backup_into target missing', format($$SELECT batchguard.restore_backup_into(%L, '{"public.bi_doc": "public.bi_missing"}')$$, :'bob_backup')),
    ('restore_backup_into target a view', format($$SELECT batchguard.restore_backup_into(%L, '{"public.bi_doc": "bi_view"}')$$, :'bob_backup')),
    ('restore_backup_into table not in the backup', format($$SELECT batchguard.restore_backup_into(%L, '{"public.bi_view": "public.bi_doc"}', dry_run => true)$$, :'bob_backup')),
    ('delete_preview source', $$SELECT * FROM batchguard.delete_preview(NULL, '{1}')$$),
    ('delete_preview ids', $$SELECT * FROM batchguard.delete_preview('bi_doc', NULL)$$),
    ('delete_preview view', $$SELECT * FROM batchguard.delete_preview('bi_view', '{1}')$$),
    ('delete_preview foreign table', $$SELECT * FROM batchguard.delete_preview('bi_foreign', '{1}')$$),
    ('delete_preview system catalog', $$SELECT * FROM batchguard.delete_preview('pg_class', '{1}')$$),
    ('delete_preview no primary key', $$SELECT * FROM batchguard.delete_preview('bi_nopk', '{1}')$$),
    ('delete_with_backup source', $$SELECT batchguard.delete_with_backup(NULL, '{1}')$$),
    ('delete_with_backup ids NULL', $$SELECT batchguard.delete_with_backup('bi_doc', NULL)$$),
    ('delete_with_backup ids empty', $$SELECT batchguard.delete_with_backup('bi_doc', '{}')$$),
    ('delete_with_backup NULL element', $$SELECT batchguard.delete_with_backup('bi_doc', ARRAY['1', NULL])$$),
    ('delete_with_backup view', $$SELECT batchguard.delete_with_backup('bi_view', '{1}')$$),
    ('delete_with_backup no primary key', $$SELECT batchguard.delete_with_backup('bi_nopk', '{1}')$$),
    ('delete_with_backup system catalog', $$SELECT batchguard.delete_with_backup('pg_class', '{1}')$$),
    ('delete_with_backup without UPDATE privilege (row locks)', $$SELECT batchguard.delete_with_backup('bi_doc', '{1}')$$),
    ('delete_with_backup without DELETE privilege', $$SELECT batchguard.delete_with_backup('bi_nodelete', '{1}')$$),
    ('delete_with_backup negative retention', $$SELECT batchguard.delete_with_backup('bi_owned', '{1}', '-1 day')$$),
    ('delete_with_backup retention over the maximum', $$SELECT batchguard.delete_with_backup('bi_owned', '{1}', '366 days')$$),
    ('delete_with_backup injection id', $$SELECT batchguard.delete_with_backup('bi_doc', ARRAY['1); DROP TABLE bi_doc; --'])$$),
    ('hold_backup hold', format($$SELECT batchguard.hold_backup(%L, NULL)$$, :'bob_backup')),
    ('export a view', $$SELECT batchguard.export_backup('bi_view', '{1}')$$),
    ('export a view, all rows', $$SELECT batchguard.export_backup('bi_view')$$),
    ('export a materialized view', $$SELECT batchguard.export_backup('bi_matview', '{1}')$$),
    ('export a foreign table', $$SELECT batchguard.export_backup('bi_foreign', '{1}')$$),
    ('export a foreign table, all rows', $$SELECT batchguard.export_backup('bi_foreign')$$),
    ('export a system catalog', $$SELECT batchguard.export_backup('pg_class', '{1259}')$$),
    ('export pg_authid', $$SELECT batchguard.export_backup('pg_authid')$$),
    ('export an information_schema table', $$SELECT batchguard.export_backup('information_schema.sql_features')$$),
    ('export the backups table', $$SELECT batchguard.export_backup('batchguard.backups')$$),
    ('export the items table', $$SELECT batchguard.export_backup('batchguard.batch_items')$$),
    ('export a sequence', $$SELECT batchguard.export_backup('bi_seq', '{1}')$$),
    ('export an index', $$SELECT batchguard.export_backup('bi_doc_pkey', '{1}')$$),
    ('export a composite type', $$SELECT batchguard.export_backup('bi_type', '{1}')$$),
    ('export a toast table', $$SELECT regexp_replace(pg_temp.error_of(format('SELECT batchguard.export_backup(%s::oid::regclass, ''{1}'')', (SELECT reltoastrelid FROM pg_class WHERE oid = 'bi_doc'::regclass))), 'pg_toast_\d+', 'pg_toast_N') AS error$$),
    ('export regclass 0', $$SELECT batchguard.export_backup(0::oid::regclass, '{1}')$$),
    ('export a dropped oid', $$SELECT batchguard.export_backup(4294967295::oid::regclass, '{1}')$$),
    ('export a table without a key, ids', $$SELECT batchguard.export_backup('bi_nopk', '{1}')$$),
    ('export a table without a key, all', $$SELECT total_rows FROM batchguard.export_backup('bi_nopk')$$),
    ('export a composite key, ids', $$SELECT batchguard.export_backup('bi_pair', '{1}')$$),
    ('export a partitioned table', $$SELECT total_rows FROM batchguard.export_backup('bi_parted', '{1}')$$),
    ('export a partition', $$SELECT total_rows FROM batchguard.export_backup('bi_parted_1', '{1}')$$),
    ('export an injection-named table', $$SELECT total_rows, tables FROM batchguard.export_backup('"bi; DROP TABLE bi_doc; --"', '{1}')$$),
    ('export unreadable table', $$SELECT batchguard.export_backup('batchguard.identity_map')$$)
;
\i test/bad_input_run.sql

-- ids, retention, labels, offsets and lengths
INSERT INTO bad_input (label, statement) VALUES
    ('export ids empty', $$SELECT total_rows FROM batchguard.export_backup('bi_doc', '{}')$$),
    ('export id empty string', $$SELECT batchguard.export_backup('bi_doc', '{""}')$$),
    ('export id not an int', $$SELECT batchguard.export_backup('bi_doc', '{abc}')$$),
    ('export id out of int range', $$SELECT batchguard.export_backup('bi_doc', '{99999999999}')$$),
    ('export id not a uuid', $$SELECT batchguard.export_backup('bi_uuid', '{x}')$$),
    ('export id 1 MiB', $$SELECT batchguard.export_backup('bi_doc', ARRAY[repeat('9', 1048576)])$$),
    ('export id injection', $$SELECT batchguard.export_backup('bi_doc', ARRAY[$q$1) OR (1=1$q$])$$),
    ('export id injection 2', $$SELECT batchguard.export_backup('bi_doc', ARRAY[$q$1'); DELETE FROM bi_doc; --$q$])$$),
    ('export ids of rows that do not exist', $$SELECT total_rows FROM batchguard.export_backup('bi_doc', '{100,200}')$$),
    ('export ids 2-D', $$SELECT batchguard.export_backup('bi_doc', '{{1},{2}}')$$),
    ('export retention negative', $$SELECT batchguard.export_backup('bi_doc', '{1}', retention => '-1 day')$$),
    ('export retention zero', $$SELECT batchguard.export_backup('bi_doc', '{1}', retention => '0')$$),
    ('export retention 1 second', $$SELECT batchguard.export_backup('bi_doc', '{1}', retention => '1 second')$$),
    ('export retention over the maximum', $$SELECT batchguard.export_backup('bi_doc', '{1}', retention => '366 days')$$),
    ('export retention enormous', $$SELECT batchguard.export_backup('bi_doc', '{1}', retention => '178000000 years')$$),
    ('export retention enormous negative', $$SELECT batchguard.export_backup('bi_doc', '{1}', retention => '-178000000 years')$$),
    ('export retention mixed signs', $$SELECT batchguard.export_backup('bi_doc', '{1}', retention => '1 month -40 days')$$),
    ('export label 1 MiB', $$SELECT length(label) FROM batchguard.export_backup('bi_doc', '{1}', label => repeat('l', 1048576))$$),
    ('export label invalid UTF-8', E'SELECT batchguard.export_backup(''bi_doc'', ''{1}'', label => E''\\xfe\\xff'')'),
    ('export id invalid UTF-8', E'SELECT batchguard.export_backup(''bi_doc'', ARRAY[E''1\\x80''])'),
    ('export source injection text', $$SELECT batchguard.export_backup($q$bi_doc; DROP TABLE bi_doc$q$)$$),
    ('read_backup offset negative', format($$SELECT batchguard.read_backup(%L, -1)$$, :'bob_backup')),
    ('read_backup length negative', format($$SELECT batchguard.read_backup(%L, 0, -1)$$, :'bob_backup')),
    ('read_backup length zero', format($$SELECT length(batchguard.read_backup(%L, 0, 0))$$, :'bob_backup')),
    ('read_backup offset past the end', format($$SELECT length(batchguard.read_backup(%L, 1000000))$$, :'bob_backup')),
    ('read_backup offset bigint max', format($$SELECT length(batchguard.read_backup(%L, 9223372036854775807))$$, :'bob_backup')),
    ('read_backup length bigint max', format($$SELECT length(batchguard.read_backup(%L, 1, 9223372036854775807)) > 0$$, :'bob_backup')),
    ('read_backup offset+length overflow', format($$SELECT length(batchguard.read_backup(%L, 9223372036854775806, 9223372036854775807))$$, :'bob_backup')),
    ('read_backup length over 1 GB', format($$SELECT length(batchguard.read_backup(%L, 0, 2000000000)) > 0$$, :'bob_backup')),
    ('extend_backup into the past', format($$SELECT batchguard.extend_backup(%L, now() - interval '1 day')$$, :'bob_backup')),
    ('extend_backup shorter', format($$SELECT batchguard.extend_backup(%L, now() + interval '1 hour')$$, :'bob_backup')),
    ('extend_backup infinity', format($$SELECT batchguard.extend_backup(%L, 'infinity')$$, :'bob_backup')),
    ('extend_backup -infinity', format($$SELECT batchguard.extend_backup(%L, '-infinity')$$, :'bob_backup')),
    ('extend_backup over the maximum', format($$SELECT batchguard.extend_backup(%L, now() + interval '400 days')$$, :'bob_backup')),
    ('extend_backup year 294276', format($$SELECT batchguard.extend_backup(%L, '294276-12-31 23:59:59+00')$$, :'bob_backup')),
    ('get_backup not a uuid', $$SELECT batchguard.get_backup('not-a-uuid')$$),
    ('get_backup injection', $$SELECT batchguard.get_backup($q$' OR true --$q$)$$),
    ('get_backup nil uuid', $$SELECT batchguard.get_backup('00000000-0000-0000-0000-000000000000')$$),
    ('read_backup nil uuid', $$SELECT batchguard.read_backup('00000000-0000-0000-0000-000000000000')$$),
    ('delete_backup nil uuid', $$SELECT batchguard.delete_backup('00000000-0000-0000-0000-000000000000')$$)
;
\i test/bad_input_run.sql

-- an expired backup (its row not yet cleaned up)
INSERT INTO bad_input (label, statement, mask, mask_as)
SELECT label, format(call, quote_literal(:'bob_expired')), :'bob_expired', 'ID'
  FROM (VALUES
    ('get_backup expired', 'SELECT status FROM batchguard.get_backup(%s)'),
    ('read_backup expired', 'SELECT batchguard.read_backup(%s)'),
    ('read_backup chunk expired', 'SELECT batchguard.read_backup(%s, 0, 10)'),
    ('backup_rows expired', 'SELECT * FROM batchguard.backup_rows(%s)'),
    ('extend_backup expired', 'SELECT status FROM batchguard.extend_backup(%s, now() + interval ''1 day'')'),
    ('hold_backup expired', 'SELECT legal_hold, status FROM batchguard.hold_backup(%s)'),
    ('delete_backup expired', 'SELECT batchguard.delete_backup(%s)')
  ) AS t(label, call);
\i test/bad_input_run.sql

-- alice's backup, from bob: exactly like a backup nobody has; alice's row, audit and file
-- stay as they were
SELECT label, pg_temp.same_as_unknown(label, call, :'alice_backup', '7c0b5a2e-1111-4222-8333-944455556666',
                                      'regress_badb_alice')
  FROM (VALUES
    ('get_backup', 'SELECT batchguard.get_backup(%s)'),
    ('read_backup', 'SELECT batchguard.read_backup(%s)'),
    ('read_backup chunk', 'SELECT batchguard.read_backup(%s, 0, 10)'),
    ('read_backup past the end', 'SELECT batchguard.read_backup(%s, 1000000)'),
    ('read_backup bad offset', 'SELECT batchguard.read_backup(%s, -1)'),
    ('backup_rows', 'SELECT * FROM batchguard.backup_rows(%s)'),
    ('delete_backup', 'SELECT batchguard.delete_backup(%s)'),
    ('extend_backup', 'SELECT batchguard.extend_backup(%s, now() + interval ''30 days'')'),
    ('extend_backup into the past', 'SELECT batchguard.extend_backup(%s, now() - interval ''1 day'')'),
    ('extend_backup over the maximum', 'SELECT batchguard.extend_backup(%s, now() + interval ''400 days'')'),
    ('hold_backup', 'SELECT batchguard.hold_backup(%s)'),
    ('hold_backup release', 'SELECT batchguard.hold_backup(%s, false)'),
    ('restore_backup', 'SELECT batchguard.restore_backup(%s)'),
    ('restore_backup skip', 'SELECT batchguard.restore_backup(%s, ''skip'')'),
    ('restore_backup update dry run', 'SELECT batchguard.restore_backup(%s, ''update'', true)'),
    ('restore_backup_into', 'SELECT batchguard.restore_backup_into(%s, ''{"public.bi_doc": "public.bi_doc"}'')'),
    ('get_user_backups', 'SELECT count(*) FROM batchguard.get_user_backups() WHERE backup_id = %s'),
    ('backups table', 'SELECT count(*) FROM batchguard.backups WHERE backup_id = %s'),
    ('audit table', 'SELECT count(*) FROM batchguard.audit WHERE backup_id = %s')
  ) AS t(label, call);
-- and the other way round: alice cannot reach bob's expired backup either
RESET ROLE;
SET ROLE regress_badb_alice;
SELECT label, pg_temp.same_as_unknown(label, call, :'bob_expired', '7c0b5a2e-1111-4222-8333-944455556666',
                                      'regress_badb_bob')
  FROM (VALUES
    ('get_backup (expired, foreign)', 'SELECT batchguard.get_backup(%s)'),
    ('read_backup (expired, foreign)', 'SELECT batchguard.read_backup(%s)'),
    ('backup_rows (expired, foreign)', 'SELECT * FROM batchguard.backup_rows(%s)'),
    ('delete_backup (expired, foreign)', 'SELECT batchguard.delete_backup(%s)'),
    ('extend_backup (expired, foreign)', 'SELECT batchguard.extend_backup(%s, now() + interval ''1 day'')'),
    ('restore_backup (expired, foreign)', 'SELECT batchguard.restore_backup(%s)'),
    ('restore_backup_into (expired, foreign)', 'SELECT batchguard.restore_backup_into(%s, ''{}'')'),
    ('hold_backup (expired, foreign)', 'SELECT batchguard.hold_backup(%s)')
  ) AS t(label, call);
-- the tables are read-only, the settings that bound storage are not the caller's (as alice)
INSERT INTO bad_input (label, statement) VALUES
    ('update backups', $$SELECT pg_temp.error_of('UPDATE batchguard.backups SET expires_at = ''infinity''')$$),
    ('insert backups', $$SELECT pg_temp.error_of('INSERT INTO batchguard.backups SELECT * FROM batchguard.backups')$$),
    ('delete audit', $$SELECT pg_temp.error_of('DELETE FROM batchguard.audit')$$),
    ('set the backup directory', $$SELECT set_config('batchguard.backup_directory', '/tmp', false)$$),
    ('set the maximum retention', $$SELECT set_config('batchguard.max_backup_retention', '1000d', false)$$),
    ('set the storage limit', $$SELECT set_config('batchguard.max_backup_bytes', '-1', false)$$);
\i test/bad_input_run.sql

-- purge_with_backup, a procedure, runs at top level: its argument errors must come before it
-- commits anything (its batch). As bob, who may delete bi_owned's rows.
RESET ROLE;
SET ROLE regress_badb_bob;
\set bi_label 'purge_with_backup ids NULL without all_rows'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-1'', ''bi_owned'')'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup ids and all_rows'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-2'', ''bi_owned'', ARRAY[''1''], all_rows => true)'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup chunk_size 0'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-3'', ''bi_owned'', ARRAY[''1''], chunk_size => 0)'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup chunk_size NULL'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-4'', ''bi_owned'', ARRAY[''1''], chunk_size => NULL)'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup job_id NULL'
\set bi_call 'CALL batchguard.purge_with_backup(NULL, ''bi_owned'', ARRAY[''1''])'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup job_id empty'
\set bi_call 'CALL batchguard.purge_with_backup('''', ''bi_owned'', ARRAY[''1''])'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup source NULL'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-5'', NULL, ARRAY[''1''])'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup a view'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-6'', ''bi_view'', ARRAY[''1''])'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup no primary key'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-7'', ''bi_nopk'', ARRAY[''1''])'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup id not an int'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-8'', ''bi_owned'', ARRAY[''abc''])'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup NULL element'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-9'', ''bi_owned'', ARRAY[''1'', NULL])'
\i test/bad_input_call.sql
\set bi_label 'purge_with_backup negative retention'
\set bi_call 'CALL batchguard.purge_with_backup(''bi-purge-10'', ''bi_owned'', ARRAY[''1''], retention => ''-1 day'')'
\i test/bad_input_call.sql
RESET ROLE;

-- One id more than a call accepts (the documented limit of 1,000,000), refused at once
CREATE TABLE big_ids AS SELECT array_agg(g::text) AS ids FROM generate_series(1, 1000001) g;
GRANT SELECT ON big_ids TO regress_badb_bob;
-- An export that statement_timeout cancels: the child table's row policy sleeps 10 ms a
-- row, so the export takes at least 20 s on any machine and is cancelled after 5 s, while
-- writing its file. The harness checks that no file of its transaction is left.
CREATE TABLE bi_slow (id int PRIMARY KEY);
CREATE TABLE bi_slow_note (id int PRIMARY KEY, slow_id int REFERENCES bi_slow);
INSERT INTO bi_slow VALUES (1);
INSERT INTO bi_slow_note SELECT g, 1 FROM generate_series(1, 2000) g;
CREATE FUNCTION bi_slowly(id int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_sleep(0.01);
    RETURN id IS NOT NULL;
END
$$;
ALTER TABLE bi_slow_note ENABLE ROW LEVEL SECURITY;
CREATE POLICY slow ON bi_slow_note USING (bi_slowly(id));
GRANT SELECT ON bi_slow, bi_slow_note TO regress_badb_bob;
SET ROLE regress_badb_bob;
INSERT INTO bad_input (label, statement) VALUES
    ('export_backup ids over the limit', $$SELECT total_rows FROM big_ids, batchguard.export_backup('bi_doc', ids)$$),
    ('export_backup ids over the limit, no children', $$SELECT total_rows FROM big_ids, batchguard.export_backup('bi_doc', ids, false)$$),
    ('delete_preview ids over the limit', $$SELECT count(*) FROM big_ids, batchguard.delete_preview('bi_owned', ids)$$),
    ('delete_with_backup ids over the limit', $$SELECT batchguard.delete_with_backup('bi_owned', ids) FROM big_ids$$);
\i test/bad_input_run.sql
SET statement_timeout = '5s';
INSERT INTO bad_input (label, statement) VALUES
    ('export_backup cancelled by statement_timeout', $$SELECT total_rows FROM batchguard.export_backup('bi_slow')$$);
\i test/bad_input_run.sql
RESET statement_timeout;
RESET ROLE;
DROP TABLE big_ids, bi_slow_note, bi_slow;
DROP FUNCTION bi_slowly(int);

-- alice's backup is as she left it, readable, and its audit holds only her own export
SET ROLE regress_badb_alice;
SELECT status, legal_hold, total_rows, expires_at - created_at AS retention FROM batchguard.get_backup(:'alice_backup');
SELECT sha256(batchguard.read_backup(:'alice_backup')) = decode(file_sha256, 'hex') AS file_intact
  FROM batchguard.backups WHERE backup_id = :'alice_backup';
SELECT actor, action FROM batchguard.audit WHERE backup_id = :'alice_backup' ORDER BY audit_id;
RESET ROLE;

SELECT * FROM pg_temp.bad_input_counts();
-- the inputs that PostgreSQL refused before any function of ours ran (they test PostgreSQL)
SELECT label FROM bad_input WHERE rejected_early ORDER BY n;

-- clean up: the owners delete their backups (row now, file at commit)
SET ROLE regress_badb_alice;
SELECT count(batchguard.delete_backup(backup_id)) AS alice_deleted FROM batchguard.backups;
SET ROLE regress_badb_bob;
SELECT count(batchguard.delete_backup(backup_id)) AS bob_deleted FROM batchguard.backups;
RESET ROLE;
DELETE FROM batchguard.audit WHERE owner LIKE 'regress\_badb\_%';
DELETE FROM batchguard.batch_items WHERE owner LIKE 'regress\_badb\_%';
DELETE FROM batchguard.batches WHERE owner LIKE 'regress\_badb\_%';
DROP TABLE bi_doc, bi_note, bi_nopk, bi_pair, bi_uuid, bi_parted, "bi; DROP TABLE bi_doc; --",
           bi_owned, bi_nodelete CASCADE;
DROP SEQUENCE bi_seq;
DROP TYPE bi_type;
DROP FOREIGN TABLE bi_foreign;
DROP SERVER bi_dummy_server;
DROP FOREIGN DATA WRAPPER bi_dummy_fdw;
DROP ROLE regress_badb_alice;
DROP ROLE regress_badb_bob;
