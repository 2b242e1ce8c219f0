#!/usr/bin/python3
"""psycopg 3 recipes of docs/clients.md, run against a real server.

    test/e2e/clients_psycopg.py "host=... dbname=... user=..."

Each recipe is a function; the script prints one line per recipe and exits non-zero if
any fails. Run by test/e2e/clients (which starts the cluster and creates the role).
"""

import hashlib
import subprocess
import sys
import tempfile
import time

import psycopg
from psycopg.types.composite import CompositeInfo, register_composite
from psycopg import sql
from psycopg.types.json import Jsonb

DSN = sys.argv[1]
JOB = "py-psycopg"


def recipe_lazy_batch_and_composites(conn):
    # Composites: register the type once, then a function's composite result is an object.
    info = CompositeInfo.fetch(conn, "batchguard.progress")
    register_composite(info, conn)
    with conn.transaction():
        conn.execute("INSERT INTO clients_output VALUES (%s, %s)", (JOB, "a"))
        done = conn.execute("SELECT batchguard.complete_item(%s, %s, %s)",
                            (JOB, "a", Jsonb({"tokens": 812}))).fetchone()[0]
        assert done is True
    # failed_items is jsonb: Jsonb(...) of a list of objects.
    p = conn.execute("SELECT batchguard.save_checkpoint(%s, %s, %s, %s)",
                     (JOB, ["b", "c"], Jsonb([{"item_id": "d", "error": "timeout"}]), 10)).fetchone()[0]
    assert (p.completed, p.failed, p.total_items) == (3, 1, 10), p
    # A Python list is a text[]; an empty list works too.
    pending = conn.execute("SELECT batchguard.filter_pending_items(%s, %s)",
                           (JOB, ["a", "d", "e", "f"])).fetchone()[0]
    assert pending == ["e", "f"], pending
    assert conn.execute("SELECT batchguard.filter_pending_items(%s, %s)", (JOB, [])).fetchone()[0] == []
    # The trap: SELECT * FROM f() of an unknown id is a row of NULLs, not "no row".
    row = conn.execute("SELECT * FROM batchguard.calculate_progress(%s)", ("no-such-job",)).fetchone()
    assert row is not None and all(v is None for v in row), row
    # In the select list the composite is simply None.
    assert conn.execute("SELECT batchguard.calculate_progress(%s)", ("no-such-job",)).fetchone()[0] is None
    # Or filter: zero rows for an unknown id.
    assert conn.execute("SELECT * FROM batchguard.calculate_progress(%s) p WHERE p.job_id IS NOT NULL",
                        ("no-such-job",)).fetchone() is None


def recipe_leases_and_pb001(conn):
    conn.execute("SELECT batchguard.start_batch(%s, %s)", (JOB + "-leases", ["x", "y"]))
    held = conn.execute("SELECT item_id, lease_token FROM batchguard.claim_items(%s, 2)",
                        (JOB + "-leases",)).fetchall()
    assert len(held) == 2 and all(isinstance(t, int) for _, t in held), held
    item, token = held[0]
    with conn.transaction():
        conn.execute("INSERT INTO clients_output VALUES (%s, %s)", (JOB + "-leases", item))
        assert conn.execute("SELECT batchguard.complete_item(%s, %s, NULL, %s)",
                            (JOB + "-leases", item, token)).fetchone()[0] is True
    # A stale token: PB001, which psycopg raises as ProgrammingError (class PB is not a
    # standard class): catch it by its sqlstate.
    other, other_token = held[1]
    try:
        with conn.transaction():
            conn.execute("INSERT INTO clients_output VALUES (%s, %s)", (JOB + "-leases", other))
            conn.execute("SELECT batchguard.complete_item(%s, %s, NULL, %s)",
                         (JOB + "-leases", other, other_token + 1000))
        raise AssertionError("a stale token was accepted")
    except psycopg.Error as e:
        assert e.sqlstate == "PB001", e.sqlstate
        assert isinstance(e, psycopg.ProgrammingError), type(e)
    assert conn.execute("SELECT count(*) FROM clients_output WHERE job_id = %s AND item_id = %s",
                        (JOB + "-leases", other)).fetchone()[0] == 0, "the rollback removed the output"


def recipe_listen(conn):
    channel = conn.execute("SELECT batchguard.progress_channel()").fetchone()[0]
    listener = psycopg.connect(DSN, autocommit=True)
    listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
    payloads = []
    listener.add_notify_handler(lambda n: payloads.append(n.payload))
    conn.execute("SELECT batchguard.complete_item(%s, %s)", (JOB + "-listen", "one"))
    # Notifications arrive with the listener's next statement (or in notifies()).
    deadline = time.monotonic() + 30
    while not payloads and time.monotonic() < deadline:
        listener.execute("SELECT pg_sleep(0.05)")
    listener.close()
    assert payloads == [JOB + "-listen"], payloads


def recipe_read_backup(conn):
    conn.execute("DROP TABLE IF EXISTS clients_conv")
    conn.execute("CREATE TABLE clients_conv (id int PRIMARY KEY, body text)")
    conn.execute("INSERT INTO clients_conv SELECT g, repeat('x', g) FROM generate_series(1, 500) g")
    backup_id, size, sha = conn.execute(
        "SELECT backup_id, compressed_bytes, file_sha256 FROM batchguard.export_backup('clients_conv')").fetchone()
    with tempfile.NamedTemporaryFile(suffix=".jsonl.zst") as f:
        digest = hashlib.sha256()
        for offset in range(0, size, 1000):  # small chunks, to exercise the chunked path
            chunk = conn.execute("SELECT batchguard.read_backup(%s, %s, %s)",
                                 (backup_id, offset, 1000)).fetchone()[0]
            digest.update(chunk)
            f.write(chunk)
        f.flush()
        assert digest.hexdigest() == sha
        subprocess.run(["zstd", "-q", "-t", f.name], check=True)


def main():
    failures = 0
    recipes = [recipe_lazy_batch_and_composites, recipe_leases_and_pb001, recipe_listen,
               recipe_read_backup]
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS clients_output (job_id text, item_id text)")
        for recipe in recipes:
            try:
                recipe(conn)
                print(f"ok     psycopg {recipe.__name__}")
            except Exception as e:  # report every recipe, then fail
                failures += 1
                print(f"FAILED psycopg {recipe.__name__}: {e!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
