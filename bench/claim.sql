-- claim_items(job, 10) and completing what it handed out, in a batch of 100,000 items
-- that the table's statistics know (claim-analyzed, started before the last ANALYZE) and
-- in one they do not (claim-new, started after it), chosen at random per transaction.
-- pgbench -r reports each claim statement's latency (issue 16, target 7).
\set k random(0, 1)
\if :k = 0
SELECT array_agg(lease_token) AS tokens FROM batchguard.claim_items('claim-analyzed', 10) \gset
SELECT batchguard.complete_items('claim-analyzed', :tokens);
\else
SELECT array_agg(lease_token) AS tokens FROM batchguard.claim_items('claim-new', 10) \gset
SELECT batchguard.complete_items('claim-new', :tokens);
\endif
