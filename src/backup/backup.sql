-- Backups: export_backup, downloads, backup contents, retention and legal hold.

CREATE TABLE batchguard.backups (
    backup_id          uuid PRIMARY KEY,
    owner              text NOT NULL,
    label              text,
    source_table       text NOT NULL,
    tables             text[] NOT NULL,
    row_counts         jsonb NOT NULL,
    total_rows         bigint NOT NULL CHECK (total_rows >= 0),
    compressed_bytes   bigint NOT NULL CHECK (compressed_bytes >= 0),
    uncompressed_bytes bigint NOT NULL CHECK (uncompressed_bytes >= 0),
    file_sha256        text NOT NULL,
    body_sha256        text NOT NULL,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    legal_hold         boolean NOT NULL DEFAULT false,
    -- ok; missing, unreadable: a file-storage backup whose file is gone or cannot be read
    -- here; detached: a file-storage backup restored from a dump (or carried by pg_upgrade
    -- without its file) until attach_backup_files(); expired is shown, never stored
    status             text NOT NULL DEFAULT 'ok'
                       CHECK (status IN ('ok', 'missing', 'expired', 'unreadable', 'detached')),
    -- names the file: <backup_directory>/<file_folder>/<backup_id>-<creating_xid>.jsonl.zst
    creating_xid       xid8 NOT NULL,
    include_children   boolean NOT NULL,
    format_version     integer NOT NULL,
    -- delete_with_backup: per table, what the delete did to the rows (delete, set null,
    -- set default) and the columns it changed; NULL for export_backup
    delete_actions     jsonb,
    -- who placed the legal hold: the owner, or an administrator (then only an
    -- administrator releases it)
    legal_hold_by      text CHECK (legal_hold_by IN ('owner', 'admin')),
    -- where the backup's bytes are: 'database' (batchguard.backup_chunks, WAL-logged with
    -- the row) or 'file' (node-local)
    storage            text NOT NULL CHECK (storage IN ('database', 'file')),
    -- file storage: the folder under batchguard.backup_directory ("<database oid>", or
    -- "<database oid>-<server instance>" for a copy of the cluster sharing the directory)
    -- and the system identifier of the cluster that wrote the file
    file_folder        text,
    file_cluster       bigint,
    CONSTRAINT backups_file_location_check
        CHECK ((storage = 'file') = (file_folder IS NOT NULL AND file_cluster IS NOT NULL))
);
CREATE INDEX ON batchguard.backups (owner, created_at);
CREATE INDEX ON batchguard.backups (expires_at) WHERE NOT legal_hold;
COMMENT ON TABLE batchguard.backups IS
    'One row per backup file: owner, contents, sizes, checksums, retention and legal hold. '
    'The row is the only truth: a file without a row is an orphan';

-- In-database storage: the backup file's bytes in 1 MiB chunks, stored EXTERNAL (they are
-- compressed already: never compressed again, sliced into TOAST rows). Written by the
-- exporting transaction, removed with the backups row.
CREATE TABLE batchguard.backup_chunks (
    backup_id uuid NOT NULL,
    chunk     integer NOT NULL CHECK (chunk >= 0),
    data      bytea NOT NULL,
    PRIMARY KEY (backup_id, chunk),
    -- deferred: the chunks are written before their row, which is inserted once complete
    CONSTRAINT backup_chunks_backup_id_fkey FOREIGN KEY (backup_id)
        REFERENCES batchguard.backups ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
ALTER TABLE batchguard.backup_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
COMMENT ON TABLE batchguard.backup_chunks IS
    'The bytes of the backups stored in the database (storage = ''database''), in order; '
    'read through read_backup() and backup_rows()';

CREATE TABLE batchguard.audit (
    audit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    backup_id  uuid NOT NULL,
    owner      text NOT NULL,  -- the backup's owner
    actor      text NOT NULL,  -- who did it (current_owner() of the caller)
    action     text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX ON batchguard.audit (backup_id);
COMMENT ON TABLE batchguard.audit IS
    'One row per backup export, download, deletion, extension, hold, restore and delete with '
    'backup: who, when, which backup, what happened';

ALTER TABLE batchguard.backups ENABLE ROW LEVEL SECURITY;
ALTER TABLE batchguard.audit ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_reads ON batchguard.backups FOR SELECT
    USING (owner = (SELECT batchguard.current_owner()) OR (SELECT batchguard._is_admin()));
CREATE POLICY owner_reads ON batchguard.audit FOR SELECT
    USING (owner = (SELECT batchguard.current_owner()) OR (SELECT batchguard._is_admin()));
GRANT SELECT ON batchguard.backups, batchguard.audit TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('batchguard.backups', '');
SELECT pg_catalog.pg_extension_config_dump('batchguard.backup_chunks', '');
SELECT pg_catalog.pg_extension_config_dump('batchguard.audit', '');
SELECT pg_catalog.pg_extension_config_dump('batchguard.audit_audit_id_seq', '');

CREATE FUNCTION batchguard.export_backup(source regclass, ids text[] DEFAULT NULL,
                                         include_children boolean DEFAULT true,
                                         retention interval DEFAULT NULL,
                                         label text DEFAULT NULL)
    RETURNS batchguard.backups
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_export_backup';
COMMENT ON FUNCTION batchguard.export_backup(regclass, text[], boolean, interval, text) IS
    'Writes the rows of source whose primary key is in ids (all readable rows when NULL) and '
    'the rows that reference them to a compressed backup file; returns its backups row';

CREATE FUNCTION batchguard.get_backup(backup_id uuid) RETURNS batchguard.backups
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_get_backup';
COMMENT ON FUNCTION batchguard.get_backup(uuid) IS
    'The caller''s backup (status ok, expired, missing, unreadable or detached); NULL if unknown';

CREATE FUNCTION batchguard.get_user_backups() RETURNS SETOF batchguard.backups
    LANGUAGE c STABLE PARALLEL UNSAFE ROWS 20
    AS 'MODULE_PATHNAME', 'batchguard_get_user_backups';
COMMENT ON FUNCTION batchguard.get_user_backups() IS
    'The caller''s backups, newest first';

CREATE FUNCTION batchguard.read_backup(backup_id uuid, "offset" bigint DEFAULT 0,
                                       length bigint DEFAULT NULL) RETURNS bytea
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_read_backup';
COMMENT ON FUNCTION batchguard.read_backup(uuid, bigint, bigint) IS
    'The compressed backup file, whole (SHA-256 verified) or a chunk from offset';

CREATE FUNCTION batchguard.backup_rows(backup_id uuid)
    RETURNS TABLE(table_name text, "row" jsonb, parent_table text, parent_key text)
    LANGUAGE c STABLE PARALLEL UNSAFE ROWS 1000
    AS 'MODULE_PATHNAME', 'batchguard_backup_rows';
COMMENT ON FUNCTION batchguard.backup_rows(uuid) IS
    'The rows of a backup, decompressed while streaming, verified at the end';

CREATE FUNCTION batchguard.delete_backup(backup_id uuid) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_delete_backup';
COMMENT ON FUNCTION batchguard.delete_backup(uuid) IS
    'Removes the caller''s backup (row now, file at commit); false if unknown; refused on hold';

CREATE FUNCTION batchguard.extend_backup(backup_id uuid, until timestamptz)
    RETURNS batchguard.backups
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_extend_backup';
COMMENT ON FUNCTION batchguard.extend_backup(uuid, timestamptz) IS
    'Keeps the caller''s backup until the given time (at most batchguard.max_backup_retention '
    'after its creation)';

CREATE FUNCTION batchguard.hold_backup(backup_id uuid, hold boolean DEFAULT true)
    RETURNS batchguard.backups
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_hold_backup';
COMMENT ON FUNCTION batchguard.hold_backup(uuid, boolean) IS
    'Sets or releases a legal hold (no expiry removes a held backup); the owner or a member '
    'of batchguard_admin';

CREATE FUNCTION batchguard.cleanup_expired_backups(dry_run boolean DEFAULT false)
    RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_cleanup_expired_backups';
COMMENT ON FUNCTION batchguard.cleanup_expired_backups(boolean) IS
    'Removes expired backups not on legal hold (row now, file once the deletion commits); '
    'a superuser cleans every owner''s, anyone else their own. dry_run only counts them';

CREATE FUNCTION batchguard._export_progress()
    RETURNS TABLE(pid integer, datid oid, usesysid oid, backup_id uuid, phase text,
                  rows_written bigint, bytes_written bigint, started_at timestamptz)
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'batchguard_export_progress';
COMMENT ON FUNCTION batchguard._export_progress() IS
    'Internal (export_progress): the exports running now, from shared memory';

CREATE VIEW batchguard.export_progress AS
SELECT p.pid, p.datid, d.datname, p.usesysid, r.rolname AS usename, p.backup_id, p.phase,
       p.rows_written, p.bytes_written, p.started_at
  FROM batchguard._export_progress() p
  LEFT JOIN pg_catalog.pg_database d ON d.oid = p.datid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = p.usesysid;
COMMENT ON VIEW batchguard.export_progress IS
    'One row per export_backup running now (the caller''s own; all for pg_read_all_stats), '
    'like pg_stat_progress_copy; needs shared_preload_libraries = ''pg_batchguard''';
GRANT SELECT ON batchguard.export_progress TO PUBLIC;

CREATE FUNCTION batchguard.attach_backup_files(from_directory text DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_attach_backup_files';
REVOKE ALL ON FUNCTION batchguard.attach_backup_files(text) FROM PUBLIC;
COMMENT ON FUNCTION batchguard.attach_backup_files(text) IS
    'Superuser: links the files of this database''s detached file backups (restored from a '
    'dump, or carried by pg_upgrade) into its own backup folder, found under '
    'batchguard.backup_directory or from_directory; returns how many were attached';

CREATE FUNCTION batchguard.move_backups_to_database(backup_ids uuid[] DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_move_backups_to_database';
REVOKE ALL ON FUNCTION batchguard.move_backups_to_database(uuid[]) FROM PUBLIC;
COMMENT ON FUNCTION batchguard.move_backups_to_database(uuid[]) IS
    'Superuser: moves file backups (those listed, or all of this database''s) into the '
    'database (storage = ''database''), verified; each file is removed once the move commits';
