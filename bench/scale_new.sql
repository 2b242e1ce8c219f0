-- complete_item of a new item in a batch of about 1,000 items (:small_job, fresh each
-- round) and in the large one (:large_job, BENCH_SCALE items, 10,000,000 by default), one
-- after the other: pgbench -r reports each statement's latency. bench/run alternates the
-- order from round to round.
\set n :n + 1
SELECT batchguard.complete_item(:small_job, 'item-' || :round || '-' || :client_id || '-' || :n);
SELECT batchguard.complete_item(:large_job, 'item-' || :round || '-' || :client_id || '-' || :n);
