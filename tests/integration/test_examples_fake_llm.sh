#!/usr/bin/env bash
# The example workflows, unmodified, through real loomd and real workers,
# with a FAKE llm.generate (tests/integration/fake_llm_worker.c: scripted,
# deterministic answers; no models can be downloaded here). Real CPU
# workers run the tools (tool.exec of examples/tools/*.py) and, for the
# research agent, the compute kernel; the fake worker only answers LLM
# calls. (support-rag with generated GGUF models and the real LLM engine is
# tests/llm/test_llm_workflow.sh.)
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd
start_worker tools --ops tool.exec,echo,noop
# the fake LLM worker
"$BUILD/tests/fake-llm-worker" --endpoint "$WORKER_EP" --id fake-llm >"$TMP/fake-llm.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do "$BIN/loom" workers | grep -q fake-llm && break; sleep 0.05; done

# 1. ReAct agent: loop (think → act with when:) until the model says finish
(cd "$ROOT" && "$BIN/loom" run examples/react-agent.yaml --input "task=What is 600 * 24?" --json) \
  >"$TMP/react.json" 2>"$TMP/react.log" || fail "react-agent failed: $(cat "$TMP/react.log")"
python3 - "$TMP/react.json" <<'PY' || fail "react-agent outputs: $(cat "$TMP/react.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d
o = d["outputs"]
assert o["answer"] == "14400", o                      # calculator observation, then finish
assert o["report"]["answer"] == "14400", o
assert o["report"]["task"] == "What is 600 * 24?", o
s = {x["step"]: x for x in d["steps"]}
assert s["react"]["output"]["iterations"] == 2, s["react"]
assert s["react/act#1"]["state"] == "skipped", s     # when: false on the finishing iteration
PY

# 2. research fan-out: needs the compute kernel on a CPU worker
start_worker compute --ops compute,tool.exec
(cd "$ROOT" && "$BIN/loom" run examples/research-fanout.yaml --input "topic=LLM serving" --json) \
  >"$TMP/research.json" 2>"$TMP/research.log" || fail "research-fanout failed: $(cat "$TMP/research.log") $(cat "$TMP/research.json")"
python3 - "$TMP/research.json" <<'PY' || fail "research-fanout: $(cat "$TMP/research.log") $(cat "$TMP/research.json")"
import json, sys
d = json.load(open(sys.argv[1]))
s = {x["step"]: x for x in d["steps"]}
# everything up to the kernel: plan -> 4 searches (fan-out) -> 4 answers, in order
for k in ("plan", "search", "answer", "weigh"):
    assert s[k]["state"] == "succeeded", s[k]
qs = s["plan"]["output"]["questions"]
assert len(qs) == 4, qs
assert [h["question"] for h in s["search"]["output"]] == qs, s["search"]["output"]
assert [a["answer"] for a in s["answer"]["output"]] == ["From the passages: " + q for q in qs]
assert len(s["weigh"]["output"]) == 4, s["weigh"]
assert d["state"] == "succeeded", d
w = s["weights"]
assert w["state"] == "succeeded", w
y = w["output"]["y"]                                  # softmax of the flat confidence list
assert len(y) == 4 and abs(sum(y) - 1.0) < 1e-5, w
conf = s["weigh"]["output"]
import math
e = [math.exp(c) for c in conf]
assert all(abs(a - b / sum(e)) < 1e-5 for a, b in zip(y, e)), (y, conf)
assert d["outputs"]["answers"] == s["answer"]["output"]
assert s["summarise"]["state"] == "succeeded", s["summarise"]
print("research-fanout: succeeded")
PY
echo ok
