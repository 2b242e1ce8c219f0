-- Issue 13 (safe for untrusted tenants): claims trusted only from the sessions a mapping
-- names (Medium 8), legal holds released only by their kind of role (Medium 9), a role
-- dropped and created again does not inherit the old role's rows (Low 1), a salted
-- progress channel (Low 2), internal helpers robust to any input (Low 6), and the
-- maintenance procedure that commits each step on its own (Medium 6).
\i test/helpers.sql
SET client_min_messages = warning;
-- batchguard_admin is cluster-wide: created here when missing (and dropped at the end)
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'batchguard_admin') AS create_admin_role \gset
\set QUIET on
\if :create_admin_role
CREATE ROLE batchguard_admin;
\endif
\set QUIET off
CREATE ROLE regress_ts_web;            -- PostgREST's "authenticated": mapped to its JWT's sub
CREATE ROLE regress_ts_authenticator;  -- PostgREST's login role: SET ROLE regress_ts_web
GRANT regress_ts_web TO regress_ts_authenticator;
CREATE ROLE regress_ts_mallory;        -- an ordinary role that can log in
CREATE ROLE regress_ts_alice;
CREATE ROLE regress_ts_admin IN ROLE batchguard_admin;
CREATE TABLE ts_doc (id int PRIMARY KEY, body text);
INSERT INTO ts_doc SELECT g, 'doc ' || g FROM generate_series(1, 5) g;
GRANT SELECT ON ts_doc TO regress_ts_web, regress_ts_alice, regress_ts_mallory;

---------------------------------------------------------------------------------------
-- Medium 8: a SECURITY DEFINER function owned by a mapped role must not trust claims set
-- by whoever calls it.
---------------------------------------------------------------------------------------
CREATE FUNCTION ts_web_owner() RETURNS text LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog AS $$ SELECT batchguard.current_owner() $$;
ALTER FUNCTION ts_web_owner() OWNER TO regress_ts_web;

-- 1.0's three arguments: the session user must be a member of the mapped role itself
SELECT batchguard.map_identity('regress_ts_web', 'request.jwt.claims', 'sub');
SELECT role, setting, json_key, session_role FROM batchguard.identity_map WHERE role = 'regress_ts_web'::regrole;
-- PostgREST: its login role switches to the mapped role and sets the claims
SET SESSION AUTHORIZATION regress_ts_authenticator;
BEGIN;
SET LOCAL ROLE regress_ts_web;
SELECT set_config('request.jwt.claims', '{"sub": "victim-1"}', true) IS NOT NULL AS claims_set;
SELECT batchguard.current_owner();
SELECT backup_id AS victim_backup FROM batchguard.export_backup('ts_doc', '{1}') \gset
COMMIT;
-- mallory logs in, sets the same claims and calls web's SECURITY DEFINER function
SET SESSION AUTHORIZATION regress_ts_mallory;
SET request.jwt.claims = '{"sub": "victim-1"}';
SELECT pg_temp.error_of($$SELECT ts_web_owner()$$);
RESET request.jwt.claims;
RESET SESSION AUTHORIZATION;

-- a mapping that names the login role: only its sessions are trusted
SELECT batchguard.map_identity('regress_ts_web', 'request.jwt.claims', 'sub', 'regress_ts_authenticator');
SELECT role, setting, json_key, session_role FROM batchguard.identity_map WHERE role = 'regress_ts_web'::regrole;
SET SESSION AUTHORIZATION regress_ts_authenticator;
BEGIN;
SET LOCAL ROLE regress_ts_web;
SELECT set_config('request.jwt.claims', '{"sub": "victim-1"}', true) IS NOT NULL AS claims_set;
SELECT batchguard.current_owner(), (SELECT count(*) FROM batchguard.backups) AS victim_backups;
COMMIT;
-- web logging in itself is not its login role
SET SESSION AUTHORIZATION regress_ts_web;
SET request.jwt.claims = '{"sub": "victim-1"}';
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SELECT pg_temp.error_of($$SELECT count(*) FROM batchguard.backups$$);
RESET request.jwt.claims;
RESET SESSION AUTHORIZATION;
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_ts_web', 'request.jwt.claims', 'sub', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_ts_web', 'request.jwt.claims', NULL, 4000000000::oid::regrole)$$);
SET ROLE regress_ts_mallory;
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_ts_web', 'request.jwt.claims', 'sub', 'regress_ts_mallory')$$);
RESET ROLE;

-- a mapping made by 1.0 (no session role) keeps working, with a warning, until remapped
SELECT batchguard.unmap_identity('regress_ts_web');
INSERT INTO batchguard.identity_map (role, setting, json_key) VALUES ('regress_ts_web', 'request.jwt.claims', 'sub');
SET SESSION AUTHORIZATION regress_ts_mallory;
SET request.jwt.claims = '{"sub": "victim-1"}';
SELECT ts_web_owner() AS trusted_as_in_1_0;
RESET request.jwt.claims;
RESET SESSION AUTHORIZATION;
SELECT batchguard.map_identity('regress_ts_web', 'request.jwt.claims', 'sub', 'regress_ts_authenticator');
SELECT session_role FROM batchguard.identity_map WHERE role = 'regress_ts_web'::regrole;

---------------------------------------------------------------------------------------
-- Medium 9: a legal hold placed by an administrator is released only by an administrator.
---------------------------------------------------------------------------------------
SET ROLE regress_ts_alice;
SELECT backup_id AS alice_backup FROM batchguard.export_backup('ts_doc', '{2}') \gset
RESET ROLE;
SET ROLE regress_ts_admin;
SELECT legal_hold, legal_hold_by FROM batchguard.hold_backup(:'alice_backup');
RESET ROLE;
SET ROLE regress_ts_alice;
SELECT legal_hold, legal_hold_by FROM batchguard.get_backup(:'alice_backup');
SELECT replace(pg_temp.error_of(format('SELECT batchguard.hold_backup(%L, false)', :'alice_backup')), :'alice_backup', 'ID');
SELECT replace(pg_temp.error_of(format('SELECT batchguard.delete_backup(%L)', :'alice_backup')), :'alice_backup', 'ID');
-- holding it again herself does not turn it into her own hold
SELECT legal_hold, legal_hold_by FROM batchguard.hold_backup(:'alice_backup');
SELECT replace(pg_temp.error_of(format('SELECT batchguard.hold_backup(%L, false)', :'alice_backup')), :'alice_backup', 'ID');
RESET ROLE;
SET ROLE regress_ts_admin;
SELECT legal_hold, legal_hold_by FROM batchguard.hold_backup(:'alice_backup', false);
RESET ROLE;
-- her own hold she releases herself (and an administrator could too)
SET ROLE regress_ts_alice;
SELECT legal_hold, legal_hold_by FROM batchguard.hold_backup(:'alice_backup');
SELECT legal_hold, legal_hold_by FROM batchguard.hold_backup(:'alice_backup', false);
RESET ROLE;
SELECT action, actor, detail FROM batchguard.audit
 WHERE backup_id = :'alice_backup' AND action IN ('hold', 'release') ORDER BY audit_id;

---------------------------------------------------------------------------------------
-- Low 1: a role dropped and created again under the same name does not get the old
-- role's rows.
---------------------------------------------------------------------------------------
CREATE ROLE regress_ts_carol;
GRANT SELECT ON ts_doc TO regress_ts_carol;
SET ROLE regress_ts_carol;
SELECT job_id FROM batchguard.start_batch('carol-job', ARRAY['1', '2']);
SELECT backup_id AS carol_backup FROM batchguard.export_backup('ts_doc', '{3}') \gset
SELECT legal_hold FROM batchguard.hold_backup(:'carol_backup');
RESET ROLE;
REVOKE SELECT ON ts_doc FROM regress_ts_carol;
DROP ROLE regress_ts_carol;
CREATE ROLE regress_ts_carol;
SET ROLE regress_ts_carol;
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SELECT pg_temp.error_of($$SELECT count(*) FROM batchguard.batches$$);
SELECT pg_temp.error_of($$SELECT batchguard.get_incomplete_checkpoints()$$);
SELECT pg_temp.error_of($$SELECT batchguard.start_batch('carol-job-2')$$);
RESET ROLE;
-- nothing of the old carol's was removed, the held backup least of all
SELECT (SELECT count(*) FROM batchguard.batches WHERE owner = 'regress_ts_carol') AS old_batches,
       (SELECT legal_hold FROM batchguard.backups WHERE backup_id = :'carol_backup') AS still_held;
-- only a superuser hands the rows to the new role
SET ROLE regress_ts_alice;
SELECT pg_temp.error_of($$SELECT batchguard.adopt_owner('regress_ts_carol')$$);
RESET ROLE;
SELECT pg_temp.error_of($$SELECT batchguard.adopt_owner(NULL)$$);
SELECT batchguard.adopt_owner('regress_ts_carol') AS adopted, batchguard.adopt_owner('regress_ts_carol') AS again;
SET ROLE regress_ts_carol;
SELECT batchguard.current_owner(), (SELECT count(*) FROM batchguard.batches) AS batches;
RESET ROLE;
-- a role whose predecessor left no rows starts afresh
CREATE ROLE regress_ts_dave;
SET ROLE regress_ts_dave;
SELECT job_id FROM batchguard.start_batch('dave-job');
SELECT batchguard.cleanup_checkpoint('dave-job');
RESET ROLE;
DROP ROLE regress_ts_dave;
CREATE ROLE regress_ts_dave;
SET ROLE regress_ts_dave;
SELECT batchguard.current_owner(), (batchguard.start_batch('dave-job')).status;
SELECT batchguard.cleanup_checkpoint('dave-job');
RESET ROLE;
DROP ROLE regress_ts_dave;

---------------------------------------------------------------------------------------
-- Low 2: the progress channel is salted with a secret of this installation.
---------------------------------------------------------------------------------------
SET ROLE regress_ts_alice;
SELECT batchguard.progress_channel() ~ '^batchguard_progress_[0-9a-f]{32}$' AS channel_shape,
       batchguard.progress_channel() <> 'batchguard_progress_' ||
           left(encode(sha256(convert_to(batchguard.current_owner(), 'UTF8')), 'hex'), 32) AS not_the_owners_hash;
SELECT pg_temp.error_of($$SELECT channel_secret FROM batchguard.installation$$);
RESET ROLE;

---------------------------------------------------------------------------------------
-- Low 6: the internal helpers take any input.
---------------------------------------------------------------------------------------
SELECT pg_temp.error_of($$SELECT batchguard._batch_progress(ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::batchguard.batches)$$);
SELECT batchguard._batch_progress(ROW(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::batchguard.batches) IS NULL AS forged_row_is_null;
SELECT batchguard._batch_progress(NULL) IS NULL AS null_row_is_null;
SET ROLE regress_ts_alice;
SELECT p.status, p.completed FROM batchguard._batch_progress(ROW(-1, 'x', 'forged', false, NULL, '{}', 3, 'active', now(), NULL, NULL)::batchguard.batches) p;
SELECT pg_temp.error_of($$SELECT batchguard._batch_progress(ROW(-1, 'x', 'forged', false, NULL, '{}', 3, 'no such state', now(), NULL, NULL)::batchguard.batches)$$);
RESET ROLE;
SELECT batchguard._progress_bar(1e300) AS huge, batchguard._progress_bar(-1e300) AS negative,
       batchguard._progress_bar('NaN') AS nan, batchguard._progress_bar(100.001) AS just_over,
       batchguard._progress_bar(1e-300) AS tiny;
SELECT pg_temp.error_of($$SELECT batchguard._progress_bar(50, 0)$$);
SELECT pg_temp.error_of($$SELECT batchguard._progress_bar(50, 100000)$$);

---------------------------------------------------------------------------------------
-- Medium 6: CALL batchguard.maintain() runs a maintenance round, each step committed on
-- its own; inside a transaction block it is refused.
---------------------------------------------------------------------------------------
SET ROLE regress_ts_alice;
CALL batchguard.maintain();
SELECT pg_temp.error_of($$CALL batchguard.maintain()$$);
RESET ROLE;

-- clean up
UPDATE batchguard.backups SET legal_hold = false
 WHERE owner IN ('regress_ts_alice', 'regress_ts_carol', 'regress_ts_web/victim-1');
SET SESSION AUTHORIZATION regress_ts_authenticator;
BEGIN;
SET LOCAL ROLE regress_ts_web;
SELECT set_config('request.jwt.claims', '{"sub": "victim-1"}', true) IS NOT NULL AS claims_set;
SELECT count(batchguard.delete_backup(backup_id)) AS victim_deleted FROM batchguard.backups;
COMMIT;
RESET SESSION AUTHORIZATION;
SELECT batchguard.unmap_identity('regress_ts_web');
SET ROLE regress_ts_alice;
SELECT count(batchguard.delete_backup(backup_id)) AS alice_deleted FROM batchguard.backups;
SET ROLE regress_ts_carol;
SELECT count(batchguard.delete_backup(backup_id)) AS carol_deleted FROM batchguard.backups;
SELECT batchguard.cleanup_checkpoint('carol-job');
RESET ROLE;
DELETE FROM batchguard.audit WHERE owner LIKE 'regress_ts_%';
DELETE FROM batchguard.owner_roles WHERE role_name LIKE 'regress_ts_%';
DROP FUNCTION ts_web_owner();
DROP TABLE ts_doc;
DROP ROLE regress_ts_web, regress_ts_authenticator, regress_ts_mallory, regress_ts_alice,
          regress_ts_admin, regress_ts_carol;
\set QUIET on
\if :create_admin_role
DROP ROLE batchguard_admin;
\endif
\set QUIET off
