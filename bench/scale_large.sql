-- complete_item in a batch holding about 1,000,000 items (:large_job).
\set n :n + 1
SELECT batchguard.complete_item(:large_job, 'item-' || :round || '-' || :client_id || '-' || :n);
