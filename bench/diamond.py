#!/usr/bin/python3
"""The diamond bar of issue 13 (High 3): 14 tables, each with two foreign keys to the one
before. Prints the time and the backend's peak memory growth of export_backup,
delete_preview and delete_with_backup (rolled back) on it, next to a plain COPY of the
same rows for scale. pg_batchguard 1.0 generated SQL that doubled per level (5 GB, 32 s).

Usage: bench/diamond.py --host DIR --port N [--dbname D] [--rows N]
(run as root or as the server's OS user: it reads /proc/<backend pid>/status)."""

import argparse
import time

import psycopg


def peak_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=5432)
    p.add_argument("--dbname", default="postgres")
    p.add_argument("--rows", type=int, default=1000)
    a = p.parse_args()
    conn = psycopg.connect(f"host={a.host} port={a.port} dbname={a.dbname} user=postgres",
                           autocommit=True)
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_batchguard")
    for i in range(13, -1, -1):
        conn.execute(f"DROP TABLE IF EXISTS dm_{i}")
    conn.execute("CREATE TABLE dm_0 (id int PRIMARY KEY)")
    conn.execute(f"INSERT INTO dm_0 SELECT g FROM generate_series(1, {a.rows}) g")
    for i in range(1, 14):
        conn.execute(f"CREATE TABLE dm_{i} (id int PRIMARY KEY,"
                     f" l int REFERENCES dm_{i - 1} ON DELETE CASCADE,"
                     f" r int REFERENCES dm_{i - 1} ON DELETE CASCADE)")
        conn.execute(f"CREATE INDEX ON dm_{i} (l)")
        conn.execute(f"CREATE INDEX ON dm_{i} (r)")
        conn.execute(f"INSERT INTO dm_{i} SELECT g, g, {a.rows} + 1 - g"
                     f" FROM generate_series(1, {a.rows}) g")
    conn.execute("ANALYZE")
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]

    def measure(name, sql, rollback=False):
        before = peak_kb(pid)
        start = time.monotonic()
        if rollback:
            with conn.transaction():
                result = conn.execute(sql).fetchone()
                raise psycopg.Rollback()
        else:
            result = conn.execute(sql).fetchone()
        elapsed = time.monotonic() - start
        grew = max(0, peak_kb(pid) - before)
        print(f"{name:42s} {elapsed * 1000:8.0f} ms   peak memory +{grew / 1024:6.1f} MiB   "
              f"{result[0]}")

    measure("COPY of all 14 tables (for scale)",
            "SELECT sum(n) FROM (" + " UNION ALL ".join(
                f"SELECT count(*) AS n FROM (SELECT row_to_json(t) FROM dm_{i} t) x"
                for i in range(14)) + ") y")
    measure("export_backup(dm_0, 3 ids)",
            "SELECT total_rows FROM batchguard.export_backup('dm_0', '{1,2,3}')")
    measure("export_backup(dm_0) every row",
            "SELECT total_rows FROM batchguard.export_backup('dm_0')")
    measure("delete_preview(dm_0, 1 id)",
            "SELECT sum(rows) FROM batchguard.delete_preview('dm_0', '{1}')")
    measure("delete_with_backup(dm_0, 1 id), rolled back",
            "SELECT r -> 'backup' -> 'total_rows' FROM batchguard.delete_with_backup('dm_0', '{1}') r",
            rollback=True)
    for i in range(13, -1, -1):
        conn.execute(f"DROP TABLE dm_{i}")


if __name__ == "__main__":
    main()
