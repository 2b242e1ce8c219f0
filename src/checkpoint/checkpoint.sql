-- Checkpoint and resume: batches, their items, progress.

CREATE TYPE batchguard.item_status AS ENUM ('pending', 'running', 'completed', 'failed');

CREATE TABLE batchguard.batches (
    batch_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner            text NOT NULL,
    job_id           text NOT NULL,
    -- true for start_batch batches: only registered items can be recorded
    items_registered boolean NOT NULL DEFAULT false,
    total_items      bigint CHECK (total_items >= 0),
    metadata         jsonb NOT NULL DEFAULT '{}',
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    state            text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'cancelled')),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    state_changed_at timestamptz,
    total_changed_at timestamptz,
    UNIQUE (owner, job_id)
);
COMMENT ON TABLE batchguard.batches IS
    'One row per batch job and owner; only what callers set (item outcomes live in batch_items)';

CREATE TABLE batchguard.batch_items (
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
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (batch_id, item_id)
);
COMMENT ON TABLE batchguard.batch_items IS
    'One row per known item of a batch: its status, attempts, lease, error and result';
-- No statistics on batch_id: batches are created all the time, and a batch started after
-- the last ANALYZE would be estimated at one row, so every plan that reads a batch would
-- be chosen as if it were empty (a scan of the whole batch in place of an index probe per
-- item). Without them the planner assumes a batch holds a fixed share of the table,
-- whenever the table was analyzed.
ALTER TABLE batchguard.batch_items ALTER COLUMN batch_id SET STATISTICS 0;

-- Callers read their own rows (administrators every row); every change goes through the
-- functions. The sub-selects make each query compute the caller's identity once.
ALTER TABLE batchguard.batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE batchguard.batch_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_reads ON batchguard.batches FOR SELECT
    USING (owner = (SELECT batchguard.current_owner()) OR (SELECT batchguard._is_admin()));
CREATE POLICY owner_reads ON batchguard.batch_items FOR SELECT
    USING (owner = (SELECT batchguard.current_owner()) OR (SELECT batchguard._is_admin()));
GRANT SELECT ON batchguard.batches, batchguard.batch_items TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('batchguard.batches', '');
SELECT pg_catalog.pg_extension_config_dump('batchguard.batch_items', '');
SELECT pg_catalog.pg_extension_config_dump('batchguard.batches_batch_id_seq', '');

CREATE TYPE batchguard.progress AS (
    job_id           text,
    status           text,
    total_items      bigint,
    completed        bigint,
    failed           bigint,
    pending          bigint,
    running          bigint,
    percentage       numeric,
    items_per_second double precision,
    eta              interval,
    started_at       timestamptz,
    updated_at       timestamptz
);
COMMENT ON TYPE batchguard.progress IS 'Progress of one batch, computed from its committed items';

CREATE TYPE batchguard.checkpoint AS (
    job_id          text,
    completed_items text[],
    failed_items    jsonb,
    total_items     bigint,
    percentage      numeric,
    updated_at      timestamptz,
    status          text
);
COMMENT ON TYPE batchguard.checkpoint IS 'What load_checkpoint returns: the outcomes recorded so far';

CREATE FUNCTION batchguard.save_checkpoint(job_id text, completed_items text[] DEFAULT '{}',
                                           failed_items jsonb DEFAULT '[]',
                                           total_items bigint DEFAULT NULL)
    RETURNS batchguard.progress
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_save_checkpoint';
COMMENT ON FUNCTION batchguard.save_checkpoint(text, text[], jsonb, bigint) IS
    'Records completed and failed items (idempotent merge), creating the batch on first use';

CREATE FUNCTION batchguard.load_checkpoint(job_id text) RETURNS batchguard.checkpoint
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_load_checkpoint';
COMMENT ON FUNCTION batchguard.load_checkpoint(text) IS
    'Completed item ids, failed items with their errors, total and progress; NULL if unknown';

CREATE FUNCTION batchguard.cleanup_checkpoint(job_id text) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_cleanup_checkpoint';
COMMENT ON FUNCTION batchguard.cleanup_checkpoint(text) IS
    'Discards a batch and its items; true if it existed';

CREATE FUNCTION batchguard.calculate_progress(job_id text) RETURNS batchguard.progress
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_calculate_progress';
COMMENT ON FUNCTION batchguard.calculate_progress(text) IS
    'Counts, percentage, rate, ETA and derived status of a batch; NULL if unknown';

CREATE FUNCTION batchguard.get_incomplete_checkpoints() RETURNS SETOF batchguard.progress
    LANGUAGE c STABLE PARALLEL UNSAFE ROWS 10
    AS 'MODULE_PATHNAME', 'batchguard_get_incomplete_checkpoints';
COMMENT ON FUNCTION batchguard.get_incomplete_checkpoints() IS
    'The caller''s running, paused and failed batches, newest first';

CREATE FUNCTION batchguard.filter_pending_items(job_id text, items text[]) RETURNS text[]
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_filter_pending_items';
COMMENT ON FUNCTION batchguard.filter_pending_items(text, text[]) IS
    'The given items minus those already completed or failed, each once, in the given order';

CREATE FUNCTION batchguard.is_item_completed(job_id text, item_id text) RETURNS boolean
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_is_item_completed';
COMMENT ON FUNCTION batchguard.is_item_completed(text, text) IS
    'True when the item is recorded as completed';

CREATE FUNCTION batchguard.complete_item(job_id text, item_id text, result jsonb DEFAULT NULL,
                                         lease_token bigint DEFAULT NULL) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_complete_item';
COMMENT ON FUNCTION batchguard.complete_item(text, text, jsonb, bigint) IS
    'Records one completed item in O(1); false when it was already completed';

CREATE FUNCTION batchguard.fail_item(job_id text, item_id text, error text,
                                     detail jsonb DEFAULT NULL, lease_token bigint DEFAULT NULL)
    RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_fail_item';
COMMENT ON FUNCTION batchguard.fail_item(text, text, text, jsonb, bigint) IS
    'Records one failed item with its error; false when it was already completed or failed';

CREATE FUNCTION batchguard.retry_failed(job_id text, item_ids text[] DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_retry_failed';
COMMENT ON FUNCTION batchguard.retry_failed(text, text[]) IS
    'Makes failed items (all, or the given ones) pending again; returns how many';

CREATE FUNCTION batchguard._batch_progress(batch batchguard.batches) RETURNS batchguard.progress
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_batch_progress';
COMMENT ON FUNCTION batchguard._batch_progress(batchguard.batches) IS
    'Internal (batch_summary): progress of a batch row, counted with the caller''s row security';

CREATE FUNCTION batchguard._progress_bar(percentage numeric, width integer DEFAULT 20) RETURNS text
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'batchguard_progress_bar';
COMMENT ON FUNCTION batchguard._progress_bar(numeric, integer) IS
    'Internal (batch_summary): a text progress bar such as [#####---------------]';

CREATE VIEW batchguard.batch_summary WITH (security_invoker = true) AS
SELECT b.job_id,
       p.status,
       p.total_items,
       p.completed,
       p.failed,
       p.pending,
       p.running,
       p.percentage,
       batchguard._progress_bar(p.percentage) || coalesce(' ' || p.percentage || '%', '') AS progress,
       round(p.items_per_second::numeric, 1) AS items_per_second,
       p.eta,
       p.started_at,
       p.updated_at,
       b.owner
FROM batchguard.batches b
CROSS JOIN LATERAL batchguard._batch_progress(b) p;
COMMENT ON VIEW batchguard.batch_summary IS
    'One row per visible batch: status, counts, percentage, a progress bar, rate and ETA';
GRANT SELECT ON batchguard.batch_summary TO PUBLIC;
