-- complete_item of an item recorded for the first time (lazy batch).
\set n :n + 1
SELECT batchguard.complete_item('bench-new', 'item-' || :round || '-' || :client_id || '-' || :n);
