-- Maintenance: what the background workers run every batchguard.cleanup_interval, and
-- what pg_cron can schedule instead.

-- The transaction that created this installation of the extension: backup files older
-- than it (left by an earlier installation, before DROP EXTENSION) are never swept.
CREATE TABLE batchguard.installation (
    installed_xid xid8 NOT NULL
);
INSERT INTO batchguard.installation VALUES (pg_catalog.pg_current_xact_id());
COMMENT ON TABLE batchguard.installation IS
    'When this installation of the extension was created (its transaction id); the orphan '
    'sweep leaves older backup files alone';

CREATE FUNCTION batchguard.run_maintenance() RETURNS jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_run_maintenance';
COMMENT ON FUNCTION batchguard.run_maintenance() IS
    'One maintenance round: expired backups, expired leases, orphan files (superuser only), '
    'rows whose file vanished, finished batches past batchguard.finished_batch_retention; '
    'a superuser maintains every owner''s rows, anyone else their own. Returns the counts';
