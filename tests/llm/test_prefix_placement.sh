#!/usr/bin/env bash
# Prefix-aware placement (issue 15, item 6) on real loomd and two real CPU
# workers with a generated model: the second turn of a conversation goes to
# the worker whose engine holds the KV of the first turn (its prompt and
# answer), although the plan alone would send it to the other, cheaper
# worker; the decision and its three prices are in the task's reason. With
# loomd --prefix-placement off the same turn goes where the plan says.
#   1. turn 1 on wa (the only worker then); wb (cheaper) joins.
#   2. turn 2 (messages: system, turn 1, its answer, a new question) runs on
#      wa, its reason says "prefix: worker wa holds ..." and "run there",
#      and wa's engine reused the prefix (a progress note of the step).
#   3. loomd restarted with --prefix-placement off: turn 2 runs on wb.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
HERE="$ROOT/tests/llm"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "skip: python3-numpy is not installed"; exit 77; }
"$PY" "$HERE/gen_gguf.py" --arch llama --type Q8_0 --ctx 2048 -o "$TMP/chat.gguf" || fail "gen llama"
SYS="You are a careful assistant of the Loom project. $(printf 'Answer briefly and precisely, citing the step you used. %.0s' $(seq 20))"

cat >"$TMP/turn1.yaml" <<YAML
version: 1
name: turn1
sla: {latency_ms: 120000}
resources:
  models:
    chat: {path: chat.gguf, arch: llama, layers: 2, hidden: 64, heads: 4, kv_heads: 2, vocab: 405, context: 2048, dtype: q8_0}
steps:
  t1:
    op: llm.generate
    model: chat
    max_tokens: 24
    messages:
      - {role: system, content: "$SYS"}
      - {role: user, content: "Where does the conversation's prefix live? Explain in one sentence."}
outputs:
  answer: \${steps.t1.output}
YAML
cat >"$TMP/turn2.yaml" <<YAML
version: 1
name: turn2
sla: {latency_ms: 120000}
inputs:
  answer: string
resources:
  models:
    chat: {path: chat.gguf, arch: llama, layers: 2, hidden: 64, heads: 4, kv_heads: 2, vocab: 405, context: 2048, dtype: q8_0}
steps:
  t2:
    op: llm.generate
    model: chat
    max_tokens: 8
    messages:
      - {role: system, content: "$SYS"}
      - {role: user, content: "Where does the conversation's prefix live? Explain in one sentence."}
      - {role: assistant, content: "\${inputs.answer}"}
      - {role: user, content: "And the next turn?"}
outputs:
  answer: \${steps.t2.output}
YAML

step_of() { # FILE -> "worker|reason" of its only step
  "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d.get("error")
s = d["steps"][0]
print(s["worker"] + "|" + s.get("reason", ""))' "$1"
}

start_loomd --heartbeat-ms 200
start_worker wa --ops llm.generate --price 5
"$BIN/loom" run "$TMP/turn1.yaml" --json >"$TMP/t1.json" 2>"$TMP/t1.log" || fail "turn 1: $(cat "$TMP/t1.log")"
ANSWER=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["outputs"]["answer"])' "$TMP/t1.json")
[ "$(step_of "$TMP/t1.json" | cut -d'|' -f1)" = wa ] || fail "turn 1 did not run on wa"
start_worker wb --ops llm.generate --price 0.1
# loomd learnt wa's new prefix from turn 1's result; a few heartbeats
# later it knows it from wa's own report (which replaces what it learnt),
# so turn 2 depends on the worker's report (not a synchronisation sleep)
sleep 1

"$BIN/loom" run "$TMP/turn2.yaml" --input answer="$ANSWER" --json >"$TMP/t2.json" 2>"$TMP/t2.log" ||
  fail "turn 2: $(cat "$TMP/t2.log")"
got=$(step_of "$TMP/t2.json")
echo "turn 2: $got"
[ "${got%%|*}" = wa ] || fail "turn 2 went to ${got%%|*}, not to wa that holds the prefix"
case "$got" in *"prefix: worker wa holds the KV of"*"run there"*"recompute on wb"*"chose: run where the prefix lives on wa"*) ;;
  *) fail "the reason does not give the prefix decision: $got" ;; esac
RUN2=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/t2.json")
"$BIN/loom" watch "$RUN2" 2>&1 | grep -q "reused the KV of" || fail "wa's engine did not reuse the prefix"
echo "ok: turn 2 ran where its prefix lives, and reused it"

# the same without prefix-aware placement: the plan's cheaper worker
kill "$LOOMD_PID"; wait "$LOOMD_PID" 2>/dev/null
OLD_CLIENT=$CLIENT_EP OLD_WORKERS=$WORKER_EP
start_loomd --client "$OLD_CLIENT" --workers "$OLD_WORKERS" --prefix-placement off
export LOOM_ENDPOINT=$OLD_CLIENT
for _ in $(seq 100); do
  [ "$("$BIN/loom" workers --json 2>/dev/null | grep -c '"id"')" = 2 ] && break; sleep 0.1
done
"$BIN/loom" run "$TMP/turn2.yaml" --input answer="$ANSWER" --json >"$TMP/t3.json" 2>"$TMP/t3.log" ||
  fail "turn 2 without prefix placement: $(cat "$TMP/t3.log")"
got=$(step_of "$TMP/t3.json")
echo "turn 2, --prefix-placement off: $got"
[ "${got%%|*}" = wb ] || fail "without prefix placement turn 2 went to ${got%%|*}, not the plan's wb"
echo ok
