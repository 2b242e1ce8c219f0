-- Baseline: the cheapest round trip, a read-only transaction without WAL.
SELECT 1;
