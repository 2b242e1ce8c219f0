-- The PL/pgSQL reference on the same workload.
\set n :n + 1
SELECT bench_plpgsql.complete_item('bench-known', 'item-' || :round || '-' || :client_id || '-' || :n);
