-- Per-database setup of the benchmarks, run by bench/run as a superuser in each of its
-- databases. The role bench_user (no superuser, no special rights) runs the workloads.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION pg_batchguard;

-- The equivalent plain table: same columns, defaults and primary key (batch_id, item_id)
-- as batchguard.batch_items, owned by the role that writes it.
CREATE SCHEMA bench_plain AUTHORIZATION bench_user;
CREATE TABLE bench_plain.items (LIKE batchguard.batch_items INCLUDING ALL);
ALTER TABLE bench_plain.items OWNER TO bench_user;

\ir plpgsql_reference.sql
\ir design_reference.sql

-- Helpers of bench/run (superuser only).
CREATE SCHEMA bench;

-- SETUP SHORTCUT: start_batch() does not exist yet, so registered batches and their
-- pending items are inserted directly into the tables as a superuser, exactly as
-- start_batch() would leave them (items_registered = true, status 'pending', the owner
-- being the role that calls complete_item). `store` is batchguard or bench_plpgsql.
CREATE FUNCTION bench.batch(store text, owner text, job text, registered boolean) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    id bigint;
BEGIN
    EXECUTE format('SELECT batch_id FROM %I.batches WHERE owner = $1 AND job_id = $2', store)
        INTO id USING owner, job;
    IF id IS NULL THEN
        EXECUTE format('INSERT INTO %I.batches (owner, job_id, items_registered)'
                       ' VALUES ($1, $2, $3) RETURNING batch_id', store)
            INTO id USING owner, job, registered;
    END IF;
    RETURN id;
END
$$;

-- Items item-<k>, k = 1..count, with the given status ('completed' or 'pending'), or
-- 'half': every even k completed, every odd one pending.
CREATE FUNCTION bench.add_numbered_items(store text, batch bigint, owner text, count integer,
                                         status text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO %I.batch_items (batch_id, item_id, owner, status)'
                   ' SELECT $1, ''item-'' || k, $2,'
                   '        CASE WHEN $4 = ''half'' THEN CASE k %% 2 WHEN 0 THEN ''completed'' ELSE ''pending'' END'
                   '             ELSE $4 END::batchguard.item_status'
                   '   FROM generate_series(1, $3) AS k', store)
        USING batch, owner, count, status;
END
$$;

-- The items one pgbench run may touch, pending: item-<round>-<client>-<n>, the ids the
-- scripts build from :round, :client_id and their counter :n (1..per_client).
CREATE FUNCTION bench.add_run_items(store text, batch bigint, owner text, round integer,
                                    clients integer, per_client integer) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO %I.%I (batch_id, item_id, owner, status)'
                   ' SELECT $1, ''item-'' || $3 || ''-'' || c || ''-'' || n, $2, ''pending'''
                   '   FROM generate_series(0, $4 - 1) AS c, generate_series(1, $5) AS n',
                   store, CASE store WHEN 'bench_plain' THEN 'items' ELSE 'batch_items' END)
        USING batch, owner, round, clients, per_client;
END
$$;

-- The hand-written anti-join that filter_pending_items is compared with. EXECUTE ... USING
-- plans it with the actual array and batch id, as a client that sends the array as a
-- query parameter gets it planned (unnest($2) is then known to hold all the items).
CREATE FUNCTION bench.anti_join(batch bigint, items text[]) RETURNS text[]
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    pending text[];
BEGIN
    EXECUTE 'SELECT array_agg(i) FROM unnest($2) AS u(i)'
            ' WHERE NOT EXISTS (SELECT 1 FROM batchguard.batch_items b'
            '                    WHERE b.batch_id = $1 AND b.item_id = u.i'
            '                      AND b.status IN (''completed'', ''failed''))'
        INTO pending USING batch, items;
    RETURN pending;
END
$$;

-- The input of the filter benchmark: one row holding every item id of the job.
CREATE TABLE bench.filter_input (items text[] NOT NULL);
