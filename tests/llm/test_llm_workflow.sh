#!/usr/bin/env bash
# examples/support-rag.yaml end to end on real loomd + loom-worker-cpu with
# generated models: its embed step (bert), vector.search over an index built
# by `loom index build`, tool.exec, and both llm.generate steps (llama) run
# on the CPU worker; the classify answer equals `loom llm generate` on the
# same chat-formatted prompt. A bad model path fails the task, not the worker;
# a schema that cannot fit max_tokens fails the step at once with the reason.
# (the prefill -> decode split through loomd is tested in
# llm_split_workflow; the split on its own in
# llm_reference.)
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
HERE="$ROOT/tests/llm"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "skip: python3-numpy is not installed"; exit 77; }
"$PY" "$HERE/gen_gguf.py" --arch llama --type Q8_0 --ctx 2048 -o "$TMP/chat.gguf" || fail "gen llama"
"$PY" "$HERE/gen_gguf.py" --arch bert --type F16 -o "$TMP/embed.gguf" || fail "gen bert"
cat >"$TMP/kb.jsonl" <<'JSONL'
{"id": "KB-1", "text": "To export your data, open Settings and choose Export."}
{"id": "KB-2", "text": "Invoices use the VAT rate of the billing country."}
{"id": "KB-3", "text": "The API returns 500 when the report is too large; use pagination."}
{"id": "KB-4", "text": "Reset your password from the login page."}
JSONL
"$BIN/loom" index build "$TMP/kb.jsonl" --model "$TMP/embed.gguf" -o "$TMP/kb.index" >"$TMP/index.log" 2>&1 ||
  fail "index build: $(cat "$TMP/index.log")"
export LOOM_MODELS="minilm=$TMP/embed.gguf,qwen=$TMP/chat.gguf"
export LOOM_INDEXES="kb=$TMP/kb.index"
start_loomd
start_worker w1
start_worker w2
# tool.exec runs in the workflow's directory and the example names its tool
# as examples/tools/...: run an unmodified copy from a directory where that
# path (and tools/...) resolves.
mkdir -p "$TMP/wf" && cp "$ROOT/examples/support-rag.yaml" "$TMP/wf/"
ln -s "$ROOT/examples" "$TMP/wf/examples"; ln -s "$ROOT/examples/tools" "$TMP/wf/tools"
Q="How do I export my data?"
# Exit 4 = succeeded but missed the 2.5 s SLA (a loaded machine): still a run.
"$BIN/loom" run "$TMP/wf/support-rag.yaml" --input "question=$Q" --input ticket_id=T-1002 --input top_k=2 \
  --json >"$TMP/out.json" 2>"$TMP/run.log"
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 4 ] || fail "run failed (exit $rc): $(cat "$TMP/run.log") $(cat "$TMP/out.json")"
# The same classify prompt through `loom llm` (same code, same model, greedy).
P=$("$PY" -c 'import sys; print("<|system|>\nClassify the customer'"'"'s question. Answer with one word - billing, bug or howto.</s>\n<|user|>\n" + sys.argv[1] + "</s>\n<|assistant|>\n", end="x")' "$Q")
"$BIN/loom" llm generate "$TMP/chat.gguf" -n 4 --json -p "${P%x}" \
  >"$TMP/classify.json" || fail "loom llm generate failed"
"$PY" - "$TMP/out.json" "$TMP/classify.json" <<'PY' || fail "unexpected outputs: $(cat "$TMP/out.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d["state"]
o = d["outputs"]
steps = {s["step"]: s for s in d["steps"]}
for s in ("embed_question", "retrieve", "classify", "answer"):
    assert steps[s]["state"] == "succeeded", (s, steps[s])
src = o["sources"]
assert isinstance(src, list) and len(src) == 2, src
assert all(r["doc"]["id"].startswith("KB-") for r in src), src
assert src[0]["score"] >= src[1]["score"], src
assert isinstance(o["answer"], str) and isinstance(o["category"], str), o
want = json.load(open(sys.argv[2]))["text"]
assert o["category"] == want, (o["category"], want)
print("ok: category %r, sources %s" % (o["category"], [r["doc"]["id"] for r in src]))
PY
# messages: [system, user] is the same conversation as system + prompt; the
# model path is relative to the workflow file.
cat >"$TMP/msgs.yaml" <<YAML
version: 1
name: msgs
sla: {latency_ms: 20000}
resources:
  models:
    chat: {path: chat.gguf, arch: llama, layers: 2, hidden: 64, heads: 4, kv_heads: 2, vocab: 405, context: 2048, dtype: q8_0}
steps:
  a:
    op: llm.generate
    model: chat
    system: Be brief.
    prompt: What is the capital of France?
    max_tokens: 12
  b:
    op: llm.generate
    model: chat
    messages:
      - {role: system, content: Be brief.}
      - {role: user, content: What is the capital of France?}
    max_tokens: 12
outputs:
  a: \${steps.a.output}
  b: \${steps.b.output}
YAML
"$BIN/loom" run "$TMP/msgs.yaml" --json >"$TMP/msgs.json" 2>"$TMP/msgs.log" || fail "messages run: $(cat "$TMP/msgs.log" "$TMP/msgs.json")"
"$PY" - "$TMP/msgs.json" <<'PY' || fail "messages != system+prompt: $(cat "$TMP/msgs.json")"
import json, sys
o = json.load(open(sys.argv[1]))["outputs"]
assert o["a"] == o["b"] and o["a"], o
print("ok: messages == system + prompt")
PY
# A missing model fails the task with a clear message; the worker stays up.
cat >"$TMP/bad.yaml" <<YAML
version: 1
name: bad-model
sla: {latency_ms: 10000}
steps:
  gen:
    op: llm.generate
    model: $TMP/missing.gguf
    prompt: hi
outputs:
  text: \${steps.gen.output}
YAML
if "$BIN/loom" run "$TMP/bad.yaml" --json >"$TMP/bad.json" 2>&1; then fail "run with a missing model succeeded"; fi
grep -q "missing.gguf" "$TMP/bad.json" || fail "no clear error for the missing model: $(cat "$TMP/bad.json")"
kill -0 "$WORKER_PID" || fail "worker died on a bad task"
# A schema whose shortest value does not fit max_tokens fails the step with
# the reason (never text that is not JSON), without retries.
cat >"$TMP/tight.yaml" <<YAML
version: 1
name: tight-json
sla: {latency_ms: 20000}
resources:
  models:
    chat: {path: chat.gguf}
steps:
  gen:
    op: llm.generate
    model: chat
    prompt: hi
    max_tokens: 5
    retries: 2
    schema: {type: object, properties: {answer: {type: string}}, required: [answer]}
outputs:
  text: \${steps.gen.output}
YAML
if "$BIN/loom" run "$TMP/tight.yaml" --json >"$TMP/tight.json" 2>&1; then fail "a 5-token budget for the schema succeeded"; fi
"$PY" - "$TMP/tight.json" <<'PY' || fail "no clear, unretried error for the budget: $(cat "$TMP/tight.json")"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["steps"][0]
assert d["state"] == "failed" and s["state"] == "failed", d
# {"answer":""} is 13 characters
assert "5 tokens left, but the shortest JSON value of the schema needs 13 (max_tokens 5)" in s["error"], s
assert s["attempt"] == 1, s   # permanent: retries: 2 not used
PY
echo ok
