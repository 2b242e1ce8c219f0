#!/usr/bin/python3
"""Randomized round-trip test of delete_with_backup -> restore_backup (issue 12).

Each case builds a random schema (2-8 tables; foreign-key graphs with cycles across
tables, self-references, multi-column keys, CASCADE / SET NULL / SET DEFAULT / RESTRICT /
NO ACTION, deferrable constraints; single- and multi-column primary keys and tables
without one; partitioned tables; generated and identity columns; a user trigger that
writes to another table; a table with row security for the caller) with columns of every
built-in scalar type (enumerated from pg_type: a type that is neither generated nor
listed in NO_INPUT fails the run), arrays of them, a composite type, an enum, domains, and
json/jsonb edge values. It fills the tables, picks random ids of the source table and:

1. runs a plain DELETE of those ids as the caller, notes what it does (then rolls back);
2. runs delete_with_backup as the caller (half the cases under a non-default DateStyle,
   IntervalStyle, lc_monetary, TimeZone, extra_float_digits and bytea_output) and
   commits. A refusal is allowed: then nothing may have changed, and its reason is
   counted. Otherwise the tables must look exactly as after the plain DELETE;
3. runs restore_backup as the caller and commits: every table must be byte-identical to
   before (sorted COPY ... TO STDOUT of every table, read as a superuser under fixed
   settings).
4. checks export_backup: every row of the source and what references it is in the file,
   value for value;
5. in half the cases, runs purge_with_backup of the same ids in chunks of 1 or 2 (each
   chunk backed up and deleted in its own transaction), then restores every chunk's
   backup, the last chunk's first: every table must again be byte-identical to before.
6. protected-table mode (issue 17), in half the cases (all with --protected): the caller
   protects the source table (or, when protect_table refuses it, the first other table it
   accepts), then in one transaction runs random plain DELETE statements -- the ids split
   over one or two statements, writable CTEs, random rows of a covered child table
   (children reached through CASCADE, SET NULL and SET DEFAULT keys: the rows the latter
   change are in the backup with their old values) -- commits, and restores the
   transaction's one backup (last_backup_id): every table must be byte-identical to
   before. A refusal (protect_table's, or the trigger's, or a
   RESTRICT reference's) must leave every table unchanged.

Every case is derived from one seed (printed), so a failure is reproducible with
--seed S --cases 1; the failing case's SQL is written to a file and printed, after a
simple shrink (typed columns and rows that do not matter are removed).

Usage: roundtrip.py --host DIR --port N [--dbname D] [--cases N] [--seed S] [--verbose]
Exits non-zero on any mismatch; prints counts of cases, refusals by reason, mismatches.
"""

import argparse
import collections
import os
import random
import re
import sys
import time

import psycopg

# --------------------------------------------------------------------------------------
# Values of every built-in scalar type (literal text, cast to the type).

CALLER = "rt_caller"
PURGES = collections.Counter()  # what check_purge did, for the summary
PROTECTED = collections.Counter()  # what check_protected did, for the summary
NOTICES = []  # the caller's notices since restore_as_caller last looked
RESTORE_PATHS = collections.Counter()  # how restore_backup loaded the rows (its DEBUG1 line)
PROTECT_ALL = False  # --protected: every case runs the protected-table mode


def unicode_text(rng, length=None):
    # Every plane: ASCII (with quotes, backslashes, tabs, newlines), BMP, SMP (emoji),
    # SIP (CJK ext.), TIP, tags (plane 14), private use (planes 15, 16).
    ranges = [(0x20, 0x7E), (0x09, 0x0A), (0xA0, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x1FFFD),
              (0x20000, 0x2FFFD), (0x30000, 0x3134A), (0xE0001, 0xE007F), (0xF0000, 0xFFFFD),
              (0x100000, 0x10FFFD)]
    n = rng.randint(0, 12) if length is None else length
    out = []
    for _ in range(n):
        lo, hi = rng.choice(ranges)
        out.append(chr(rng.randint(lo, hi)))
    if rng.random() < 0.3:
        out.append(rng.choice(['"', "'", "\\", "\\N", "\r", "\x01", "\x7f"]))
    return "".join(out)


ALL_BYTES = "\\x" + bytes(range(256)).hex()

JSON_EDGE = ['null', ' [1, 2 ,3] ', '{"a":1,"a":2}', '{"b":1, "a":2}', '"\\u0000"', '"\\ud800"',
             '1e5000', '-0', '{"k":"\\u00e9\\n"}', '""', '  {  }  ', '[{"x":null}]', '0.10']
JSONB_EDGE = ['null', '{"a":1,"a":2}', '[1,"two",null,true]', '1e500', '-0.0', '"\\u00e9"', '{}',
              '{"nested":{"k":[1.10,2]}}', '""', '"tab\\tnl\\n"']

SAMPLES = {
    "boolean": ["true", "false"],
    "bytea": [ALL_BYTES, "\\x", "\\x00ff5c27"],
    '"char"': ["a", "Z", "", "\\377", "\\001"],
    "name": ["abc", "with space", "ünïcødé", "x" * 63],
    "bigint": ["0", "-9223372036854775808", "9223372036854775807", "42"],
    "smallint": ["-32768", "32767", "0"],
    "integer": ["-2147483648", "2147483647", "0", "7"],
    "regproc": ["pg_catalog.now", "-", "pg_catalog.int4in"],
    "text": None,  # unicode_text
    "oid": ["0", "4294967295", "1"],
    "tid": ["(0,1)", "(4294967295,65535)"],
    "xid": ["0", "4294967295", "3"],
    "cid": ["0", "4294967295"],
    "json": JSON_EDGE,
    "xml": ["<a>x &amp; y</a>", "text only", "<r a='1'/><s/>"],
    "point": ["(1,2)", "(-0,1e300)", "(NaN,Infinity)"],
    "lseg": ["[(1,2),(3,4)]"],
    "path": ["((0,0),(1,1),(2,0))", "[(0,0),(1.5,-1)]"],
    "box": ["(1,1),(0,0)"],
    "polygon": ["((0,0),(1,1),(1,0))"],
    "line": ["{1,-1,0}"],
    "cidr": ["10.0.0.0/8", "2001:db8::/32"],
    "real": ["-0", "NaN", "Infinity", "-Infinity", "1.17549435e-38", "3.4028235e+38", "0.1"],
    "double precision": ["-0", "NaN", "Infinity", "-Infinity", "5e-324", "1.7976931348623157e308",
                         "0.1", "1e-310"],
    "circle": ["<(0,0),5>", "<(1.5,-2),0>"],
    "macaddr8": ["08:00:2b:01:02:03:04:05"],
    "money": ["12.34", "-92233720368547758.08", "92233720368547758.07", "0"],
    "macaddr": ["08:00:2b:01:02:03"],
    "inet": ["192.168.0.1/24", "::1", "10.1.2.3"],
    "aclitem": [f"{CALLER}=r/{CALLER}", f"={'arw'}/{CALLER}"],
    "character": ["a", "ab ", ""],
    "character varying": None,  # unicode_text
    "date": ["2000-01-01", "infinity", "-infinity", "4713-01-01 BC", "5874897-12-31", "2024-02-29"],
    "time without time zone": ["00:00", "23:59:59.999999", "24:00:00"],
    "timestamp without time zone": ["infinity", "-infinity", "4713-01-01 00:00 BC",
                                    "294276-12-31 23:59:59.999999", "2000-02-29 12:34:56.789"],
    "timestamp with time zone": ["infinity", "-infinity", "4713-01-01 00:00+00 BC",
                                 "294276-12-31 23:59:59.999999+00", "2000-02-29 12:34:56.789+05:45"],
    "interval": ["1 year 2 mons -3 days 04:05:06.789", "-178000000 years", "0",
                 "P1Y2M3DT4H5M6S", "178000000 years", "-1 days +1 hours", "00:00:00.000001"],
    "time with time zone": ["12:00+05:45", "00:00:00-15:59", "24:00:00+00"],
    "bit": ["1", "0"],
    "bit varying": ["", "1010", "1" * 100],
    "numeric": ["NaN", "Infinity", "-Infinity", "0.000000000000000000001",
                "-12345678901234567890.1234567890", "1e1000", "0.10", "-0"],
    "refcursor": ["c1", "with space"],
    "regprocedure": ["pg_catalog.now()", "-", "pg_catalog.int4pl(integer,integer)"],
    "regoper": ["pg_catalog.||/", "0"],
    "regoperator": ["pg_catalog.+(integer,integer)", "0"],
    "regclass": ["pg_catalog.pg_class", "-"],
    "regtype": ["integer", "pg_catalog.text[]", "-"],
    "uuid": ["00000000-0000-0000-0000-000000000000", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
    "txid_snapshot": ["10:20:10,14,15", "1:1:"],
    "pg_lsn": ["0/0", "FFFFFFFF/FFFFFFFF", "16/B374D848"],
    "tsvector": ["'a':1A 'b c':2", "", "'ü' 'x':3,4"],
    "tsquery": ["a & !(b | c:*)", "'x' <-> 'y'"],
    "regconfig": ["english", "simple"],
    "regdictionary": ["simple", "english_stem"],
    "jsonb": JSONB_EDGE,
    "int4range": ["[1,5)", "empty", "(,)"],
    "numrange": ["[1.5,2.5]", "(,3)", "empty"],
    "tsrange": ["[2000-01-01,infinity)", "(,)"],
    "tstzrange": ["[2000-01-01 00:00+00,2000-01-02 00:00+00)", "empty"],
    "daterange": ["[2000-01-01,2000-02-01)", "[-infinity,infinity]"],
    "int8range": ["[1,9223372036854775806]", "empty"],
    "jsonpath": ["$.a[*] ? (@ > 1)", "strict $.\"k\".type()"],
    "regnamespace": ["pg_catalog", "-"],
    "regrole": [CALLER, "-"],
    "regcollation": ['"C"', "-", "pg_catalog.\"POSIX\""],
    "int4multirange": ["{[1,3),[5,7)}", "{}"],
    "nummultirange": ["{[1.1,2.2]}", "{}"],
    "tsmultirange": ["{[2000-01-01,2000-01-02)}"],
    "tstzmultirange": ["{[2000-01-01 00:00+00,2000-01-02 00:00+00)}"],
    "datemultirange": ["{[2000-01-01,2000-01-05)}", "{}"],
    "int8multirange": ["{[1,2)}"],
    "pg_snapshot": ["10:20:10,14,15"],
    "xid8": ["0", "18446744073709551615"],
    "int2vector": ["1 2 3", ""],
    "oidvector": ["1 2 3", ""],
}
# Built-in scalar types that have no input function a client can use (internal types).
NO_INPUT = {"pg_node_tree", "pg_ndistinct", "pg_dependencies", "pg_mcv_list", "gtsvector",
            "pg_brin_bloom_summary", "pg_brin_minmax_multi_summary"}


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def builtin_types(conn):
    rows = conn.execute(
        "SELECT pg_catalog.format_type(t.oid, NULL) FROM pg_catalog.pg_type t"
        " WHERE t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace"
        "   AND t.typtype IN ('b', 'r', 'm')"
        "   AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)"
        " ORDER BY t.oid").fetchall()
    names = [r[0] for r in rows]
    unknown = [n for n in names if n not in SAMPLES and n not in NO_INPUT]
    if unknown:
        sys.exit(f"roundtrip: built-in types without values: {unknown}")
    return [n for n in names if n not in NO_INPUT]


FLOAT_FIELDS = ["'-0'", "'NaN'", "'1.5'", "NULL"]


def value_sql(rng, type_name, schema):
    """A SQL expression of the type (a cast literal), never NULL."""
    if type_name in (f"{schema}.comp",):
        return (f"ROW({rng.choice(['-1', '0', 'NULL', '2147483647'])}, "
                f"{lit(unicode_text(rng))}, {rng.choice(FLOAT_FIELDS)})"
                f"::{schema}.comp")
    if type_name == f"{schema}.mood":
        return lit(rng.choice(["sad", "ok", "with space", "Ünï\"'"])) + f"::{schema}.mood"
    if type_name == f"{schema}.dom_pos":
        return f"{rng.choice(['1', '2147483647', '5'])}::{schema}.dom_pos"
    if type_name == f"{schema}.dom_json":
        return lit(rng.choice(JSON_EDGE)) + f"::{schema}.dom_json"
    if type_name.endswith("[]"):
        element = type_name[:-2]
        items = [value_sql(rng, element, schema) if rng.random() < 0.8 else "NULL"
                 for _ in range(rng.randint(0, 3))]
        return f"ARRAY[{', '.join(items)}]::{type_name}" if items else f"'{{}}'::{type_name}"
    samples = SAMPLES.get(type_name)
    text = unicode_text(rng) if samples is None else rng.choice(samples)
    return f"{lit(text)}::{type_name}"


# --------------------------------------------------------------------------------------
# The case model (rendered to SQL; the shrinker edits it).

ACTIONS = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT", "r": "RESTRICT", "a": "NO ACTION"}


class Table:
    def __init__(self, name):
        self.name = name
        self.key = "single"  # single | multi | none
        self.key_type = "integer"
        self.partitioned = False
        self.identity = None  # None | ALWAYS | BY DEFAULT
        self.generated = False
        self.columns = []  # [(name, type)]
        self.fks = []  # [Fk]
        self.rows = []  # [dict column -> SQL expression]; key values under "k0", "k1"
        self.rls = None  # None | "all" | "hide"
        self.trigger = False

    def key_columns(self):
        return {"single": ["id"], "multi": ["ka", "kb"], "none": []}[self.key]


class Fk:
    def __init__(self, name, target, columns, action, deferrable, set_columns, default):
        self.name, self.target, self.columns, self.action = name, target, columns, action
        self.deferrable, self.set_columns, self.default = deferrable, set_columns, default


class Case:
    def __init__(self, seed, schema, types):
        self.seed = seed
        self.schema = schema
        rng = random.Random(seed)
        self.rng_data = random.Random(seed * 7919 + 1)
        self.odd_settings = rng.random() < 0.5
        # Half the cases also purge the same ids in chunks (its own generator, so that the
        # schemas and data stay those of the seed).
        self.purge = random.Random(seed * 31 + 3).random() < 0.5
        # A third of the cases are plain: only what restore_backup's COPY path takes (base
        # and enum types, no partitions, triggers, row security, generated columns or SET
        # NULL / SET DEFAULT keys), so that path is exercised as often as the INSERT one.
        # Its own generator: every other choice stays that of the seed.
        self.plain = random.Random(seed * 131 + 5).random() < 1 / 3
        n = rng.randint(2, 8)
        self.tables = [Table(f"t{i}") for i in range(n)]
        pool = types + [f"{schema}.comp", f"{schema}.mood", f"{schema}.dom_pos",
                        f"{schema}.dom_json"]
        if self.plain:
            pool = [t for t in types if "range" not in t] + [f"{schema}.mood"]
        for i, t in enumerate(self.tables):
            if i == 0:
                t.key = "single"
            else:
                t.key = rng.choices(["single", "multi", "none"], [5, 2, 2])[0]
            t.key_type = rng.choice(["integer", "integer", "text", "bigint"]) \
                if t.key == "single" else "integer"
            t.partitioned = t.key != "none" and rng.random() < 0.2 and not self.plain
            t.identity = rng.choice([None, None, "ALWAYS", "BY DEFAULT"])
            t.generated = rng.random() < 0.3 and not self.plain
            for c in range(rng.randint(1, 4)):
                type_name = rng.choice(pool)
                if rng.random() < 0.15 and not type_name.startswith(schema):
                    type_name += "[]"
                t.columns.append((f"c{c}", type_name))
        # Foreign keys: each table but the source first references an earlier table (so
        # the graph is connected), then random others: later tables (cycles), itself.
        referencable = [t for t in self.tables if t.key != "none"]
        for i, t in enumerate(self.tables):
            targets = []
            if i > 0:
                earlier = [x for x in self.tables[:i] if x.key != "none"]
                targets.append(rng.choice(earlier))
            for _ in range(rng.choices([0, 1, 2], [3, 4, 2])[0]):
                targets.append(rng.choice(referencable))
            for f, target in enumerate(targets):
                action = rng.choice("cccra" if self.plain else "cndra")
                cols = [f"fk{f}_{k}" for k in target.key_columns()]
                set_columns = None
                if action in "nd" and len(cols) > 1 and rng.random() < 0.3:
                    set_columns = [rng.choice(cols)]
                deferrable = rng.choice([None, None, None, "DEFERRABLE",
                                         "DEFERRABLE INITIALLY DEFERRED"])
                default = action == "d" and rng.random() < 0.5  # default: the target's row 1
                t.fks.append(Fk(f"{t.name}_fk{f}", target, cols, action, deferrable, set_columns,
                                default))
        if rng.random() < 0.35 and not self.plain:
            rng.choice(self.tables).rls = rng.choice(["all", "hide"])
        if rng.random() < 0.35 and not self.plain:
            rng.choice(self.tables).trigger = True
        self.fill(self.rng_data)
        source = self.tables[0]
        pick = rng.randint(1, 3)
        self.ids = [str(rng.randint(1, len(source.rows) + 1)) for _ in range(pick)]
        if source.key_type == "text":
            self.ids = ["k" + i for i in self.ids]

    def key_value(self, table, n):
        if table.key == "single":
            return [lit(f"k{n}") if table.key_type == "text" else str(n)]
        return [str(n), str(n % 3)]

    def fill(self, rng):
        for t in self.tables:
            t.rows_planned = rng.randint(2, 10)
        for t in self.tables:
            for n in range(1, t.rows_planned + 1):
                row = {}
                for name, type_name in t.columns:
                    row[name] = "NULL" if rng.random() < 0.1 else value_sql(rng, type_name,
                                                                           self.schema)
                refs = {}
                for fk in t.fks:
                    if rng.random() < 0.5 and fk.target.rows_planned:
                        m = rng.randint(1, fk.target.rows_planned)
                        for col, v in zip(fk.columns, self.key_value(fk.target, m)):
                            refs[col] = v
                row["refs"] = refs
                t.rows.append(row)

    # ---- SQL
    def ddl(self):
        s = self.schema
        out = [f"CREATE SCHEMA {s} AUTHORIZATION {CALLER}",
               f"SET ROLE {CALLER}",
               f"SET search_path = {s}, pg_catalog",
               f"CREATE TYPE {s}.comp AS (a integer, b text, c double precision)",
               f"CREATE TYPE {s}.mood AS ENUM ('sad', 'ok', 'with space', 'Ünï\"''')",
               f"CREATE DOMAIN {s}.dom_pos AS integer CHECK (VALUE > 0)",
               f"CREATE DOMAIN {s}.dom_json AS json CHECK (length(VALUE::text) < 100000)",
               f"CREATE TABLE {s}.audit_log (n bigserial, tbl text, op text, "
               f"at timestamptz DEFAULT now())",
               f"CREATE FUNCTION {s}.audit() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
               f"INSERT INTO audit_log (tbl, op) VALUES (TG_TABLE_NAME, TG_OP); "
               f"RETURN NULL; END$$"]
        for t in self.tables:
            cols = []
            if t.key == "single":
                cols.append(f"id {t.key_type} NOT NULL")
            elif t.key == "multi":
                cols += ["ka integer NOT NULL", "kb integer NOT NULL"]
            if t.identity:
                cols.append(f"idn bigint GENERATED {t.identity} AS IDENTITY")
            if t.generated:
                expr = {"single": "id::text || '-g'", "multi": "ka * 10 + kb",
                        "none": "num_nulls(c0)"}[t.key]
                gtype = {"single": "text", "multi": "integer", "none": "integer"}[t.key]
                cols.append(f"gen {gtype} GENERATED ALWAYS AS ({expr}) STORED")
            for name, type_name in t.columns:
                cols.append(f"{name} {type_name}")
            for fk in t.fks:
                for col, kc in zip(fk.columns, fk.target.key_columns()):
                    ktype = fk.target.key_type if fk.target.key == "single" else "integer"
                    default = ""
                    if fk.default:
                        v = self.key_value(fk.target, 1)[fk.target.key_columns().index(kc)]
                        default = f" DEFAULT {v}"
                    cols.append(f"{col} {ktype}{default}")
            if t.key != "none":
                cols.append(f"PRIMARY KEY ({', '.join(t.key_columns())})")
            part = f" PARTITION BY HASH ({t.key_columns()[0]})" if t.partitioned else ""
            out.append(f"CREATE TABLE {s}.{t.name} ({', '.join(cols)}){part}")
            if t.partitioned:
                for r in range(2):
                    out.append(f"CREATE TABLE {s}.{t.name}_p{r} PARTITION OF {s}.{t.name}"
                               f" FOR VALUES WITH (MODULUS 2, REMAINDER {r})")
        for t in self.tables:
            for fk in t.fks:
                set_cols = f" ({', '.join(fk.set_columns)})" if fk.set_columns else ""
                out.append(
                    f"ALTER TABLE {s}.{t.name} ADD CONSTRAINT {fk.name} FOREIGN KEY "
                    f"({', '.join(fk.columns)}) REFERENCES {s}.{fk.target.name} "
                    f"({', '.join(fk.target.key_columns())}) ON DELETE "
                    f"{ACTIONS[fk.action]}{set_cols} {fk.deferrable or ''}")
        for t in self.tables:
            out += self.insert_sql(t)
        for t in self.tables:
            out += self.reference_sql(t)
        for t in self.tables:
            if t.trigger:
                out.append(f"CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON "
                           f"{s}.{t.name} FOR EACH ROW EXECUTE FUNCTION {s}.audit()")
            if t.rls:
                cond = "true"
                if t.rls == "hide" and t.key != "none":
                    cond = f"{t.key_columns()[0]}::text NOT LIKE '%3'"
                out += [f"ALTER TABLE {s}.{t.name} ENABLE ROW LEVEL SECURITY",
                        f"ALTER TABLE {s}.{t.name} FORCE ROW LEVEL SECURITY",
                        f"CREATE POLICY p ON {s}.{t.name} USING ({cond}) WITH CHECK (true)"]
        out.append("RESET ROLE")
        return out

    def insert_sql(self, t):
        out = []
        for n, row in enumerate(t.rows, 1):
            cols, vals = [], []
            if t.key != "none":
                cols += t.key_columns()
                vals += self.key_value(t, n)
            for name, _ in t.columns:
                cols.append(name)
                vals.append(row[name])
            for fk in t.fks:  # references are set once every row exists (cycles)
                for col in fk.columns:
                    if col not in cols:
                        cols.append(col)
                        vals.append("NULL")
            out.append(f"INSERT INTO {self.schema}.{t.name} ({', '.join(cols)}) VALUES "
                       f"({', '.join(vals)})")
        return out

    def reference_sql(self, t):
        out = []
        for n, row in enumerate(t.rows, 1):
            refs = row["refs"]
            if not refs:
                continue
            sets = ", ".join(f"{c} = {v}" for c, v in refs.items())
            if t.key != "none":
                where = " AND ".join(f"{c} = {v}" for c, v in
                                     zip(t.key_columns(), self.key_value(t, n)))
            else:  # no key: the n-th row by ctid order, fine for a freshly filled table
                where = (f"ctid = (SELECT ctid FROM {self.schema}.{t.name} ORDER BY ctid "
                         f"OFFSET {n - 1} LIMIT 1)")
            out.append(f"UPDATE {self.schema}.{t.name} SET {sets} WHERE {where}")
        return out

    def settings_sql(self):
        base = [f"SET ROLE {CALLER}", f"SET search_path = {self.schema}, public"]
        if not self.odd_settings:
            return base
        return base + ["SET DateStyle = 'SQL, DMY'", "SET IntervalStyle = 'sql_standard'",
                       "SET lc_monetary = 'de_DE.utf8'", "SET TimeZone = 'Asia/Kathmandu'",
                       "SET extra_float_digits = -3", "SET bytea_output = 'escape'"]

    def ids_sql(self):
        return "ARRAY[" + ", ".join(lit(i) for i in self.ids) + "]::text[]"

    def delete_call(self):
        return f"SELECT batchguard.delete_with_backup('{self.schema}.t0', {self.ids_sql()})"

    def script(self):
        lines = ["-- pg_batchguard round-trip case, seed %d" % self.seed,
                 f"DROP SCHEMA IF EXISTS {self.schema} CASCADE;",
                 f"DO $$BEGIN CREATE ROLE {CALLER}; EXCEPTION WHEN duplicate_object THEN "
                 f"NULL; END$$;"]
        lines += [s + ";" for s in self.ddl()]
        lines += ["CREATE TEMP TABLE before AS SELECT 1 AS placeholder;  -- compare dumps by hand",
                  "BEGIN;"] + [s + ";" for s in self.settings_sql()]
        lines += [f"{self.delete_call()} AS result \\gset",
                  "COMMIT;", "BEGIN;"] + [s + ";" for s in self.settings_sql()]
        lines += ["SELECT batchguard.restore_backup((:'result'::jsonb #>> "
                  "'{backup,backup_id}')::uuid);", "COMMIT;"]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Running a case

class Mismatch(Exception):
    pass


def dump(conn, schema, tables):
    out = {}
    for t in tables:
        try:
            with conn.cursor().copy(f"COPY (SELECT * FROM {schema}.{t.name}) TO STDOUT") as c:
                buf = b"".join(bytes(b) for b in c)
        except psycopg.Error as e:
            raise Mismatch(f"table {t.name} cannot be read: {reason_of(e)}")
        lines = sorted(buf.split(b"\n"))
        out[t.name] = lines
    return out


def diff(a, b):
    out = []
    for name in a:
        if a[name] != b[name]:
            gone = [x for x in a[name] if x not in b[name]]
            new = [x for x in b[name] if x not in a[name]]
            out.append(f"{name}: missing {gone[:3]!r} extra {new[:3]!r} "
                       f"({len(a[name])} vs {len(b[name])} lines)")
    return "; ".join(out)


def reason_of(error):
    diag = error.diag
    message = diag.message_primary or str(error)
    return f"{diag.sqlstate} {message}"


def run_case(admin, caller, case, verbose=False):
    """Returns ("ok", None) | ("refused", reason) | ("fails anyway", reason); raises Mismatch."""
    s = case.schema
    admin.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
    for stmt in case.ddl():
        admin.execute(stmt)
    before = dump(admin, s, case.tables)

    # 1. What a plain DELETE does (as the caller, rolled back).
    plain_error = None
    expected = None
    try:
        with admin.transaction():
            for stmt in case.settings_sql():
                admin.execute(stmt)
            admin.execute(f"DELETE FROM {s}.t0 WHERE id = ANY ({case.ids_sql()}::"
                          f"{case.tables[0].key_type}[])")
            admin.execute("SET CONSTRAINTS ALL IMMEDIATE")
            admin.execute("RESET ROLE")
            admin.execute("RESET ALL")
            expected = dump(admin, s, case.tables)
            raise psycopg.Rollback()
    except psycopg.Error as e:
        plain_error = reason_of(e)
    admin.execute("RESET ALL")
    # Did the plain delete change anything at all?
    # 2. delete_with_backup
    result = None
    try:
        with caller.transaction():
            for stmt in case.settings_sql():
                caller.execute(stmt)
            result = caller.execute(case.delete_call()).fetchone()[0]
            caller.execute("RESET ROLE")
    except psycopg.Error as e:
        caller.execute("RESET ALL")
        now = dump(admin, s, case.tables)
        if now != before:
            raise Mismatch(f"refused ({reason_of(e)}) but tables changed: {diff(before, now)}")
        if plain_error:
            return "fails anyway", plain_error
        return "refused", reason_of(e)
    caller.execute("RESET ALL")
    if plain_error:
        raise Mismatch(f"delete_with_backup committed where a plain DELETE fails "
                       f"({plain_error})")
    after_delete = dump(admin, s, case.tables)
    if after_delete != expected:
        raise Mismatch("delete_with_backup did not do what a plain DELETE does: "
                       + diff(expected, after_delete))
    backup_id = result["backup"]["backup_id"]
    # 3. restore_backup
    restore_as_caller(caller, case, backup_id, "restore_backup failed")
    after = dump(admin, s, case.tables)
    if after != before:
        raise Mismatch("restored tables differ: " + diff(before, after))
    check_export(admin, caller, case)
    if case.purge:
        check_purge(admin, caller, case, before)
    return "ok", None


def run_case_and_protected(admin, caller, case, verbose=False):
    """run_case, then (whatever its outcome, the tables being as before) the
    protected-table mode."""
    outcome = run_case(admin, caller, case, verbose)
    if PROTECT_ALL or random.Random(case.seed * 31 + 11).random() < 0.5:
        check_protected(admin, caller, case, dump(admin, case.schema, case.tables))
    return outcome


def check_protected(admin, caller, case, before):
    """Protected-table mode: plain DELETE statements on a protected table in one
    transaction; its one backup restores every table to what it was."""
    s = case.schema
    rng = random.Random(case.seed * 31 + 13)
    # The source table, else the first other table protect_table accepts.
    protected = None
    for t in case.tables:
        try:
            caller.execute(f"SET ROLE {CALLER}")
            caller.execute(f"SELECT batchguard.protect_table('{s}.{t.name}')")
            protected = t
            break
        except psycopg.Error as e:
            PROTECTED["protect_table refused: " + re.sub(r"(table|key) [^ :]+", r"\1 …",
                                                         reason_of(e))] += 1
        finally:
            caller.execute("RESET ROLE")
            caller.execute("RESET ALL")
    if protected is None:
        return
    try:
        name = f"{s}.{protected.name}"
        covered = [r[0] for r in admin.execute(
            "SELECT c::regclass::text FROM batchguard.protected_tables p, unnest(p.covered_tables) c"
            " WHERE p.table_name = %s::regclass", [name]).fetchall()]
        statements = []
        if protected is case.tables[0]:
            ids = list(case.ids)
            rng.shuffle(ids)
            cut = rng.randint(0, len(ids))
            parts = [p for p in (ids[:cut], ids[cut:]) if p]
            where = ["id = ANY (ARRAY[" + ", ".join(lit(i) for i in part) +
                     f"]::{protected.key_type}[])" for part in parts]
        else:
            where = [f"ctid = ANY (ARRAY(SELECT ctid FROM {name} ORDER BY ctid "
                     f"LIMIT {rng.randint(1, 3)}))"]
        for w in where:
            if rng.random() < 0.3:
                statements.append(f"WITH gone AS (DELETE FROM {name} WHERE {w} "
                                  f"RETURNING 1) SELECT count(*) FROM gone")
            else:
                statements.append(f"DELETE FROM {name} WHERE {w}")
        if covered and rng.random() < 0.5:
            child = rng.choice(covered)
            statements.append(f"DELETE FROM {child} WHERE ctid = ANY (ARRAY(SELECT ctid FROM "
                              f"{child} ORDER BY ctid LIMIT {rng.randint(1, 3)}))")
        rng.shuffle(statements)
        backup_id = None
        try:
            with caller.transaction():
                for stmt in case.settings_sql():
                    caller.execute(stmt)
                for stmt in statements:
                    caller.execute(stmt)
                backup_id = caller.execute("SELECT batchguard.last_backup_id()").fetchone()[0]
                caller.execute("RESET ROLE")
        except psycopg.Error as e:
            caller.execute("RESET ALL")
            now = dump(admin, s, case.tables)
            if now != before:
                raise Mismatch(f"protected DELETE failed ({reason_of(e)}) but tables changed: "
                               + diff(before, now))
            PROTECTED["delete refused: " + re.sub(r"(table|key) [^ :]+", r"\1 …",
                                                  reason_of(e)).split(' "')[0]] += 1
            return
        caller.execute("RESET ALL")
        if backup_id is None:
            if dump(admin, s, case.tables) != before:
                raise Mismatch("protected DELETE changed tables without a backup")
            PROTECTED["nothing deleted"] += 1
            return
        restore_as_caller(caller, case, backup_id,
                          "restore_backup of a protected table's backup failed",
                          f" (statements: {statements})")
        after = dump(admin, s, case.tables)
        if after != before:
            raise Mismatch(f"protected DELETE then restore_backup (statements: {statements}): "
                           + diff(before, after))
        PROTECTED["round trips"] += 1
        actions = admin.execute("SELECT delete_actions::text FROM batchguard.backups"
                                " WHERE backup_id = %s", [backup_id]).fetchone()[0] or ""
        if "set null" in actions or "set default" in actions or "and change" in actions:
            PROTECTED["round trips with changed rows"] += 1
    finally:
        caller.execute(f"SET ROLE {CALLER}")
        caller.execute(f"SELECT batchguard.unprotect_table('{s}.{protected.name}')")
        caller.execute("RESET ROLE")


def check_purge(admin, caller, case, before):
    """purge_with_backup of the same ids in chunks, each chunk backed up and deleted in its
    own transaction; then every chunk's backup restored, the last chunk's first: every
    table is as before. A chunk may fail where the whole DELETE did not (a reference
    between rows of two chunks): the chunks done before it are restored all the same."""
    s = case.schema
    chunk_size = random.Random(case.seed * 31 + 7).randint(1, 2)
    job = f"rt-purge-{case.seed}"
    try:
        for stmt in case.settings_sql():
            caller.execute(stmt)
        caller.execute(f"CALL batchguard.purge_with_backup(%s, '{s}.t0', {case.ids_sql()}, "
                       f"chunk_size => %s)", [job, chunk_size])
    except psycopg.Error as e:
        PURGES["stopped: " + reason_of(e)] += 1  # whatever was done comes back (below)
    finally:
        caller.execute("RESET ROLE")
        caller.execute("RESET ALL")
    chunks = admin.execute(
        "SELECT backup_id FROM batchguard.backups WHERE label LIKE %s"
        " ORDER BY substring(label FROM 'chunk-([0-9]+)$')::int DESC",
        [f"purge {job} chunk-%"]).fetchall()
    for (backup_id,) in chunks:
        restore_as_caller(caller, case, backup_id,
                          "restore_backup of a purge_with_backup chunk failed")
    PURGES["purges"] += 1
    PURGES["chunk backups restored"] += len(chunks)
    after = dump(admin, s, case.tables)
    if after != before:
        raise Mismatch(f"purge_with_backup (chunks of {chunk_size}, {len(chunks)} backups) "
                       f"then restoring every chunk: " + diff(before, after))


def restore_as_caller(caller, case, backup_id, failure, context=""):
    """restore_backup of the backup as the case's caller (its role and settings), committed;
    a failure is a Mismatch: "<failure>: <reason><context>"."""
    try:
        with caller.transaction():
            for stmt in case.settings_sql():
                caller.execute(stmt)
            caller.execute("SET LOCAL client_min_messages = debug1")
            caller.execute("SELECT batchguard.restore_backup(%s)", [backup_id])
            caller.execute("RESET ROLE")
    except psycopg.Error as e:
        caller.execute("RESET ALL")
        raise Mismatch(f"{failure}: {reason_of(e)}{context}")
    finally:
        for n in NOTICES:
            if n.startswith("restore_backup: restoring by COPY"):
                RESTORE_PATHS["by COPY"] += 1
            elif n.startswith("restore_backup: restoring by INSERT"):
                RESTORE_PATHS["by INSERT"] += 1
            elif n.startswith("restore_backup: ") and "restoring by INSERT" in n:
                RESTORE_PATHS["COPY, then INSERT"] += 1
        NOTICES.clear()
    caller.execute("RESET ALL")


PINNED = ["SET extra_float_digits = 1", "SET bytea_output = 'hex'", "SET DateStyle = 'ISO, YMD'",
          "SET IntervalStyle = 'iso_8601'", "SET TimeZone = 'UTC'", "SET lc_monetary = 'C'"]


def check_export(admin, caller, case):
    """export_backup of every row of the source (and what references it): every row in the
    file is a row of its table, value for value (each the text of its output function under
    the pinned settings), and the source's rows are all there."""
    s = case.schema
    try:
        with caller.transaction():
            for stmt in case.settings_sql():
                caller.execute(stmt)
            backup_id = caller.execute(
                f"SELECT backup_id FROM batchguard.export_backup('{s}.t0')").fetchone()[0]
            for stmt in PINNED:
                caller.execute(stmt)
            for t in case.tables:
                cols = [c for c in ([] if t.key == "none" else t.key_columns())]
                cols += (["idn"] if t.identity else []) + (["gen"] if t.generated else [])
                cols += [name for name, _ in t.columns]
                cols += [c for fk in t.fks for c in fk.columns]
                row = ", ".join(f"'{c}', CASE WHEN x.{c} IS NOT DISTINCT FROM NULL THEN NULL "
                                f"ELSE format('%%s', x.{c}) END" for c in cols)
                missing = caller.execute(
                    f"SELECT count(*) FROM batchguard.backup_rows(%s) r WHERE r.table_name = "
                    f"'{s}.{t.name}' AND NOT EXISTS (SELECT 1 FROM {s}.{t.name} x WHERE "
                    f"pg_catalog.jsonb_build_object({row}) = r.row)", [backup_id]).fetchone()[0]
                if missing:
                    raise Mismatch(f"export_backup: {missing} rows of {t.name} in the file "
                                   f"are not rows of the table")
            exported, visible = caller.execute(
                f"SELECT (SELECT count(*) FROM batchguard.backup_rows(%s) r WHERE "
                f"r.table_name = '{s}.t0'), (SELECT count(*) FROM {s}.t0)",
                [backup_id]).fetchone()
            if exported != visible:
                raise Mismatch(f"export_backup: {exported} rows of t0 exported, "
                               f"{visible} visible")
            caller.execute("RESET ROLE")
    except psycopg.Error as e:
        caller.execute("RESET ALL")
        if e.diag.sqlstate in ("42501",):  # e.g. row security of a reached table: allowed
            return
        raise Mismatch(f"export_backup failed: {reason_of(e)}")
    caller.execute("RESET ALL")


def has_mixture_cycle(case):
    """A cycle of foreign keys (across tables or a self-reference) that mixes CASCADE with
    SET NULL / SET DEFAULT, or a table reached from one parent through both: the schemas the
    issue allows refusals for."""
    edges = collections.defaultdict(list)  # parent -> [(child, action)]
    for t in case.tables:
        for fk in t.fks:
            edges[fk.target.name].append((t.name, fk.action))
    for t in case.tables:
        by_parent = collections.defaultdict(set)
        for fk in t.fks:
            by_parent[fk.target.name].add(fk.action)
        for actions in by_parent.values():
            if "c" in actions and actions & set("nd"):
                return True
    # Strongly connected components containing both kinds of edge.
    names = [t.name for t in case.tables]
    reach = {n: {n} for n in names}
    changed = True
    while changed:
        changed = False
        for p in names:
            for c, _ in edges[p]:
                for r in list(reach[c]):
                    if r not in reach[p]:
                        reach[p].add(r)
                        changed = True
    for p in names:
        for c, a in edges[p]:
            if p in reach[c]:  # the edge is on a cycle
                kinds = set()
                for p2 in names:
                    for c2, a2 in edges[p2]:
                        if p2 in reach[c] and c in reach[p2] and p2 in reach[c2] and \
                                c2 in reach[p]:
                            kinds.add(a2)
                if "c" in kinds and kinds & set("nd"):
                    return True
    return False


def shrink(admin, caller, case, message):
    """Removes typed columns and rows while the case still fails the same way."""
    def still_fails():
        try:
            run_case(admin, caller, case)
        except Mismatch as m:
            return str(m).split(":")[0] == message.split(":")[0]
        except psycopg.Error:
            return False
        return False

    for t in case.tables:
        for col in list(t.columns):
            idx = t.columns.index(col)
            t.columns.pop(idx)
            saved = [r.pop(col[0], None) for r in t.rows]
            if not still_fails():
                t.columns.insert(idx, col)
                for r, v in zip(t.rows, saved):
                    r[col[0]] = v
    for t in case.tables:
        for n in range(len(t.rows) - 1, -1, -1):
            if t is case.tables[0] or t.key != "none":
                continue  # keys are positional: only drop rows of key-less tables
            row = t.rows.pop(n)
            if not still_fails():
                t.rows.insert(n, row)
    return case


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--dbname", default="roundtrip")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every case even after 5 mismatches")
    parser.add_argument("--no-shrink", action="store_true",
                        help="write a failing case's script as generated")
    parser.add_argument("--out", default=".")
    parser.add_argument("--protected", action="store_true",
                        help="run the protected-table mode in every case (else in half)")
    args = parser.parse_args()
    global PROTECT_ALL
    PROTECT_ALL = args.protected
    seed = args.seed if args.seed is not None else int(time.time()) % 100000 * 1000
    print(f"roundtrip: seed {seed}, {args.cases} cases", flush=True)

    base = f"host={args.host} port={args.port} user={args.user}"
    with psycopg.connect(base + " dbname=postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {args.dbname}")
        c.execute(f"CREATE DATABASE {args.dbname} TEMPLATE template0 ENCODING 'UTF8' "
                  f"LC_COLLATE 'C' LC_CTYPE 'C'")
        c.execute(f"DO $$BEGIN CREATE ROLE {CALLER}; EXCEPTION WHEN duplicate_object THEN "
                  f"NULL; END$$")
    dsn = f"{base} dbname={args.dbname}"
    admin = psycopg.connect(dsn, autocommit=True)
    caller = psycopg.connect(dsn, autocommit=True)
    caller.add_notice_handler(lambda d: NOTICES.append(d.message_primary or ""))
    admin.execute("CREATE EXTENSION pg_batchguard")
    admin.execute(f"GRANT CREATE ON DATABASE {args.dbname} TO {CALLER}")
    types = builtin_types(admin)
    used_types = set()

    outcomes = collections.Counter()
    reasons = collections.Counter()
    plain_reasons = collections.Counter()
    refused_simple = simple = 0
    example_seed = {}  # refusal reason -> the first seed refused for it
    mismatches = 0
    started = time.time()
    for i in range(args.cases):
        case_seed = seed + i
        case = Case(case_seed, f"rt{i % 4}", types)
        for t in case.tables:
            used_types.update(ty for _, ty in t.columns)
        mixture = has_mixture_cycle(case)
        try:
            outcome, reason = run_case_and_protected(admin, caller, case, args.verbose)
        except Mismatch as m:
            mismatches += 1
            print(f"MISMATCH seed {case_seed}: {m}", flush=True)
            if not args.no_shrink:
                case = shrink(admin, caller, case, str(m))
            path = os.path.join(args.out, f"roundtrip-failure-{case_seed}.sql")
            with open(path, "w") as f:
                f.write(case.script())
            print(f"  reproduce: psql -f {path}   (or --seed {case_seed} --cases 1)", flush=True)
            if not args.keep_going and mismatches >= 5:
                break
            continue
        outcomes[outcome] += 1
        if not mixture:
            simple += 1
        if outcome == "refused":
            reasons[reason] += 1
            example_seed.setdefault(reason, case_seed)
            if not mixture:
                refused_simple += 1
        elif outcome == "fails anyway":
            plain_reasons[reason.split(" ")[0]] += 1
        if args.verbose:
            print(f"case {i} seed {case_seed}: {outcome} {reason or ''}", flush=True)
    elapsed = time.time() - started
    for s in range(4):
        admin.execute(f"DROP SCHEMA IF EXISTS rt{s} CASCADE")
    missing = {t for t in types if t not in used_types}
    print(f"roundtrip: {args.cases} cases in {elapsed:.0f} s: {outcomes['ok']} round trips, "
          f"{outcomes['refused']} refused, {outcomes['fails anyway']} failed as a plain DELETE "
          f"fails, {mismatches} mismatches")
    for reason, n in reasons.most_common():
        print(f"  refused {n:4d}: {reason} (e.g. seed {example_seed[reason]})")
    for reason, n in plain_reasons.most_common():
        print(f"  plain DELETE fails too {n:4d}: SQLSTATE {reason}")
    if PURGES:
        print(f"  purge_with_backup: {PURGES['purges']} purges in chunks, "
              f"{PURGES['chunk backups restored']} chunk backups restored")
        for reason, n in sorted(PURGES.items()):
            if reason.startswith("stopped: "):
                print(f"    a chunk failed {n:4d}: {reason[9:]}")
    if PROTECTED:
        print(f"  protected tables: {PROTECTED['round trips']} DELETE -> restore round trips "
              f"({PROTECTED['round trips with changed rows']} with rows SET NULL / SET DEFAULT "
              f"changed), {PROTECTED['nothing deleted']} deleted nothing")
        for reason, n in sorted(PROTECTED.items()):
            if ": " in reason:
                print(f"    {n:4d} {reason}")
    if RESTORE_PATHS:
        print(f"  restore_backup took the COPY path {RESTORE_PATHS['by COPY']} times (of which "
              f"{RESTORE_PATHS['COPY, then INSERT']} went on by INSERT), the INSERT path "
              f"{RESTORE_PATHS['by INSERT']} times")
    rate = 100.0 * refused_simple / simple if simple else 0.0
    print(f"  schemas without SET NULL/CASCADE mixture cycles: {simple}, refused "
          f"{refused_simple} ({rate:.1f}%)")
    if args.cases >= 300 and missing:
        print(f"  types never used: {sorted(missing)}")
    print(f"{args.cases - mismatches} passed, {mismatches} failed")
    sys.exit(1 if mismatches or (simple >= 20 and rate >= 5.0) else 0)


if __name__ == "__main__":
    main()
