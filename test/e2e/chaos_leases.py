#!/usr/bin/python3
"""End-to-end chaos test of leases with a real client (psycopg 3).

Several worker processes work one batch of registered items: each claims items with
claim_items(), and for each item writes an output row in the same transaction as
complete_item() (or, in batch mode, several output rows and one complete_items()). While
they run, a chaos loop kills random workers with SIGKILL (and starts new ones), stops
some with SIGSTOP for longer than their lease (so their items are handed to others and
their late completions must be fenced), and restarts the server with an immediate
shutdown. Workers reconnect with backoff.

The chaos follows the work, not the clock: the items are released in slices (add_items),
one more after each chaos event, and each event fires once half of the latest slice is
processed. So every event happens while items are pending, however fast or slow the
machine, and the test can neither finish its work before its quota of events nor need a
machine "slow enough" for it; only the overall time is bounded (generously).

At the end every item must be completed, with exactly one output row, written under the
item's final lease; no item may have failed except the ones the test fails on purpose
(then retried with resume_batch(retry_failed => true)); progress must be 100%.

Runs its own cluster (as the postgres OS user when started as root); prints what it did;
exits non-zero on any violation. Usage:
    test/e2e/chaos_leases.py [--bindir DIR] [--items N] [--workers N] [--kills N] ...
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psycopg

JOB = "chaos"
DELIBERATE_EVERY = 997  # item n with n % 997 == 0 is failed on purpose in phase 1


def item_name(n):
    return f"item-{n:05d}"


def deliberate(item_id):
    return int(item_id.split("-")[1]) % DELIBERATE_EVERY == 0


# --------------------------------------------------------------------------------------
# Worker process


class Worker:
    def __init__(self, args):
        self.args = args
        self.name = args.name
        self.conn = None
        self.held = []  # [(item_id, token, attempt)]
        self.claimed_at = 0.0
        self.stats = open(os.path.join(args.workdir, "stats", self.name), "a", buffering=1)

    def note(self, what):
        self.stats.write(what + "\n")

    def connect(self):
        delay = 0.05
        while True:
            try:
                self.conn = psycopg.connect(self.args.dsn, autocommit=True, connect_timeout=5)
                return
            except psycopg.OperationalError:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def run(self):
        self.connect()
        while True:
            try:
                if not self.step():
                    return
            except psycopg.OperationalError:
                # The server went away (restart) or the connection broke: reconnect and
                # carry on with the leases we hold; stale ones will be fenced.
                self.note("reconnect")
                try:
                    self.conn.close()
                except Exception:
                    pass
                self.connect()

    def step(self):
        cur = self.conn.cursor()
        if not self.held:
            cur.execute(
                "SELECT item_id, lease_token, attempt FROM batchguard.claim_items(%s, %s, %s, %s)",
                (JOB, self.args.claim, f"{self.args.lease} seconds", self.name))
            self.held = cur.fetchall()
            self.claimed_at = time.monotonic()
            if not self.held:
                cur.execute("SELECT pending, running, (SELECT all_released FROM chaos_control)"
                            "  FROM batchguard.calculate_progress(%s)", (JOB,))
                pending, running, all_released = cur.fetchone()
                if pending == 0 and running == 0 and all_released:
                    return False
                time.sleep(0.1)  # leases of killed workers have to expire first
                return True
        # Keep the leases alive while working through them.
        if time.monotonic() - self.claimed_at > self.args.lease / 2:
            cur.execute("SELECT batchguard.heartbeat(%s, %s::bigint[], %s)",
                        (JOB, [t for _, t, _ in self.held], f"{self.args.lease} seconds"))
            self.claimed_at = time.monotonic()
        if self.args.batch_mode and len(self.held) > 1 and not self.args.sabotage:
            self.complete_batch(cur)
        else:
            self.complete_one(cur, self.held[0])
            self.held.pop(0)
        return True

    def work(self):
        time.sleep(random.uniform(0.5, 1.5) * self.args.work_ms / 1000.0)

    def complete_one(self, cur, held):
        item_id, token, attempt = held
        self.work()
        try:
            with self.conn.transaction():
                if self.args.phase == 1 and deliberate(item_id):
                    cur.execute("SELECT batchguard.fail_item(%s, %s, %s, %s, %s)",
                                (JOB, item_id, "deliberate failure", json.dumps({"by": self.name}),
                                 token))
                    self.note("failed")
                    return
                cur.execute("INSERT INTO chaos_output (item_id, worker, attempt) VALUES (%s, %s, %s)",
                            (item_id, self.name, attempt))
                cur.execute("SELECT batchguard.complete_item(%s, %s, %s, %s)",
                            (JOB, item_id, json.dumps({"worker": self.name}),
                             None if self.args.sabotage else token))
                if not cur.fetchone()[0] and not self.args.sabotage:
                    # Already completed under this very lease: our earlier commit went
                    # through but its answer was lost in a crash. Drop this output.
                    self.note("already-done")
                    raise psycopg.Rollback()
                self.note("done")
        except psycopg.Error as e:
            if e.sqlstate != "PB001":
                raise
            self.note("fenced")  # the lease was lost: our output rolled back

    def complete_batch(self, cur):
        batch = [h for h in self.held if not (self.args.phase == 1 and deliberate(h[0]))]
        if len(batch) < 2:
            self.complete_one(cur, self.held[0])
            self.held.pop(0)
            return
        for _ in batch:
            self.work()
        try:
            with self.conn.transaction():
                with cur.copy("COPY chaos_output (item_id, worker, attempt) FROM STDIN") as copy:
                    for item_id, _, attempt in batch:
                        copy.write_row((item_id, self.name, attempt))
                cur.execute("SELECT batchguard.complete_items(%s, %s::bigint[])",
                            (JOB, [t for _, t, _ in batch]))
                if cur.fetchone()[0] != len(batch):
                    # Some were completed already (a commit whose answer a crash lost).
                    raise psycopg.Rollback()
                for _ in batch:
                    self.note("done")
                self.held = [h for h in self.held if h not in batch]
                return
        except psycopg.Error as e:
            if e.sqlstate != "PB001":
                raise
            self.note("fenced-batch")
        # Nothing committed (a lease was lost, or some items were done): one by one.
        for h in batch:
            self.complete_one(cur, h)
            self.held.remove(h)


def worker_main(args):
    random.seed(os.getpid() ^ int(time.time() * 1000))
    Worker(args).run()


# --------------------------------------------------------------------------------------
# Cluster helpers


def as_postgres(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def run(cmd, **kw):
    return subprocess.run(as_postgres(cmd), check=True, stdout=subprocess.DEVNULL, **kw)


class Cluster:
    def __init__(self, bindir, base):
        self.bindir = bindir
        self.base = base
        self.data = os.path.join(base, "data")
        self.log = os.path.join(base, "server.log")
        self.port = 5432  # only a Unix socket in our own directory: no clash possible
        self.dsn = f"host={base} port={self.port} user=postgres dbname=postgres"

    def pg(self, tool, *args):
        run([os.path.join(self.bindir, tool), *args])

    def init(self):
        self.pg("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        conf = (f"port = {self.port}\nlisten_addresses = ''\nunix_socket_directories = '{self.base}'\n"
                "max_connections = 40\nlog_min_messages = warning\n")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(conf)

    def start(self):
        self.pg("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def crash(self):
        self.pg("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.pg("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")


# --------------------------------------------------------------------------------------
# The driver


class Driver:
    def __init__(self, args):
        self.args = args
        self.base = tempfile.mkdtemp(prefix="batchguard_chaos.")
        os.chmod(self.base, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self.cluster = Cluster(args.bindir, self.base)
        self.workdir = os.path.join(self.base, "work")
        os.makedirs(os.path.join(self.workdir, "stats"))
        self.workers = {}  # name -> Popen
        self.spawned = 0
        self.kills = self.stalls = self.restarts = 0
        self.events_while_pending = 0
        self.violations = []

    def sql(self, query, params=None):
        delay = 0.05
        for _ in range(100):
            try:
                with psycopg.connect(self.cluster.dsn, autocommit=True) as conn:
                    cur = conn.execute(query, params)
                    return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise RuntimeError("the server does not come back")

    def spawn(self, phase, index):
        self.spawned += 1
        name = f"w{index}.{self.spawned}"
        cmd = [sys.executable, os.path.abspath(__file__), "worker", "--name", name,
               "--dsn", self.cluster.dsn, "--workdir", self.workdir, "--phase", str(phase),
               "--lease", str(self.args.lease), "--claim", str(self.args.claim),
               "--work-ms", str(self.args.work_ms)]
        if index % 2 == 1:
            cmd.append("--batch-mode")
        if self.args.sabotage:
            cmd.append("--sabotage")
        self.workers[name] = (subprocess.Popen(cmd), index)

    def live_workers(self):
        return [n for n, (p, _) in self.workers.items() if p.poll() is None]

    def check_worker_exits(self):
        for name, (proc, _) in list(self.workers.items()):
            code = proc.poll()
            if code is not None and code not in (0, -signal.SIGKILL):
                self.violations.append(f"worker {name} exited with status {code}")

    def pending(self):
        (pending, running), = self.sql(
            "SELECT pending, running FROM batchguard.calculate_progress(%s)", (JOB,))
        return pending + running

    def processed(self):
        (done,), = self.sql(
            "SELECT completed + failed FROM batchguard.calculate_progress(%s)", (JOB,))
        return done

    def plan_events(self):
        """The phase-1 chaos events in order: kills, stalls and restarts spread evenly."""
        a = self.args
        events = [(i / a.kills, "kill") for i in range(a.kills)]
        events += [((i + 0.5) / a.stalls, "stall") for i in range(a.stalls)]
        events += [((i + 0.7) / a.restarts, "restart") for i in range(a.restarts)]
        return [kind for _, kind in sorted(events)]

    def chaos(self, phase, slices=()):
        """Runs the workers of a phase until they are done. In phase 1, releases the items in
        slices and fires the chaos events, each once half of the latest slice is processed."""
        rng = random.Random(self.args.seed)
        start = time.monotonic()
        events = self.plan_events() if phase == 1 else []
        slices = list(slices)
        released = 0
        threshold = None  # processed items at which the next event fires

        def release_next():
            nonlocal released, threshold
            items = slices.pop(0)
            self.sql("SELECT batchguard.add_items(%s, %s)", (JOB, items))
            threshold = released + len(items) // 2
            released += len(items)
            if not slices:
                self.sql("UPDATE chaos_control SET all_released = true")

        if slices:
            release_next()
        stopped = {}  # name -> when to continue
        while True:
            now = time.monotonic()
            for name, until in list(stopped.items()):
                if now >= until:
                    self.workers[name][0].send_signal(signal.SIGCONT)
                    del stopped[name]
            live = [n for n in self.live_workers() if n not in stopped]
            if not self.live_workers():
                break
            if now - start > self.args.timeout:
                self.violations.append(f"phase {phase} did not finish in {self.args.timeout} s")
                break
            if events and live and self.processed() >= threshold:
                kind = events.pop(0)
                pending = self.pending()
                self.events_while_pending += pending > 0
                if kind == "restart":
                    self.cluster.crash()
                    time.sleep(0.3)
                    self.cluster.start()
                    self.restarts += 1
                    print(f"  {now - start:5.1f}s server restarted (immediate shutdown), "
                          f"{pending} items pending or running", flush=True)
                elif kind == "kill":
                    victim = rng.choice(live)
                    proc, index = self.workers[victim]
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    self.kills += 1
                    self.spawn(phase, index)
                else:
                    victim = rng.choice(live)
                    self.workers[victim][0].send_signal(signal.SIGSTOP)
                    stopped[victim] = now + self.args.lease * 2 + 0.5
                    self.stalls += 1
                release_next()
            time.sleep(0.05)
            self.check_worker_exits()
        for name in stopped:
            self.workers[name][0].send_signal(signal.SIGCONT)
        for proc, _ in self.workers.values():
            proc.wait()
        self.check_worker_exits()
        return time.monotonic() - start

    def stats(self):
        totals = {}
        for name in os.listdir(os.path.join(self.workdir, "stats")):
            with open(os.path.join(self.workdir, "stats", name)) as f:
                for line in f:
                    totals[line.strip()] = totals.get(line.strip(), 0) + 1
        return totals

    def run(self):
        a = self.args
        self.cluster.init()
        self.cluster.start()
        items = [item_name(n) for n in range(a.items)]
        self.sql("CREATE EXTENSION pg_batchguard")
        # No unique key on purpose: a duplicate must be visible, not prevented.
        self.sql("CREATE TABLE chaos_output (item_id text NOT NULL, worker text NOT NULL,"
                 " attempt int NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp())")
        self.sql("CREATE TABLE chaos_control (all_released boolean NOT NULL)")
        self.sql("INSERT INTO chaos_control VALUES (false)")
        self.sql("GRANT SELECT ON chaos_control TO PUBLIC")
        # The batch knows its size from the start; its items come in slices (see chaos()).
        self.sql("SELECT batchguard.start_batch(%s, '{}', total_items => %s, max_attempts => %s)",
                 (JOB, a.items, a.max_attempts))
        n_slices = a.kills + a.stalls + a.restarts + 1
        slices = [items[i * len(items) // n_slices:(i + 1) * len(items) // n_slices]
                  for i in range(n_slices)]
        print(f"chaos test: {a.items} items, {a.workers} workers, lease {a.lease} s, "
              f"{a.kills} kills, {a.stalls} stalls, {a.restarts} server restarts", flush=True)

        for i in range(a.workers):
            self.spawn(1, i)
        took1 = self.chaos(1, slices)
        expected_failed = sorted(i for i in items if deliberate(i))
        failed = [r[0] for r in self.sql(
            "SELECT item_id FROM batchguard.batch_items WHERE status = 'failed' ORDER BY 1")]
        if failed != expected_failed:
            unexpected = sorted(set(failed) - set(expected_failed))
            self.violations.append(f"failed items other than the deliberate ones: {unexpected[:10]}"
                                   f" (missing deliberate: {sorted(set(expected_failed) - set(failed))[:10]})")
        print(f"  phase 1 done in {took1:.1f}s: {len(failed)} items failed on purpose", flush=True)

        # Phase 2: retry the deliberately failed items.
        self.sql("SELECT batchguard.resume_batch(%s, retry_failed => true)", (JOB,))
        for i in range(2):
            self.spawn(2, i * 2)  # per-item mode
        took2 = self.chaos(2)
        print(f"  phase 2 done in {took2:.1f}s: retried and completed them", flush=True)
        self.verify(items)
        return self.report()

    def verify(self, items):
        (completed, failed, pending, running, percentage, status), = self.sql(
            "SELECT completed, failed, pending, running, percentage, status"
            "  FROM batchguard.calculate_progress(%s)", (JOB,))
        self.progress = (completed, percentage, status)
        if completed != len(items) or failed or pending or running:
            self.violations.append(f"progress: {completed} completed, {failed} failed, "
                                   f"{pending} pending, {running} running of {len(items)}")
        if percentage != 100 or status != "completed":
            self.violations.append(f"progress {percentage}% status {status}")
        (self.duplicates,), = self.sql(
            "SELECT count(*) FROM (SELECT item_id FROM chaos_output GROUP BY item_id"
            " HAVING count(*) > 1) d")
        (self.outputs, missing, orphans, wrong_attempt), = self.sql(
            "SELECT (SELECT count(*) FROM chaos_output),"
            "       (SELECT count(*) FROM batchguard.batch_items i WHERE NOT EXISTS"
            "          (SELECT FROM chaos_output o WHERE o.item_id = i.item_id)),"
            "       (SELECT count(*) FROM chaos_output o WHERE NOT EXISTS"
            "          (SELECT FROM batchguard.batch_items i WHERE i.item_id = o.item_id"
            "              AND i.status = 'completed')),"
            "       (SELECT count(*) FROM chaos_output o JOIN batchguard.batch_items i USING (item_id)"
            "         WHERE o.attempt <> i.attempts)")
        if self.duplicates:
            self.violations.append(f"{self.duplicates} items have more than one output row")
        if missing:
            self.violations.append(f"{missing} items have no output row")
        if orphans:
            self.violations.append(f"{orphans} output rows belong to no completed item")
        if wrong_attempt:
            self.violations.append(f"{wrong_attempt} output rows were written under a lease that "
                                   "was not the item's last one")
        if (self.kills < self.args.kills or self.restarts < self.args.restarts
                or self.stalls < self.args.stalls):
            self.violations.append(f"the chaos was short: {self.kills} kills, {self.stalls} stalls, "
                                   f"{self.restarts} restarts")
        if self.events_while_pending < self.kills + self.restarts + self.stalls:
            self.violations.append("some chaos events happened while no item was pending")

    def report(self):
        s = self.stats()
        print(f"  kills: {self.kills} (SIGKILL, each worker restarted)")
        print(f"  stalls: {self.stalls} (SIGSTOP longer than the lease, then SIGCONT)")
        print(f"  server restarts: {self.restarts} (pg_ctl -m immediate stop, start)")
        print(f"  workers started: {self.spawned}; reconnects: {s.get('reconnect', 0)}")
        print(f"  items: {self.args.items}; completed: {self.progress[0]}; "
              f"progress: {self.progress[1]}% ({self.progress[2]})")
        print(f"  completions recorded by workers: {s.get('done', 0)} "
              "(commits lost in crashes may be missing or doubled here)")
        print(f"  fenced completions (PB001, rolled back): {s.get('fenced', 0)} items, "
              f"{s.get('fenced-batch', 0)} complete_items batches")
        print(f"  output rows: {self.outputs}; duplicates found: {self.duplicates}")
        if self.violations:
            for v in self.violations:
                print(f"VIOLATION: {v}")
            print(f"server log: {self.cluster.log}")
            return 1
        print("chaos test passed")
        return 0

    def cleanup(self, keep):
        for proc, _ in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        try:
            self.cluster.stop()
        except subprocess.CalledProcessError:
            pass
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode")
    w = sub.add_parser("worker")
    w.add_argument("--name", required=True)
    w.add_argument("--dsn", required=True)
    w.add_argument("--workdir", required=True)
    w.add_argument("--phase", type=int, default=1)
    w.add_argument("--lease", type=float, default=2.0)
    w.add_argument("--claim", type=int, default=5)
    w.add_argument("--work-ms", type=float, default=4.0)
    w.add_argument("--batch-mode", action="store_true")
    w.add_argument("--sabotage", action="store_true")
    p.add_argument("--bindir", default="/usr/lib/postgresql/15/bin")
    p.add_argument("--items", type=int, default=20000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--kills", type=int, default=24)
    p.add_argument("--stalls", type=int, default=3)
    p.add_argument("--restarts", type=int, default=2)
    p.add_argument("--lease", type=float, default=2.0)
    p.add_argument("--claim", type=int, default=5)
    p.add_argument("--work-ms", type=float, default=4.0)
    p.add_argument("--max-attempts", type=int, default=20)
    p.add_argument("--timeout", type=float, default=900.0, help="bound of each phase (s)")
    p.add_argument("--seed", type=int, default=20241128)
    p.add_argument("--keep", action="store_true", help="keep the cluster directory")
    p.add_argument("--sabotage", action="store_true",
                   help="workers ignore fencing (no lease token, and they commit their output even "
                        "when complete_item says the item was done): shows that the test catches "
                        "duplicates; it must then fail")
    args = p.parse_args()
    if args.mode == "worker":
        worker_main(args)
        return 0
    driver = Driver(args)
    try:
        code = driver.run()
    except BaseException:
        driver.cleanup(keep=True)
        print(f"chaos test aborted; cluster kept in {driver.base}", file=sys.stderr)
        raise
    driver.cleanup(keep=args.keep or code != 0)
    return code


if __name__ == "__main__":
    sys.exit(main())
