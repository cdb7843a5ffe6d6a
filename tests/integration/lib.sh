# lib.sh — helpers for integration tests: real loomd and loom-worker-cpu
# processes on free loopback ports, all killed on exit.
# Usage: . "$(dirname "$(readlink -f "$0")")/lib.sh"; start_loomd [flags]; start_worker [flags]
set -u
BUILD=${BUILD:-build}
BIN=$(cd "$BUILD/bin" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# the Node.js deploy/install-npm.sh installed where the system's is too old
NPM_NODE_BIN=${LOOM_NPM_DIR:-$ROOT/var/npm}/bin
[ -x "$NPM_NODE_BIN/node" ] && PATH="$NPM_NODE_BIN:$PATH"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/loom-it.XXXXXX")
PIDS=()
export LOOM_LOG_LEVEL=${LOOM_LOG_LEVEL:-info}

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }; done >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_loomd [extra flags] — sets CLIENT_EP, WORKER_EP, LOOMD_PID
start_loomd() {
  local cp wp
  cp=$(free_port); wp=$(free_port)
  CLIENT_EP="tcp://127.0.0.1:$cp"; WORKER_EP="tcp://127.0.0.1:$wp"
  export LOOM_ENDPOINT="$CLIENT_EP"
  rm -f "$TMP/ready"
  "$BIN/loomd" --client "$CLIENT_EP" --workers "$WORKER_EP" --ready-file "$TMP/ready" "$@" \
    >"$TMP/loomd.log" 2>&1 &
  LOOMD_PID=$!; PIDS+=("$LOOMD_PID")
  for _ in $(seq 100); do [ -f "$TMP/ready" ] && return 0; sleep 0.05; done
  fail "loomd did not start"
}

# start_worker NAME [extra flags] — sets WORKER_PID; waits until registered
start_worker() {
  local name=$1; shift
  (cd "$ROOT" && exec "$BIN/loom-worker-cpu" --endpoint "$WORKER_EP" --id "$name" "$@") \
    >"$TMP/$name.log" 2>&1 &
  WORKER_PID=$!; PIDS+=("$WORKER_PID")
  for _ in $(seq 100); do
    "$BIN/loom" workers --json 2>/dev/null | grep -q "\"id\": \"$name\"" && return 0
    sleep 0.05
  done
  fail "worker $name did not register"
}

# jq-free JSON field access through python3: jget FILE EXPR (EXPR over `d`)
jget() {
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps($2) if not isinstance($2,str) else $2)" "$1"
}

# alive PID — true while PID runs (zombies count as dead: in containers
# without an init that reaps, killed orphans linger as zombies).
alive() {
  local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "${s#Z}" = "$s" ]
}
