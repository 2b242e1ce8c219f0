#!/usr/bin/env bash
# delete_with_backup / restore_backup benchmark, on 100,000 conversations with 5
# turns each by default, each measurement on a fresh copy of the same database:
#   delete_with_backup                 vs  export_backup + DELETE, measured separately
#   restore_backup                     vs  psql --single-transaction of pg_dump --data-only --inserts
#   restore_backup                     vs  pg_restore of a custom-format data-only dump
# Each restore goes into a fresh copy of the database from which the same rows were just
# deleted (the state a user's restore meets).
# Prints medians of BENCH_ROUNDS rounds, their ratios and each ratio against its target
# (docs/performance.md). Usage:
#   bench/delete.sh [--quick] [parents]     (env: BENCH_ROUNDS=3, BENCH_PORT, BG_PGBIN)
# --quick: a regression guard (10,000 conversations, one round, about a minute): exits 3
# when a ratio misses its target (a full run reports misses and exits 0). Not run by
# scripts/test.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/lib.sh"
source "$root/bench/targets.sh"
[ "${1:-}" = --quick ] && { bench_mode=quick; shift; }
if [ "$bench_mode" = quick ]; then parents=${1:-10000} rounds=${BENCH_ROUNDS:-1}
else parents=${1:-100000} rounds=${BENCH_ROUNDS:-3}; fi
work=$(bg_workdir)
cluster="$work/cluster"
port=${BENCH_PORT:-$(bg_free_port 54832)}
trap 'bg_stop_cluster "$cluster"; rm -rf "$work"' EXIT
cd "$work"
# Its figures are file storage's (bench/storage.sh compares the two storages).
bg_start_cluster "$cluster" "$port" "shared_buffers = '256MB'" "max_wal_size = '4GB'" \
    "batchguard.backup_storage = 'file'"
psql() { bg_as_postgres "$BG_PGBIN/psql" -h "$cluster" -p "$port" -X -q -v ON_ERROR_STOP=1 "$@"; }
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }
fresh() { psql -d postgres -c "DROP DATABASE IF EXISTS b" -c "CREATE DATABASE b TEMPLATE tpl"; }

echo "loading $parents conversations x 5 turns"
psql -d postgres -c "CREATE DATABASE tpl"
psql -d tpl <<SQL
CREATE EXTENSION pg_batchguard;
CREATE TABLE conv (id bigint PRIMARY KEY, owner text, title text, created timestamptz DEFAULT now());
CREATE TABLE turn (id bigint PRIMARY KEY, conv_id bigint NOT NULL REFERENCES conv ON DELETE CASCADE,
                   role text, body text, tokens int);
CREATE INDEX ON turn (conv_id);
INSERT INTO conv (id, owner, title) SELECT g, 'user' || (g % 100), 'conversation ' || g
  FROM generate_series(1, $parents) g;
INSERT INTO turn SELECT g, (g - 1) / 5 + 1, CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END,
       repeat('lorem ipsum ', 8) || g, g % 500 FROM generate_series(1, $parents * 5) g;
VACUUM ANALYZE;
SQL
bg_as_postgres "$BG_PGBIN/pg_dump" -h "$cluster" -p "$port" -d tpl --data-only --inserts -t conv -t turn -f "$work/inserts.sql"
bg_as_postgres "$BG_PGBIN/pg_dump" -h "$cluster" -p "$port" -d tpl --data-only -Fc -t conv -t turn -f "$work/data.dump"

ids="ARRAY(SELECT id::text FROM conv)"
# Every restore, ours and the baselines', goes into the same state: a fresh copy of the
# database from which the same rows were just deleted (their dead versions still in the
# tables and indexes, as a user's restore after a delete meets them). pg_restore into
# TRUNCATEd tables (no dead rows) is printed too, for information.
declare -a dwb sep rst ins pgr pgr_empty per_round
for ((r = 1; r <= rounds; r++)); do
    fresh; psql -d b -c CHECKPOINT
    t0=$(now_ms); psql -d b -c "SELECT batchguard.delete_with_backup('conv', $ids) IS NOT NULL" >/dev/null; t1=$(now_ms)
    dwb+=($((t1 - t0)))
    backup=$(psql -d b -At -c "SELECT backup_id FROM batchguard.backups")
    t0=$(now_ms); psql -d b -c "SELECT batchguard.restore_backup('$backup') IS NOT NULL" >/dev/null; t1=$(now_ms)
    rst+=($((t1 - t0)))

    fresh; psql -d b -c CHECKPOINT
    t0=$(now_ms); psql -d b -c "SELECT batchguard.export_backup('conv', $ids) IS NOT NULL" >/dev/null; t1=$(now_ms)
    psql -d b -c "DELETE FROM batchguard.backups"  # keep the quota out of it
    t2=$(now_ms); psql -d b -c "DELETE FROM conv WHERE id = ANY ($ids::bigint[])"; t3=$(now_ms)
    sep+=($((t1 - t0 + t3 - t2)))
    t0=$(now_ms); bg_as_postgres "$BG_PGBIN/pg_restore" -h "$cluster" -p "$port" -d b --single-transaction "$work/data.dump"; t1=$(now_ms)
    pgr+=($((t1 - t0)))
    per_round+=("$(awk "BEGIN {printf \"%.2f\", ${rst[-1]} / ${pgr[-1]}}")")

    fresh; psql -d b -c CHECKPOINT
    psql -d b -c "DELETE FROM conv WHERE id = ANY ($ids::bigint[])"
    t0=$(now_ms); psql -d b --single-transaction -f "$work/inserts.sql" >/dev/null; t1=$(now_ms)
    ins+=($((t1 - t0)))
    psql -d b -c "TRUNCATE turn, conv"
    t0=$(now_ms); bg_as_postgres "$BG_PGBIN/pg_restore" -h "$cluster" -p "$port" -d b --single-transaction "$work/data.dump"; t1=$(now_ms)
    pgr_empty+=($((t1 - t0)))
done
m_dwb=$(printf '%s\n' "${dwb[@]}" | median); m_sep=$(printf '%s\n' "${sep[@]}" | median)
m_rst=$(printf '%s\n' "${rst[@]}" | median); m_ins=$(printf '%s\n' "${ins[@]}" | median)
m_pgr=$(printf '%s\n' "${pgr[@]}" | median); m_pgr_empty=$(printf '%s\n' "${pgr_empty[@]}" | median)
m_round=$(printf '%s\n' "${per_round[@]}" | median)
echo "rows: $parents conversations + $((parents * 5)) turns; medians of $rounds rounds (ms)"
echo "delete_with_backup                 $m_dwb"
echo "export_backup + DELETE, separately $m_sep   ratio $(awk "BEGIN {printf \"%.2f\", $m_dwb / $m_sep}")x (target <= 1.5)"
echo "restore_backup                     $m_rst   (rounds $(printf '%s\n' "${rst[@]}" | spread))"
echo "psql -1 of pg_dump --inserts       $m_ins   restore/replay $(awk "BEGIN {printf \"%.2f\", $m_rst / $m_ins}")x (target <= 1.0)"
echo "pg_restore -1 (custom, data only)  $m_pgr   (rounds $(printf '%s\n' "${pgr[@]}" | spread))   restore/pg_restore $(awk "BEGIN {printf \"%.2f\", $m_rst / $m_pgr}")x"
echo "restore/pg_restore per round       ${per_round[*]}: median $m_round (target <= 1.25)"
echo "pg_restore into TRUNCATEd tables   $m_pgr_empty   (rounds $(printf '%s\n' "${pgr_empty[@]}" | spread); informational: no dead rows to meet)"
echo
target "delete_with_backup / (export_backup + DELETE)" "$(awk "BEGIN {printf \"%.2f\", $m_dwb / $m_sep}")" "<=" 1.5
target "restore_backup / psql -1 of pg_dump --inserts" "$(awk "BEGIN {printf \"%.2f\", $m_rst / $m_ins}")" "<=" 1.0
target "restore_backup / pg_restore, per round (issue 16 target 3)" "$m_round" "<=" 1.25
bench_exit
