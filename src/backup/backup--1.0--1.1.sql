-- Backups, 1.0 -> 1.1: a legal hold records who placed it; an administrator's hold is
-- released by an administrator only.
ALTER TABLE batchguard.backups
    ADD COLUMN legal_hold_by text CHECK (legal_hold_by IN ('owner', 'admin'));
-- Holds placed under 1.0: an administrator's when the last hold was placed by someone other
-- than the owner (only the owner and administrators could place one).
UPDATE batchguard.backups AS b
   SET legal_hold_by = CASE WHEN h.actor OPERATOR(pg_catalog.=) b.owner THEN 'owner' ELSE 'admin' END
  FROM (SELECT DISTINCT ON (a.backup_id) a.backup_id, a.actor FROM batchguard.audit AS a
         WHERE a.action OPERATOR(pg_catalog.=) 'hold'
         ORDER BY a.backup_id, a.audit_id DESC) AS h
 WHERE b.legal_hold AND h.backup_id OPERATOR(pg_catalog.=) b.backup_id;
UPDATE batchguard.backups SET legal_hold_by = 'owner' WHERE legal_hold AND legal_hold_by IS NULL;

-- Storage: where a backup's bytes live, the statuses of file backups, the
-- in-database chunks, and the two functions for files (attach after a restore, move into
-- the database). Backups made by 1.0 are files in <backup_directory>/<database oid>/,
-- written by this cluster: they stay there and keep working.
ALTER TABLE batchguard.backups DROP CONSTRAINT backups_status_check;
ALTER TABLE batchguard.backups ADD CONSTRAINT backups_status_check
    CHECK (status IN ('ok', 'missing', 'expired', 'unreadable', 'detached'));
ALTER TABLE batchguard.backups
    ADD COLUMN storage text CHECK (storage IN ('database', 'file')),
    ADD COLUMN file_folder text,
    ADD COLUMN file_cluster bigint;
UPDATE batchguard.backups
   SET storage = 'file',
       file_folder = (SELECT d.oid::pg_catalog.text FROM pg_catalog.pg_database d
                       WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()),
       file_cluster = (SELECT c.system_identifier FROM pg_catalog.pg_control_system() c);
ALTER TABLE batchguard.backups ALTER COLUMN storage SET NOT NULL;
ALTER TABLE batchguard.backups ADD CONSTRAINT backups_file_location_check
    CHECK ((storage = 'file') = (file_folder IS NOT NULL AND file_cluster IS NOT NULL));
COMMENT ON FUNCTION batchguard.get_backup(uuid) IS
    'The caller''s backup (status ok, expired, missing, unreadable or detached); NULL if unknown';

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

SELECT pg_catalog.pg_extension_config_dump('batchguard.backup_chunks', '');

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
