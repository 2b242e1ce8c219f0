-- filter_pending_items over the whole job, then the hand-written anti-join on the same
-- input (bench.anti_join, see setup.sql). Each statement is its own transaction; pgbench -r
-- reports the latency of each. The array comes from a table, the same way for both.
SELECT cardinality(batchguard.filter_pending_items('filter-job', (SELECT items FROM bench.filter_input)));
SELECT cardinality(bench.anti_join(:batch, (SELECT items FROM bench.filter_input)));
