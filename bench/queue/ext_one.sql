-- pg_batchguard, one item per transaction: claim_items then complete_item with the lease.
BEGIN;
SELECT item_id, lease_token FROM batchguard.claim_items(':job', 1) \gset
SELECT batchguard.complete_item(':job', ':item_id', NULL, :lease_token);
COMMIT;
