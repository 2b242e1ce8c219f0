-- pg_batchguard, 100 items per transaction: claim_items then complete_items with the leases.
BEGIN;
SELECT array_agg(lease_token) AS tokens FROM batchguard.claim_items(':job', 100) \gset
SELECT batchguard.complete_items(':job', ':tokens');
COMMIT;
