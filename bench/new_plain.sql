-- Baseline: the bare one-row write of an item seen for the first time, on a plain table
-- with the same columns and primary key as batchguard.batch_items.
\set n :n + 1
INSERT INTO bench_plain.items (batch_id, item_id, owner, status)
VALUES (1, 'item-' || :round || '-' || :client_id || '-' || :n, 'bench_user', 'completed')
ON CONFLICT DO NOTHING;
