-- Deletes with backup and restores: 1.0 -> 1.1 (issue 12).

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
