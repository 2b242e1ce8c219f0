#!/usr/bin/python3
"""A resumable batch worker for pg_batchguard: exactly once, without leases.

The job: generate one training conversation per template. Run it, kill it at any moment
(even with SIGKILL), run it again: it carries on with what is left, and in the end every
template has exactly one conversation.

The rules that make it exactly once (docs: "Exactly once" in the API reference):
  1. Write an item's output and call complete_item() in the SAME transaction, so that
     they commit together or not at all.
  2. If complete_item() returns false, the item was already completed by someone else:
     roll back, so that our copy of the output disappears.
  3. Run one worker per job at a time: a second one would stay correct (rule 2) but do
     the same work twice. For several workers, use claim_items() leases instead.

Usage: resume_worker.py CONNINFO JOB_ID N_TEMPLATES
  e.g. resume_worker.py "host=/tmp dbname=app" conversations-2024-06 1000
Needs Debian's python3-psycopg (psycopg 3) and a table
  conversations(template_id text, body text)
(created beforehand: on PostgreSQL 15 only the database's owner may create tables in schema
public; see scripts/demo).
"""
import sys
import time

import psycopg
from psycopg.types.json import Jsonb


def generate_conversation(template_id):
    """Stands in for the slow part of the job (e.g. a call to a language model)."""
    time.sleep(0.001)
    return f"user: tell me about {template_id}\nassistant: here is {template_id}, in detail."


def main():
    conninfo, job_id, n_templates = sys.argv[1], sys.argv[2], int(sys.argv[3])
    templates = [f"template-{i:05d}" for i in range(1, n_templates + 1)]

    # autocommit: each statement outside a `with conn.transaction()` block commits alone.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Create the batch on the first run (idempotent later) and tell it the total,
        # so that calculate_progress() can report a percentage and an ETA.
        conn.execute("SELECT batchguard.save_checkpoint(%s, total_items => %s)",
                     (job_id, n_templates))

        # Resume: the templates not yet completed or failed, in our order.
        pending = conn.execute("SELECT batchguard.filter_pending_items(%s, %s::text[])",
                               (job_id, templates)).fetchone()[0]
        print(f"worker: {n_templates - len(pending)} of {n_templates} templates already done, "
              f"{len(pending)} to go", flush=True)

        done = 0
        for template_id in pending:
            try:
                body = generate_conversation(template_id)  # slow work: outside the transaction
            except Exception as error:  # record the failure; retry_failed() can retry it later
                conn.execute("SELECT batchguard.fail_item(%s, %s, %s)",
                             (job_id, template_id, str(error)))
                continue

            # Rule 1: the output row and the checkpoint commit together or not at all.
            with conn.transaction():
                conn.execute("INSERT INTO conversations (template_id, body) VALUES (%s, %s)",
                             (template_id, body))
                recorded = conn.execute(
                    "SELECT batchguard.complete_item(%s, %s, %s)",
                    (job_id, template_id, Jsonb({"chars": len(body)}))).fetchone()[0]
                if not recorded:
                    # Rule 2: already completed elsewhere; undo our INSERT.
                    raise psycopg.Rollback()
            done += 1
            if done % 250 == 0:
                print(f"worker: {done} conversations written in this run", flush=True)

        progress = conn.execute(
            "SELECT completed, failed, percentage FROM batchguard.calculate_progress(%s)",
            (job_id,)).fetchone()
        print(f"worker: finished; {progress[0]} completed, {progress[1]} failed, "
              f"{progress[2]}%", flush=True)


if __name__ == "__main__":
    main()
