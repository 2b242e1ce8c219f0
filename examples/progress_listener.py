#!/usr/bin/python3
"""Draws a progress bar for a pg_batchguard batch from its progress events: LISTEN on
batchguard.progress_channel(), and on each event (payload: the job id) ask
calculate_progress(). Events are rate-limited hints, so it also refreshes every 2 seconds
while the batch runs and nothing is heard.

    examples/progress_listener.py --dsn "dbname=app" --job gen-demo

Run it as the same role (owner) as the workers. Needs python3-psycopg (psycopg 3).
"""

import argparse
import select
import sys
import time

import psycopg
from psycopg import sql

WIDTH = 40
IDLE_REFRESH = 2.0


def bar(p):
    status, total, completed, failed, percentage, rate, eta = p
    filled = int(WIDTH * float(percentage or 0) / 100)
    eta_text = f"eta {str(eta).split('.')[0]}" if eta is not None else "eta -"
    rate_text = f"{rate:.1f}/s" if rate else "-/s"
    return (f"[{'#' * filled}{'-' * (WIDTH - filled)}] {percentage or 0:>6}% "
            f"{completed}/{total if total is not None else '?'} done, {failed} failed, "
            f"{rate_text}, {eta_text}, {status}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", default="")
    p.add_argument("--job", default="gen-demo")
    args = p.parse_args()

    conn = psycopg.connect(args.dsn, autocommit=True)
    channel = conn.execute("SELECT batchguard.progress_channel()").fetchone()[0]
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
    heard = []
    conn.add_notify_handler(lambda n: heard.append(n.payload))
    events = 0
    last = 0.0
    while True:
        # Wait for the server to send something (an event) or for the idle refresh.
        select.select([conn.fileno()], [], [], IDLE_REFRESH)
        conn.execute("SELECT 1")  # reads what arrived; the handler collects the events
        mine = heard.count(args.job)
        heard.clear()
        events += mine
        if not mine and time.monotonic() - last < IDLE_REFRESH:
            continue
        last = time.monotonic()
        progress = conn.execute(
            "SELECT status, total_items, completed, failed, percentage, items_per_second, eta"
            "  FROM batchguard.calculate_progress(%s) p"
            # An unknown job is NULL, which FROM shows as one row of NULLs: filter it.
            " WHERE p.job_id IS NOT NULL", (args.job,)).fetchone()
        if progress is None:
            print(f"\nno batch {args.job!r} (yet, or discarded)", flush=True)
            time.sleep(IDLE_REFRESH)
            continue
        sys.stdout.write("\r" + bar(progress) + f" ({events} events)  ")
        sys.stdout.flush()
        if progress[0] in ("completed", "failed", "cancelled"):
            print()
            return


if __name__ == "__main__":
    main()
