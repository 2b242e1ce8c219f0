-- Concurrent workers: registered items, leases with fencing, pause/cancel/resume and
-- progress events (docs/api.md, "Concurrent workers").

-- Lease tokens: unique across batches, so a token names one lease of one item, ever.
CREATE SEQUENCE batchguard.lease_tokens AS bigint CACHE 32;
COMMENT ON SEQUENCE batchguard.lease_tokens IS 'Lease tokens handed out by claim_items';
SELECT pg_catalog.pg_extension_config_dump('batchguard.lease_tokens', '');

-- claim_items scans only a batch's pending and running items, in item order: its cost
-- follows the items it passes over (the live leases), not the size of the batch.
CREATE INDEX batch_items_claimable ON batchguard.batch_items (batch_id, item_id)
    WHERE status IN ('pending', 'running');
-- complete_items and heartbeat find running items by their lease token.
CREATE INDEX batch_items_running_leases ON batchguard.batch_items (lease_token)
    WHERE status = 'running';

CREATE FUNCTION batchguard.start_batch(job_id text, items text[] DEFAULT NULL,
                                       total_items bigint DEFAULT NULL,
                                       metadata jsonb DEFAULT '{}', max_attempts integer DEFAULT 3)
    RETURNS batchguard.progress
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_start_batch';
COMMENT ON FUNCTION batchguard.start_batch(text, text[], bigint, jsonb, integer) IS
    'Creates a batch of registered items, all pending; an existing job id is an error';

CREATE FUNCTION batchguard.add_items(job_id text, items text[]) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_add_items';
COMMENT ON FUNCTION batchguard.add_items(text, text[]) IS
    'Registers more pending items (known ones are ignored); returns how many were new';

CREATE FUNCTION batchguard.claim_items(job_id text, max_items integer DEFAULT 1,
                                       lease interval DEFAULT '5 minutes', worker text DEFAULT NULL)
    RETURNS TABLE (item_id text, lease_token bigint, attempt integer)
    LANGUAGE c VOLATILE PARALLEL UNSAFE ROWS 10
    AS 'MODULE_PATHNAME', 'batchguard_claim_items';
COMMENT ON FUNCTION batchguard.claim_items(text, integer, interval, text) IS
    'Leases up to max_items pending or expired items; concurrent callers get disjoint items without waiting';

CREATE FUNCTION batchguard.complete_items(job_id text, lease_tokens bigint[]) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_complete_items';
COMMENT ON FUNCTION batchguard.complete_items(text, bigint[]) IS
    'Completes the items held under the given leases; a lease that is not current is an error (PB001)';

CREATE FUNCTION batchguard.heartbeat(job_id text, lease_tokens bigint[],
                                     lease interval DEFAULT '5 minutes') RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_heartbeat';
COMMENT ON FUNCTION batchguard.heartbeat(text, bigint[], interval) IS
    'Extends exactly the current leases among the tokens to now + lease; returns how many';

CREATE FUNCTION batchguard.pause_batch(job_id text) RETURNS batchguard.progress
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_pause_batch';
COMMENT ON FUNCTION batchguard.pause_batch(text) IS
    'Pauses a batch: claim_items hands out nothing until resume_batch';

CREATE FUNCTION batchguard.cancel_batch(job_id text) RETURNS batchguard.progress
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_cancel_batch';
COMMENT ON FUNCTION batchguard.cancel_batch(text) IS
    'Cancels a batch: claim_items hands out nothing; its items are kept';

CREATE FUNCTION batchguard.resume_batch(job_id text, retry_failed boolean DEFAULT false)
    RETURNS batchguard.progress
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_resume_batch';
COMMENT ON FUNCTION batchguard.resume_batch(text, boolean) IS
    'Releases expired leases, optionally retries failed items, and makes the batch active again';

CREATE FUNCTION batchguard.progress_channel() RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'batchguard_progress_channel';
COMMENT ON FUNCTION batchguard.progress_channel() IS
    'The LISTEN channel of the caller''s progress events (payload: the job id)';
