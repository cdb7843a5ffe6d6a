#!/usr/bin/env bash
# loomd's /metrics after real runs (in-memory store): per-workflow run
# latency histograms and SLA outcomes, per-worker busy/queued/done/failed
# and up, LLM tokens per worker (a generated GGUF model, when numpy is
# there); `promtool check metrics` accepts the page; the alert and
# recording rules pass `promtool check rules` and their unit tests
# (`promtool test rules`), and every query of the Grafana dashboard over
# Prometheus parses (checked as recording rules).
. "$(dirname "$(readlink -f "$0")")/lib.sh"
command -v promtool >/dev/null || { echo "skip: promtool not installed"; exit 77; }
PY=/usr/bin/python3
DEP="$ROOT/deploy/prometheus"
(cd "$DEP" && promtool check rules loom.rules.yml && promtool test rules loom.rules.test.yml \
  && promtool check config prometheus.yml) >"$TMP/promtool.txt" 2>&1 || fail "rules: $(cat "$TMP/promtool.txt")"
"$PY" - "$ROOT/deploy/grafana/loom-prometheus.json" >"$TMP/grafana.rules.yml" <<'PY' || fail "grafana json"
import json, sys
d = json.load(open(sys.argv[1]))
print("groups:\n  - name: grafana-queries\n    rules:")
for p in d["panels"]:
    for t in p["targets"]:
        print("      - record: grafana:q%d_%s" % (p["id"], t["refId"]))
        print("        expr: %s" % json.dumps(t["expr"]))
PY
promtool check rules "$TMP/grafana.rules.yml" >"$TMP/gq.txt" 2>&1 || fail "a Grafana query does not parse: $(cat "$TMP/gq.txt")"

HAVE_LLM=0
if "$PY" -c 'import numpy' 2>/dev/null; then
  "$PY" "$ROOT/tests/llm/gen_gguf.py" --arch llama --type Q8_0 --ctx 2048 -o "$TMP/chat.gguf" >/dev/null && HAVE_LLM=1
fi
HP=$(free_port)
start_loomd --http "127.0.0.1:$HP"
start_worker w1
start_worker w2
WF="$ROOT/tests/integration/workflows"
"$BIN/loom" run "$WF/stitch.yaml" --input who=m --quiet >/dev/null 2>&1 || fail "stitch run"
"$BIN/loom" run "$WF/stitch.yaml" --input who=m --quiet >/dev/null 2>&1 || fail "stitch run 2"
"$BIN/loom" run "$WF/retries.yaml" --input dir="$TMP" --quiet >/dev/null 2>&1 # fails or not: counted either way
if [ $HAVE_LLM = 1 ]; then
  { printf 'version: 1\nname: llm-m\n'; "$BIN/loom" llm info "$TMP/chat.gguf" | sed -n '/^resources:/,$p'
    printf 'steps:\n  a: {op: llm.generate, model: chat, prompt: "Hi", max_tokens: 8}\noutputs: {t: "${steps.a.output}"}\n'; } >"$TMP/llm.yaml"
  "$BIN/loom" run "$TMP/llm.yaml" --quiet >"$TMP/llm.out" 2>&1 || fail "llm run: $(cat "$TMP/llm.out")"
fi
sleep 1.2 # workers' counters reach /metrics on loomd's next metrics sync
curl -s "http://127.0.0.1:$HP/metrics" >"$TMP/metrics.txt" || fail "no /metrics"
cp "$TMP/metrics.txt" "$ROOT/$BUILD/test-logs/integ_metrics.metrics.txt" 2>/dev/null || true
promtool check metrics <"$TMP/metrics.txt" >"$TMP/pc.txt" 2>&1 || fail "promtool check metrics: $(cat "$TMP/pc.txt")"
m() { grep -E "$1" "$TMP/metrics.txt" >/dev/null || fail "no line matching $1"; }
m '^loom_run_duration_seconds_count\{workflow="stitch"\} 2$'
m '^loom_run_duration_seconds_bucket\{workflow="stitch",le="\+Inf"\} 2$'
m '^loom_workflow_runs_total\{workflow="stitch",state="succeeded"\} 2$'
m '^loom_sla_runs_total\{workflow="stitch",outcome="met"\} 2$'
m '^loom_sla_runs_total\{workflow="stitch",outcome="missed"\} 0$'
m '^loom_worker_up\{worker="w1",device_class="cpu"\} 1$'
m '^loom_worker_slots\{worker="w2",device_class="cpu"\} [1-9]'
m '^loom_worker_busy_slots\{worker="w1",device_class="cpu"\} 0$'
m '^loom_worker_queued_tasks\{worker="w1",device_class="cpu"\} 0$'
done_total=$(awk '/^loom_worker_tasks_done_total\{/ {s += $2} END {print s+0}' "$TMP/metrics.txt")
[ "$done_total" -ge 12 ] || fail "worker tasks done: $done_total (2 stitch runs have 12 tasks)"
if [ $HAVE_LLM = 1 ]; then
  gen=$(awk '/^loom_llm_tokens_generated_total\{/ {s += $2} END {print s+0}' "$TMP/metrics.txt")
  [ "$gen" -ge 1 ] || fail "no LLM tokens counted: $(grep llm_ "$TMP/metrics.txt")"
  m '^loom_workflow_runs_total\{workflow="llm-m",state="succeeded"\} 1$'
else
  echo "note: python3-numpy missing; LLM token metrics not exercised"
fi
# a lost worker shows as down (the LoomWorkerLost alert's input)
kill -9 "$WORKER_PID"
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$HP/metrics" | grep -q '^loom_worker_up{worker="w2",device_class="cpu"} 0$' && break
  sleep 0.1
done
curl -s "http://127.0.0.1:$HP/metrics" | grep -q '^loom_worker_up{worker="w2",device_class="cpu"} 0$' || fail "lost worker not down"
echo ok
