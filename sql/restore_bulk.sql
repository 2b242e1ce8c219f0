-- restore_backup's bulk path (COPY FROM) and the cases that keep the INSERT path: the
-- rows come back identical under any session settings, identity values and sequences,
-- generated columns, conflicts, privileges; row security, triggers, partitioned tables,
-- domains, CHECK constraints and foreign keys among the backup's tables behave as before.
-- (test/t/046_restore_bulk.pl checks which path each case takes, and a LATIN1 database.)
\i test/helpers.sql
SET client_min_messages = warning;

CREATE TABLE rb_conv (id bigint PRIMARY KEY, title text, created timestamptz, ts timestamp,
                      iv interval, d date, f float8, b bytea, tags text[], note text);
CREATE TABLE rb_turn (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                      conv_id bigint NOT NULL REFERENCES rb_conv ON DELETE CASCADE,
                      body text, len int GENERATED ALWAYS AS (length(body)) STORED);
INSERT INTO rb_conv VALUES
    (1, E'tab\there, newline\nthere, cr\r, backslash \\ and \\N', '2024-02-29 23:59:59.999999+14',
     '2024-02-29 23:59:59.999999', '-1 day +02:03:04.5', '2024-02-29', 0.1, '\x00ff5c',
     '{a,"b\\c",NULL,"\\N"}', ''),
    (2, '\N', 'infinity', '-infinity', '1 year 2 months', '0001-01-01 BC', 'NaN', '', '{}', NULL),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'kept');
INSERT INTO rb_turn (conv_id, body) SELECT 1 + g % 3, repeat(E'x\t', g) FROM generate_series(1, 12) g;
CREATE FUNCTION pg_temp.rb_rows() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(x, E'\n' ORDER BY x) FROM (
        SELECT 'conv ' || to_jsonb(c)::text AS x FROM rb_conv c
        UNION ALL SELECT 'turn ' || to_jsonb(t)::text FROM rb_turn t) s
$$;
CREATE TEMP TABLE rb_before AS SELECT pg_temp.rb_rows() AS rows;

-- Deleted under one set of output settings, restored under very different ones: the
-- values are parsed under the settings the backup recorded, as by the INSERT path.
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SET TimeZone = 'Pacific/Chatham';
SET extra_float_digits = 0;
SET bytea_output = 'escape';
SELECT batchguard.delete_with_backup('rb_conv', ARRAY['1', '2']) -> 'backup' ->> 'backup_id' AS rb_backup \gset
SET DateStyle = 'Postgres, MDY';
SET IntervalStyle = 'postgres_verbose';
SET TimeZone = 'America/St_Johns';
SELECT (batchguard.restore_backup(:'rb_backup') - 'backup_id') AS restored;
RESET DateStyle;
RESET IntervalStyle;
RESET TimeZone;
RESET extra_float_digits;
RESET bytea_output;
SELECT pg_temp.rb_rows() = rows AS identical FROM rb_before;
-- the identity sequence moved past the restored values
INSERT INTO rb_turn (conv_id, body) VALUES (3, 'new') RETURNING id > 12 AS past_restored;
DELETE FROM rb_turn WHERE body = 'new';

-- Restoring it again: the default mode's conflict error, nothing restored.
SELECT pg_temp.error_of(format('SELECT batchguard.restore_backup(%L)', :'rb_backup'));
SELECT batchguard.restore_backup(:'rb_backup', on_conflict => 'skip') -> 'skipped' AS skipped;

-- Privileges are the caller's: INSERT on every restored column, as for an INSERT.
CREATE ROLE regress_rb_restorer;
GRANT USAGE ON SCHEMA batchguard TO regress_rb_restorer;
GRANT SELECT, INSERT, UPDATE, DELETE ON rb_conv, rb_turn TO regress_rb_restorer;
SET ROLE regress_rb_restorer;
SELECT batchguard.delete_with_backup('rb_conv', ARRAY['1']) -> 'backup' ->> 'backup_id' AS rb_backup2 \gset
RESET ROLE;
REVOKE INSERT ON rb_conv FROM regress_rb_restorer;
GRANT INSERT (id, title) ON rb_conv TO regress_rb_restorer;
SET ROLE regress_rb_restorer;
SELECT pg_temp.error_of(format('SELECT batchguard.restore_backup(%L)', :'rb_backup2'));
RESET ROLE;
GRANT INSERT ON rb_conv, rb_turn TO regress_rb_restorer;
GRANT SELECT, UPDATE ON SEQUENCE rb_turn_id_seq TO regress_rb_restorer;
SET ROLE regress_rb_restorer;
SELECT batchguard.restore_backup(:'rb_backup2') -> 'inserted' AS inserted_as_restorer;
RESET ROLE;
SELECT pg_temp.rb_rows() = rows AS identical_again FROM rb_before;

-- Row security: the table keeps the INSERT path, whose policies refuse a row.
CREATE TABLE rb_rls (id int PRIMARY KEY, v text);
INSERT INTO rb_rls VALUES (1, 'a'), (150, 'b');
GRANT SELECT, INSERT, UPDATE, DELETE ON rb_rls TO regress_rb_restorer;
ALTER TABLE rb_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY rb_all ON rb_rls USING (true) WITH CHECK (id < 100);
SET ROLE regress_rb_restorer;
SELECT batchguard.delete_with_backup('rb_rls', ARRAY['1', '150']) -> 'backup' ->> 'backup_id' AS rb_rls_backup \gset
SELECT pg_temp.error_of(format('SELECT batchguard.restore_backup(%L)', :'rb_rls_backup'));
RESET ROLE;
DROP POLICY rb_all ON rb_rls;
CREATE POLICY rb_all ON rb_rls USING (true) WITH CHECK (true);
SET ROLE regress_rb_restorer;
SELECT batchguard.restore_backup(:'rb_rls_backup') -> 'inserted' AS rls_inserted;
RESET ROLE;
SELECT array_agg(id ORDER BY id) AS rls_rows FROM rb_rls;

-- A BEFORE INSERT trigger still fires for every restored row, an AFTER STATEMENT one once.
CREATE TABLE rb_trig (id int PRIMARY KEY, v text);
CREATE TABLE rb_trig_log (event text);
INSERT INTO rb_trig VALUES (1, 'a'), (2, 'b');
CREATE FUNCTION rb_mark() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN NEW.v := NEW.v || '!'; RETURN NEW; END$$;
CREATE FUNCTION rb_log() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO rb_trig_log VALUES (TG_OP || ' ' || TG_LEVEL); RETURN NULL; END$$;
SELECT batchguard.delete_with_backup('rb_trig', ARRAY['1', '2']) -> 'backup' ->> 'backup_id' AS rb_trig_backup \gset
CREATE TRIGGER rb_mark BEFORE INSERT ON rb_trig FOR EACH ROW EXECUTE FUNCTION rb_mark();
CREATE TRIGGER rb_log AFTER INSERT ON rb_trig FOR EACH STATEMENT EXECUTE FUNCTION rb_log();
SELECT batchguard.restore_backup(:'rb_trig_backup') -> 'inserted' AS trig_inserted;
SELECT array_agg(id || v ORDER BY id) AS trig_rows FROM rb_trig;
SELECT event, count(*) FROM rb_trig_log GROUP BY event;

-- A partitioned table: each row back into its partition.
CREATE TABLE rb_part (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE rb_part_low PARTITION OF rb_part FOR VALUES FROM (0) TO (100);
CREATE TABLE rb_part_high PARTITION OF rb_part FOR VALUES FROM (100) TO (1000);
INSERT INTO rb_part VALUES (1, 'low'), (500, 'high');
SELECT batchguard.delete_with_backup('rb_part', ARRAY['1', '500']) -> 'backup' ->> 'backup_id' AS rb_part_backup \gset
SELECT batchguard.restore_backup(:'rb_part_backup') -> 'inserted' AS part_inserted;
SELECT tableoid::regclass AS partition, id, v FROM rb_part ORDER BY id;

-- A domain's check and a CHECK constraint still run, under the caller's settings.
CREATE DOMAIN rb_positive AS int CHECK (VALUE > 0);
CREATE TABLE rb_checked (id int PRIMARY KEY, n rb_positive, s text CHECK (s <> 'bad'));
INSERT INTO rb_checked VALUES (1, 5, 'good');
SELECT batchguard.delete_with_backup('rb_checked', ARRAY['1']) -> 'backup' ->> 'backup_id' AS rb_checked_backup \gset
ALTER DOMAIN rb_positive ADD CONSTRAINT rb_big CHECK (VALUE > 10) NOT VALID;
SELECT pg_temp.error_of(format('SELECT batchguard.restore_backup(%L)', :'rb_checked_backup'));
ALTER DOMAIN rb_positive DROP CONSTRAINT rb_big;
SELECT batchguard.restore_backup(:'rb_checked_backup') -> 'inserted' AS checked_inserted;

-- Two tables that reference each other: rows of one whose referenced rows come later in
-- the file are restored all the same (the bulk path gives way to the INSERT path, which
-- checks the foreign keys once every row is back).
CREATE TABLE rb_a (id int PRIMARY KEY, b_id int);
CREATE TABLE rb_b (id int PRIMARY KEY, a_id int REFERENCES rb_a ON DELETE CASCADE);
ALTER TABLE rb_a ADD FOREIGN KEY (b_id) REFERENCES rb_b ON DELETE CASCADE;
INSERT INTO rb_a VALUES (1, NULL);
INSERT INTO rb_b VALUES (1, 1);
INSERT INTO rb_a VALUES (2, 1);
INSERT INTO rb_b VALUES (2, 2);
INSERT INTO rb_a VALUES (3, 2);
CREATE TEMP TABLE rb_cycle AS
    SELECT (SELECT array_agg(a ORDER BY id) FROM rb_a a)::text || (SELECT array_agg(b ORDER BY id) FROM rb_b b)::text AS rows;
SELECT batchguard.delete_with_backup('rb_a', ARRAY['1']) -> 'backup' ->> 'backup_id' AS rb_cycle_backup \gset
SELECT count(*) AS left_after_delete FROM rb_a;
SELECT batchguard.restore_backup(:'rb_cycle_backup') -> 'inserted' AS cycle_inserted;
SELECT (SELECT array_agg(a ORDER BY id) FROM rb_a a)::text || (SELECT array_agg(b ORDER BY id) FROM rb_b b)::text = rows
       AS cycle_identical FROM rb_cycle;

-- clean up: this suite's backups (the restorer's by the restorer) and their audit rows
CREATE TEMP TABLE rb_backups AS
    SELECT backup_id FROM batchguard.backups WHERE source_table LIKE 'public.rb\_%';
SET ROLE regress_rb_restorer;
SELECT count(*) FILTER (WHERE batchguard.delete_backup(backup_id)) AS restorer_deleted
  FROM batchguard.backups WHERE source_table LIKE 'public.rb\_%';
RESET ROLE;
SELECT count(*) FILTER (WHERE batchguard.delete_backup(backup_id)) AS deleted FROM rb_backups;
DELETE FROM batchguard.audit WHERE backup_id IN (SELECT backup_id FROM rb_backups);
DROP TABLE rb_turn, rb_conv, rb_rls, rb_trig, rb_trig_log, rb_part, rb_checked, rb_a, rb_b CASCADE;
DROP DOMAIN rb_positive;
DROP FUNCTION rb_mark();
DROP FUNCTION rb_log();
REVOKE USAGE ON SCHEMA batchguard FROM regress_rb_restorer;
DROP ROLE regress_rb_restorer;
