-- Maintenance, 1.0 -> 1.1: a per-installation secret salts the progress channels, and
-- CALL batchguard.maintain() commits each step of a round on its own.
ALTER TABLE batchguard.installation
    ADD COLUMN channel_secret text NOT NULL
        DEFAULT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
            pg_catalog.gen_random_uuid()::pg_catalog.text OPERATOR(pg_catalog.||)
            pg_catalog.gen_random_uuid()::pg_catalog.text, 'UTF8')), 'hex');

CREATE PROCEDURE batchguard.maintain(INOUT summary jsonb DEFAULT NULL)
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'batchguard_maintain';
COMMENT ON PROCEDURE batchguard.maintain(jsonb) IS
    'One maintenance round like run_maintenance(), each step committed on its own (CALL it '
    'outside a transaction block, e.g. from pg_cron); a failing step is rolled back and named';

-- Storage: the installation's token, which names it in the owner marker of its
-- backup folders (pg_upgrade carries it, pg_dump does not); run_maintenance's comment.
ALTER TABLE batchguard.installation
    ADD COLUMN token uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid();
COMMENT ON TABLE batchguard.installation IS
    'When this installation of the extension was created (its transaction id; the orphan '
    'sweep leaves older backup files alone) and its token (the owner of its backup folders)';
COMMENT ON FUNCTION batchguard.run_maintenance() IS
    'One maintenance round (not on a standby): expired backups, expired leases, orphan files '
    'to quarantine and old quarantined files (superuser only), the status of file backups, '
    'finished batches past batchguard.finished_batch_retention; a superuser maintains every '
    'owner''s rows, anyone else their own. Returns the counts';
