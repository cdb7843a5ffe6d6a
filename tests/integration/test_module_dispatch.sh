#!/usr/bin/env bash
# The partitioned module is what runs (issue 18): the three examples
# (support-rag, react-agent, research-fanout), unmodified, on real loomd and
# real workers whose op lists differ (so their steps spread over devices and
# data crosses between them), each checked against its own module
# (tests/integration/module_dispatch.py): every task ran on the device its
# op's function names, every op ran (unless its `when` was false), and each
# input from another device came over the send/recv pair the module names
# for it, no pair left unused and none outside the module. Then the
# research agent runs from an edited module (the softmax kernel's op moved
# to the other kernel worker) and runs as edited.
# LLM steps are answered by the FAKE llm.generate worker
# (tests/integration/fake_llm_worker.c: no instruction-following model can
# be downloaded here); embed and vector.search run on the real engine with
# a generated model (tests/llm/gen_gguf.py) and an index built by
# `loom index build`.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
PY=/usr/bin/python3
CHECK="$ROOT/tests/integration/module_dispatch.py"
"$PY" -c 'import numpy' 2>/dev/null || { echo "skip: python3-numpy is not installed"; exit 77; }
"$PY" "$ROOT/tests/llm/gen_gguf.py" --arch bert --type F16 -o "$TMP/embed.gguf" || fail "gen bert"
cat >"$TMP/kb.jsonl" <<'JSONL'
{"id": "KB-1", "text": "To export your data, open Settings and choose Export."}
{"id": "KB-2", "text": "Invoices use the VAT rate of the billing country."}
JSONL
"$BIN/loom" index build "$TMP/kb.jsonl" --model "$TMP/embed.gguf" -o "$TMP/kb.index" >"$TMP/index.log" 2>&1 ||
  fail "index build: $(cat "$TMP/index.log")"
export LOOM_MODELS="minilm=$TMP/embed.gguf" LOOM_INDEXES="kb=$TMP/kb.index"
start_loomd
start_worker w-embed --ops embed,vector.search
start_worker w-tools --ops tool.exec,tool.http,echo,noop
start_worker w-k1 --ops compute
start_worker w-k2 --ops compute
"$BUILD/tests/fake-llm-worker" --endpoint "$WORKER_EP" --id w-llm >"$TMP/w-llm.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do "$BIN/loom" workers | grep -q w-llm && break; sleep 0.05; done

# run NAME [loom run args...]: the run's status -> $TMP/NAME.json, its module -> $TMP/NAME.mlir
run() {
  local name=$1 file=$2; shift 2
  (cd "$ROOT" && "$BIN/loom" run "$file" --allow-sla-miss --json "$@") >"$TMP/$name.run.json" 2>"$TMP/$name.log" ||
    fail "$name failed: $(cat "$TMP/$name.log") $(cat "$TMP/$name.run.json")"
  local id; id=$(jget "$TMP/$name.run.json" 'd["run_id"]')
  "$BIN/loom" status "$id" --json >"$TMP/$name.json" || fail "$name: no status"
  "$BIN/loom" status "$id" --mlir >"$TMP/$name.mlir" || fail "$name: no module stored"
}
check() { # NAME MODULE
  "$PY" "$CHECK" "$TMP/$1.json" "$2" || fail "$1 did not run as its module says (module: $(cat "$2"))"
}

run rag examples/support-rag.yaml --input "question=How do I export my data?" --input ticket_id=T-1002 --input top_k=2
check rag "$TMP/rag.mlir"
run react examples/react-agent.yaml --input "task=What is 600 * 24?"
grep -q '"loom.loop"' "$TMP/react.mlir" || fail "react-agent's loop is not a loom.loop region"
check react "$TMP/react.mlir"
run research examples/research-fanout.yaml --input "topic=LLM serving"
grep -q '"loom.foreach"' "$TMP/research.mlir" || fail "research-fanout's fan-out is not a loom.foreach region"
check research "$TMP/research.mlir"

# The edited module: the kernel worker's function holds one op (weights);
# renaming its device moves that op, and only it, to the other kernel worker.
kw=$(jget "$TMP/research.json" '[s["worker"] for s in d["steps"] if s["step"] == "weights"][0]')
other=$([ "$kw" = w-k1 ] && echo w-k2 || echo w-k1)
"$PY" - "$TMP/research.mlir" "$kw" "$other" >"$TMP/edited.mlir" <<'PY' || fail "cannot edit the module"
import re, sys
text, old, new = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
fn = re.search(r'func\.func @"[^"]*@%s".*?\n  }\n' % re.escape(old), text, re.S).group(0)
ops = re.findall(r'"loom\.(?!send|recv)[\w.]+"', fn)
assert ops == ['"loom.compute"'], "the kernel worker's function holds %s" % ops
print(re.sub(r'(?<=["@>])%s(?=")' % re.escape(old), new, text), end="")
PY
# the check itself tells them apart: the first run against the edited module
if "$PY" "$CHECK" "$TMP/research.json" "$TMP/edited.mlir" >"$TMP/neg.log"; then
  fail "the check accepted a run against a module that places weights elsewhere"
fi
grep -q "task weights ran on $kw, the module puts it on $other" "$TMP/neg.log" || fail "check: $(cat "$TMP/neg.log")"
grep -q "carried nothing\|received over" "$TMP/neg.log" || fail "check did not see the moved pairs: $(cat "$TMP/neg.log")"
run edited examples/research-fanout.yaml --input "topic=LLM serving" --plan "$TMP/edited.mlir"
[ "$(jget "$TMP/edited.json" '[s["worker"] for s in d["steps"] if s["step"] == "weights"][0]')" = "$other" ] ||
  fail "the edited module moved weights to $other; it ran on $(jget "$TMP/edited.json" '[s["worker"] for s in d["steps"] if s["step"] == "weights"][0]')"
check edited "$TMP/edited.mlir"
echo ok
