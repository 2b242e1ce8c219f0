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
