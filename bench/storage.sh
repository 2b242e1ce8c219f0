#!/usr/bin/env bash
# Storage benchmark: export_backup of the same rows to in-database storage and to file
# storage, alternating in the same run, at default durability (fsync, synchronous_commit,
# full_page_writes on); a CHECKPOINT before each export so both start alike.
#   export to the database            vs  export to a file         (throughput ratio, target >= 0.7)
#   WAL bytes per backup byte         (in-database export; the file export's WAL for comparison)
#   whole read_backup from the database vs from a file            (informational)
# Prints medians of BENCH_ROUNDS rounds, each ratio from the same round. Usage:
#   bench/storage.sh [parents]     (env: BENCH_ROUNDS=5, BENCH_PORT, BG_PGBIN)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/lib.sh"
parents=${1:-100000}
rounds=${BENCH_ROUNDS:-5}
work=$(bg_workdir)
cluster="$work/cluster"
port=${BENCH_PORT:-$(bg_free_port 54842)}
trap 'bg_stop_cluster "$cluster"; rm -rf "$work"' EXIT
cd "$work"  # the postgres user runs the clients from here
bg_start_cluster "$cluster" "$port" "shared_buffers = '256MB'" "max_wal_size = '4GB'" \
    "checkpoint_timeout = '30min'" "autovacuum = off"
psql() { bg_as_postgres "$BG_PGBIN/psql" -h "$cluster" -p "$port" -X -v ON_ERROR_STOP=1 -d postgres "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "loading $parents conversations x 5 messages"
psql -q -v parents="$parents" <"$root/bench/conversations.sql"
rows=$((parents * 6))

# One export after a checkpoint: prints "<ms> <WAL bytes> <backup bytes> <backup id>".
export_once() {
    local storage=$1 out
    out=$(psql -At <<SQL
CHECKPOINT;
SET batchguard.backup_storage = '$storage';
SELECT pg_current_wal_insert_lsn() AS before \gset
\timing on
SELECT backup_id AS id, compressed_bytes AS bytes FROM batchguard.export_backup('conversation', label => 'bench') \gset
\timing off
SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'before')::bigint || ' ' || :bytes || ' ' || :'id';
SQL
)
    local ms
    ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | head -1 | awk '{printf "%d", $1}')
    echo "$ms $(tail -1 <<<"$out")"
}
read_once() {  # whole read_backup of one backup, ms
    psql -At -c '\timing on' -c "SELECT length(batchguard.read_backup('$1'))" |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1 | awk '{printf "%d", $1}'
}

declare -a t_db t_file per_round wal_per_byte file_wal r_db r_file read_ratio
for round in $(seq 1 "$rounds"); do
    # alternate which goes first, so neither always runs on a warmer cache
    if ((round % 2)); then order="database file"; else order="file database"; fi
    for storage in $order; do
        read -r ms wal bytes id < <(export_once "$storage")
        if [ "$storage" = database ]; then
            db_ms=$ms db_wal=$wal db_bytes=$bytes db_id=$id
        else
            file_ms=$ms file_wal_bytes=$wal file_id=$id
        fi
    done
    t_db+=("$db_ms")
    t_file+=("$file_ms")
    per_round+=("$(ratio "$file_ms" "$db_ms")")
    wal_per_byte+=("$(ratio "$db_wal" "$db_bytes")")
    file_wal+=("$file_wal_bytes")
    rd=$(read_once "$db_id")
    rf=$(read_once "$file_id")
    r_db+=("$rd")
    r_file+=("$rf")
    read_ratio+=("$(ratio "$rf" "$rd")")
    echo "round $round: database ${db_ms} ms, file ${file_ms} ms, ratio $(ratio "$file_ms" "$db_ms"); WAL ${db_wal} bytes for ${db_bytes} backup bytes"
    psql -Atc "SELECT count(batchguard.delete_backup(backup_id)) FROM batchguard.backups" >/dev/null
done

spread() { sort -n | awk 'NR == 1 {min = $1} {max = $1} END {printf "%s-%s", min, max}'; }
cat <<REPORT

rows: $rows ($parents conversations, 5 messages each), backup $db_bytes bytes compressed,
$rounds rounds, $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)
settings: shared_buffers = 256MB, fsync = on, synchronous_commit = on, full_page_writes = on, wal_level = replica
                                          median ms
export_backup, in-database storage        $(printf '%9d' "$(printf '%s\n' "${t_db[@]}" | median)")
export_backup, file storage               $(printf '%9d' "$(printf '%s\n' "${t_file[@]}" | median)")
read_backup (whole), in-database          $(printf '%9d' "$(printf '%s\n' "${r_db[@]}" | median)")
read_backup (whole), file                 $(printf '%9d' "$(printf '%s\n' "${r_file[@]}" | median)")

throughput in-database / file export      $(printf '%s\n' "${per_round[@]}" | median) (spread $(printf '%s\n' "${per_round[@]}" | spread))   target >= 0.7
WAL bytes per backup byte (in-database)   $(printf '%s\n' "${wal_per_byte[@]}" | median) (spread $(printf '%s\n' "${wal_per_byte[@]}" | spread))
WAL bytes of a file-storage export        $(printf '%s\n' "${file_wal[@]}" | median) (its row and audit row only)
throughput in-database / file read        $(printf '%s\n' "${read_ratio[@]}" | median) (spread $(printf '%s\n' "${read_ratio[@]}" | spread))   informational
REPORT
