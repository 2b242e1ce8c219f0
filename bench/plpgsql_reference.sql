-- A plain PL/pgSQL implementation of batchguard.complete_item(), for comparison only.
--
-- Same semantics as the C++ function, on its own copy of the tables (schema
-- bench_plpgsql): validate the ids, take the job's lock in share mode, look up the
-- caller's batch by (owner, job_id) and create it lazily, then record the item:
--   lazy batch       INSERT ... ON CONFLICT DO UPDATE ... WHERE status <> 'completed'
--   registered batch UPDATE ... WHERE status <> 'completed'; an unknown item is an error
--   lease token      the token must be the item's current lease
-- and return true when the item changed, false when it was already completed.
--
-- PL/pgSQL cannot learn its caller's role inside SECURITY DEFINER, so this version runs
-- as the caller and enforces ownership with row-level security write policies instead
-- (callers get INSERT/UPDATE on the copy; the C++ extension gives them none).
-- Loaded by bench/run as a superuser, after CREATE EXTENSION pg_batchguard.

CREATE SCHEMA bench_plpgsql;
GRANT USAGE ON SCHEMA bench_plpgsql TO PUBLIC;

CREATE TABLE bench_plpgsql.batches (LIKE batchguard.batches INCLUDING ALL);
CREATE TABLE bench_plpgsql.batch_items (LIKE batchguard.batch_items INCLUDING ALL);

ALTER TABLE bench_plpgsql.batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench_plpgsql.batch_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON bench_plpgsql.batches
    USING (owner = current_user) WITH CHECK (owner = current_user);
CREATE POLICY owner_only ON bench_plpgsql.batch_items
    USING (owner = current_user) WITH CHECK (owner = current_user);
GRANT SELECT, INSERT, UPDATE ON bench_plpgsql.batches, bench_plpgsql.batch_items TO PUBLIC;

CREATE FUNCTION bench_plpgsql.complete_item(job_id text, item_id text, result jsonb DEFAULT NULL,
                                            lease_token bigint DEFAULT NULL) RETURNS boolean
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE AS $$
#variable_conflict use_column
DECLARE
    v_owner text := current_user;
    v_batch_id bigint;
    v_registered boolean;
    v_status batchguard.item_status;
    v_token bigint;
BEGIN
    -- The same id rules as the C++ (validate_id), inline: plain expressions, no queries.
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF job_id = '' OR octet_length(job_id) > 1024 THEN
        RAISE EXCEPTION 'job_id must not be empty nor longer than 1024 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF item_id IS NULL THEN
        RAISE EXCEPTION 'item_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF item_id = '' OR octet_length(item_id) > 1024 THEN
        RAISE EXCEPTION 'item_id must not be empty nor longer than 1024 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The job lock, shared by item writers (the C++ uses its own advisory key space).
    PERFORM pg_advisory_xact_lock_shared(hashtextextended(v_owner || '/' || job_id, 0));

    SELECT b.batch_id, b.items_registered INTO v_batch_id, v_registered
      FROM bench_plpgsql.batches b WHERE b.owner = v_owner AND b.job_id = complete_item.job_id;
    IF NOT FOUND THEN
        IF lease_token IS NOT NULL THEN
            RAISE EXCEPTION 'batch "%" does not exist', job_id USING ERRCODE = 'undefined_object';
        END IF;
        INSERT INTO bench_plpgsql.batches (owner, job_id) VALUES (v_owner, complete_item.job_id)
            ON CONFLICT (owner, job_id) DO NOTHING
            RETURNING batches.batch_id, batches.items_registered INTO v_batch_id, v_registered;
        IF NOT FOUND THEN
            SELECT b.batch_id, b.items_registered INTO STRICT v_batch_id, v_registered
              FROM bench_plpgsql.batches b
             WHERE b.owner = v_owner AND b.job_id = complete_item.job_id;
        END IF;
    END IF;

    IF lease_token IS NOT NULL THEN
        UPDATE bench_plpgsql.batch_items i
           SET status = 'completed', result = complete_item.result, error = NULL,
               error_detail = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
         WHERE i.batch_id = v_batch_id AND i.item_id = complete_item.item_id
           AND i.status = 'running' AND i.lease_token = complete_item.lease_token;
        IF FOUND THEN
            RETURN true;
        END IF;
        SELECT i.status, i.lease_token INTO v_status, v_token
          FROM bench_plpgsql.batch_items i
         WHERE i.batch_id = v_batch_id AND i.item_id = complete_item.item_id;
        IF FOUND AND v_status IN ('completed', 'failed') AND v_token = complete_item.lease_token THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'lease % of item "%" is not current', lease_token, item_id
            USING ERRCODE = 'PB001';
    ELSIF NOT v_registered THEN
        INSERT INTO bench_plpgsql.batch_items AS i (batch_id, item_id, owner, status, result)
        VALUES (v_batch_id, complete_item.item_id, v_owner, 'completed', complete_item.result)
        ON CONFLICT (batch_id, item_id) DO UPDATE
           SET status = 'completed', result = excluded.result, error = NULL, error_detail = NULL,
               lease_expires_at = NULL, updated_at = clock_timestamp()
         WHERE i.status <> 'completed';
        RETURN FOUND;
    ELSE
        UPDATE bench_plpgsql.batch_items i
           SET status = 'completed', result = complete_item.result, error = NULL,
               error_detail = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
         WHERE i.batch_id = v_batch_id AND i.item_id = complete_item.item_id
           AND i.status <> 'completed';
        IF FOUND THEN
            RETURN true;
        END IF;
        PERFORM FROM bench_plpgsql.batch_items i
          WHERE i.batch_id = v_batch_id AND i.item_id = complete_item.item_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'item "%" is not registered in this batch', item_id
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN false;
    END IF;
END
$$;
