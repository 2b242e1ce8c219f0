-- A canonical listing of everything the extension pg_batchguard put into the catalog:
-- every member object (pg_depend) with its full definition, the parts of tables that are
-- not members themselves (columns, constraints, indexes, policies, triggers), the
-- pg_extension_config_dump registrations and the initial privileges pg_dump relies on.
-- Nothing in it depends on OIDs, so two databases compare line by line: one created at
-- the current version, one created at an earlier version and updated (test/t/060).
WITH ext AS (
    SELECT oid, extnamespace, extconfig, extcondition, extversion
      FROM pg_catalog.pg_extension WHERE extname = 'pg_batchguard'
), members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = ext.oid AND d.deptype = 'e'
), member_relations AS (
    SELECT c.oid, c.relname
      FROM pg_catalog.pg_class c JOIN members m
        ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND m.objid = c.oid
), listing(line) AS (
    -- the extension and its schema
    SELECT pg_catalog.format('extension|version %s|schema %s', extversion,
                             extnamespace::pg_catalog.regnamespace)
      FROM ext
    UNION ALL
    SELECT pg_catalog.format('schema|%s|owner-is-superuser %s|acl %s|comment %L',
                             n.nspname, r.rolsuper, n.nspacl,
                             pg_catalog.obj_description(n.oid, 'pg_namespace'))
      FROM pg_catalog.pg_namespace n JOIN ext ON n.oid = ext.extnamespace
      JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
    -- every member, by its identity
    UNION ALL
    SELECT pg_catalog.format('member|%s|%s', o.type, o.identity)
      FROM members m, pg_catalog.pg_identify_object(m.classid, m.objid, m.objsubid) o
    -- functions and procedures
    UNION ALL
    SELECT pg_catalog.format(
               'function|%s|kind %s|returns %s|args %s|lang %s|volatile %s|strict %s|'
               'secdef %s|leakproof %s|parallel %s|cost %s|rows %s|config %s|acl %s|'
               'symbol %s|library %s|comment %L',
               p.oid::pg_catalog.regprocedure, p.prokind,
               pg_catalog.pg_get_function_result(p.oid),
               pg_catalog.pg_get_function_arguments(p.oid), l.lanname, p.provolatile,
               p.proisstrict, p.prosecdef, p.proleakproof, p.proparallel, p.procost,
               p.prorows, p.proconfig, p.proacl,
               CASE WHEN l.lanname = 'c' THEN p.prosrc ELSE pg_catalog.md5(p.prosrc) END,
               p.probin, pg_catalog.obj_description(p.oid, 'pg_proc'))
      FROM pg_catalog.pg_proc p
      JOIN members m ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND m.objid = p.oid
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
    -- relations: tables, views, sequences, indexes, composite types
    UNION ALL
    SELECT pg_catalog.format(
               'relation|%s|kind %s|persistence %s|options %s|acl %s|rls %s|force-rls %s|'
               'replica-identity %s|comment %L',
               c.oid::pg_catalog.regclass, c.relkind, c.relpersistence, c.reloptions,
               c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
               pg_catalog.obj_description(c.oid, 'pg_class'))
      FROM pg_catalog.pg_class c JOIN member_relations r ON r.oid = c.oid
    UNION ALL
    -- columns in their visible order (a dropped column leaves a gap in attnum only)
    SELECT pg_catalog.format(
               'column|%s|#%s %s|type %s|not-null %s|default %s|identity %s|generated %s|'
               'storage %s|collation %s|statistics %s|acl %s|comment %L',
               a.attrelid::pg_catalog.regclass,
               pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
               a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
               a.attstorage, a.attcollation::pg_catalog.regcollation, a.attstattarget, a.attacl,
               pg_catalog.col_description(a.attrelid, a.attnum))
      FROM pg_catalog.pg_attribute a JOIN member_relations r ON r.oid = a.attrelid
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT pg_catalog.format('constraint|%s|%s|%s|deferrable %s|deferred %s|validated %s',
                             co.conrelid::pg_catalog.regclass, co.conname,
                             pg_catalog.pg_get_constraintdef(co.oid), co.condeferrable,
                             co.condeferred, co.convalidated)
      FROM pg_catalog.pg_constraint co JOIN member_relations r ON r.oid = co.conrelid
    UNION ALL
    SELECT pg_catalog.format('index|%s|%s', i.indrelid::pg_catalog.regclass,
                             pg_catalog.pg_get_indexdef(i.indexrelid))
      FROM pg_catalog.pg_index i JOIN member_relations r ON r.oid = i.indrelid
    UNION ALL
    SELECT pg_catalog.format('policy|%s|%s|cmd %s|permissive %s|roles %s|using %s|check %s',
                             po.polrelid::pg_catalog.regclass, po.polname, po.polcmd,
                             po.polpermissive,
                             ARRAY(SELECT CASE WHEN x = 0 THEN 'public' ELSE x::pg_catalog.regrole::text END
                                     FROM pg_catalog.unnest(po.polroles) x ORDER BY 1),
                             pg_catalog.pg_get_expr(po.polqual, po.polrelid),
                             pg_catalog.pg_get_expr(po.polwithcheck, po.polrelid))
      FROM pg_catalog.pg_policy po JOIN member_relations r ON r.oid = po.polrelid
    UNION ALL
    SELECT pg_catalog.format('trigger|%s|%s|enabled %s',
                             t.tgrelid::pg_catalog.regclass,
                             pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_catalog.pg_trigger t JOIN member_relations r ON r.oid = t.tgrelid
     WHERE NOT t.tgisinternal
    UNION ALL
    SELECT pg_catalog.format('rule|%s|%s', ru.ev_class::pg_catalog.regclass,
                             pg_catalog.pg_get_ruledef(ru.oid))
      FROM pg_catalog.pg_rewrite ru JOIN member_relations r ON r.oid = ru.ev_class
     WHERE ru.rulename <> '_RETURN'
    UNION ALL
    SELECT pg_catalog.format('view|%s|%s', c.oid::pg_catalog.regclass,
                             pg_catalog.pg_get_viewdef(c.oid))
      FROM pg_catalog.pg_class c JOIN member_relations r ON r.oid = c.oid
     WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT pg_catalog.format('sequence|%s|type %s|start %s|increment %s|min %s|max %s|'
                             'cache %s|cycle %s|owned-by %s',
                             s.seqrelid::pg_catalog.regclass, s.seqtypid::pg_catalog.regtype,
                             s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
                             s.seqcycle,
                             (SELECT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
                                FROM pg_catalog.pg_depend d
                               WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                 AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')
                                 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass))
      FROM pg_catalog.pg_sequence s JOIN member_relations r ON r.oid = s.seqrelid
    -- types: enums with their labels in order, domains with their checks
    UNION ALL
    SELECT pg_catalog.format('type|%s|type %s|labels %s|base %s|not-null %s|default %s|'
                             'checks %s|acl %s|comment %L',
                             t.oid::pg_catalog.regtype, t.typtype,
                             ARRAY(SELECT e.enumlabel FROM pg_catalog.pg_enum e
                                    WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
                             t.typbasetype::pg_catalog.regtype, t.typnotnull, t.typdefault,
                             ARRAY(SELECT pg_catalog.pg_get_constraintdef(co.oid)
                                     FROM pg_catalog.pg_constraint co
                                    WHERE co.contypid = t.oid ORDER BY 1),
                             t.typacl, pg_catalog.obj_description(t.oid, 'pg_type'))
      FROM pg_catalog.pg_type t
      JOIN members m ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND m.objid = t.oid
    -- what pg_dump dumps of the extension's tables
    UNION ALL
    SELECT pg_catalog.format('config-dump|%s|where %L', cfg::pg_catalog.regclass, cond)
      FROM ext, ROWS FROM (pg_catalog.unnest(ext.extconfig), pg_catalog.unnest(ext.extcondition)) AS u(cfg, cond)
    -- privileges as the scripts left them (pg_dump's baseline for later GRANTs)
    UNION ALL
    SELECT pg_catalog.format('init-privs|%s|%s|%s',
                             pg_catalog.pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
                             ip.privtype, ip.initprivs)
      FROM pg_catalog.pg_init_privs ip
      JOIN members m ON m.classid = ip.classoid AND m.objid = ip.objoid
)
SELECT line FROM listing ORDER BY line COLLATE "C";
