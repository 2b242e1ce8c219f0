-- complete_item in a batch holding about 1,000 items (:small_job, fresh for each round).
\set n :n + 1
SELECT batchguard.complete_item(:small_job, 'item-' || :round || '-' || :client_id || '-' || :n);
