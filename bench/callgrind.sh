#!/usr/bin/env bash
# Instructions per call of the checkpoint API's hot path against its baselines, counted by
# Valgrind's callgrind in a single-user backend (docs/performance.md, "Where a
# complete_item goes"). Unlike times, instruction counts do not move with the machine's
# load, so this is the comparison to trust on a busy machine. For each workload the
# backend runs N1 and then N2 calls, one transaction each, synchronous_commit off; the
# difference divided by N2 - N1 is one call without the start-up and the first call's
# caches. Usage:
#   bench/callgrind.sh                (env: BG_PGBIN, BENCH_CALLS=100,500, BENCH_KEEP=DIR
#                                      keeps the callgrind files for callgrind_annotate)
# Prints a table of instructions per transaction and each ratio to the bare write.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/lib.sh"
BG_PACKAGES+=(valgrind)
bg_install_packages
IFS=, read -r n1 n2 <<<"${BENCH_CALLS:-100,500}"
work=$(bg_workdir)
cluster="$work/cluster"
trap 'bg_stop_cluster "$cluster"; rm -rf "$work"' EXIT
cd "$work"
port=$(bg_free_port 54852)
bg_start_cluster "$cluster" "$port"
psql() { bg_as_postgres "$BG_PGBIN/psql" -h "$cluster" -p "$port" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c "CREATE ROLE bench_user LOGIN" -c "CREATE DATABASE bench_ratio"
psql -d bench_ratio -f "$root/bench/setup.sql" >/dev/null
bg_stop_cluster "$cluster"

# calls WORKLOAD COUNT: COUNT executions of the workload's prepared statement (as pgbench -M
# prepared runs them), one per line: a transaction each.
calls() {
    local kind=$1 count=$2 i
    echo "SET ROLE bench_user"
    case $kind in
        complete_item) echo "PREPARE p(text) AS SELECT batchguard.complete_item('bench-new', \$1)" ;;
        insert) echo "PREPARE p(text) AS INSERT INTO bench_plain.items (batch_id, item_id, owner, status) VALUES (1, \$1, 'bench_user', 'completed') ON CONFLICT DO NOTHING" ;;
        plpgsql) echo "PREPARE p(text) AS SELECT bench_plpgsql.complete_item('bench-new', \$1)" ;;
        select1) echo "PREPARE p(text) AS SELECT 1" ;;
    esac
    for ((i = 1; i <= count; i++)); do echo "EXECUTE p('item-$count-$i')"; done
}

# instructions WORKLOAD COUNT: the total instructions of a single-user backend running them.
instructions() {
    local out="$work/callgrind.$1.$2"
    calls "$1" "$2" >"$work/calls.sql"
    chmod 644 "$work/calls.sql"
    bg_as_postgres valgrind --tool=callgrind --callgrind-out-file="$out" --quiet \
        "$BG_PGBIN/postgres" --single -D "$cluster/data" -c synchronous_commit=off \
        bench_ratio <"$work/calls.sql" >/dev/null 2>"$work/stderr" ||
        { cat "$work/stderr" >&2; return 1; }
    sed -n 's/^summary: *//p; s/^totals: *//p' "$out" | head -1
}

declare -A per_call
for kind in complete_item insert plpgsql select1; do
    a=$(instructions "$kind" "$n1")
    b=$(instructions "$kind" "$n2")
    per_call[$kind]=$(((b - a) / (n2 - n1)))
done

[ -n "${BENCH_KEEP:-}" ] && mkdir -p "$BENCH_KEEP" && cp "$work"/callgrind.* "$BENCH_KEEP"/
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
cat <<REPORT

instructions per transaction (callgrind, single-user backend, synchronous_commit off,
($n2 - $n1) calls), and the bare write's count over each (higher is better):
  complete_item, new item of a lazy batch    $(printf '%9d' "${per_call[complete_item]}")   $(ratio "${per_call[insert]}" "${per_call[complete_item]}")x
  bare INSERT ... ON CONFLICT DO NOTHING     $(printf '%9d' "${per_call[insert]}")   1.00x
  PL/pgSQL reference, new item               $(printf '%9d' "${per_call[plpgsql]}")   $(ratio "${per_call[insert]}" "${per_call[plpgsql]}")x
  SELECT 1                                   $(printf '%9d' "${per_call[select1]}")
REPORT
