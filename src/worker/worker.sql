-- Maintenance: what the background workers run every batchguard.cleanup_interval, and
-- what pg_cron can schedule instead.

CREATE FUNCTION batchguard.run_maintenance() RETURNS jsonb
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_run_maintenance';
COMMENT ON FUNCTION batchguard.run_maintenance() IS
    'One maintenance round (finished batches past batchguard.finished_batch_retention, ...); '
    'a superuser maintains every owner''s rows, anyone else their own. Returns what it did';
