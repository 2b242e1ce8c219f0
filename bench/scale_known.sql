-- complete_item of a registered, pending item of a batch of 1,000 items (:small_job, fresh
-- each round: items item-1..item-1000) and of the large one (:large_job, BENCH_SCALE
-- items: the round completes the next ones, item-<base+1>, item-<base+2>, ...).
\set n :n + 1
\set k :client_id * :per_client + :n
\set large_k :base + :k
SELECT batchguard.complete_item(:small_job, 'item-' || :k);
SELECT batchguard.complete_item(:large_job, 'item-' || :large_k);
