-- Backups keep every value's meaning: one table per column type, exported under unusual
-- session settings, deleted and restored (restore_backup) under others: every value comes
-- back with the same text.
\i test/helpers.sql
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.round_trip(tbl regclass) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    b uuid;
    original text;
    restored text;
BEGIN
    -- export under one set of settings...
    SET LOCAL DateStyle = 'German, DMY';
    SET LOCAL TimeZone = 'Asia/Kathmandu';
    SET LOCAL IntervalStyle = 'postgres_verbose';
    SET LOCAL extra_float_digits = -15;
    SET LOCAL bytea_output = 'escape';
    b := (batchguard.export_backup(tbl)).backup_id;
    -- ... read back under another
    SET LOCAL DateStyle = 'SQL, MDY';
    SET LOCAL TimeZone = 'America/St_Johns';
    SET LOCAL IntervalStyle = 'sql_standard';
    SET LOCAL extra_float_digits = 3;
    SET LOCAL bytea_output = 'hex';
    EXECUTE format('SELECT string_agg(bg_orig::text, %L ORDER BY bg_orig.id) FROM %s bg_orig',
                   E'\n', tbl) INTO original;
    EXECUTE format('DELETE FROM %s', tbl);
    PERFORM batchguard.restore_backup(b);
    EXECUTE format('SELECT string_agg(bg_rest::text, %L ORDER BY bg_rest.id) FROM %s bg_rest',
                   E'\n', tbl) INTO restored;
    IF original IS DISTINCT FROM restored THEN
        RAISE WARNING 'original: %', original;
        RAISE WARNING 'restored: %', restored;
    END IF;
    RETURN original IS NOT DISTINCT FROM restored;
END
$$;

CREATE TABLE t_numeric (id int PRIMARY KEY, v numeric);
INSERT INTO t_numeric VALUES (1, 0), (2, 1.500), (3, -123456789012345678901234567890.123456789),
    (4, 'NaN'), (5, 'Infinity'), (6, '-Infinity'), (7, 1e-30), (8, NULL);
CREATE TABLE t_float (id int PRIMARY KEY, d float8, r float4);
INSERT INTO t_float VALUES (1, 0.1, 0.1), (2, 1e308, 3.4e38), (3, 'NaN', 'NaN'), (4, 'Infinity', '-Infinity'),
    (5, -1e-300, -1e-30), (6, 2.2250738585072014e-308, 1.17549435e-38), (7, 1/3::float8, 1/3::float4), (8, NULL, NULL);
CREATE TABLE t_int (id int PRIMARY KEY, s smallint, i int, b bigint, o oid, bo boolean);
INSERT INTO t_int VALUES (1, -32768, -2147483648, -9223372036854775808, 0, true),
    (2, 32767, 2147483647, 9223372036854775807, 4294967295, false), (3, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE t_time (id int PRIMARY KEY, tz timestamptz, ts timestamp, d date, t time, ttz timetz, iv interval);
INSERT INTO t_time VALUES
    (1, '2024-02-29 23:59:59.999999+14', '2024-02-29 23:59:59.999999', '2024-02-29', '23:59:59.999999', '12:00+05:45', '1 year 2 months 3 days 04:05:06.789'),
    (2, '0044-03-15 12:00 BC', '4713-01-01 00:00 BC', '5874897-12-31', '00:00', '00:00-12', '-1 day +02:00'),
    (3, 'infinity', '-infinity', 'infinity', '24:00', '24:00+00', '178000000 years'),
    (4, '1970-01-01 00:00:00+00', '2000-01-01', '2000-01-01', '12:34:56', '12:34:56.5+01', '-2 mons -3 days -00:00:01'),
    (5, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE t_bytes (id int PRIMARY KEY, b bytea);
INSERT INTO t_bytes VALUES (1, ''), (2, '\x00'), (3, '\xdeadbeef00ff7f80'), (4, decode(repeat('5c22', 100), 'hex')), (5, NULL);
CREATE TABLE t_text (id int PRIMARY KEY, t text, c char(5), v varchar(10), n name);
INSERT INTO t_text VALUES (1, '', '', '', ''), (2, E'line\nbreak\ttab\r\\back"quote''', 'ab', 'x', 'n'),
    (3, (SELECT string_agg(chr(c), '') FROM generate_series(1, 31) c) || chr(127), ' ', ' ', ' '),
    (4, 'é日本語🎉𝄞 zero-width:' || chr(8203) || ' rtl:' || chr(8238), 'é', '日本', 'ü'),
    (5, repeat('long ', 20000), NULL, NULL, NULL), (6, NULL, NULL, NULL, NULL), (7, 'null', 'null', 'NULL', 'null');
CREATE TABLE t_array (id int PRIMARY KEY, i int[], t text[], m int[][], n numeric[], e text[]);
INSERT INTO t_array VALUES (1, '{1,NULL,3}', '{"a","b,c","NULL",NULL,"\"q\""}', '{{1,2},{3,4}}', '{1.10,NaN}', '{}'),
    (2, NULL, '{""}', '{{NULL}}', NULL, NULL);
CREATE TABLE t_json (id int PRIMARY KEY, jb jsonb, j json);
INSERT INTO t_json VALUES (1, '{"b": 1, "a": [1, 2.50, "x", {"n": null}]}', '{"a": [1, 2.50, "x"], "b": 1}'),
    (2, '"string"', '"string"'), (3, NULL, NULL), (4, '{}', '[]'),
    (5, '{"u": "\u00e9\ud83c\udf89", "c": "\u0001"}', '{"c": "\u0001", "u": "é🎉"}'),
    (6, '123456789012345678901234567890.5', '[true, false]');
CREATE TYPE t_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE t_pair AS (a int, b text);
CREATE TABLE t_other (id int PRIMARY KEY, u uuid, inet_v inet, cidr_v cidr, mac macaddr, mood t_mood, rng int4range,
                      p point, bits bit varying(8), x xml, pair t_pair, money_v money);
INSERT INTO t_other VALUES (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
    'happy', '[1,10)', '(1.5,-2)', B'1010', '<a x="1">t&amp;</a>', ROW(1, 'a "b"'), 12.34),
    (2, NULL, '::1', NULL, NULL, 'sad', 'empty', NULL, B'', NULL, ROW(NULL, NULL), NULL);

SELECT t AS type_table, pg_temp.round_trip(t) AS round_trips
  FROM unnest(ARRAY['t_numeric', 't_float', 't_int', 't_time', 't_bytes', 't_text', 't_array',
                    't_json', 't_other']::regclass[]) AS t;

-- Format 2: every value is the text of its type's output function under the pinned
-- settings, a JSON string (SQL NULL: null).
CREATE FUNCTION pg_temp.same_jsonb(tbl regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    b uuid := (batchguard.export_backup(tbl)).backup_id;
    expected text;
    mismatches bigint;
BEGIN
    SET LOCAL extra_float_digits = 1;
    SET LOCAL bytea_output = 'hex';
    SET LOCAL DateStyle = 'ISO, YMD';
    SET LOCAL IntervalStyle = 'iso_8601';
    SET LOCAL TimeZone = 'UTC';
    SET LOCAL lc_monetary = 'C';
    -- format's %s: the type's output function (a cast to text may differ, e.g. char(n))
    SELECT 'jsonb_build_object(' || string_agg(format(
               '%L, CASE WHEN bg_o.%I IS NOT DISTINCT FROM NULL THEN NULL ELSE format(''%%s'', bg_o.%I) END',
               attname, attname, attname), ', ') || ')'
      INTO expected FROM pg_attribute WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped;
    EXECUTE format('SELECT count(*) FROM batchguard.backup_rows($1) bg_r FULL JOIN %s bg_o
                      ON (bg_r.row->>''id'')::int = bg_o.id
                     WHERE bg_r.row IS DISTINCT FROM %s', tbl, expected)
       INTO mismatches USING b;
    RETURN mismatches;
END
$$;
SELECT t AS type_table, pg_temp.same_jsonb(t) AS mismatches
  FROM unnest(ARRAY['t_numeric', 't_float', 't_int', 't_time', 't_bytes', 't_text', 't_array',
                    't_json', 't_other']::regclass[]) AS t;

-- How some values look in the file (the format's promises).
SELECT backup_id AS b FROM batchguard.export_backup('t_float', '{1,3,4,5}') \gset
SELECT "row" FROM batchguard.backup_rows(:'b');
SELECT backup_id AS b FROM batchguard.export_backup('t_time', '{1,3}') \gset
SELECT "row" FROM batchguard.backup_rows(:'b');
SELECT backup_id AS b FROM batchguard.export_backup('t_numeric', '{2,4,5}') \gset
SELECT "row" FROM batchguard.backup_rows(:'b');
-- Negative zero ('-0'::float8: a float, unlike the numeric literal -0.0, which is +0
-- before any cast): backup_rows gives back "-0" (restore's round trip: t_json_edges below).
CREATE TABLE t_negative_zero (id int PRIMARY KEY, d float8, r float4, a float8[]);
INSERT INTO t_negative_zero VALUES (1, '-0', '-0', '{-0,1}');
SELECT d::text AS stored_d, r::text AS stored_r, a::text AS stored_a FROM t_negative_zero;
SELECT backup_id AS b FROM batchguard.export_backup('t_negative_zero') \gset
SELECT "row", ("row" ->> 'd')::float8::text AS d_read_back FROM batchguard.backup_rows(:'b');
-- json values are written as JSON strings of their text (duplicate keys, whitespace and
-- all, byte for byte); a JSON null in a json or jsonb column is the string "null", an SQL
-- NULL is null.
CREATE TABLE t_json_limits (id int PRIMARY KEY, j json, jb jsonb);
INSERT INTO t_json_limits VALUES (1, '{"a": 1, "a": 2}', 'null'), (2, 'null', NULL);
SELECT backup_id AS b FROM batchguard.export_backup('t_json_limits') \gset
SELECT "row" FROM batchguard.backup_rows(:'b');

-- What format 1 could not give back (issue 12): json holding \u0000, a lone surrogate or
-- 1e5000 (unreadable by jsonb), whitespace and duplicate keys (normalized), a JSON null
-- in a NOT NULL column (restored as SQL NULL), float8 -0 (restored as 0).
CREATE TABLE t_json_edges (id int PRIMARY KEY, j json NOT NULL, jb jsonb NOT NULL, f float8);
INSERT INTO t_json_edges VALUES (1, '"\u0000"', 'null', '-0'), (2, '"\ud800"', '{"a": 1}', 0),
    (3, '1e5000', '[]', NULL), (4, ' {"b":1,  "a":2, "b":3} ', 'null', '-0'), (5, 'null', '1', 1);
SELECT pg_temp.round_trip('t_json_edges') AS round_trips;
SELECT string_agg(j::text || '|' || jb::text || '|' || coalesce(f::text, 'NULL'), ' ; ' ORDER BY id)
  FROM t_json_edges;

-- The export renders int2/int4/int8 and text/varchar/char(n) values itself (not through
-- their output functions): random values, extremes, domains, escapes, a NUL-free mix of
-- control and non-ASCII characters, and compressed and out-of-line (toasted) text, must
-- come out byte for byte as the output functions write them.
CREATE DOMAIN t_big AS bigint;
CREATE DOMAIN t_words AS text;
CREATE TABLE t_random_fast (id int PRIMARY KEY, s smallint, i int, b bigint, db t_big, t text,
                            v varchar(40), c char(7), dt t_words, big text);
ALTER TABLE t_random_fast ALTER COLUMN big SET STORAGE EXTERNAL;
SELECT setseed(0.16);
INSERT INTO t_random_fast
SELECT g,
       CASE g % 7 WHEN 0 THEN -32768 WHEN 1 THEN 32767 WHEN 2 THEN NULL
                  ELSE (random() * 65535 - 32768)::int END,
       CASE g % 5 WHEN 0 THEN -2147483648 WHEN 1 THEN 0 ELSE (random() * 4294967295 - 2147483648)::bigint END,
       CASE g % 6 WHEN 0 THEN -9223372036854775808 WHEN 1 THEN 9223372036854775807
                  WHEN 2 THEN -(10 ^ (g % 19))::bigint ELSE (random() * 1e18 - 5e17)::bigint END,
       CASE WHEN g % 4 = 0 THEN NULL ELSE (random() * 1e12)::bigint END,
       (SELECT string_agg(chr(CASE WHEN random() < 0.1 THEN 1 + (random() * 40)::int
                                   WHEN random() < 0.1 THEN 92
                                   WHEN random() < 0.1 THEN 160 + (random() * 20000)::int
                                   ELSE 32 + (random() * 94)::int END), '')
          FROM generate_series(1, (random() * 30)::int + g % 2) WHERE g > 0),
       left(md5(g::text) || E'"\\\n', (g % 40)),
       CASE WHEN g % 3 = 0 THEN NULL ELSE left(md5(g::text), g % 8) END,
       CASE WHEN g % 9 = 0 THEN '' ELSE E'x\ty' || g END,
       CASE WHEN g % 50 = 0 THEN repeat(md5(g::text), 200)
            WHEN g % 50 = 1 THEN repeat(E'a"\u00e9', 3000) ELSE NULL END
  FROM generate_series(1, 2000) g;
ALTER TABLE t_random_fast ALTER COLUMN big SET STORAGE EXTENDED;
UPDATE t_random_fast SET t = repeat(t, 500) WHERE id % 97 = 0 AND t <> '';  -- compressed inline
SELECT count(*) FILTER (WHERE pg_column_compression(t) IS NOT NULL) > 0 AS some_compressed,
       count(*) FILTER (WHERE big IS NOT NULL) AS toasted
  FROM t_random_fast;
SELECT pg_temp.same_jsonb('t_random_fast') AS mismatches, pg_temp.round_trip('t_random_fast') AS round_trips;

-- clean up: this suite's backups (the row now, the file at commit) and their audit rows
CREATE TEMP TABLE suite_backups AS
    SELECT backup_id FROM batchguard.backups WHERE source_table LIKE 'public.t\_%';
SELECT count(*) FILTER (WHERE batchguard.delete_backup(backup_id)) AS deleted FROM suite_backups;
DELETE FROM batchguard.audit WHERE backup_id IN (SELECT backup_id FROM suite_backups);
DROP TABLE t_numeric, t_float, t_int, t_time, t_bytes, t_text, t_array, t_json, t_other, t_json_limits,
           t_negative_zero, t_json_edges, t_random_fast;
DROP DOMAIN t_big, t_words;
DROP TYPE t_mood, t_pair;
