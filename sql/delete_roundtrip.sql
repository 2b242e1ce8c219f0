-- Every deleted row comes back (issue 12) and discovery stays within the source owner's
-- tables (issue 13): each case failed on 1.0. A helper compares a table's text before and
-- after delete_with_backup + restore_backup.
\i test/helpers.sql
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.snapshot(tables regclass[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    part text;
    out text := '';
BEGIN
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('SELECT coalesce(string_agg(x::text, '','' ORDER BY x::text), '''') FROM %s x',
                       t) INTO part;
        out := out || t::text || ':' || part || E'\n';
    END LOOP;
    RETURN out;
END
$$;

-- 1. A cascade cycle: b.a_id -> a CASCADE, a.b_id -> b CASCADE. Deleting a1 removes b1 and,
-- through it, a2: all three are backed up and come back.
CREATE TABLE rt_a (id int PRIMARY KEY, b_id int);
CREATE TABLE rt_b (id int PRIMARY KEY, a_id int REFERENCES rt_a ON DELETE CASCADE);
ALTER TABLE rt_a ADD FOREIGN KEY (b_id) REFERENCES rt_b ON DELETE CASCADE;
INSERT INTO rt_a VALUES (1, NULL), (2, NULL), (3, NULL);
INSERT INTO rt_b VALUES (1, 1);
UPDATE rt_a SET b_id = 1 WHERE id = 2;
SELECT pg_temp.snapshot('{rt_a,rt_b}') AS before \gset
SELECT r -> 'tables' AS tables, r -> 'backup' ->> 'backup_id' AS b
  FROM batchguard.delete_with_backup('rt_a', '{1}') r \gset
SELECT :'tables' AS tables, pg_temp.snapshot('{rt_a,rt_b}') AS after_delete;
SELECT * FROM batchguard.delete_preview('rt_a', '{3}');
SELECT batchguard.restore_backup(:'b') -> 'inserted' AS inserted;
SELECT pg_temp.snapshot('{rt_a,rt_b}') = :'before' AS identical;

-- 2. One child, two references to the same parent: fk0 CASCADE, fk1 SET NULL. Children
-- kept by fk0 but nulled through fk1 get their old fk1 back; removed ones come back whole.
CREATE TABLE rt_p (id int PRIMARY KEY);
CREATE TABLE rt_c (id int PRIMARY KEY, fk0 int REFERENCES rt_p ON DELETE CASCADE,
                   fk1 int REFERENCES rt_p ON DELETE SET NULL, note text);
INSERT INTO rt_p VALUES (1), (2);
INSERT INTO rt_c VALUES (1, 1, 1, 'both'), (2, 2, 1, 'kept, nulled'), (3, 1, 2, 'removed'),
                        (4, 2, 2, 'untouched');
SELECT pg_temp.snapshot('{rt_p,rt_c}') AS before \gset
SELECT table_name, action, rows FROM batchguard.delete_preview('rt_p', '{1}') ORDER BY 1, 2;
SELECT r -> 'tables' AS tables, r -> 'backup' ->> 'backup_id' AS b
  FROM batchguard.delete_with_backup('rt_p', '{1}') r \gset
SELECT :'tables' AS tables, pg_temp.snapshot('{rt_p,rt_c}') AS after_delete;
SELECT table_name, "row", parent_table FROM batchguard.backup_rows(:'b') ORDER BY 1, 2::text;
SELECT batchguard.restore_backup(:'b') - 'backup_id' AS restored;
SELECT pg_temp.snapshot('{rt_p,rt_c}') = :'before' AS identical;

-- 3. A SET NULL self-reference of the source: the rows pointing at a deleted row lose
-- the reference, and get it back.
CREATE TABLE rt_self (id int PRIMARY KEY, up int REFERENCES rt_self ON DELETE SET NULL);
INSERT INTO rt_self VALUES (1, NULL), (2, 1), (3, 2), (4, 1);
SELECT pg_temp.snapshot('{rt_self}') AS before \gset
SELECT r -> 'backup' ->> 'backup_id' AS b FROM batchguard.delete_with_backup('rt_self', '{1}') r \gset
SELECT pg_temp.snapshot('{rt_self}') AS after_delete;
SELECT batchguard.restore_backup(:'b') -> 'updated' AS updated;
SELECT pg_temp.snapshot('{rt_self}') = :'before' AS identical;

-- 4. SET NULL children without a primary key, duplicates included: restored in place,
-- not inserted again.
CREATE TABLE rt_owner (id int PRIMARY KEY);
CREATE TABLE rt_tag (owner_id int REFERENCES rt_owner ON DELETE SET NULL, tag text);
INSERT INTO rt_owner VALUES (1), (2);
INSERT INTO rt_tag VALUES (1, 'x'), (1, 'x'), (NULL, 'x'), (2, 'x'), (1, 'y');
SELECT pg_temp.snapshot('{rt_owner,rt_tag}') AS before \gset
SELECT r -> 'backup' ->> 'backup_id' AS b FROM batchguard.delete_with_backup('rt_owner', '{1}') r \gset
SELECT batchguard.restore_backup(:'b') -> 'tables' AS tables;
SELECT pg_temp.snapshot('{rt_owner,rt_tag}') = :'before' AS identical;

-- 5. The caller's own trigger, with unqualified names, runs under the caller's search_path
-- during the delete and the restore (as under a plain DELETE / INSERT).
CREATE TABLE rt_log (op text, n int);
CREATE FUNCTION rt_log_it() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rt_log VALUES (TG_OP, 1);
    RETURN NULL;
END
$$;
CREATE TABLE rt_doc (id int PRIMARY KEY, body text);
CREATE TRIGGER rt_doc_log AFTER INSERT OR DELETE ON rt_doc FOR EACH ROW EXECUTE FUNCTION rt_log_it();
INSERT INTO rt_doc VALUES (1, 'a'), (2, 'b');
SELECT r -> 'backup' ->> 'backup_id' AS b FROM batchguard.delete_with_backup('rt_doc', '{1,2}') r \gset
SELECT batchguard.restore_backup(:'b') -> 'inserted' AS inserted;
SELECT op, count(*) FROM rt_log GROUP BY op ORDER BY op;

-- 6. Values are parsed under the settings recorded in the file, inserted under the
-- caller's: money under a German lc_monetary, timestamps under another TimeZone.
CREATE TABLE rt_money (id int PRIMARY KEY, m money, at timestamptz, d date);
INSERT INTO rt_money VALUES (1, 1234.5, '2024-03-04 05:06:07+00', '2024-12-31');
SELECT pg_temp.snapshot('{rt_money}') AS before \gset
SELECT r -> 'backup' ->> 'backup_id' AS b FROM batchguard.delete_with_backup('rt_money', '{1}') r \gset
BEGIN;
SET LOCAL lc_monetary = 'de_DE.utf8';
SET LOCAL TimeZone = 'Asia/Kathmandu';
SET LOCAL DateStyle = 'SQL, DMY';
SELECT batchguard.restore_backup(:'b') -> 'inserted' AS inserted;
COMMIT;
SELECT pg_temp.snapshot('{rt_money}') = :'before' AS identical;

-- 7. Where the walk cannot know what the delete does, it refuses before anything happens,
-- naming the table and the constraints: a SET NULL that changes a column a CASCADE uses.
CREATE TABLE rt_q (id int PRIMARY KEY);
CREATE TABLE rt_q2 (id int PRIMARY KEY, q_id int REFERENCES rt_q ON DELETE CASCADE);
CREATE TABLE rt_r2 (id int PRIMARY KEY, q int,
                    CONSTRAINT rt_r2_cascade FOREIGN KEY (q) REFERENCES rt_q ON DELETE CASCADE,
                    CONSTRAINT rt_r2_nulls FOREIGN KEY (q) REFERENCES rt_q2 ON DELETE SET NULL);
INSERT INTO rt_q VALUES (1);
INSERT INTO rt_q2 VALUES (1, 1);
INSERT INTO rt_r2 VALUES (1, 1);
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('rt_q', '{1}')$$);
SELECT count(*) AS still_there FROM rt_r2;

-- 8. Discovery stays within the source owner's tables: another role's referencing table is
-- refused by name (its triggers, policies and types would run as the caller), unless the
-- caller opts in.
CREATE ROLE regress_rt_mallory;
CREATE TABLE rt_customer (id int PRIMARY KEY);
INSERT INTO rt_customer VALUES (1);
GRANT REFERENCES, SELECT ON rt_customer TO regress_rt_mallory;
CREATE SCHEMA rt_mallory AUTHORIZATION regress_rt_mallory;
SET ROLE regress_rt_mallory;
CREATE TABLE rt_mallory.rt_spy (id int PRIMARY KEY,
                                customer_id int REFERENCES rt_customer ON DELETE CASCADE);
RESET ROLE;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('rt_customer')$$);
SELECT pg_temp.error_of($$SELECT * FROM batchguard.delete_preview('rt_customer', '{1}')$$);
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('rt_customer', '{1}')$$);
SET batchguard.follow_foreign_owners = on;
SELECT tables FROM batchguard.export_backup('rt_customer');
RESET batchguard.follow_foreign_owners;
SELECT tables FROM batchguard.export_backup('rt_customer', include_children => false);
DROP SCHEMA rt_mallory CASCADE;
REVOKE ALL ON rt_customer FROM regress_rt_mallory;
DROP ROLE regress_rt_mallory;

-- 9. Values are rendered by their types' output functions, never through a cast someone
-- created: a cast of an enum to json is not called.
CREATE TYPE rt_mood AS ENUM ('ok', 'happy');
CREATE FUNCTION rt_mood_json(rt_mood) RETURNS json LANGUAGE sql AS $$ SELECT '"cast was called"'::json $$;
CREATE CAST (rt_mood AS json) WITH FUNCTION rt_mood_json(rt_mood);
CREATE TABLE rt_feeling (id int PRIMARY KEY, m rt_mood);
INSERT INTO rt_feeling VALUES (1, 'happy');
SELECT backup_id AS b FROM batchguard.export_backup('rt_feeling') \gset
SELECT "row" FROM batchguard.backup_rows(:'b');

-- 10. Diamonds: 14 tables, each with two references to the one before, export linearly
-- (1.0 generated SQL that doubled per level), every row once.
DO $$
BEGIN
    CREATE TABLE rt_d0 (id int PRIMARY KEY);
    INSERT INTO rt_d0 VALUES (1);
    FOR i IN 1..13 LOOP
        EXECUTE format('CREATE TABLE rt_d%s (id int PRIMARY KEY, l int REFERENCES rt_d%s ON DELETE CASCADE,'
                       ' r int REFERENCES rt_d%s ON DELETE CASCADE)', i, i - 1, i - 1);
        EXECUTE format('INSERT INTO rt_d%s VALUES (1, 1, 1)', i);
    END LOOP;
END
$$;
SELECT total_rows, pg_catalog.array_length(tables, 1) AS tables FROM batchguard.export_backup('rt_d0');
SELECT table_name, rows FROM batchguard.delete_preview('rt_d0', '{1}') ORDER BY table_name COLLATE "C" LIMIT 3;

-- 11. Restore writes only into a table of the owner recorded in the backup (or the
-- caller's own): a look-alike of another owner under the old name gets nothing.
CREATE ROLE regress_rt_eve;
CREATE TABLE rt_private (id int PRIMARY KEY, secret text);
INSERT INTO rt_private VALUES (1, 's3cret');
SELECT r -> 'backup' ->> 'backup_id' AS b FROM batchguard.delete_with_backup('rt_private', '{1}') r \gset
ALTER TABLE rt_private RENAME TO rt_private_moved;
CREATE TABLE rt_private (id int PRIMARY KEY, secret text);
ALTER TABLE rt_private OWNER TO regress_rt_eve;
SELECT pg_temp.error_of(format('SELECT batchguard.restore_backup(%L)', :'b'));
SELECT count(*) AS leaked FROM rt_private;
-- ... unless the caller names the table to restore into (restore_backup_into): here the
-- owner's renamed table
SELECT batchguard.restore_backup_into(:'b', '{"public.rt_private": "rt_private_moved"}') - 'backup_id';
SELECT * FROM rt_private_moved;
SELECT count(*) AS leaked FROM rt_private;
SELECT detail -> 'targets' AS audited_targets FROM batchguard.audit
 WHERE backup_id = :'b' AND action = 'restore';
DROP TABLE rt_private;
DROP ROLE regress_rt_eve;

-- 12. Restore writes only where the backup's maker could write when the backup was made:
-- the rows of a table it could only read do not come back through restore, even after it
-- was granted INSERT (backup_rows still shows them).
CREATE ROLE regress_rt_reader;
CREATE TABLE rt_readonly (id int PRIMARY KEY, v text);
INSERT INTO rt_readonly VALUES (1, 'a');
GRANT SELECT ON rt_readonly TO regress_rt_reader;
SET ROLE regress_rt_reader;
SELECT backup_id AS ro FROM batchguard.export_backup('rt_readonly') \gset
RESET ROLE;
DELETE FROM rt_readonly;
GRANT INSERT ON rt_readonly TO regress_rt_reader;
SET ROLE regress_rt_reader;
SELECT pg_temp.error_of(format('SELECT batchguard.restore_backup(%L)', :'ro'));
SELECT "row" FROM batchguard.backup_rows(:'ro');
RESET ROLE;
SELECT count(*) AS restored FROM rt_readonly;
DROP TABLE rt_readonly;
DROP ROLE regress_rt_reader;

-- 13. The graph is capped with clear errors, and the caps leave room for real schemas:
-- 65 tables and 256 foreign keys export; 65 levels, 257 tables or 1025 foreign keys are
-- refused (54000), naming the constraint or table one too many.
DO $$
BEGIN
    CREATE TABLE rt_star (id int PRIMARY KEY);
    INSERT INTO rt_star VALUES (1);
    FOR i IN 1..64 LOOP
        EXECUTE format('CREATE TABLE rt_star%s (id int PRIMARY KEY, a int REFERENCES rt_star,'
                       ' b int REFERENCES rt_star, c int REFERENCES rt_star, d int REFERENCES rt_star)', i);
        EXECUTE format('INSERT INTO rt_star%s VALUES (1, 1, 1, 1, 1)', i);
    END LOOP;
END
$$;
SELECT total_rows, pg_catalog.array_length(tables, 1) AS tables,
       (SELECT count(*) FROM pg_constraint WHERE confrelid = 'rt_star'::regclass) AS foreign_keys
  FROM batchguard.export_backup('rt_star');
DO $$
BEGIN
    FOR i IN 65..256 LOOP
        EXECUTE format('CREATE TABLE rt_star%s (id int PRIMARY KEY, a int REFERENCES rt_star)', i);
    END LOOP;
END
$$;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('rt_star')$$);
DO $$
BEGIN
    FOR i IN 1..256 LOOP
        EXECUTE format('DROP TABLE rt_star%s', i);
    END LOOP;
    CREATE TABLE rt_many (id int PRIMARY KEY, a int);
    FOR i IN 1..1025 LOOP
        EXECUTE format('ALTER TABLE rt_many ADD CONSTRAINT rt_many_%s FOREIGN KEY (a) REFERENCES rt_star', i);
    END LOOP;
END
$$;
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('rt_star')$$);
DROP TABLE rt_many, rt_star;
DO $$
BEGIN
    CREATE TABLE rt_chain0 (id int PRIMARY KEY);
    FOR i IN 1..65 LOOP
        EXECUTE format('CREATE TABLE rt_chain%s (id int PRIMARY KEY, up int REFERENCES rt_chain%s ON DELETE CASCADE)',
                       i, i - 1);
    END LOOP;
END
$$;
SELECT pg_temp.error_of($$SELECT batchguard.delete_with_backup('rt_chain0', '{1}')$$);
SELECT pg_temp.error_of($$SELECT * FROM batchguard.delete_preview('rt_chain0', '{1}')$$);
DO $$
BEGIN
    FOR i IN REVERSE 65..0 LOOP
        EXECUTE format('DROP TABLE rt_chain%s', i);
    END LOOP;
END
$$;

DROP TABLE rt_b, rt_a CASCADE;
DROP TABLE rt_c, rt_p, rt_self, rt_tag, rt_owner, rt_doc, rt_log, rt_money, rt_r2, rt_q2, rt_q,
    rt_customer, rt_feeling, rt_private_moved;
DROP FUNCTION rt_log_it();
DROP CAST (rt_mood AS json);
DROP FUNCTION rt_mood_json(rt_mood);
DROP TYPE rt_mood;
DO $$
BEGIN
    FOR i IN REVERSE 13..0 LOOP
        EXECUTE format('DROP TABLE rt_d%s', i);
    END LOOP;
END
$$;

-- clean up: this suite's backups (in the database: their chunks go with their rows) and
-- their audit rows; other suites run at the same time, so only those of its rt_ tables
CREATE TEMP TABLE rt_backups AS
    SELECT backup_id FROM batchguard.backups WHERE source_table LIKE 'public.rt\_%';
DELETE FROM batchguard.audit WHERE backup_id IN (SELECT backup_id FROM rt_backups);
SELECT count(*) > 0 AS backups_deleted FROM rt_backups;
DELETE FROM batchguard.backups WHERE backup_id IN (SELECT backup_id FROM rt_backups);
