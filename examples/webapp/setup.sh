# Sourced by examples/webapp/run and examples/webapp/test/run: a throwaway cluster for the
# example web application. Needs scripts/lib.sh sourced and BG_PGBIN set.

# webapp_cluster DIR PORT: starts a cluster in DIR with the background workers (so
# export_progress and expiry work), creates database "app" with the example's schema.
webapp_cluster() {
    local dir=$1 port=$2 here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    bg_start_cluster "$dir" "$port" \
        "shared_preload_libraries = 'pg_batchguard'" \
        "batchguard.database_names = 'app'"
    bg_as_postgres "$BG_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -d postgres \
        -c "CREATE DATABASE app"
    bg_as_postgres "$BG_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -d app \
        -f - <"$here/schema.sql" >/dev/null
}
