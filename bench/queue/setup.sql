-- The plain-SQL queue the benchmark compares against: a table equivalent to
-- batchguard.batch_items (same columns, key and claim index), worked with bare SQL.
CREATE EXTENSION IF NOT EXISTS pg_batchguard;
DROP TABLE IF EXISTS bench_queue;
DROP SEQUENCE IF EXISTS bench_tokens;
CREATE SEQUENCE bench_tokens CACHE 32;
CREATE TABLE bench_queue (
    batch_id         bigint NOT NULL,
    item_id          text NOT NULL,
    owner            text NOT NULL,
    status           batchguard.item_status NOT NULL DEFAULT 'pending',
    attempts         integer NOT NULL DEFAULT 0,
    lease_token      bigint,
    lease_expires_at timestamptz,
    worker           text,
    error            text,
    error_detail     jsonb,
    result           jsonb,
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (batch_id, item_id)
);
CREATE INDEX bench_queue_claimable ON bench_queue (batch_id, item_id)
    WHERE status IN ('pending', 'running');
