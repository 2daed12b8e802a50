#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for weft's tests and for a developer: installs Debian's
# `postgresql` when it is missing, then runs `initdb` in a temporary directory as the unprivileged
# `postgres` user (CI runs as root), starts the server on a free port of 127.0.0.1 and prints the
# connection URL as a shell line:
#
#   eval "$(bash scripts/pg.sh)"       # export WEFT_TEST_PG=postgres://postgres@127.0.0.1:PORT/postgres
#   bash scripts/pg.sh stop            # stops it and removes its directory
#   bash scripts/pg.sh url             # prints the URL of the running cluster (exit 1: none)
#   bash scripts/pg.sh restart         # restarts it on the same port (clients must reconnect)
#   bash scripts/pg.sh start --stop-with PID   # ... and stop it once process PID has exited
#
# Idempotent: a cluster already started by this script (state in $WEFT_PG_STATE, default
# /tmp/weft-pg-$UID) is reused while it answers. `make test` and the Rust test fixtures use it.
set -euo pipefail

STATE="${WEFT_PG_STATE:-/tmp/weft-pg-$(id -u)}"
CMD="${1:-start}"
STOP_WITH=
if [ "${2:-}" = "--stop-with" ]; then STOP_WITH="${3:?--stop-with needs a process id}"; fi
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"

log() { echo "pg.sh: $*" >&2; }

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

install_pg() {
  if pg_bin >/dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    log "PostgreSQL is not installed and this is not root: install Debian's postgresql package"
    exit 3
  fi
  log "installing Debian's postgresql (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  apt-get install -y -qq --no-install-recommends postgresql >&2
  pg_bin >/dev/null || { log "postgresql installed but no initdb found under /usr/lib/postgresql"; exit 3; }
}

# The user the cluster runs as: postgres when we are root (initdb refuses root), else ourselves.
run_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running_url() {
  [ -f "$STATE/url" ] && [ -f "$STATE/data/postmaster.pid" ] || return 1
  local bin port
  bin=$(pg_bin) || return 1
  port=$(cat "$STATE/port")
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || return 1
  cat "$STATE/url"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000))
}

start() {
  if url=$(running_url); then
    echo "export WEFT_TEST_PG=$url"
    return 0
  fi
  install_pg
  local bin port
  bin=$(pg_bin)
  # a stale directory (a cluster that died or a machine that rebooted): start afresh
  stop_quiet
  mkdir -p "$STATE"
  chmod 755 "$STATE"
  if [ "$(id -u)" = 0 ]; then chown postgres "$STATE"; fi
  run_as "$bin/initdb" -D "$STATE/data" -U postgres -A trust -E UTF8 --no-locale >"$STATE/initdb.log" 2>&1 \
    || { cat "$STATE/initdb.log" >&2; log "initdb failed"; exit 1; }
  port=$(free_port)
  echo "$port" >"$STATE/port"
  # fsync stays on: the durability the tests check is PostgreSQL's real one
  run_as "$bin/pg_ctl" -D "$STATE/data" -l "$STATE/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $STATE -c max_connections=200 -c shared_buffers=64MB" start </dev/null >&2 9>&- \
    || { cat "$STATE/server.log" >&2; log "the server did not start"; exit 1; }
  local url="postgres://postgres@127.0.0.1:$port/postgres"
  echo "$url" >"$STATE/url"
  log "PostgreSQL running on 127.0.0.1:$port (data in $STATE/data; stop: bash scripts/pg.sh stop)"
  echo "export WEFT_TEST_PG=$url"
}

stop_quiet() {
  local bin
  if [ -d "$STATE/data" ] && bin=$(pg_bin); then
    run_as "$bin/pg_ctl" -D "$STATE/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$STATE"
}

# one caller at a time (test binaries started side by side share the cluster)
mkdir -p "$(dirname "$STATE")"
exec 9>"$STATE.lock"
flock 9

case "$CMD" in
  start)
    start
    if [ -n "$STOP_WITH" ]; then
      # a watcher, detached from the caller's terminal and pipes, stops the cluster after it
      WEFT_PG_STATE="$STATE" setsid bash -c \
        'while kill -0 "$0" 2>/dev/null; do sleep 1; done; bash "$1" stop; rm -f "$WEFT_PG_STATE.lock"' "$STOP_WITH" "$SELF" \
        </dev/null >/dev/null 2>&1 9>&- &
    fi
    ;;
  stop) stop_quiet; rm -f "$STATE.lock"; log "stopped" ;;
  restart)
    # the same cluster on the same port (fault tests: clients must reconnect)
    running_url >/dev/null || { log "no cluster of $STATE is running"; exit 1; }
    bin=$(pg_bin); port=$(cat "$STATE/port")
    run_as "$bin/pg_ctl" -D "$STATE/data" -l "$STATE/server.log" -w -t 60 -m fast \
      -o "-h 127.0.0.1 -p $port -k $STATE -c max_connections=200 -c shared_buffers=64MB" restart </dev/null >&2 9>&- \
      || { cat "$STATE/server.log" >&2; log "the server did not restart"; exit 1; }
    log "restarted on 127.0.0.1:$port"
    ;;
  url) running_url ;;
  *) log "usage: pg.sh [start|stop|url]"; exit 2 ;;
esac
