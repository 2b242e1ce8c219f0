-- The PL/pgSQL reference (plpgsql_reference.sql) on the same workload.
\set n :n + 1
SELECT bench_plpgsql.complete_item('bench-new', 'item-' || :round || '-' || :client_id || '-' || :n);
