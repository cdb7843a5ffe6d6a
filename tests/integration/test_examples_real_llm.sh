#!/usr/bin/env bash
# The three example workflows, unmodified, on real loomd and real
# loom-worker-cpu workers running the real CPU LLM engine on small random
# models generated here (tests/llm/gen_gguf.py; no model can be downloaded).
# A random model's text is gibberish, so this asserts structure, step
# states and that the engine produced tokens, never text:
#  - support-rag succeeds end to end (embed, vector.search over an index
#    built by `loom index build`, tool.exec, both llm.generate steps);
#  - react-agent and research-fanout ask the model for JSON (format: json);
#    the engine's text is not JSON, so their first LLM step fails with a
#    clear error naming the step, and nothing downstream of it runs.
# The paths behind those JSON answers (the ReAct loop with when:, the
# fan-out, the softmax kernel) are covered with scripted answers by
# test_examples_fake_llm.sh.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "skip: python3-numpy is not installed"; exit 77; }
"$PY" "$ROOT/tests/llm/gen_gguf.py" --arch llama --type Q8_0 --ctx 2048 -o "$TMP/chat.gguf" || fail "gen llama"
"$PY" "$ROOT/tests/llm/gen_gguf.py" --arch bert --type F16 -o "$TMP/embed.gguf" || fail "gen bert"
cat >"$TMP/kb.jsonl" <<'JSONL'
{"id": "KB-1", "text": "To export your data, open Settings and choose Export."}
{"id": "KB-2", "text": "Invoices use the VAT rate of the billing country."}
{"id": "KB-3", "text": "The API returns 500 when the report is too large; use pagination."}
JSONL
"$BIN/loom" index build "$TMP/kb.jsonl" --model "$TMP/embed.gguf" -o "$TMP/kb.index" >"$TMP/index.log" 2>&1 ||
  fail "index build: $(cat "$TMP/index.log")"
# every model resource of the examples -> a generated model
export LOOM_MODELS="minilm=$TMP/embed.gguf,qwen=$TMP/chat.gguf,qwen7b=$TMP/chat.gguf,llama8b=$TMP/chat.gguf"
export LOOM_INDEXES="kb=$TMP/kb.index"
start_loomd
start_worker w1
start_worker w2
run_example() { # NAME ARGS... -> $TMP/NAME.json, exit status in $TMP/NAME.rc
  local name=$1; shift
  (cd "$ROOT" && "$BIN/loom" run "examples/$name.yaml" "$@" --json) >"$TMP/$name.json" 2>"$TMP/$name.log"
  echo $? >"$TMP/$name.rc"
}
run_example support-rag --input "question=How do I export my data?" --input ticket_id=T-1002 --input top_k=2
run_example react-agent --input "task=What is 600 * 24?"
run_example research-fanout --input "topic=LLM serving"
"$PY" - "$TMP" <<'PY' || fail "unexpected results (see above)"
import json, os, sys
tmp = sys.argv[1]
def load(name):
    d = json.load(open(os.path.join(tmp, name + ".json")))
    rc = int(open(os.path.join(tmp, name + ".rc")).read())
    return d, rc, {s["step"]: s for s in d["steps"]}

d, rc, s = load("support-rag")
assert rc in (0, 4) and d["state"] == "succeeded", (rc, d)  # 4: late (SLA missed) on a loaded machine
for k in ("embed_question", "retrieve", "lookup_ticket", "classify", "answer"):
    assert s[k]["state"] == "succeeded", s[k]
o = d["outputs"]
assert isinstance(o["answer"], str) and o["answer"], o      # the engine produced tokens
assert isinstance(o["category"], str) and o["category"], o
assert [r["doc"]["id"][:3] for r in o["sources"]] == ["KB-", "KB-"], o["sources"]

not_json = "has format: json but the model's output"
d, rc, s = load("react-agent")
assert rc == 1 and d["state"] == "failed", (rc, d["state"])
think = s["react/think"] if "react/think" in s else s["react/think#0"]
assert think["state"] == "failed" and not_json in think["error"] and "'think'" in think["error"], think
assert all(v["state"] != "succeeded" for k, v in s.items() if k.startswith("react/act")), s
assert "report" not in s or s["report"]["state"] in ("pending", "skipped", "cancelled"), s.get("report")

d, rc, s = load("research-fanout")
assert rc == 1 and d["state"] == "failed", (rc, d["state"])
assert s["plan"]["state"] == "failed" and not_json in s["plan"]["error"] and "'plan'" in s["plan"]["error"], s["plan"]
for k in ("search", "answer", "weigh", "weights", "summarise"):
    assert k not in s or s[k]["state"] != "succeeded", s[k]
print("examples on the real CPU LLM engine: support-rag succeeded; react-agent, research-fanout failed at their format: json step as expected")
PY
# the engine generated tokens for every LLM call (support-rag: 2; react, plan: 1 each)
n=$(cat "$TMP"/w1.log "$TMP"/w2.log | grep 'msg="generated"' | grep -c -v 'tokens=0 ')
[ "$n" -ge 4 ] || fail "expected >= 4 generations with tokens, got $n: $(grep -h generated "$TMP"/w*.log)"
kill -0 "$WORKER_PID" || fail "a worker died"
"$BIN/loom" workers >/dev/null || fail "loomd stopped serving"
echo ok
