-- Baseline: the bare one-row UPDATE of a known (pending) item on the plain table.
\set n :n + 1
UPDATE bench_plain.items SET status = 'completed', updated_at = clock_timestamp()
 WHERE batch_id = 2 AND item_id = 'item-' || :round || '-' || :client_id || '-' || :n;
