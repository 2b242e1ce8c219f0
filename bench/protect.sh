#!/usr/bin/env bash
# Protected tables (issue 17): what a plain DELETE costs when the table is protected, in
# one run, on fresh copies of one database (default storage: in the database):
#   1. DELETE of every conversation (default 100,000, with 2 turns each: their ON DELETE
#      CASCADE children) from a protected table, COMMIT included
#      vs the same DELETE on an unprotected copy + export_backup of those rows, separately
#      (target: at most 1.5x);
#   2. pgbench, one-row DELETE per transaction (a conversation and its turns), 1 and 2
#      clients: transactions per second on a protected table vs an unprotected one
#      (target: at least 0.5x).
# Prints the median and the spread (min-max) of BENCH_ROUNDS rounds (default 5) and the
# ratios of the medians. Usage:
#   bench/protect.sh [conversations]   (env: BENCH_ROUNDS=5, BENCH_SECONDS=5, BENCH_PORT,
#                                        BENCH_STORAGE=database|file, BG_PGBIN)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/lib.sh"
parents=${1:-100000}
rounds=${BENCH_ROUNDS:-5}
seconds=${BENCH_SECONDS:-5}
storage=${BENCH_STORAGE:-database}
work=$(bg_workdir)
cluster="$work/cluster"
port=${BENCH_PORT:-$(bg_free_port 54842)}
trap 'bg_stop_cluster "$cluster"; rm -rf "$work"' EXIT
cd "$work"
bg_start_cluster "$cluster" "$port" "shared_buffers = '256MB'" "max_wal_size = '4GB'" \
    "batchguard.backup_storage = '$storage'"
psql() { bg_as_postgres "$BG_PGBIN/psql" -h "$cluster" -p "$port" -X -q -v ON_ERROR_STOP=1 "$@"; }
now_ms() { date +%s%3N; }
stats() { sort -n | awk '{a[NR]=$1} END {printf "%s (%s-%s)", a[int((NR+1)/2)], a[1], a[NR]}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fresh() { psql -d postgres -c "DROP DATABASE IF EXISTS b" -c "CREATE DATABASE b TEMPLATE $1"; }

echo "loading $parents conversations x 2 turns, storage $storage"
psql -d postgres -c "CREATE DATABASE plain_tpl"
psql -d plain_tpl <<SQL
CREATE EXTENSION pg_batchguard;
CREATE TABLE conv (id bigint PRIMARY KEY, owner text, title text, created timestamptz DEFAULT now());
CREATE TABLE turn (id bigint PRIMARY KEY, conv_id bigint NOT NULL REFERENCES conv ON DELETE CASCADE,
                   role text, body text, tokens int);
CREATE INDEX ON turn (conv_id);
INSERT INTO conv (id, owner, title) SELECT g, 'user' || (g % 100), 'conversation ' || g
  FROM generate_series(1, $parents) g;
INSERT INTO turn SELECT g, (g - 1) / 2 + 1, CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END,
       repeat('lorem ipsum ', 8) || g, g % 500 FROM generate_series(1, $parents * 2) g;
CREATE SEQUENCE next_conv;
VACUUM ANALYZE;
SQL
psql -d postgres -c "CREATE DATABASE protected_tpl TEMPLATE plain_tpl"
psql -d protected_tpl -c "SELECT batchguard.protect_table('conv')" >/dev/null

# 1. The whole table at once.
declare -a prot sep
for ((r = 1; r <= rounds; r++)); do
    fresh protected_tpl; psql -d b -c CHECKPOINT
    t0=$(now_ms); psql -d b -c "DELETE FROM conv"; t1=$(now_ms)
    prot+=($((t1 - t0)))
    [ "$(psql -d b -At -c 'SELECT total_rows FROM batchguard.backups')" = $((parents * 3)) ] ||
        { echo "the protected DELETE did not back up every row"; exit 1; }

    fresh plain_tpl; psql -d b -c CHECKPOINT
    t0=$(now_ms); psql -d b -c "SELECT batchguard.export_backup('conv') IS NOT NULL" >/dev/null; t1=$(now_ms)
    psql -d b -c "DELETE FROM batchguard.backups"  # keep the quota out of it
    t2=$(now_ms); psql -d b -c "DELETE FROM conv"; t3=$(now_ms)
    sep+=($((t1 - t0 + t3 - t2)))
done
m_prot=$(printf '%s\n' "${prot[@]}" | median); m_sep=$(printf '%s\n' "${sep[@]}" | median)

# 2. One-row deletes, one per transaction (pgbench, fixed duration); each run on a fresh copy.
# (a random id: nextval() in the WHERE clause is volatile and would make it a sequential scan;
# an id deleted before deletes nothing in both variants alike)
printf '%s\n' "\\set id random(1, $parents)" 'DELETE FROM conv WHERE id = :id;' > "$work/one.sql"
chmod 644 "$work/one.sql"
declare -A tps
for clients in 1 2; do
    for ((r = 1; r <= rounds; r++)); do
        for kind in plain protected; do
            fresh "${kind}_tpl"; psql -d b -c CHECKPOINT
            t=$(bg_as_postgres "$BG_PGBIN/pgbench" -h "$cluster" -p "$port" -n -f "$work/one.sql" \
                -c "$clients" -j "$clients" -T "$seconds" b 2>/dev/null |
                sed -n 's/^tps = \([0-9.]*\).*/\1/p')
            tps[$kind-$clients]+="$t "
        done
    done
done

echo "rows: $parents conversations + $((parents * 2)) turns; $rounds rounds; median (min-max)"
echo "1. DELETE of every conversation (and its turns), COMMIT included (ms)"
echo "   protected table                       $(printf '%s\n' "${prot[@]}" | stats)"
echo "   unprotected DELETE + export_backup    $(printf '%s\n' "${sep[@]}" | stats)"
echo "   ratio $(awk "BEGIN {printf \"%.2f\", $m_prot / $m_sep}")x (target <= 1.5)"
echo "2. one-row DELETE per transaction, pgbench -T $seconds (transactions/s)"
for clients in 1 2; do
    p=$(printf '%s\n' ${tps[plain-$clients]} | median); q=$(printf '%s\n' ${tps[protected-$clients]} | median)
    echo "   $clients client(s): unprotected $(printf '%s\n' ${tps[plain-$clients]} | stats)," \
         "protected $(printf '%s\n' ${tps[protected-$clients]} | stats)" \
         "ratio $(awk "BEGIN {printf \"%.2f\", $q / $p}")x (target >= 0.5)"
done
