#!/usr/bin/env bash
# make bench-dispatch-pg: the dispatch benchmark (bench/dispatch.c, noop
# tasks, loomd + 2 CPU workers on loopback) run twice in the same session:
# loomd with the in-memory store, then loomd --db on a throwaway
# PostgreSQL 15 (deploy/pg.sh), and the ratio of their throughputs (the
# target is >= 0.5: the database write path must not slow dispatch).
# The many-runs shapes submit each wave from CLIENTS threads (default 8),
# each with its own client, in both runs: many concurrent clients are what
# lets loomd's database writer commit their submits together (group
# commit); a single blocking client would pay one commit per Submit in
# series, which no deployment with many users does.
# Environment: N (independent tasks, default 20000), M (chain length,
# default 2000), CLIENTS (default 8).
set -u
BUILD=${BUILD:-build}
N=${N:-20000}; M=${M:-2000}; CLIENTS=${CLIENTS:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
PGDIR=$(mktemp -d /tmp/loom-bench-pg.XXXXXX)
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait "${PIDS[@]}" 2>/dev/null; PIDS=(); }
trap 'stop_all; "$ROOT/deploy/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$TMP" "$PGDIR"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DB=$("$ROOT/deploy/pg.sh" start "$PGDIR") || { echo "bench-dispatch-pg: cannot start PostgreSQL" >&2; exit 1; }

# run_one NAME [loomd flags] — loomd + 2 workers, the benchmark, results in $TMP/NAME.out
run_one() {
  local name=$1; shift
  local cep="tcp://127.0.0.1:$(port)" wep="tcp://127.0.0.1:$(port)"
  rm -f "$TMP/ready"
  "$BUILD/bin/loomd" --client "$cep" --workers "$wep" --log-level warn --ready-file "$TMP/ready" "$@" \
    >"$TMP/loomd-$name.log" 2>&1 &
  local loomd=$!; PIDS+=($loomd)
  for _ in $(seq 200); do [ -f "$TMP/ready" ] && break; sleep 0.05; done
  for w in 1 2; do
    "$BUILD/bin/loom-worker-cpu" --endpoint "$wep" --id "bench-w$w" --log-level warn >"$TMP/w$w-$name.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 100); do
    [ "$(LOOM_ENDPOINT=$cep "$BUILD/bin/loom" workers --json 2>/dev/null | grep -c '"id"')" = 2 ] && break
    sleep 0.05
  done
  echo "loomd, $name store:"
  "$BUILD/bin/bench-dispatch" "$cep" "$loomd" "$N" "$M" 0 "$CLIENTS" | tee "$TMP/$name.out" | grep -v '^RESULT'
  stop_all
}
echo "bench-dispatch-pg: $(nproc) cores, noop tasks, N=$N independent, M=$M chained, $CLIENTS clients for many runs"
# both with loomd's defaults, worker-side chaining included (orchestrator/
# README.md, Chains): the ratio is the store's cost alone
run_one memory
run_one postgresql --db "$DB"
rows=$(psql "$DB" -XAtqc "SELECT (SELECT count(*) FROM runs) || ' runs, ' || (SELECT count(*) FROM tasks) || ' task rows, ' || (SELECT count(*) FROM events) || ' events'")
echo "rows written by the PostgreSQL run: $rows"
get() { sed -n "s/^RESULT $2=//p" "$TMP/$1.out" | head -1; }
echo "ratio (postgresql / memory, tasks per second; target >= 0.50):"
for k in ind_one ind_many chain_one chain_many; do
  m=$(get memory ${k}_rate); p=$(get postgresql ${k}_rate)
  [ -n "$m" ] && [ -n "$p" ] && awk -v k=$k -v m=$m -v p=$p 'BEGIN{printf "  %-12s %10.0f vs %10.0f   %5.2f\n", k, p, m, p/m}'
done
