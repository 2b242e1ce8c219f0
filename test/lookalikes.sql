-- Look-alikes of PostgreSQL's own functions, operators, aggregates and types, planted by
-- an untrusted role (issue 13, High 1). Included by sql/security_search_path.sql and by
-- test/t/070_worker_search_path.pl; run it as the planting role, with a schema named
-- regress_sp_evil that the role owns and CREATE on public.
--
-- Every look-alike raises WARNING 'look-alike ... called' when it runs (so a call shows in
-- the output even when its transaction rolls back) and returns NULL:
-- * regress_sp_evil gets an exact copy (same name and argument types) of every function,
--   aggregate, window function and operator of pg_catalog that PL/pgSQL can imitate, and
--   domains named like the common types: they win wherever a caller puts regress_sp_evil
--   before pg_catalog on its search_path.
-- * public gets better matches than pg_catalog's polymorphic or
--   implicitly cast candidates, e.g. text || bigint (pg_catalog has text || anynonarray):
--   they win even with pg_catalog searched first, as it is by default.
\set QUIET on
SET search_path = pg_catalog;
DO $lookalikes$
DECLARE
    unsupported oid[] := ARRAY['internal', 'cstring', '"any"', 'trigger', 'event_trigger',
        'language_handler', 'fdw_handler', 'index_am_handler', 'tsm_handler', 'table_am_handler',
        'record', 'pg_ddl_command', 'unknown', 'anycompatiblenonarray']::regtype[]::oid[];
    f record;
    args text;
    ret text;
    n int := 0;
BEGIN
    -- A PL/pgSQL body per look-alike: it says it was called.
    CREATE FUNCTION regress_sp_evil.lookalike_body(what text, returns_set boolean,
                                                   returns_void boolean) RETURNS text
        LANGUAGE sql IMMUTABLE
        RETURN format('BEGIN RAISE WARNING %L; RETURN%s; END', 'look-alike ' || what || ' called',
                      CASE WHEN returns_set OR returns_void THEN '' ELSE ' NULL' END);
    CREATE FUNCTION regress_sp_evil.lookalike_type_check(what text) RETURNS boolean
        LANGUAGE plpgsql AS $$BEGIN RAISE WARNING 'look-alike type % used', what; RETURN true; END$$;
    CREATE FUNCTION regress_sp_evil.type_name(t oid) RETURNS text LANGUAGE sql STABLE
        RETURN (SELECT format('%I.%I', n.nspname, y.typname)
                  FROM pg_type y JOIN pg_namespace n ON n.oid = y.typnamespace WHERE y.oid = t);
    CREATE FUNCTION regress_sp_evil.arg_list(ts oid[]) RETURNS text LANGUAGE sql STABLE
        RETURN (SELECT coalesce(string_agg(regress_sp_evil.type_name(t), ', ' ORDER BY o), '')
                  FROM unnest(ts) WITH ORDINALITY AS a(t, o));

    -- 1. Exact copies of pg_catalog's plain functions (operators use them below).
    FOR f IN SELECT p.oid, p.proname, p.proargtypes::oid[] AS argtypes, p.prorettype, p.proretset
               FROM pg_proc p
              WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
                AND p.proallargtypes IS NULL AND p.provariadic = 0
                AND NOT (p.prorettype = ANY (unsupported))
                AND NOT (p.proargtypes::oid[] && unsupported)
    LOOP
        BEGIN
            EXECUTE format('CREATE FUNCTION regress_sp_evil.%I(%s) RETURNS %s%s LANGUAGE plpgsql AS %L',
                           f.proname, regress_sp_evil.arg_list(f.argtypes),
                           CASE WHEN f.proretset THEN 'SETOF ' ELSE '' END,
                           regress_sp_evil.type_name(f.prorettype),
                           regress_sp_evil.lookalike_body(f.oid::regprocedure::text, f.proretset,
                                                          f.prorettype = 'void'::regtype));
            n := n + 1;
        EXCEPTION WHEN others THEN
            NULL;  -- a signature PL/pgSQL cannot take: no copy
        END;
    END LOOP;

    -- 2. Exact copies of pg_catalog's operators, calling the copied functions.
    FOR f IN SELECT o.oprname, o.oprleft, o.oprright, p.proname
               FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
              WHERE o.oprnamespace = 'pg_catalog'::regnamespace
    LOOP
        BEGIN
            EXECUTE format('CREATE OPERATOR regress_sp_evil.%s (%s FUNCTION = regress_sp_evil.%I)',
                           f.oprname,
                           CASE WHEN f.oprleft <> 0
                                THEN 'LEFTARG = ' || regress_sp_evil.type_name(f.oprleft) || ', ' ELSE '' END ||
                           'RIGHTARG = ' || regress_sp_evil.type_name(f.oprright) || ',',
                           f.proname);
        EXCEPTION WHEN others THEN
            NULL;
        END;
    END LOOP;

    -- 3. Aggregates and window functions: an aggregate of the same signature.
    FOR f IN SELECT p.oid, p.proname, p.proargtypes::oid[] AS argtypes, p.prorettype, p.prokind
               FROM pg_proc p LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
              WHERE p.pronamespace = 'pg_catalog'::regnamespace
                AND (p.prokind = 'w' OR (p.prokind = 'a' AND a.aggkind = 'n'))
                AND p.proallargtypes IS NULL AND p.provariadic = 0
                AND NOT (p.prorettype = ANY (unsupported))
                AND NOT (p.proargtypes::oid[] && unsupported)
    LOOP
        BEGIN
            EXECUTE format('CREATE FUNCTION regress_sp_evil.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L',
                           'lookalike_step_' || f.oid,
                           regress_sp_evil.arg_list(f.prorettype || f.argtypes),
                           regress_sp_evil.type_name(f.prorettype),
                           regress_sp_evil.lookalike_body(f.oid::regprocedure::text, false, false));
            EXECUTE format('CREATE AGGREGATE regress_sp_evil.%I(%s) (SFUNC = regress_sp_evil.%I, STYPE = %s)',
                           f.proname,
                           CASE WHEN cardinality(f.argtypes) = 0 THEN '*' ELSE regress_sp_evil.arg_list(f.argtypes) END,
                           'lookalike_step_' || f.oid, regress_sp_evil.type_name(f.prorettype));
        EXCEPTION WHEN others THEN
            NULL;
        END;
    END LOOP;

    -- 4. Better matches than pg_catalog's candidates, in public:
    --    operators between common types that pg_catalog has no exact operator for ...
    FOR f IN
        WITH types(t) AS (SELECT unnest(ARRAY['text', 'name', 'int4', 'int8', 'numeric', 'oid',
                                              'uuid', 'jsonb', 'timestamptz']::regtype[])),
             ops(op, returns) AS (VALUES ('=', 'bool'), ('<>', 'bool'), ('<', 'bool'), ('>', 'bool'),
                                         ('<=', 'bool'), ('>=', 'bool'), ('||', 'text'),
                                         ('+', NULL), ('-', NULL), ('->', 'jsonb'), ('->>', 'text'))
        SELECT 'public' AS schema, ops.op, l.t AS l, r.t AS r, coalesce(ops.returns::regtype, l.t) AS ret
          FROM ops, types l, types r
         WHERE NOT EXISTS (SELECT FROM pg_operator o
                            WHERE o.oprnamespace = 'pg_catalog'::regnamespace
                              AND o.oprname = ops.op AND o.oprleft = l.t AND o.oprright = r.t)
    LOOP
        BEGIN
            EXECUTE format('CREATE FUNCTION %I.%I(%s, %s) RETURNS %s LANGUAGE plpgsql AS %L',
                           f.schema, 'lookalike_op_' || md5(f.op || f.l::text || f.r::text),
                           regress_sp_evil.type_name(f.l), regress_sp_evil.type_name(f.r),
                           regress_sp_evil.type_name(f.ret),
                           regress_sp_evil.lookalike_body(format('%s.%s(%s, %s)', f.schema, f.op,
                                                                 f.l, f.r), false, false));
            EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.%I)',
                           f.schema, f.op, regress_sp_evil.type_name(f.l),
                           regress_sp_evil.type_name(f.r), f.schema,
                           'lookalike_op_' || md5(f.op || f.l::text || f.r::text));
        EXCEPTION WHEN others THEN
            NULL;  -- e.g. the reported text || bigint, planted before this file runs
        END;
    END LOOP;

    --    ... and concrete overloads of pg_catalog's functions that take one polymorphic
    --    family or "any" (to_json(anyelement), unnest(anyarray), format(text, "any"), ...).
    FOR f IN
        WITH concrete(elem, arr) AS (VALUES ('text'::regtype, 'text[]'::regtype),
                                            ('int8', 'int8[]'), ('jsonb', 'jsonb[]'))
        SELECT DISTINCT ON (s.schema, p.proname, subst.argtypes)
               s.schema, p.oid, p.proname, subst.argtypes, p.proretset,
               CASE WHEN p.prorettype IN ('anyelement'::regtype, 'anynonarray'::regtype,
                                          'anycompatible'::regtype) THEN c.elem
                    WHEN p.prorettype IN ('anyarray'::regtype, 'anycompatiblearray'::regtype) THEN c.arr
                    WHEN p.prorettype = 'record'::regtype THEN NULL
                    ELSE p.prorettype END AS ret, p.prokind
          FROM pg_proc p CROSS JOIN concrete c CROSS JOIN (VALUES ('public')) AS s(schema)
               CROSS JOIN LATERAL (
                   SELECT array_agg(CASE WHEN a IN ('anyelement'::regtype, 'anynonarray'::regtype,
                                                    'anycompatible'::regtype, '"any"'::regtype)
                                         THEN c.elem
                                         WHEN a IN ('anyarray'::regtype, 'anycompatiblearray'::regtype)
                                         THEN c.arr ELSE a END ORDER BY o) AS argtypes
                     FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS x(a, o)) AS subst
         WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind IN ('f', 'a')
           AND p.proallargtypes IS NULL
           AND p.proargtypes::oid[] && ARRAY['anyelement', 'anynonarray', 'anyarray', 'anycompatible',
                                             'anycompatiblearray', '"any"']::regtype[]::oid[]
           AND NOT (subst.argtypes && unsupported)
    LOOP
        CONTINUE WHEN f.ret IS NULL OR f.ret = ANY (unsupported);
        BEGIN
            IF f.prokind = 'f' THEN
                EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s%s LANGUAGE plpgsql AS %L',
                               f.schema, f.proname, regress_sp_evil.arg_list(f.argtypes),
                               CASE WHEN f.proretset THEN 'SETOF ' ELSE '' END,
                               regress_sp_evil.type_name(f.ret),
                               regress_sp_evil.lookalike_body(format('%s.%s(%s)', f.schema, f.proname,
                                                                     f.argtypes::regtype[]), f.proretset,
                                                              f.ret = 'void'::regtype));
            ELSE
                EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L',
                               f.schema, 'lookalike_step_' || md5(f.proname || f.argtypes::text),
                               regress_sp_evil.arg_list(f.ret || f.argtypes),
                               regress_sp_evil.type_name(f.ret),
                               regress_sp_evil.lookalike_body(format('%s.%s(%s)', f.schema, f.proname,
                                                                     f.argtypes::regtype[]), false, false));
                EXECUTE format('CREATE AGGREGATE %I.%I(%s) (SFUNC = %I.%I, STYPE = %s)',
                               f.schema, f.proname, regress_sp_evil.arg_list(f.argtypes), f.schema,
                               'lookalike_step_' || md5(f.proname || f.argtypes::text),
                               regress_sp_evil.type_name(f.ret));
            END IF;
        EXCEPTION WHEN others THEN
            NULL;  -- an exact copy exists already
        END;
    END LOOP;

    --    ... and variadic "any" functions (format, jsonb_build_object, concat, ...) with one
    --    to four variadic arguments of one common type.
    FOR f IN
        SELECT s.schema, p.proname, p.prorettype,
               (p.proargtypes::oid[])[1:cardinality(p.proargtypes::oid[]) - 1]
                 || array_fill(c.t, ARRAY[k]) AS argtypes
          FROM pg_proc p
               CROSS JOIN unnest(ARRAY['text', 'int8', 'name', 'jsonb']::regtype[]) AS c(t)
               CROSS JOIN generate_series(1, 4) AS k CROSS JOIN (VALUES ('public')) AS s(schema)
         WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f'
           AND p.provariadic = '"any"'::regtype AND NOT (p.prorettype = ANY (unsupported))
    LOOP
        BEGIN
            EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L',
                           f.schema, f.proname, regress_sp_evil.arg_list(f.argtypes),
                           regress_sp_evil.type_name(f.prorettype),
                           regress_sp_evil.lookalike_body(format('%s.%s(%s)', f.schema, f.proname,
                                                                 f.argtypes::regtype[]), false,
                                                          f.prorettype = 'void'::regtype));
        EXCEPTION WHEN others THEN
            NULL;
        END;
    END LOOP;

    -- 5. Types: domains named like the common types, for unqualified type names.
    FOR f IN SELECT unnest(ARRAY['text', 'name', 'int2', 'int4', 'int8', 'numeric', 'oid', 'bool',
                                 'uuid', 'jsonb', 'json', 'timestamptz', 'xid8', 'regclass', 'bytea',
                                 'float8', 'varchar']) AS t
    LOOP
        EXECUTE format('CREATE DOMAIN regress_sp_evil.%I AS pg_catalog.%I'
                       ' CHECK (regress_sp_evil.lookalike_type_check(%L))', f.t, f.t, f.t);
    END LOOP;
END
$lookalikes$;
RESET search_path;
\set QUIET off
