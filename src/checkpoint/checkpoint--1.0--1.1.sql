-- No statistics on batch_items.batch_id (see checkpoint.sql). Statistics collected before
-- would stay in place (ANALYZE leaves a column it skips alone): removed here.
ALTER TABLE batchguard.batch_items ALTER COLUMN batch_id SET STATISTICS 0;
DELETE FROM pg_catalog.pg_statistic
 WHERE starelid = 'batchguard.batch_items'::pg_catalog.regclass
   AND staattnum = (SELECT attnum FROM pg_catalog.pg_attribute
                     WHERE attrelid = 'batchguard.batch_items'::pg_catalog.regclass
                       AND attname = 'batch_id');
