-- psql -v job=... -v items=N: a fresh batch of N pending items for pg_batchguard.
SELECT job_id FROM batchguard.start_batch(:'job',
    ARRAY(SELECT 'item-' || lpad(g::text, 8, '0') FROM generate_series(1, :items) g));
VACUUM ANALYZE batchguard.batch_items;
