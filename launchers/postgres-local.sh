#!/usr/bin/env bash
# A throwaway PostgreSQL server on this machine, for the tests of `rlsweep tune tune.storage=postgresql://...` and for
# trying a tuner's studies on a server without one:  launchers/postgres-local.sh start | stop | status
#
# Installs Debian's postgresql when no initdb is found (needs root and apt), creates a cluster in
# $RLSWEEP_PG_DIR/data (default /tmp/rlsweep-postgres) run by the postgres user (by the caller when not root),
# listening on localhost port $RLSWEEP_PG_PORT (default 55432: beside a system server on 5432, not in its way), with
# the role and database rlsweep (password rlsweep), and prints the URL to give as tune.storage= (the tests read it
# from RLSWEEP_PG_URL, default the one printed with the default port). Only localhost can connect, with the
# password; the socket is in $RLSWEEP_PG_DIR. `start` on a running server prints its URL and changes nothing; `stop`
# ends only the server of $RLSWEEP_PG_DIR and keeps its data (the next start reuses it; delete the folder to forget).
set -euo pipefail

DIR=${RLSWEEP_PG_DIR:-/tmp/rlsweep-postgres}
PORT=${RLSWEEP_PG_PORT:-55432}
URL=postgresql://rlsweep:rlsweep@localhost:$PORT/rlsweep

log() { echo "[postgres-local] $*"; }

# Debian keeps the server's programs in /usr/lib/postgresql/<major>/bin, off PATH; elsewhere they are on PATH.
bindir() {
  local found
  found=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)  # the pattern itself when none
  if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; return; fi
  if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; fi
}

install() {
  if [ -n "$(bindir)" ]; then return; fi
  if [ "$(id -u)" != 0 ]; then
    log "no PostgreSQL server programs (initdb, pg_ctl): install Debian's postgresql, or put them on PATH"; exit 1
  fi
  log "installing postgresql from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d 101: the package's own cluster on 5432 is not started; this script runs its own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

# The server runs as postgres when root starts it (initdb and postgres refuse root), else as the caller.
owner() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

running() { [ -n "$(bindir)" ] && as_owner "$(bindir)/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; }

# psql as the cluster's superuser over its socket (trusted: only the owner can reach the socket's folder).
sql() { as_owner "$(bindir)/psql" -h "$DIR" -p "$PORT" -U "$(owner)" -d postgres -v ON_ERROR_STOP=1 -qtAc "$1"; }

start() {
  install
  local bin
  bin=$(bindir)
  if running; then log "already running: $URL"; return; fi
  mkdir -p "$DIR"
  chown "$(owner)" "$DIR"
  chmod 700 "$DIR"
  if [ ! -s "$DIR/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$DIR/data" -U "$(owner)" -E UTF8 --locale=C --auth-local=trust \
      --auth-host=scram-sha-256 --no-sync >/dev/null
  fi
  if ! as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
      -o "-p $PORT -k $DIR -c listen_addresses=localhost" start >/dev/null; then
    log "the server did not start; its log, $DIR/server.log, ends:"; tail -n 5 "$DIR/server.log" >&2; exit 1
  fi
  if [ -z "$(sql "SELECT 1 FROM pg_roles WHERE rolname = 'rlsweep'")" ]; then
    # CREATEDB: a test makes a database of its own to see what a first use on an empty one does.
    sql "CREATE ROLE rlsweep LOGIN CREATEDB PASSWORD 'rlsweep'"
  fi
  if [ -z "$(sql "SELECT 1 FROM pg_database WHERE datname = 'rlsweep'")" ]; then
    sql "CREATE DATABASE rlsweep OWNER rlsweep"
  fi
  log "running: $URL"
}

stop() {
  if running; then as_owner "$(bindir)/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null; fi
  log "stopped"
}

status() {
  if running; then log "running: $URL"; else log "not running (start it with $0 start)"; exit 1; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
