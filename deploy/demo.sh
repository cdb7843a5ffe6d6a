#!/usr/bin/env bash
# `make demo`: starts loomd and two CPU workers in the background (logs in
# var/), runs the support-triage workflow (deploy/demo/triage.yaml, tools
# from examples/tools/) with live per-step progress, prints its outputs and
# per-step timeline; then the RAG example (examples/support-rag.yaml) with
# models generated on the spot (tests/llm/gen_gguf.py: random weights, real
# vocabulary; nothing can be downloaded here) and an index built by `loom
# index build` from examples/data/support-kb.jsonl. Stops the daemons at the
# end (also on Ctrl-C or failure).
# loomd keeps its runs in a throwaway PostgreSQL under var/pg and serves the
# dashboard (URL printed); KEEP=1 leaves everything running afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
mkdir -p var
PIDS=()
stop() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "== KEEP=1: loomd, workers and PostgreSQL keep running (dashboard ${DASH:-none})."
    echo "   stop them with: kill ${PIDS[*]}; deploy/pg.sh stop var/pg"
    return
  fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${DB_URL:-}" ] && deploy/pg.sh stop var/pg >/dev/null 2>&1
}
trap stop EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export LOOM_ENDPOINT="tcp://127.0.0.1:$(port)"
WORKERS="tcp://127.0.0.1:$(port)"
# A throwaway PostgreSQL in var/pg (deploy/pg.sh) holds runs, tasks and the
# dashboard's views; without one the demo falls back to the in-memory store.
STORE_FLAGS=()
DB_URL=$(deploy/pg.sh start var/pg 2>var/pg.log) || DB_URL=""
HTTP="127.0.0.1:$(port)"
DASH="http://$HTTP/"
if [ -n "$DB_URL" ]; then STORE_FLAGS=(--db "$DB_URL"); else echo "demo: PostgreSQL did not start (var/pg.log); using the in-memory store"; fi
rm -f var/loomd.ready
"$BIN/loomd" --client "$LOOM_ENDPOINT" --workers "$WORKERS" --ready-file var/loomd.ready \
  "${STORE_FLAGS[@]}" --http "$HTTP" >var/loomd.log 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -f var/loomd.ready ] && break; sleep 0.05; done
[ -f var/loomd.ready ] || { echo "demo: loomd did not start, see var/loomd.log" >&2; exit 3; }
# The RAG example's models and index: generated small GGUF files (random
# weights, so the answer text is noise) and a vector index built from them.
PY=/usr/bin/python3
mkdir -p var/demo
RAG=0
if "$PY" -c 'import numpy' 2>/dev/null &&
   "$PY" tests/llm/gen_gguf.py --arch llama --type Q8_0 --ctx 2048 -o var/demo/chat.gguf >var/demo/gen.log 2>&1 &&
   "$PY" tests/llm/gen_gguf.py --arch bert --type F16 -o var/demo/embed.gguf >>var/demo/gen.log 2>&1 &&
   "$BIN/loom" index build examples/data/support-kb.jsonl --model var/demo/embed.gguf -o var/demo/kb.index >var/demo/index.log 2>&1; then
  RAG=1
  export LOOM_MODELS="minilm=var/demo/embed.gguf,qwen=var/demo/chat.gguf" LOOM_INDEXES="kb=var/demo/kb.index"
else
  echo "demo: could not generate the RAG example's models (var/demo/*.log); skipping that part"
fi
for w in 1 2; do
  "$BIN/loom-worker-cpu" --endpoint "$WORKERS" --id "demo-cpu-$w" >"var/worker-$w.log" 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 100); do
  [ "$("$BIN/loom" workers --json 2>/dev/null | grep -c '"id"')" = 2 ] && break
  sleep 0.1
done
echo "== dashboard: $DASH   (metrics: ${DASH}metrics; database: ${DB_URL:-none})"
echo "== loomd on $LOOM_ENDPOINT, workers (logs in var/):"
"$BIN/loom" workers
echo
echo "== loom run deploy/demo/triage.yaml --input ticket=T-1001"
"$BIN/loom" run deploy/demo/triage.yaml --input ticket=T-1001
rc=$?
# A missed SLA (exit 4: succeeded, but late, e.g. on a loaded machine) does
# not stop the tour; the final status is the worst of the two runs.
if { [ $rc -eq 0 ] || [ $rc -eq 4 ]; } && [ $RAG = 1 ]; then
  echo
  echo "== loom run examples/support-rag.yaml (generated models: the answer text is noise; point"
  echo "   resources.models at a real GGUF file for real answers, see README)"
  "$BIN/loom" run examples/support-rag.yaml --input "question=How do I export my data?" --input ticket_id=T-1002 --input top_k=2
  rag=$?
  [ $rag -eq 0 ] || rc=$rag
fi
if [ -n "$DB_URL" ]; then
  echo
  echo "== from PostgreSQL (view v_step_placement): where each step ran"
  psql "$DB_URL" -XqP pager=off -c "SELECT task_id, op, state, device_class, worker_id, actual_ms FROM v_step_placement ORDER BY started_at" 2>/dev/null
fi
echo
echo "== exit status $rc (0 succeeded, 1 failed, 4 SLA missed, 3 system error)"
exit $rc
