-- Owner identity, 1.0 -> 1.1: mappings name the role whose sessions are trusted (a
-- SECURITY DEFINER function of a mapped role must not trust its caller's claims); owners
-- are bound to their role, so a role created again under a dropped role's name does not
-- get its rows.
ALTER TABLE batchguard.identity_map ADD COLUMN session_role regrole;

CREATE FUNCTION batchguard.map_identity(role regrole, setting text, json_key text,
                                        session_role regrole)
    RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_map_identity';
COMMENT ON FUNCTION batchguard.map_identity(regrole, text, text, regrole) IS
    'Superuser only: as map_identity(role, setting, json_key), trusting the identity only in '
    'sessions of members of session_role (e.g. PostgREST''s authenticator)';
REVOKE EXECUTE ON FUNCTION batchguard.map_identity(regrole, text, text, regrole) FROM PUBLIC;

CREATE TABLE batchguard.owner_roles (
    role_name  text PRIMARY KEY,
    role       regrole NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE batchguard.owner_roles IS
    'The role whose rows are recorded under each role name (and its end users'' names)';
REVOKE ALL ON batchguard.owner_roles FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('batchguard.owner_roles', '');

-- The owners of 1.0's rows are bound to the roles of their names now; a name whose role
-- no longer exists is bound to no role (OID 0), so a role created under it later does not
-- get those rows.
INSERT INTO batchguard.owner_roles (role_name, role)
SELECT o.role_name, coalesce(r.oid, 0::pg_catalog.oid)::pg_catalog.regrole
  FROM (SELECT pg_catalog.split_part(owner, '/', 1) AS role_name FROM batchguard.batches
        UNION SELECT pg_catalog.split_part(owner, '/', 1) FROM batchguard.backups
        UNION SELECT pg_catalog.split_part(owner, '/', 1) FROM batchguard.audit) AS o
  LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) o.role_name;

CREATE FUNCTION batchguard.adopt_owner(role regrole) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_adopt_owner';
COMMENT ON FUNCTION batchguard.adopt_owner(regrole) IS
    'Superuser only: the rows recorded under the role''s name, left by a dropped role of that '
    'name, belong to this role from now on; true if they belonged to another role';
REVOKE EXECUTE ON FUNCTION batchguard.adopt_owner(regrole) FROM PUBLIC;
