-- Protected tables, 1.0 -> 1.1 (issue 17): new in 1.1, the same objects as protect.sql.

-- Protected tables (issue 17): every DELETE on a protected table, from any client, and
-- the rows foreign-key actions remove or change in the tables it covers, go into one backup per
-- transaction, written before the transaction commits (docs/api.md, "Protected tables").
CREATE TABLE batchguard.protections (
    source           regclass PRIMARY KEY,
    protected_by     text NOT NULL,
    retention        interval,
    include_children boolean NOT NULL,
    -- every table whose deletes are backed up: the source, its partitions and (with
    -- include_children) the tables its ON DELETE CASCADE / SET NULL / SET DEFAULT foreign
    -- keys reach, and theirs
    covered          regclass[] NOT NULL,
    protected_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE batchguard.protections IS
    'The protected tables (written by protect_table and unprotect_table only)';
REVOKE ALL ON batchguard.protections FROM PUBLIC;
GRANT SELECT ON batchguard.protections TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('batchguard.protections', '');

CREATE VIEW batchguard.protected_tables AS
SELECT p.source AS table_name, p.protected_by, p.retention, p.include_children,
       ARRAY(SELECT c FROM pg_catalog.unnest(p.covered) WITH ORDINALITY AS x(c, n)
              WHERE c OPERATOR(pg_catalog.<>) p.source ORDER BY n) AS covered_tables,
       p.protected_at
  FROM batchguard.protections p;
COMMENT ON VIEW batchguard.protected_tables IS
    'Each protected table, who protected it, the retention of its backups and the other '
    'tables whose deletes its protection backs up (partitions, children reached through '
    'ON DELETE CASCADE, SET NULL or SET DEFAULT foreign keys)';
GRANT SELECT ON batchguard.protected_tables TO PUBLIC;

CREATE FUNCTION batchguard.protect_table(source regclass, retention interval DEFAULT NULL,
                                         include_children boolean DEFAULT true)
    RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_protect_table';
COMMENT ON FUNCTION batchguard.protect_table(regclass, interval, boolean) IS
    'Owner of the table: every DELETE on it (and what its foreign keys'' ON DELETE '
    'actions remove or change) is backed up before the transaction commits; TRUNCATE and '
    'DROP TABLE are refused. Called again, updates the protection';

CREATE FUNCTION batchguard.unprotect_table(source regclass)
    RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_unprotect_table';
COMMENT ON FUNCTION batchguard.unprotect_table(regclass) IS
    'Owner of the table: removes its protection; false when it was not protected';

CREATE FUNCTION batchguard.last_backup_id()
    RETURNS uuid
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_last_backup_id';
COMMENT ON FUNCTION batchguard.last_backup_id() IS
    'In a transaction that deleted from protected tables: the id of the backup it will '
    'commit (NULL while it deleted no row); else that of the last such transaction this '
    'session committed (NULL if none, or if it deleted no row)';

CREATE FUNCTION batchguard._protected_delete() RETURNS trigger
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_protected_delete';
COMMENT ON FUNCTION batchguard._protected_delete() IS
    'Internal to protect_table: collects the deleted rows (statement-level AFTER DELETE '
    'trigger with a transition table) and the rows ON DELETE SET NULL / SET DEFAULT '
    'change (AFTER UPDATE trigger with both transition tables)';

CREATE FUNCTION batchguard._protected_truncate() RETURNS trigger
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_protected_truncate';
COMMENT ON FUNCTION batchguard._protected_truncate() IS
    'Internal to protect_table: refuses TRUNCATE of a protected table';

CREATE FUNCTION batchguard._protected_drop() RETURNS event_trigger
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_protected_drop';
COMMENT ON FUNCTION batchguard._protected_drop() IS
    'Internal to protect_table: refuses DROP TABLE of a protected table, and dropping its '
    'protection triggers';

CREATE EVENT TRIGGER batchguard_protected_drop ON sql_drop
    EXECUTE FUNCTION batchguard._protected_drop();
