-- Backups between two roles: row security decides what is exported; another owner's
-- backup is invisible and unreadable, with exactly the error of a backup that does not
-- exist; the tables are read-only to callers; administrators see and hold every backup.
\i test/helpers.sql
SET client_min_messages = warning;

CREATE ROLE regress_bk_alice;
CREATE ROLE regress_bk_bob;
CREATE TABLE sec_doc (id int PRIMARY KEY, owner name NOT NULL DEFAULT current_user, body text);
CREATE TABLE sec_note (id int PRIMARY KEY, doc_id int REFERENCES sec_doc ON DELETE CASCADE, body text);
CREATE TABLE sec_secret (id int PRIMARY KEY, doc_id int REFERENCES sec_doc, body text);
ALTER TABLE sec_doc ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_docs ON sec_doc USING (owner = current_user);
GRANT SELECT, INSERT ON sec_doc, sec_note TO regress_bk_alice, regress_bk_bob;
INSERT INTO sec_doc VALUES (1, 'regress_bk_alice', 'alice 1'), (2, 'regress_bk_alice', 'alice 2'),
                           (3, 'regress_bk_bob', 'bob 3');
INSERT INTO sec_note VALUES (10, 1, 'a'), (30, 3, 'b');

SET ROLE regress_bk_alice;
-- alice exports what she can read: bob's document 3 is not visible to her
SELECT total_rows, row_counts, owner FROM batchguard.export_backup('sec_doc', '{1,2,3}', false);
SELECT backup_id AS alice_backup FROM batchguard.export_backup('sec_doc', '{1}', false, label => 'alice') \gset
SELECT count(*) AS alice_sees FROM batchguard.backups;
-- a child table the caller cannot read stops the export with PostgreSQL's own error
SELECT pg_temp.error_of($$SELECT batchguard.export_backup('sec_doc', '{1}')$$);
-- the extension's tables are read-only
SELECT pg_temp.error_of($$UPDATE batchguard.backups SET legal_hold = true$$);
SELECT pg_temp.error_of($$DELETE FROM batchguard.backups$$);
SELECT pg_temp.error_of($$INSERT INTO batchguard.audit (backup_id, owner, actor, action) VALUES (gen_random_uuid(), 'x', 'x', 'x')$$);
RESET ROLE;

-- (helpers are created by the superuser, so that the roles own nothing)
CREATE FUNCTION pg_temp.same_error(call text, id text) RETURNS boolean LANGUAGE sql AS $$
    SELECT replace(pg_temp.error_of(format(call, id)), id, 'ID')
         = replace(pg_temp.error_of(format(call, '7c0b5a2e-1111-4222-8333-944455556666')),
                   '7c0b5a2e-1111-4222-8333-944455556666', 'ID')
$$;

SET ROLE regress_bk_bob;
SELECT count(*) AS bob_sees_backups, (SELECT count(*) FROM batchguard.audit) AS bob_sees_audit
  FROM batchguard.backups;
SELECT batchguard.get_backup(:'alice_backup') IS NULL AS foreign_is_null;
SELECT count(*) AS bob_lists FROM batchguard.get_user_backups();
SELECT batchguard.delete_backup(:'alice_backup') AS foreign_delete;
-- the same error, word for word, as for a backup that does not exist
SELECT call, pg_temp.same_error(call, :'alice_backup') AS same_as_unknown,
       replace(pg_temp.error_of(format(call, :'alice_backup')), :'alice_backup', 'ID') AS error
  FROM unnest(ARRAY['SELECT batchguard.read_backup(%L)',
                    'SELECT batchguard.read_backup(%L, 0, 10)',
                    'SELECT * FROM batchguard.backup_rows(%L)',
                    'SELECT batchguard.extend_backup(%L, now() + interval ''30 days'')',
                    'SELECT batchguard.hold_backup(%L)']) AS call;
SELECT total_rows FROM batchguard.export_backup('sec_doc', '{1,2,3}', false);
RESET ROLE;

-- administrators (members of batchguard_admin) see every backup and may hold any. The
-- role is cluster-wide: created here when missing (and dropped at the end), as an
-- operator would.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'batchguard_admin') AS create_admin_role \gset
\set QUIET on
\if :create_admin_role
CREATE ROLE batchguard_admin;
\endif
\set QUIET off
GRANT batchguard_admin TO regress_bk_bob;
SET ROLE regress_bk_bob;
SELECT owner, count(*) AS admin_sees FROM batchguard.backups WHERE owner LIKE 'regress\_bk\_%'
 GROUP BY owner ORDER BY owner;
SELECT legal_hold, owner FROM batchguard.hold_backup(:'alice_backup');
-- but downloads stay the owner's
SELECT replace(pg_temp.error_of(format('SELECT batchguard.read_backup(%L)', :'alice_backup')), :'alice_backup', 'ID');
RESET ROLE;
REVOKE batchguard_admin FROM regress_bk_bob;
SELECT actor, action FROM batchguard.audit WHERE backup_id = :'alice_backup' ORDER BY audit_id;

SET ROLE regress_bk_alice;
SELECT replace(pg_temp.error_of(format('SELECT batchguard.delete_backup(%L)', :'alice_backup')), :'alice_backup', 'ID');
RESET ROLE;

-- clean up: the roles' backups (released from hold), their audit rows, the tables, the roles
UPDATE batchguard.backups SET legal_hold = false WHERE owner LIKE 'regress\_bk\_%';
SET ROLE regress_bk_alice;
SELECT count(*) FILTER (WHERE batchguard.delete_backup(backup_id)) AS alice_deleted FROM batchguard.backups;
SET ROLE regress_bk_bob;
SELECT count(*) FILTER (WHERE batchguard.delete_backup(backup_id)) AS bob_deleted FROM batchguard.backups;
RESET ROLE;
DELETE FROM batchguard.audit WHERE owner LIKE 'regress\_bk\_%';
DROP TABLE sec_secret, sec_note, sec_doc;
DROP ROLE regress_bk_alice;
DROP ROLE regress_bk_bob;
\set QUIET on
\if :create_admin_role
DROP ROLE batchguard_admin;
\endif
\set QUIET off
