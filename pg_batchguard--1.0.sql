-- pg_batchguard 1.0: the schema, its types and the owner identity.
-- (Built into pg_batchguard--1.0.sql by the Makefile, followed by each feature's SQL.)
\echo Use "CREATE EXTENSION pg_batchguard" to load this file. \quit

COMMENT ON SCHEMA batchguard IS 'pg_batchguard: resumable batch jobs and backups before delete';
GRANT USAGE ON SCHEMA batchguard TO PUBLIC;

CREATE FUNCTION batchguard.current_owner() RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'batchguard_current_owner';
COMMENT ON FUNCTION batchguard.current_owner() IS
    'The owner recorded on the rows the caller creates, and the only owner whose rows it sees';
-- Owner identity: who owns the rows a caller creates, and who may read everything.

CREATE TABLE batchguard.identity_map (
    role       regrole PRIMARY KEY,
    setting    text NOT NULL,
    json_key   text,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE batchguard.identity_map IS
    'Roles trusted to name their end users: role -> configuration setting (and JSON key) holding the identity';
REVOKE ALL ON batchguard.identity_map FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('batchguard.identity_map', '');

CREATE FUNCTION batchguard.map_identity(role regrole, setting text, json_key text DEFAULT NULL)
    RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_map_identity';
COMMENT ON FUNCTION batchguard.map_identity(regrole, text, text) IS
    'Superuser only: rows created under this role belong to "<role>/<identity>", read from the setting';
REVOKE EXECUTE ON FUNCTION batchguard.map_identity(regrole, text, text) FROM PUBLIC;

CREATE FUNCTION batchguard.unmap_identity(role regrole) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_unmap_identity';
COMMENT ON FUNCTION batchguard.unmap_identity(regrole) IS
    'Superuser only: the role owns its rows under its own name again; true if it was mapped';
REVOKE EXECUTE ON FUNCTION batchguard.unmap_identity(regrole) FROM PUBLIC;

CREATE FUNCTION batchguard._is_admin() RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'batchguard_is_admin';
COMMENT ON FUNCTION batchguard._is_admin() IS
    'Internal (row security): true for members of the role batchguard_admin, who read every owner''s rows';
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

CREATE FUNCTION batchguard.cleanup_expired_backups(dry_run boolean DEFAULT false)
    RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_cleanup_expired_backups';
COMMENT ON FUNCTION batchguard.cleanup_expired_backups(boolean) IS
    'Removes expired backups not on legal hold (row now, file once the deletion commits); '
    'a superuser cleans every owner''s, anyone else their own. dry_run only counts them';
-- Backups: export_backup, downloads, backup contents, retention and legal hold.

CREATE TABLE batchguard.backups (
    backup_id          uuid PRIMARY KEY,
    owner              text NOT NULL,
    label              text,
    source_table       text NOT NULL,
    tables             text[] NOT NULL,
    row_counts         jsonb NOT NULL,
    total_rows         bigint NOT NULL CHECK (total_rows >= 0),
    compressed_bytes   bigint NOT NULL CHECK (compressed_bytes >= 0),
    uncompressed_bytes bigint NOT NULL CHECK (uncompressed_bytes >= 0),
    file_sha256        text NOT NULL,
    body_sha256        text NOT NULL,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    legal_hold         boolean NOT NULL DEFAULT false,
    status             text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'missing', 'expired')),
    -- the file is <backup_directory>/<database oid>/<backup_id>-<creating_xid>.jsonl.zst
    creating_xid       xid8 NOT NULL,
    include_children   boolean NOT NULL,
    format_version     integer NOT NULL,
    -- delete_with_backup: per table, what the delete did to the rows (delete, set null,
    -- set default) and the columns it changed; NULL for export_backup
    delete_actions     jsonb
);
CREATE INDEX ON batchguard.backups (owner, created_at);
CREATE INDEX ON batchguard.backups (expires_at) WHERE NOT legal_hold;
COMMENT ON TABLE batchguard.backups IS
    'One row per backup file: owner, contents, sizes, checksums, retention and legal hold. '
    'The row is the only truth: a file without a row is an orphan';

CREATE TABLE batchguard.audit (
    audit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    backup_id  uuid NOT NULL,
    owner      text NOT NULL,  -- the backup's owner
    actor      text NOT NULL,  -- who did it (current_owner() of the caller)
    action     text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX ON batchguard.audit (backup_id);
COMMENT ON TABLE batchguard.audit IS
    'One row per backup export, download, deletion, extension, hold, restore and delete with '
    'backup: who, when, which backup, what happened';

ALTER TABLE batchguard.backups ENABLE ROW LEVEL SECURITY;
ALTER TABLE batchguard.audit ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_reads ON batchguard.backups FOR SELECT
    USING (owner = (SELECT batchguard.current_owner()) OR (SELECT batchguard._is_admin()));
CREATE POLICY owner_reads ON batchguard.audit FOR SELECT
    USING (owner = (SELECT batchguard.current_owner()) OR (SELECT batchguard._is_admin()));
GRANT SELECT ON batchguard.backups, batchguard.audit TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('batchguard.backups', '');
SELECT pg_catalog.pg_extension_config_dump('batchguard.audit', '');
SELECT pg_catalog.pg_extension_config_dump('batchguard.audit_audit_id_seq', '');

CREATE FUNCTION batchguard.export_backup(source regclass, ids text[] DEFAULT NULL,
                                         include_children boolean DEFAULT true,
                                         retention interval DEFAULT NULL,
                                         label text DEFAULT NULL)
    RETURNS batchguard.backups
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_export_backup';
COMMENT ON FUNCTION batchguard.export_backup(regclass, text[], boolean, interval, text) IS
    'Writes the rows of source whose primary key is in ids (all readable rows when NULL) and '
    'the rows that reference them to a compressed backup file; returns its backups row';

CREATE FUNCTION batchguard.get_backup(backup_id uuid) RETURNS batchguard.backups
    LANGUAGE c STABLE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_get_backup';
COMMENT ON FUNCTION batchguard.get_backup(uuid) IS
    'The caller''s backup (status ok, expired or missing); NULL if unknown';

CREATE FUNCTION batchguard.get_user_backups() RETURNS SETOF batchguard.backups
    LANGUAGE c STABLE PARALLEL UNSAFE ROWS 20
    AS 'MODULE_PATHNAME', 'batchguard_get_user_backups';
COMMENT ON FUNCTION batchguard.get_user_backups() IS
    'The caller''s backups, newest first';

CREATE FUNCTION batchguard.read_backup(backup_id uuid, "offset" bigint DEFAULT 0,
                                       length bigint DEFAULT NULL) RETURNS bytea
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_read_backup';
COMMENT ON FUNCTION batchguard.read_backup(uuid, bigint, bigint) IS
    'The compressed backup file, whole (SHA-256 verified) or a chunk from offset';

CREATE FUNCTION batchguard.backup_rows(backup_id uuid)
    RETURNS TABLE(table_name text, "row" jsonb, parent_table text, parent_key text)
    LANGUAGE c STABLE PARALLEL UNSAFE ROWS 1000
    AS 'MODULE_PATHNAME', 'batchguard_backup_rows';
COMMENT ON FUNCTION batchguard.backup_rows(uuid) IS
    'The rows of a backup, decompressed while streaming, verified at the end';

CREATE FUNCTION batchguard.delete_backup(backup_id uuid) RETURNS boolean
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_delete_backup';
COMMENT ON FUNCTION batchguard.delete_backup(uuid) IS
    'Removes the caller''s backup (row now, file at commit); false if unknown; refused on hold';

CREATE FUNCTION batchguard.extend_backup(backup_id uuid, until timestamptz)
    RETURNS batchguard.backups
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_extend_backup';
COMMENT ON FUNCTION batchguard.extend_backup(uuid, timestamptz) IS
    'Keeps the caller''s backup until the given time (at most batchguard.max_backup_retention '
    'after its creation)';

CREATE FUNCTION batchguard.hold_backup(backup_id uuid, hold boolean DEFAULT true)
    RETURNS batchguard.backups
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'batchguard_hold_backup';
COMMENT ON FUNCTION batchguard.hold_backup(uuid, boolean) IS
    'Sets or releases a legal hold (no expiry removes a held backup); the owner or a member '
    'of batchguard_admin';

CREATE FUNCTION batchguard._export_progress()
    RETURNS TABLE(pid integer, datid oid, usesysid oid, backup_id uuid, phase text,
                  rows_written bigint, bytes_written bigint, started_at timestamptz)
    LANGUAGE c VOLATILE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'batchguard_export_progress';
COMMENT ON FUNCTION batchguard._export_progress() IS
    'Internal (export_progress): the exports running now, from shared memory';

CREATE VIEW batchguard.export_progress AS
SELECT p.pid, p.datid, d.datname, p.usesysid, r.rolname AS usename, p.backup_id, p.phase,
       p.rows_written, p.bytes_written, p.started_at
  FROM batchguard._export_progress() p
  LEFT JOIN pg_catalog.pg_database d ON d.oid = p.datid
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = p.usesysid;
COMMENT ON VIEW batchguard.export_progress IS
    'One row per export_backup running now (the caller''s own; all for pg_read_all_stats), '
    'like pg_stat_progress_copy; needs shared_preload_libraries = ''pg_batchguard''';
GRANT SELECT ON batchguard.export_progress TO PUBLIC;
-- Deletes with backup, delete previews and restores (issue 5).

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
