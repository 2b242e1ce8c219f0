-- Owner identity: who owns the rows a caller creates, and who may read everything.

CREATE FUNCTION batchguard.current_owner() RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'batchguard_current_owner';
COMMENT ON FUNCTION batchguard.current_owner() IS
    'The owner recorded on the rows the caller creates, and the only owner whose rows it sees';

CREATE TABLE batchguard.identity_map (
    role         regrole PRIMARY KEY,
    setting      text NOT NULL,
    json_key     text,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- the claims are trusted only in sessions whose session user is a member of this role;
    -- NULL: a mapping made by 1.0, trusted in any session (with a warning)
    session_role regrole
);
COMMENT ON TABLE batchguard.identity_map IS
    'Roles trusted to name their end users: role -> configuration setting (and JSON key) holding the identity';
REVOKE ALL ON batchguard.identity_map FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('batchguard.identity_map', '');

CREATE FUNCTION batchguard.map_identity(role regrole, setting text, json_key text DEFAULT NULL)
    RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_map_identity';
COMMENT ON FUNCTION batchguard.map_identity(regrole, text, text) IS
    'Superuser only: rows created under this role belong to "<role>/<identity>", read from the setting';
REVOKE EXECUTE ON FUNCTION batchguard.map_identity(regrole, text, text) FROM PUBLIC;

CREATE FUNCTION batchguard.map_identity(role regrole, setting text, json_key text,
                                        session_role regrole)
    RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_map_identity';
COMMENT ON FUNCTION batchguard.map_identity(regrole, text, text, regrole) IS
    'Superuser only: as map_identity(role, setting, json_key), trusting the identity only in '
    'sessions of members of session_role (e.g. PostgREST''s authenticator)';
REVOKE EXECUTE ON FUNCTION batchguard.map_identity(regrole, text, text, regrole) FROM PUBLIC;

CREATE FUNCTION batchguard.unmap_identity(role regrole) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_unmap_identity';
COMMENT ON FUNCTION batchguard.unmap_identity(regrole) IS
    'Superuser only: the role owns its rows under its own name again; true if it was mapped';
REVOKE EXECUTE ON FUNCTION batchguard.unmap_identity(regrole) FROM PUBLIC;

CREATE FUNCTION batchguard._is_admin() RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'batchguard_is_admin';
COMMENT ON FUNCTION batchguard._is_admin() IS
    'Internal (row security): true for members of the role batchguard_admin, who read every owner''s rows';

-- Which role owns the rows recorded under each role name: a role dropped and created again
-- under the same name has a new OID and does not get the old role's rows. A regrole is
-- dumped by name, so pg_dump / pg_restore bind each name to the role of that name there.
CREATE TABLE batchguard.owner_roles (
    role_name  text PRIMARY KEY,
    role       regrole NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE batchguard.owner_roles IS
    'The role whose rows are recorded under each role name (and its end users'' names)';
REVOKE ALL ON batchguard.owner_roles FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('batchguard.owner_roles', '');

CREATE FUNCTION batchguard.adopt_owner(role regrole) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_adopt_owner';
COMMENT ON FUNCTION batchguard.adopt_owner(regrole) IS
    'Superuser only: the rows recorded under the role''s name, left by a dropped role of that '
    'name, belong to this role from now on; true if they belonged to another role';
REVOKE EXECUTE ON FUNCTION batchguard.adopt_owner(regrole) FROM PUBLIC;
