-- The checkpoint of the original design, for comparison only (bench/design_baseline.sql):
-- one row per batch whose jsonb array holds every completed item id. Recording an item
-- reads the row, checks the id is not there yet, appends it and writes the whole array
-- back (one upsert): its cost grows with the number of items already completed, where
-- batchguard.complete_item writes one row of its own per item.
-- Loaded by bench/run as a superuser, after CREATE EXTENSION pg_batchguard.

CREATE SCHEMA bench_design;
GRANT USAGE ON SCHEMA bench_design TO PUBLIC;

CREATE TABLE bench_design.checkpoints (
    owner      text NOT NULL,
    job_id     text NOT NULL,
    completed  jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (owner, job_id)
);
GRANT SELECT, INSERT, UPDATE ON bench_design.checkpoints TO PUBLIC;

-- True when the item was not recorded yet, like batchguard.complete_item.
CREATE FUNCTION bench_design.complete_item(job_id text, item_id text) RETURNS boolean
    LANGUAGE sql VOLATILE AS $$
    INSERT INTO bench_design.checkpoints AS c (owner, job_id, completed)
    VALUES (current_user, job_id, jsonb_build_array(item_id))
    ON CONFLICT (owner, job_id) DO UPDATE
       SET completed = c.completed || jsonb_build_array(item_id), updated_at = clock_timestamp()
     WHERE NOT c.completed ? item_id
    RETURNING true
$$;
