#!/usr/bin/env bash
# loom.kv.transfer is what triggers the KV handoff (issue 18): a run whose
# module splits an llm.generate step (llm.prefill on wp, loom.kv.transfer,
# llm.decode on wd) runs it as two tasks, the prefill on wp and the decode
# on wd, which fetches the KV cache from wp (the worker-to-worker handoff,
# workers/README.md); the decode's reason names the module's kv.transfer
# pair; the answer equals the same step run whole on wd (greedy decoding).
# Real loomd, real loom-worker-cpu workers, the real CPU LLM engine on a
# small random model generated here (tests/llm/gen_gguf.py).
. "$(dirname "$(readlink -f "$0")")/lib.sh"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "skip: python3-numpy is not installed"; exit 77; }
"$PY" "$ROOT/tests/llm/gen_gguf.py" --arch llama --type Q8_0 --ctx 2048 -o "$TMP/chat.gguf" || fail "gen llama"
export LOOM_OBJECT_DIR="$TMP/objects"
cat >"$TMP/kv.yaml" <<'YAML'
version: 1
name: kv-split
resources:
  models:
    chat: {path: chat.gguf, arch: llama, layers: 2, hidden: 64, heads: 4, kv_heads: 2, vocab: 405, context: 2048, dtype: q8_0}
steps:
  ask: {op: llm.generate, model: chat, system: Be brief., prompt: "What is the capital of France? Answer in one word.", max_tokens: 12, temperature: 0}
outputs:
  answer: ${steps.ask.output}
YAML
# module SPLIT|WHOLE: the partitioned module, as loomd lowers such a plan
module() {
  "$PY" - "$1" <<'PY'
import sys
f = 'budget_ms = 0.000000e+00 : f64, pred_cost = 0.000000e+00 : f64, pred_ms = 0.000000e+00 : f64'
fa = 'loom.sla_ms = 0.000000e+00 : f64, loom.workflow = "kv-split"'
if sys.argv[1] == "split":
    print('''module {
  func.func @"kv-split@wp"(%%arg0: !loom.text) attributes {loom.device = "wp", %(fa)s} {
    %%0 = "loom.llm.prefill"(%%arg0) {%(f)s, model = "chat", node = "ask.prefill", step = "ask", target = "wp"} : (!loom.text) -> !loom.kv
    %%1 = "loom.kv.transfer"(%%0) {%(f)s, node = "ask.prefill", step = "ask", target = "wp", to = "wd"} : (!loom.kv) -> !loom.kv
    "loom.send"(%%1) {channel = "kv-split:ask/kv.transfer->wd", target = "wp", to = "wd"} : (!loom.kv) -> ()
    return
  }
  func.func @"kv-split@wd"(%%arg0: !loom.text) -> !loom.text attributes {loom.device = "wd", %(fa)s} {
    %%0 = "loom.recv"() {channel = "kv-split:ask/kv.transfer->wd", from = "wp", target = "wd"} : () -> !loom.kv
    %%1 = "loom.llm.decode"(%%0) {%(f)s, model = "chat", node = "ask.decode", step = "ask", target = "wd"} : (!loom.kv) -> !loom.text
    return %%1 : !loom.text
  }
}''' % {"f": f, "fa": fa})
else:
    print('''module {
  func.func @"kv-split@wd"(%%arg0: !loom.text) -> !loom.text attributes {loom.device = "wd", %(fa)s} {
    %%0 = "loom.llm.generate"(%%arg0) {%(f)s, decode = "ask.decode", model = "chat", prefill = "ask.prefill", step = "ask", target = "wd"} : (!loom.text) -> !loom.text
    return %%0 : !loom.text
  }
}''' % {"f": f, "fa": fa})
PY
}
start_loomd
start_worker wp --ops llm.generate,llm.prefill,llm.decode
start_worker wd --ops llm.generate,llm.prefill,llm.decode
run() { # NAME: runs kv.yaml from module NAME -> $TMP/NAME.json (status)
  module "$1" >"$TMP/$1.mlir"
  "$BIN/loom" run "$TMP/kv.yaml" --plan "$TMP/$1.mlir" --allow-sla-miss --json >"$TMP/$1.run.json" 2>"$TMP/$1.log" ||
    fail "$1 run failed: $(cat "$TMP/$1.log" "$TMP/$1.run.json")"
  "$BIN/loom" status "$(jget "$TMP/$1.run.json" 'd["run_id"]')" --json >"$TMP/$1.json" || fail "no status of $1"
}
run split
run whole
"$PY" - "$TMP/split.json" "$TMP/whole.json" "$TMP/wd.log" <<'PY' || fail "split: $(cat "$TMP/split.json")"
import json, sys
split, whole = (json.load(open(p)) for p in sys.argv[1:3])
assert split["state"] == "succeeded" and whole["state"] == "succeeded", (split.get("error"), whole.get("error"))
recs = {s["step"]: s for s in split["steps"] if s.get("worker")}
assert sorted((k, s["op"], s["worker"]) for k, s in recs.items()) == [
    ("ask", "llm.decode", "wd"), ("ask.prefill", "llm.prefill", "wp")], recs
assert "kv received" in open(sys.argv[3]).read(), "wd did not fetch the cache from wp"
assert "receives ask.prefill over kv-split:ask/kv.transfer->wd from wp" in recs["ask"]["reason"], recs["ask"]
assert "inf" not in recs["ask"]["reason"] and "inf" not in recs["ask.prefill"]["reason"], recs  # each part's own prediction
assert [(s["op"], s["worker"]) for s in whole["steps"] if s.get("worker")] == [("llm.generate", "wd")], whole["steps"]
a, b = split["outputs"]["answer"], whole["outputs"]["answer"]
assert isinstance(a, str) and a and a == b, (a, b)
print("split generate: prefill on wp, decode on wd over the kv.transfer pair; answer equals the whole step's: %r" % a)
PY
echo ok
