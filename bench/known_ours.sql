-- complete_item of a registered, pending item (batch with items_registered).
\set n :n + 1
SELECT batchguard.complete_item('bench-known', 'item-' || :round || '-' || :client_id || '-' || :n);
