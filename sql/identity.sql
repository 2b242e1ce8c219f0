-- Owner identity: mapped roles (e.g. PostgREST's request.jwt.claims -> sub), administrators.
-- Other suites run at the same time: counts and lists are of this suite's roles and owners.
\i test/helpers.sql
SET client_min_messages = warning;
CREATE ROLE regress_id_web;          -- an application role trusted to name its end users
CREATE ROLE regress_id_plain;        -- an ordinary role
CREATE ROLE regress_id_auditor;      -- will be an administrator
CREATE ROLE "regress_id_web/user-1"; -- a role named like one of web's end users

-- only superusers map identities
SET ROLE regress_id_plain;
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_id_plain', 'myapp.user_id')$$);
SELECT pg_temp.error_of($$SELECT batchguard.unmap_identity('regress_id_plain')$$);
RESET ROLE;

-- bad input
SELECT pg_temp.error_of($$SELECT batchguard.map_identity(NULL, 'request.jwt.claims', 'sub')$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_id_web', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_id_web', '')$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_id_web', 'x; DROP TABLE y')$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_id_web', 'request.jwt.claims', '')$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity(4000000000::oid::regrole, 'a.b')$$);
SELECT pg_temp.error_of($$SELECT batchguard.unmap_identity(NULL)$$);
SELECT count(*) AS no_mapping_yet FROM batchguard.identity_map WHERE role::text LIKE 'regress\_id\_%';

-- map web: its end user comes from the JWT claims' "sub"
SELECT batchguard.map_identity('regress_id_web', 'request.jwt.claims', 'sub');
SELECT role, setting, json_key FROM batchguard.identity_map WHERE role::text LIKE 'regress\_id\_%';
SELECT batchguard.map_identity('regress_id_web', 'request.jwt.claims', 'sub');  -- again: same mapping
SELECT count(*) AS one_mapping FROM batchguard.identity_map WHERE role::text LIKE 'regress\_id\_%';

-- PostgREST's way: a transaction sets the role and the claims locally
BEGIN;
SET LOCAL ROLE regress_id_web;
SELECT set_config('request.jwt.claims', '{"sub": "user-1", "role": "regress_id_web"}', true) IS NOT NULL AS claims_set;
SELECT batchguard.current_owner();
SELECT batchguard.complete_item('export', 'a') AS user_1_writes;
SELECT owner, job_id FROM batchguard.batches;
COMMIT;

BEGIN;
SET LOCAL ROLE regress_id_web;
SELECT set_config('request.jwt.claims', '{"sub": "user-2"}', true) IS NOT NULL AS claims_set;
SELECT batchguard.current_owner();
SELECT batchguard.load_checkpoint('export') IS NULL AS user_2_sees_nothing,
       batchguard.cleanup_checkpoint('export') AS user_2_cannot_discard;
SELECT count(*) AS user_2_rows FROM batchguard.batches;
COMMIT;

-- The same with every catalog cache discarded at each lookup (debug_discard_caches, which
-- only a cassert build allows; elsewhere it stays 0): the mapping must be copied before
-- the role's name is looked up, since that lookup clears the identity cache.
BEGIN;
DO $$BEGIN
    IF (SELECT max_val::int FROM pg_settings WHERE name = 'debug_discard_caches') > 0 THEN
        PERFORM set_config('debug_discard_caches', '1', true);
    END IF;
END$$;
SET LOCAL ROLE regress_id_web;
SELECT set_config('request.jwt.claims', '{"sub": "user-3"}', true) IS NOT NULL AS claims_set;
SELECT batchguard.current_owner();
COMMIT;

-- no identity, an empty one, a claim without the key, or claims that are not JSON: errors
SET ROLE regress_id_web;
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('export', 'b')$$);
SELECT pg_temp.error_of($$SELECT count(*) FROM batchguard.batches$$);
SET request.jwt.claims = '';
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SET request.jwt.claims = '{"role": "regress_id_web"}';
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SET request.jwt.claims = '{"sub": ""}';
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SET request.jwt.claims = 'not json';
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SET request.jwt.claims = '{"sub": 42}';
SELECT batchguard.current_owner() AS numeric_sub;
RESET request.jwt.claims;
RESET ROLE;

-- an unmapped role cannot choose who it is by setting the same value
SET ROLE regress_id_plain;
SET request.jwt.claims = '{"sub": "user-1"}';
SELECT batchguard.current_owner();
SELECT batchguard.load_checkpoint('export') IS NULL AS plain_sees_nothing;
RESET request.jwt.claims;
RESET ROLE;

-- a role named like "<mapped role>/<id>" is refused: it could be mistaken for that end user
SET ROLE "regress_id_web/user-1";
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SELECT pg_temp.error_of($$SELECT batchguard.load_checkpoint('export')$$);
RESET ROLE;

-- a mapping without a JSON key reads the setting itself (an ORM sets it per transaction)
SELECT batchguard.map_identity('regress_id_plain', 'myapp.user_id');
BEGIN;
SET LOCAL ROLE regress_id_plain;
SET LOCAL myapp.user_id = 'alice@example.com';
SELECT batchguard.current_owner();
COMMIT;

-- administrators (members of batchguard_admin) read every owner's rows; functions still
-- act on the caller's own rows only: an administrator cannot pause, resume or discard
-- another owner's batch (it behaves like a batch that does not exist). The role is
-- cluster-wide: created here when missing (and dropped again at the end), as an operator would.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'batchguard_admin') AS create_admin_role \gset
\set QUIET on
\if :create_admin_role
CREATE ROLE batchguard_admin;
\endif
\set QUIET off
CREATE ROLE regress_id_other;
SET ROLE regress_id_other;
SELECT job_id FROM batchguard.start_batch('other-job', '{a,b}');
SELECT status FROM batchguard.pause_batch('other-job');
RESET ROLE;
GRANT batchguard_admin TO regress_id_auditor;
SET ROLE regress_id_auditor;
SELECT owner, job_id FROM batchguard.batches WHERE owner LIKE 'regress\_id\_%' ORDER BY owner;
SELECT owner, job_id, completed FROM batchguard.batch_summary WHERE owner LIKE 'regress\_id\_%' ORDER BY owner;
SELECT batchguard.calculate_progress('export') IS NULL AS functions_stay_per_owner;
SELECT pg_temp.error_of($$SELECT batchguard.resume_batch('other-job')$$) AS resume_foreign;
SELECT pg_temp.error_of($$SELECT batchguard.cancel_batch('other-job')$$) AS cancel_foreign;
SELECT pg_temp.error_of($$SELECT batchguard.retry_failed('other-job')$$) AS retry_foreign;
SELECT batchguard.cleanup_checkpoint('other-job') AS discard_foreign;
RESET ROLE;
SELECT state, (SELECT count(*) FROM batchguard.batch_items i WHERE i.batch_id = b.batch_id) AS items
  FROM batchguard.batches b WHERE owner = 'regress_id_other' AND job_id = 'other-job';
REVOKE batchguard_admin FROM regress_id_auditor;
SET ROLE regress_id_auditor;
SELECT count(*) AS no_longer_admin FROM batchguard.batches;
RESET ROLE;

-- unmapping: the role owns rows under its own name again
SELECT batchguard.unmap_identity('regress_id_web') AS unmapped,
       batchguard.unmap_identity('regress_id_web') AS again;
SET ROLE regress_id_web;
SELECT batchguard.current_owner();
RESET ROLE;
SET ROLE "regress_id_web/user-1";
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$) AS still_refused_after_unmap;
RESET ROLE;
SELECT batchguard.unmap_identity('regress_id_plain');

-- clean up: the suite's batches (of its roles and of web's end users), roles, admin role
DELETE FROM batchguard.batch_items WHERE owner LIKE 'regress\_id\_%';
DELETE FROM batchguard.batches WHERE owner LIKE 'regress\_id\_%';
DROP ROLE regress_id_web, regress_id_plain, regress_id_auditor, regress_id_other, "regress_id_web/user-1";
\set QUIET on
\if :create_admin_role
DROP ROLE batchguard_admin;
\endif
\set QUIET off
