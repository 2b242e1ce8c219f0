-- psql -v batch=... -v items=N: a fresh batch of N pending items in the plain queue.
INSERT INTO bench_queue (batch_id, item_id, owner)
SELECT :batch, 'item-' || lpad(g::text, 8, '0'), current_user FROM generate_series(1, :items) g;
VACUUM ANALYZE bench_queue;
