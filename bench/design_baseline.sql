-- The original design's checkpoint (bench_design.complete_item: one row per batch holding
-- every completed item id in a jsonb array, read, appended to and written back per item)
-- against complete_item, each in batches that already hold 1,000, 10,000 and 100,000
-- completed items (bench/run creates them), a new item per call, one statement chosen at
-- random per transaction. pgbench -r reports each statement's latency.
\set n :n + 1
\set k random(1, 6)
\if :k = 1
SELECT bench_design.complete_item('design-1000', 'new-' || :round || '-' || :client_id || '-' || :n);
\elif :k = 2
SELECT bench_design.complete_item('design-10000', 'new-' || :round || '-' || :client_id || '-' || :n);
\elif :k = 3
SELECT bench_design.complete_item('design-100000', 'new-' || :round || '-' || :client_id || '-' || :n);
\elif :k = 4
SELECT batchguard.complete_item('ours-1000', 'new-' || :round || '-' || :client_id || '-' || :n);
\elif :k = 5
SELECT batchguard.complete_item('ours-10000', 'new-' || :round || '-' || :client_id || '-' || :n);
\else
SELECT batchguard.complete_item('ours-100000', 'new-' || :round || '-' || :client_id || '-' || :n);
\endif
