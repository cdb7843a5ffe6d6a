# pglib.sh — helpers for the loomd + PostgreSQL tests: sources the
# integration helpers (tests/integration/lib.sh: free ports, loomd, workers,
# cleanup) and adds a throwaway PostgreSQL (deploy/pg.sh) stopped on exit,
# loomd restarts on the same endpoints, and psql queries.
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../integration/lib.sh"
# its own directory: the server runs as `postgres`, which cannot enter $TMP
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/loom-pg.XXXXXX")
pg_cleanup() { "$ROOT/deploy/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; cleanup; }
trap pg_cleanup EXIT
DB_URL=$("$ROOT/deploy/pg.sh" start "$PGDIR") || { echo "skip: cannot start PostgreSQL"; exit 77; }

# q SQL — one value / rows (| separated) from the loom database
q() { psql "$DB_URL" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

# wait_for SECONDS SQL EXPECTED — polls until the query prints EXPECTED
wait_for() {
  local t=$1 sql=$2 want=$3 got=""
  for _ in $(seq $((t * 10))); do
    got=$(q "$sql" 2>/dev/null) && [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  fail "timed out waiting for [$sql] = [$want] (last: [$got])"
}

# restart_loomd [flags] — a new loomd on the same endpoints (workers reconnect)
restart_loomd() {
  rm -f "$TMP/ready"
  "$BIN/loomd" --client "$CLIENT_EP" --workers "$WORKER_EP" --ready-file "$TMP/ready" "$@" \
    >>"$TMP/loomd.log" 2>&1 &
  LOOMD_PID=$!; PIDS+=("$LOOMD_PID")
  for _ in $(seq 100); do [ -f "$TMP/ready" ] && return 0; sleep 0.05; done
  fail "loomd did not restart"
}

# kill_tree PID — kill -9 PID and every process it started (tools run in
# process groups of their own, so a group kill would miss them)
kill_tree() {
  local kids k
  kids=$(ps -o pid= --ppid "$1" 2>/dev/null)
  kill -STOP "$1" 2>/dev/null
  for k in $kids; do kill_tree "$k"; done
  kill -9 "$1" 2>/dev/null
}

# start_worker_bg NAME — a CPU worker; sets WORKER_PID; waits until registered
start_worker_bg() {
  local name=$1
  (cd "$ROOT" && exec "$BIN/loom-worker-cpu" --endpoint "$WORKER_EP" --id "$name") \
    >>"$TMP/$name.log" 2>&1 &
  WORKER_PID=$!; PIDS+=("$WORKER_PID")
  for _ in $(seq 100); do
    "$BIN/loom" workers --json 2>/dev/null | grep -q "\"id\": \"$name\"" && return 0
    sleep 0.05
  done
  fail "worker $name did not register"
}
