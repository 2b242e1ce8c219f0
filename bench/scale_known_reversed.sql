-- scale_known.sql in the other order.
\set n :n + 1
\set k :client_id * :per_client + :n
\set large_k :base + :k
SELECT batchguard.complete_item(:large_job, 'item-' || :large_k);
SELECT batchguard.complete_item(:small_job, 'item-' || :k);
