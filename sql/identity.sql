-- Owner identity: mapped roles (e.g. PostgREST's request.jwt.claims -> sub), administrators.
\i test/helpers.sql
SET client_min_messages = warning;
DELETE FROM batchguard.batch_items;  -- start from no rows: the administrator lists them all
DELETE FROM batchguard.batches;
CREATE ROLE regress_bg_web;          -- an application role trusted to name its end users
CREATE ROLE regress_bg_plain;        -- an ordinary role
CREATE ROLE regress_bg_auditor;      -- will be an administrator
CREATE ROLE "regress_bg_web/user-1"; -- a role named like one of web's end users

-- only superusers map identities
SET ROLE regress_bg_plain;
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_bg_plain', 'myapp.user_id')$$);
SELECT pg_temp.error_of($$SELECT batchguard.unmap_identity('regress_bg_plain')$$);
RESET ROLE;

-- bad input
SELECT pg_temp.error_of($$SELECT batchguard.map_identity(NULL, 'request.jwt.claims', 'sub')$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_bg_web', NULL)$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_bg_web', '')$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_bg_web', 'x; DROP TABLE y')$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity('regress_bg_web', 'request.jwt.claims', '')$$);
SELECT pg_temp.error_of($$SELECT batchguard.map_identity(4000000000::oid::regrole, 'a.b')$$);
SELECT pg_temp.error_of($$SELECT batchguard.unmap_identity(NULL)$$);
SELECT count(*) AS no_mapping_yet FROM batchguard.identity_map;

-- map web: its end user comes from the JWT claims' "sub"
SELECT batchguard.map_identity('regress_bg_web', 'request.jwt.claims', 'sub');
SELECT role, setting, json_key FROM batchguard.identity_map;
SELECT batchguard.map_identity('regress_bg_web', 'request.jwt.claims', 'sub');  -- again: same mapping
SELECT count(*) AS one_mapping FROM batchguard.identity_map;

-- PostgREST's way: a transaction sets the role and the claims locally
BEGIN;
SET LOCAL ROLE regress_bg_web;
SELECT set_config('request.jwt.claims', '{"sub": "user-1", "role": "regress_bg_web"}', true) IS NOT NULL AS claims_set;
SELECT batchguard.current_owner();
SELECT batchguard.complete_item('export', 'a') AS user_1_writes;
SELECT owner, job_id FROM batchguard.batches;
COMMIT;

BEGIN;
SET LOCAL ROLE regress_bg_web;
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
SET LOCAL ROLE regress_bg_web;
SELECT set_config('request.jwt.claims', '{"sub": "user-3"}', true) IS NOT NULL AS claims_set;
SELECT batchguard.current_owner();
COMMIT;

-- no identity, an empty one, a claim without the key, or claims that are not JSON: errors
SET ROLE regress_bg_web;
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SELECT pg_temp.error_of($$SELECT batchguard.complete_item('export', 'b')$$);
SELECT pg_temp.error_of($$SELECT count(*) FROM batchguard.batches$$);
SET request.jwt.claims = '';
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SET request.jwt.claims = '{"role": "regress_bg_web"}';
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
SET ROLE regress_bg_plain;
SET request.jwt.claims = '{"sub": "user-1"}';
SELECT batchguard.current_owner();
SELECT batchguard.load_checkpoint('export') IS NULL AS plain_sees_nothing;
RESET request.jwt.claims;
RESET ROLE;

-- a role named like "<mapped role>/<id>" is refused: it could be mistaken for that end user
SET ROLE "regress_bg_web/user-1";
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$);
SELECT pg_temp.error_of($$SELECT batchguard.load_checkpoint('export')$$);
RESET ROLE;

-- a mapping without a JSON key reads the setting itself (an ORM sets it per transaction)
SELECT batchguard.map_identity('regress_bg_plain', 'myapp.user_id');
BEGIN;
SET LOCAL ROLE regress_bg_plain;
SET LOCAL myapp.user_id = 'alice@example.com';
SELECT batchguard.current_owner();
COMMIT;

-- administrators (members of batchguard_admin) read every owner's rows; functions still
-- act on the caller's own rows only
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'batchguard_admin') THEN
        CREATE ROLE batchguard_admin;
    END IF;
END $$;
GRANT batchguard_admin TO regress_bg_auditor;
SET ROLE regress_bg_auditor;
SELECT owner, job_id FROM batchguard.batches ORDER BY owner;
SELECT owner, job_id, completed FROM batchguard.batch_summary ORDER BY owner;
SELECT batchguard.calculate_progress('export') IS NULL AS functions_stay_per_owner;
RESET ROLE;
REVOKE batchguard_admin FROM regress_bg_auditor;
SET ROLE regress_bg_auditor;
SELECT count(*) AS no_longer_admin FROM batchguard.batches;
RESET ROLE;

-- unmapping: the role owns rows under its own name again
SELECT batchguard.unmap_identity('regress_bg_web') AS unmapped,
       batchguard.unmap_identity('regress_bg_web') AS again;
SET ROLE regress_bg_web;
SELECT batchguard.current_owner();
RESET ROLE;
SET ROLE "regress_bg_web/user-1";
SELECT pg_temp.error_of($$SELECT batchguard.current_owner()$$) AS still_refused_after_unmap;
RESET ROLE;
SELECT batchguard.unmap_identity('regress_bg_plain');

DROP ROLE regress_bg_web, regress_bg_plain, regress_bg_auditor, "regress_bg_web/user-1";
DELETE FROM batchguard.batch_items;
DELETE FROM batchguard.batches;
