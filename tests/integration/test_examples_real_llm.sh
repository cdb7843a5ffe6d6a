#!/usr/bin/env bash
# The three example workflows, unmodified, on real loomd and real
# loom-worker-cpu workers running the real CPU LLM engine on small random
# models generated here (tests/llm/gen_gguf.py; no model can be downloaded).
# A random model's text is gibberish, so this asserts structure, step
# states and that the engine produced tokens, never text:
#  - support-rag succeeds end to end (embed, vector.search over an index
#    built by `loom index build`, tool.exec, both llm.generate steps);
#  - react-agent and research-fanout ask for JSON of a schema (schema:);
#    decoding is constrained to it (workers/cpu/llm_grammar.c), so even a
#    random model's answers are schema-valid JSON and both workflows run
#    end to end (the ReAct loop with when:, the fan-out, the softmax
#    kernel), RUNS times each (default 2; `make soak-llm` runs 20), every
#    JSON output schema-valid (loomd fails a format: json step whose
#    output does not parse, so a succeeded run means valid JSON).
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
RUNS=${RUNS:-2}
for i in $(seq "$RUNS"); do
  run_example react-agent --input "task=What is 600 * 24? (run $i)"
  mv "$TMP/react-agent.json" "$TMP/react-agent-$i.json"; mv "$TMP/react-agent.rc" "$TMP/react-agent-$i.rc"
  run_example research-fanout --input "topic=LLM serving, part $i"
  mv "$TMP/research-fanout.json" "$TMP/research-fanout-$i.json"; mv "$TMP/research-fanout.rc" "$TMP/research-fanout-$i.rc"
done
"$PY" - "$TMP" "$RUNS" <<'PY' || fail "unexpected results (see above)"
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

for i in range(1, int(sys.argv[2]) + 1):
    d, rc, s = load("react-agent-%d" % i)
    assert rc in (0, 4) and d["state"] == "succeeded", (i, rc, d.get("error"))  # 4: SLA missed on a loaded machine
    r = d["outputs"]["report"]  # echo outputs its value
    assert isinstance(d["outputs"]["answer"], str) and isinstance(r["last_thought"], str), d["outputs"]
    assert len(d["outputs"]["answer"]) <= 120 and len(r["last_thought"]) <= 200, d["outputs"]
    d, rc, s = load("research-fanout-%d" % i)
    assert rc in (0, 4) and d["state"] == "succeeded", (i, rc, d.get("error"))  # 4: SLA missed on a loaded machine
    o = d["outputs"]
    assert isinstance(o["questions"], list) and len(o["questions"]) == 4, o["questions"]
    assert all(isinstance(q, str) and len(q) <= 120 for q in o["questions"]), o["questions"]
    assert len(o["answers"]) == 4, o["answers"]
    for a in o["answers"]:
        assert set(a) == {"answer", "confidence"} and isinstance(a["answer"], str), a
        assert isinstance(a["confidence"], (int, float)) and 0 <= a["confidence"] <= 1, a
    assert isinstance(o["summary"], str) and o["summary"], o
print("examples on the real CPU LLM engine: support-rag, and react-agent and research-fanout %s times each with schema-valid JSON" % sys.argv[2])
PY
# the engine generated tokens for every LLM call (support-rag: 2; per run react >= 1, research 6)
n=$(cat "$TMP"/w1.log "$TMP"/w2.log | grep 'msg="generated"' | grep -c -v 'tokens=0 ')
[ "$n" -ge $((2 + 7 * RUNS)) ] || fail "expected >= $((2 + 7 * RUNS)) generations with tokens, got $n: $(grep -h generated "$TMP"/w*.log)"
kill -0 "$WORKER_PID" || fail "a worker died"
"$BIN/loom" workers >/dev/null || fail "loomd stopped serving"
echo ok
