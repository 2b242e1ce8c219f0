-- scale_new.sql in the other order.
\set n :n + 1
SELECT batchguard.complete_item(:large_job, 'item-' || :round || '-' || :client_id || '-' || :n);
SELECT batchguard.complete_item(:small_job, 'item-' || :round || '-' || :client_id || '-' || :n);
