#!/usr/bin/env bash
# pg.sh — a throwaway PostgreSQL 15 cluster for tests and `make demo`.
#
#   deploy/pg.sh start  DIR   initdb (first time) + start on a free loopback
#                             port; prints the connection URL on stdout
#   deploy/pg.sh stop   DIR   fast shutdown (no-op when not running)
#   deploy/pg.sh status DIR   exit 0 when running, 3 when not
#   deploy/pg.sh url    DIR   prints the URL of a running cluster
#   deploy/pg.sh psql   DIR [psql args...]   psql on the cluster's database
#
# The server refuses to run as root, so when run as root the cluster belongs
# to the `postgres` user (DIR is chown'ed to it). Authentication is `trust`
# on loopback and the socket in DIR only: this is for throwaway clusters.
# The database is `loom`; the URL is postgresql://postgres@127.0.0.1:PORT/loom.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
case "$cmd" in
  -h|--help|help) usage; exit 0 ;;
  start|stop|status|url|psql) ;;
  *) echo "pg.sh: unknown command '${cmd}'" >&2; usage >&2; exit 2 ;;
esac
[ $# -ge 2 ] || { echo "pg.sh: $cmd needs a cluster directory" >&2; exit 2; }
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
shift 2
DATA="$DIR/data"

# Runs a command as the cluster owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_of() { sed -n 's/^port = \([0-9]*\).*/\1/p' "$DATA/postgresql.auto.conf" 2>/dev/null | tail -1; }

url() { echo "postgresql://postgres@127.0.0.1:$(port_of)/loom"; }

running() { [ -d "$DATA" ] && as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

case "$cmd" in
  start)
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DIR"; fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
      as_owner "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
        { echo "pg.sh: initdb failed, see $DIR/initdb.log" >&2; exit 1; }
    fi
    if running; then url; exit 0; fi
    # A port chosen now may be taken by the time the server binds it: retry.
    # A restart keeps the previous port when it is still free, so clients
    # (loomd) reconnect to the same URL after `stop` + `start`.
    prev=$(port_of || true)
    for attempt in 1 2 3 4 5; do
      if [ "$attempt" -eq 1 ] && [ -n "$prev" ]; then port=$prev; else port=$(free_port); fi
      as_owner tee "$DATA/postgresql.auto.conf" >/dev/null <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 60
shared_buffers = '32MB'
logging_collector = off
EOF
      if as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 30 start >/dev/null 2>&1; then
        break
      fi
      [ "$attempt" -eq 5 ] && { echo "pg.sh: server did not start, see $DIR/server.log" >&2; tail -5 "$DIR/server.log" >&2; exit 1; }
    done
    if ! as_owner "$PGBIN/psql" -h "$DIR" -p "$port" -U postgres -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname='loom'" | grep -q 1; then
      as_owner "$PGBIN/createdb" -h "$DIR" -p "$port" -U postgres loom
    fi
    url
    ;;
  stop)
    if running; then as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi
    ;;
  status)
    if running; then echo "running $(url)"; else echo "stopped"; exit 3; fi
    ;;
  url)
    running || { echo "pg.sh: no cluster running in $DIR" >&2; exit 3; }
    url
    ;;
  psql)
    running || { echo "pg.sh: no cluster running in $DIR" >&2; exit 3; }
    exec "$PGBIN/psql" "$(url)" -v ON_ERROR_STOP=1 "$@"
    ;;
esac
