#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests and print its admin URL; `stop DIR` stops
# and removes it. initdb refuses to run as root, so as root the cluster runs as the `postgres`
# OS user (created if missing). Installs the Debian server package when initdb is missing.
#
#   url=$(scripts/pg-cluster.sh start /tmp/pgdir)   # postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/pg-cluster.sh down /tmp/pgdir   # crash it (immediate stop), keeping its data
#   scripts/pg-cluster.sh up /tmp/pgdir     # start it again on the same port
#   scripts/pg-cluster.sh stop /tmp/pgdir
set -euo pipefail

find_bin() {
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    return 1
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cmd=${1:?start|down|up|stop}
dir=${2:?directory}
case "$cmd" in
start)
    if ! bin=$(find_bin); then
        if [ "$(id -u)" -ne 0 ]; then
            echo "pg-cluster.sh: PostgreSQL server binaries (initdb) are missing; install postgresql" >&2
            exit 1
        fi
        echo "pg-cluster.sh: installing postgresql (apt-get)" >&2
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
        bin=$(find_bin)
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    fi
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    # A free loopback port, chosen by the kernel.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    # Durable commits stay on (the tests check durability); the rest is sized for a test box.
    echo "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400 -c shared_buffers=128MB -c fsync=on" >"$dir/opts"
    echo "$bin" >"$dir/bin"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/opts")" start >&2 || {
        cat "$dir/server.log" >&2
        exit 1
    }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
down)
    as_pg "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -m immediate -w stop >&2
    ;;
up)
    as_pg "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/opts")" start >&2 || {
        cat "$dir/server.log" >&2
        exit 1
    }
    ;;
stop)
    if [ -f "$dir/bin" ]; then
        as_pg "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|down|up|stop DIR" >&2
    exit 2
    ;;
esac
