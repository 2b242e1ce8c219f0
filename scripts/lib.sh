# Shared by scripts/test, scripts/demo and bench/run: package installation and
# throwaway PostgreSQL clusters. Source it; every function is idempotent.

BG_PACKAGES=(
    build-essential g++ make cmake pkg-config
    postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-contrib
    libzstd-dev zstd jq
    libgtest-dev googletest
    libipc-run-perl
    python3 python3-psycopg
    locales-all
    clang libclang-rt-14-dev clang-format-14
)
BG_PGBIN=${BG_PGBIN:-/usr/lib/postgresql/15/bin}

bg_log() { printf '\n=== %s\n' "$*"; }

# Installs what is missing (apt-get update only when something is).
bg_install_packages() {
    local missing=()
    for p in "${BG_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        bg_log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # Debian starts a main cluster with the server package; our tests use their own.
    export PATH="$BG_PGBIN:$PATH"
}

# Runs a command as the unprivileged OS user that owns the test clusters.
bg_as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A fresh directory that the postgres user owns, removed by bg_cleanup.
bg_workdir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/pg_batchguard.XXXXXX")
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    echo "$dir"
}

# bg_start_cluster DIR PORT [postgresql.conf lines...]: initdb + start, socket in DIR.
bg_start_cluster() {
    local dir=$1 port=$2
    shift 2
    bg_as_postgres "$BG_PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        echo "max_connections = 50"
        echo "max_prepared_transactions = 10"
        for line in "$@"; do echo "$line"; done
    } | bg_as_postgres tee -a "$dir/data/postgresql.conf" >/dev/null
    bg_as_postgres "$BG_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

bg_stop_cluster() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] && bg_as_postgres "$BG_PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
    return 0
}

# A TCP port nobody listens on.
bg_free_port() {
    local port
    for port in $(seq "${1:-54320}" 54999); do
        if ! (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    return 1
}

# Copies the source tree (without build output) to DIR, readable by the postgres user.
bg_copy_tree() {
    local src=$1 dst=$2
    mkdir -p "$dst"
    tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$dst" -xf -
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dst"
    return 0
}

# bg_private_server DIR: a private copy of the system's PostgreSQL 15 (binaries, libraries,
# share; headers linked) under DIR, which PostgreSQL finds relative to its binaries. Builds
# and tests install the extension there instead of into the system, so several checkouts
# can test at once and the system's PostgreSQL is never changed. Prints its pg_config.
bg_private_server() {
    local dir=$1
    if [ ! -x "$dir/usr/lib/postgresql/15/bin/pg_config" ]; then
        mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" "$dir/usr/include"
        cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
        cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
        ln -sfn /usr/include/postgresql "$dir/usr/include/postgresql"
        [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
        # make install runs as this user (root in CI); the servers read as postgres.
        chmod -R a+rX "$dir"
    fi
    echo "$dir/usr/lib/postgresql/15/bin/pg_config"
}

# Node.js and npm for the web example and the Node.js clients: the machine's own, else
# Debian's nodejs (18) and npm. (A Node.js from elsewhere ships its own npm, which
# Debian's npm package would conflict with, hence the check by command.)
bg_install_node() {
    command -v node >/dev/null && command -v npm >/dev/null && return 0
    bg_log "installing nodejs npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
}

# bg_npm_ci DIR: installs DIR's npm packages exactly as its package-lock.json says, again
# only when the lock file changed.
bg_npm_ci() {
    local dir=$1
    bg_install_node
    cmp -s "$dir/package-lock.json" "$dir/node_modules/.lock-installed" 2>/dev/null && return 0
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) &&
        cp "$dir/package-lock.json" "$dir/node_modules/.lock-installed"
}
