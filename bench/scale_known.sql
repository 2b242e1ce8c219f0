-- complete_item of a registered, pending item of a batch of 1,000 items (:small_job, fresh
-- each round: items item-1..item-1000, all completed by the end of the round) and of one of
-- 1,000,000 (:large_job: the round completes item-<base+1>..item-<base+1000>).
\set n :n + 1
\set k :client_id * :per_client + :n
\set large_k :base + :k
SELECT batchguard.complete_item(:small_job, 'item-' || :k);
SELECT batchguard.complete_item(:large_job, 'item-' || :large_k);
