-- filter.sql in the other order (bench/run alternates them from round to round).
SELECT cardinality(bench.anti_join(:batch, (SELECT items FROM bench.filter_input)));
SELECT cardinality(batchguard.filter_pending_items('filter-job', (SELECT items FROM bench.filter_input)));
