# Sourced by bench/backup.sh, bench/delete.sh and bench/run-queue: targets checked against
# measured ratios, and the exit status of a run. A full run reports misses and exits 0 (its
# figures are read by a person); --quick is a regression guard and exits 3 on a miss.
bench_mode=full
bench_misses=0
# target LABEL VALUE OP LIMIT: prints "met" or "MISSED" for VALUE OP LIMIT (OP: >= <= <).
target() {
    local label=$1 value=$2 op=$3 limit=$4
    if awk -v v="$value" -v l="$limit" -v op="$op" \
        'BEGIN {exit !((op == ">=" && v >= l) || (op == "<=" && v <= l) || (op == "<" && v < l))}'; then
        printf 'target %-58s %8s %s %-6s met\n' "$label" "$value" "$op" "$limit"
    else
        printf 'target %-58s %8s %s %-6s MISSED\n' "$label" "$value" "$op" "$limit"
        bench_misses=$((bench_misses + 1))
    fi
}
# bench_exit: the summary line and the exit status (3: a target missed in --quick mode).
bench_exit() {
    if ((bench_misses > 0)); then
        echo "$bench_misses target(s) missed ($bench_mode mode)"
        [ "$bench_mode" = quick ] && exit 3
    else
        echo "every target met ($bench_mode mode)"
    fi
    exit 0
}
