#!/usr/bin/env bash
# llm.prefill -> llm.decode split inside a workflow on real loomd + two real
# loom-worker-cpu workers: --ops makes prefill run on wp and decode on wd, so
# the KV cache goes from wp to wd (here inline: see below). The
# decoded text (greedy) equals an unsplit llm.generate of the same prompt.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
HERE="$ROOT/tests/llm"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "skip: python3-numpy is not installed"; exit 77; }
"$PY" "$HERE/gen_gguf.py" --arch llama --type Q8_0 --ctx 2048 -o "$TMP/chat.gguf" || fail "gen llama"
# No object store can start here (its directory cannot be made), so the
# prefill worker falls back to sending the cache inline through loomd, the
# way it travelled before issue 15 (by reference: test_kv_handoff.sh).
export LOOM_OBJECT_DIR=/proc/loom-no-object-store
start_loomd
start_worker wp --ops llm.prefill,echo
start_worker wd --ops llm.decode
start_worker wg --ops llm.generate
cat >"$TMP/split.yaml" <<YAML
version: 1
name: split
sla: {latency_ms: 30000}
resources:
  models:
    chat: {path: chat.gguf, arch: llama, layers: 2, hidden: 64, heads: 4, kv_heads: 2, vocab: 405, context: 2048, dtype: q8_0}
steps:
  pre:
    op: llm.prefill
    model: chat
    system: Be brief.
    prompt: What is the capital of France?
  dec:
    op: llm.decode
    model: chat
    prefill: pre
    max_tokens: 16
  whole:
    op: llm.generate
    model: chat
    system: Be brief.
    prompt: What is the capital of France?
    max_tokens: 16
outputs:
  split: \${steps.dec.output}
  whole: \${steps.whole.output}
YAML
"$BIN/loom" run "$TMP/split.yaml" --json >"$TMP/out.json" 2>"$TMP/run.log" ||
  fail "split run failed: $(cat "$TMP/run.log" "$TMP/out.json")"
"$PY" - "$TMP/out.json" <<'PY' || fail "unexpected split result: $(cat "$TMP/out.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d["state"]
s = {x["step"]: x for x in d["steps"]}
assert s["pre"]["worker"] == "wp", s["pre"]
assert s["dec"]["worker"] == "wd", s["dec"]
assert s["whole"]["worker"] == "wg", s["whole"]
o = d["outputs"]
assert isinstance(o["split"], str) and o["split"], o
assert o["split"] == o["whole"], o
print("ok: split on wp->wd == generate on wg: %r" % o["split"])
PY
grep -q "cannot keep the KV cache here; sending it inline" "$TMP/wp.log" || fail "wp did not fall back to inline"
# loom workers --json lists the model each worker loaded (the next
# heartbeat carries it: poll up to 5 s) and its free memory; the table too.
NAME=$("$BIN/loom" llm info "$TMP/chat.gguf" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["name"])') ||
  fail "loom llm info failed"
for _ in $(seq 100); do
  "$BIN/loom" workers --json >"$TMP/workers.json" || fail "loom workers failed"
  "$PY" - "$TMP/workers.json" "$NAME" <<'PY' && break
import json, sys
ws = {w["id"]: w for w in json.load(open(sys.argv[1]))}
sys.exit(0 if all(sys.argv[2] in ws[w]["models"] for w in ("wp", "wd", "wg")) else 1)
PY
  sleep 0.05
done
"$PY" - "$TMP/workers.json" "$NAME" <<'PY' || fail "models not advertised: $(cat "$TMP/workers.json")"
import json, sys
ws = {w["id"]: w for w in json.load(open(sys.argv[1]))}
for w in ("wp", "wd", "wg"):
    assert ws[w]["models"] == [sys.argv[2]], ws[w]
    assert 0 < ws[w]["free_memory_bytes"] <= ws[w]["memory_bytes"], ws[w]
print("ok: every worker advertises %s" % sys.argv[2])
PY
"$BIN/loom" workers | grep "^wd " | grep -q -- "$NAME" || fail "loom workers table lacks the model: $("$BIN/loom" workers)"
# A decode step whose prefill step is not llm.prefill fails that task with
# a clear error; loomd and the workers stay up.
cat >"$TMP/bad.yaml" <<YAML
version: 1
name: bad-split
sla: {latency_ms: 10000}
resources:
  models:
    chat: {path: chat.gguf, arch: llama, layers: 2, hidden: 64, heads: 4, kv_heads: 2, vocab: 405, context: 2048, dtype: q8_0}
steps:
  notkv:
    op: echo
    value: just a string
  dec:
    op: llm.decode
    model: chat
    prefill: notkv
outputs:
  text: \${steps.dec.output}
YAML
if "$BIN/loom" run "$TMP/bad.yaml" --json >"$TMP/bad.json" 2>&1; then fail "decode of a non-KV step succeeded"; fi
grep -qE "KV cache|llm.prefill.s output" "$TMP/bad.json" || fail "no clear error for a non-KV prefill step: $(cat "$TMP/bad.json")"
kill -0 "$LOOMD_PID" || fail "loomd died"
"$BIN/loom" workers --json | grep -q '"id": "wd"' || fail "worker wd gone"
echo ok
