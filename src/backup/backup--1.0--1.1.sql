-- Backups, 1.0 -> 1.1: a legal hold records who placed it; an administrator's hold is
-- released by an administrator only.
ALTER TABLE batchguard.backups
    ADD COLUMN legal_hold_by text CHECK (legal_hold_by IN ('owner', 'admin'));
-- Holds placed under 1.0: an administrator's when the last hold was placed by someone other
-- than the owner (only the owner and administrators could place one).
UPDATE batchguard.backups AS b
   SET legal_hold_by = CASE WHEN h.actor OPERATOR(pg_catalog.=) b.owner THEN 'owner' ELSE 'admin' END
  FROM (SELECT DISTINCT ON (a.backup_id) a.backup_id, a.actor FROM batchguard.audit AS a
         WHERE a.action OPERATOR(pg_catalog.=) 'hold'
         ORDER BY a.backup_id, a.audit_id DESC) AS h
 WHERE b.legal_hold AND h.backup_id OPERATOR(pg_catalog.=) b.backup_id;
UPDATE batchguard.backups SET legal_hold_by = 'owner' WHERE legal_hold AND legal_hold_by IS NULL;
