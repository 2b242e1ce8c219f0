-- Deletes with backup, delete previews, restores and purges.

CREATE FUNCTION batchguard.delete_preview(source regclass, ids text[])
    RETURNS TABLE(table_name text, action text, "rows" bigint, estimated_bytes bigint)
    LANGUAGE c STABLE PARALLEL UNSAFE ROWS 10
    AS 'MODULE_PATHNAME', 'batchguard_delete_preview';
COMMENT ON FUNCTION batchguard.delete_preview(regclass, text[]) IS
    'Per table, the rows a plain DELETE of ids would remove (delete) or change (set null, '
    'set default), and the references that would make it fail (restrict); changes nothing';

CREATE FUNCTION batchguard.delete_with_backup(source regclass, ids text[],
                                              retention interval DEFAULT NULL,
                                              label text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_delete_with_backup';
COMMENT ON FUNCTION batchguard.delete_with_backup(regclass, text[], interval, text) IS
    'Backs up what a DELETE of ids removes or changes, then deletes it, in the caller''s '
    'transaction; returns the backup row and the rows per table';

CREATE FUNCTION batchguard.restore_backup(backup_id uuid, on_conflict text DEFAULT 'error',
                                          dry_run boolean DEFAULT false)
    RETURNS jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_restore_backup';
COMMENT ON FUNCTION batchguard.restore_backup(uuid, text, boolean) IS
    'Puts the rows of the caller''s backup back (parents first), with the caller''s '
    'privileges; on_conflict error, skip or update; dry_run only counts';

CREATE PROCEDURE batchguard.purge_with_backup(job_id text, source regclass, ids text[] DEFAULT NULL,
                                              chunk_size integer DEFAULT 1000,
                                              retention interval DEFAULT NULL,
                                              all_rows boolean DEFAULT false)
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'batchguard_purge_with_backup';
COMMENT ON PROCEDURE batchguard.purge_with_backup(text, regclass, text[], integer, interval, boolean) IS
    'Deletes ids (or all_rows) of source in chunks, each backed up and deleted in its own '
    'transaction and checkpointed as an item of batch job_id; CALL it again to resume';

-- 1.1: the typed values of a backup of format 2, parsed under the settings recorded in
-- its header (restore_backup's INSERT then runs under the caller's own settings). The
-- column definition list names what to return: bg_table int4 (the header's table index),
-- bg_changed text[] (the columns a delete changed; NULL for a removed row), then
-- t<table>_c<column> for each wanted column, typed as the target column's base type.
CREATE FUNCTION batchguard._backup_values(backup_id uuid)
    RETURNS SETOF record
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_backup_values';
COMMENT ON FUNCTION batchguard._backup_values(uuid) IS
    'Internal to restore_backup: the typed values of one of the caller''s backups';

-- 1.1: restore_backup, with the table to restore into named by the caller for some tables
-- of the backup (restore_backup refuses a table whose owner is neither the one recorded in
-- the backup nor the caller).
CREATE FUNCTION batchguard.restore_backup_into(backup_id uuid, targets jsonb,
                                               on_conflict text DEFAULT 'error',
                                               dry_run boolean DEFAULT false)
    RETURNS jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_restore_backup_into';
COMMENT ON FUNCTION batchguard.restore_backup_into(uuid, jsonb, text, boolean) IS
    'restore_backup into the tables the caller names: targets maps a table of the backup '
    'to the table that receives its rows, whoever owns it';
