#!/usr/bin/python3
"""A pg_batchguard worker: claims items with leases and completes each one in the same
transaction as its output, so a crash, a kill or a lost lease never loses an item or
does one twice. Run as many as you like, on as many machines as you like.

    examples/lease_worker.py --dsn "dbname=app" --job gen-demo --start 500   # create the batch
    examples/lease_worker.py --dsn "dbname=app" --job gen-demo               # another worker

Needs python3-psycopg (psycopg 3). The output of each item goes to the table
example_output, which the worker creates in the first schema of its search_path: on
PostgreSQL 15 only the database's owner may create in schema public, so run it as the
owner, GRANT CREATE ON SCHEMA public to its role, or create the table beforehand.
"""

import argparse
import json
import os
import random
import socket
import time

import psycopg

LEASE = 30  # seconds (the default of --lease); heartbeats renew it while the worker is busy


def connect(dsn):
    delay = 0.1
    while True:
        try:
            return psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError as e:
            print(f"cannot connect ({e.__class__.__name__}), retrying in {delay:.1f}s", flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def work(item_id):
    """The item's real work (e.g. generating a conversation from a template)."""
    time.sleep(random.uniform(0.01, 0.05))
    return {"item": item_id, "text": f"output for {item_id}"}


def setup(conn, job, count):
    conn.execute("CREATE TABLE IF NOT EXISTS example_output"
                 " (job_id text, item_id text, body jsonb, PRIMARY KEY (job_id, item_id))")
    if count:
        items = [f"item-{n:05d}" for n in range(count)]
        try:
            conn.execute("SELECT batchguard.start_batch(%s, %s)", (job, items))
            print(f"started batch {job} with {count} items", flush=True)
        except psycopg.errors.DuplicateObject:
            print(f"batch {job} exists: working on it", flush=True)


def run(args):
    lease = args.lease
    worker = args.worker or f"{socket.gethostname()}:{os.getpid()}"
    conn = connect(args.dsn)
    setup(conn, args.job, args.start)
    done = fenced = 0
    while True:
        try:
            # Claim in autocommit: the leases are visible to the other workers at once.
            held = conn.execute(
                "SELECT item_id, lease_token, attempt FROM batchguard.claim_items(%s, %s, %s, %s)",
                (args.job, args.claim, f"{lease} seconds", worker)).fetchall()
            if not held:
                # An unknown job is NULL, which FROM shows as one row of NULLs: filter it.
                p = conn.execute("SELECT status, pending, running FROM batchguard.calculate_progress(%s) p"
                                 " WHERE p.job_id IS NOT NULL", (args.job,)).fetchone()
                if p is None or p[0] in ("completed", "failed", "cancelled") or (p[1] == 0 and p[2] == 0):
                    break
                time.sleep(1)  # paused, or the rest is leased by others: wait
                continue
            renewed = time.monotonic()
            for item_id, token, attempt in held:
                if time.monotonic() - renewed > lease / 3:
                    conn.execute("SELECT batchguard.heartbeat(%s, %s::bigint[], %s)",
                                 (args.job, [t for _, t, _ in held], f"{lease} seconds"))
                    renewed = time.monotonic()
                body = work(item_id)
                try:
                    with conn.transaction():
                        conn.execute("INSERT INTO example_output VALUES (%s, %s, %s)",
                                     (args.job, item_id, json.dumps(body)))
                        # With the lease token: raises PB001 if the lease was handed on,
                        # which rolls back the INSERT above.
                        if not conn.execute("SELECT batchguard.complete_item(%s, %s, NULL, %s)",
                                            (args.job, item_id, token)).fetchone()[0]:
                            raise psycopg.Rollback()  # we had already completed it
                    done += 1
                except psycopg.Error as e:
                    if e.sqlstate != "PB001":
                        raise
                    fenced += 1
                    print(f"lease of {item_id} (attempt {attempt}) lost: rolled back", flush=True)
        except psycopg.OperationalError:
            print("connection lost: reconnecting", flush=True)
            conn = connect(args.dsn)
    print(f"{worker}: {done} items done, {fenced} fenced", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", default="")
    p.add_argument("--job", default="gen-demo")
    p.add_argument("--start", type=int, default=0, help="create the batch with this many items")
    p.add_argument("--claim", type=int, default=5, help="items per claim")
    p.add_argument("--worker", help="name recorded on the items (default host:pid)")
    p.add_argument("--lease", type=float, default=LEASE, help="lease length in seconds")
    run(p.parse_args())
