-- Maintenance: what the background workers run every batchguard.cleanup_interval, and
-- what pg_cron can schedule instead.

-- The transaction that created this installation of the extension: backup files older
-- than it (left by an earlier installation, before DROP EXTENSION) are never swept.
CREATE TABLE batchguard.installation (
    installed_xid  xid8 NOT NULL,
    -- salts the progress channels (progress_channel()): readable by superusers only
    channel_secret text NOT NULL
        DEFAULT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
            pg_catalog.gen_random_uuid()::pg_catalog.text OPERATOR(pg_catalog.||)
            pg_catalog.gen_random_uuid()::pg_catalog.text, 'UTF8')), 'hex'),
    -- names this installation in the owner marker of its backup folders: pg_upgrade carries
    -- it (the folders stay ours under a new system identifier), pg_dump does not
    token          uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid()
);
INSERT INTO batchguard.installation (installed_xid) VALUES (pg_catalog.pg_current_xact_id());
COMMENT ON TABLE batchguard.installation IS
    'When this installation of the extension was created (its transaction id; the orphan '
    'sweep leaves older backup files alone) and its token (the owner of its backup folders)';

CREATE FUNCTION batchguard.run_maintenance() RETURNS jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_run_maintenance';
COMMENT ON FUNCTION batchguard.run_maintenance() IS
    'One maintenance round (not on a standby): expired backups, expired leases, orphan files '
    'to quarantine and old quarantined files (superuser only), the status of file backups, '
    'finished batches past batchguard.finished_batch_retention; a superuser maintains every '
    'owner''s rows, anyone else their own. Returns the counts';

CREATE PROCEDURE batchguard.maintain(INOUT summary jsonb DEFAULT NULL)
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'batchguard_maintain';
COMMENT ON PROCEDURE batchguard.maintain(jsonb) IS
    'One maintenance round like run_maintenance(), each step committed on its own (CALL it '
    'outside a transaction block, e.g. from pg_cron); a failing step is rolled back and named';
