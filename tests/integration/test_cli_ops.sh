#!/usr/bin/env bash
# The CLI for everyday use, against a real loomd and CPU worker: --version
# on every program, unknown options named as unknown, `loom run --no-wait`
# with --label / --idempotency-key then `loom watch` and `loom logs`, JSON
# errors with --json, LLM tokens streamed on stderr (--stream) from a real
# (generated) GGUF model, and `loom llm info`'s resources.models block
# pasted into a workflow that `loom validate` accepts and that runs.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
PY=/usr/bin/python3
for p in loom loomd loom-worker-cpu loom-worker-npu loom-worker-gpu; do
  # the GPU worker is built only where nvcc is (the CUDA toolkit is not in
  # Debian's archive): a fresh machine has none
  if [ "$p" = loom-worker-gpu ] && [ ! -e "$BIN/$p" ] && ! command -v nvcc >/dev/null &&
     [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "note: $p not built here (no nvcc)"; continue
  fi
  out=$("$BIN/$p" --version) || fail "$p --version exited $?"
  [[ "$out" =~ ^$p\ [0-9]+\.[0-9]+\.[0-9]+\ \(protocol\ 1\)$ ]] || fail "$p --version: '$out'"
done
"$BIN/loomd" --bogus 2>"$TMP/bogus.txt" && fail "loomd --bogus succeeded"
grep -q "unknown option '--bogus'" "$TMP/bogus.txt" || fail "loomd --bogus: $(cat "$TMP/bogus.txt")"
"$BIN/loomd" --http 2>"$TMP/nov.txt"; grep -q "missing value for '--http'" "$TMP/nov.txt" || fail "loomd --http: $(cat "$TMP/nov.txt")"
"$BIN/loom" run --bogus x.yaml 2>"$TMP/rb.txt"; grep -q "unknown option '--bogus'" "$TMP/rb.txt" || fail "loom run --bogus"

"$PY" -c 'import numpy' 2>/dev/null && HAVE_NUMPY=1 || HAVE_NUMPY=0
if [ $HAVE_NUMPY = 1 ]; then
  "$PY" "$ROOT/tests/llm/gen_gguf.py" --arch llama --type Q8_0 --ctx 2048 -o "$TMP/tiny-chat.Q8_0.gguf" >/dev/null \
    || fail "gen llama"
fi
start_loomd
start_worker w1
WF="$ROOT/tests/integration/workflows"

# --no-wait, then reattach with loom watch; the idempotency key returns the same run
id=$("$BIN/loom" run "$WF/stitch.yaml" --input who=cli --no-wait --label team=ops --idempotency-key k-1) \
  || fail "run --no-wait"
id2=$("$BIN/loom" run "$WF/stitch.yaml" --input who=cli --no-wait --idempotency-key k-1)
[ "$id" = "$id2" ] || fail "same idempotency key gave $id then $id2"
"$BIN/loom" watch "$id" >"$TMP/watch.out" 2>"$TMP/watch.err" || fail "loom watch exited $?: $(cat "$TMP/watch.err")"
grep -q 'n is 3' "$TMP/watch.out" || fail "watch outputs: $(cat "$TMP/watch.out")"
grep -q '✓ greet' "$TMP/watch.err" || fail "watch progress: $(cat "$TMP/watch.err")"
"$BIN/loom" watch "$id" --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert d["state"]=="succeeded", d' \
  || fail "watch --json"
"$BIN/loom" logs "$id" upper >"$TMP/logs.txt" || fail "loom logs"
grep -q '^step upper  op tool.exec  succeeded  attempt 1' "$TMP/logs.txt" && grep -q 'HELLO CLI' "$TMP/logs.txt" \
  || fail "logs: $(cat "$TMP/logs.txt")"
# the foreach step and each of its 6 items, every item with its worker
"$BIN/loom" logs "$id" fan --json | "$PY" -c '
import json,sys
rows=json.load(sys.stdin); by={r["step"]: r for r in rows}
assert len(by["fan"]["output"])==6, by["fan"]
items=[by["fan[%d]" % i] for i in range(6)]
assert all(r["worker"]=="w1" and r["state"]=="succeeded" for r in items), items' \
  || fail "logs --json"
"$BIN/loom" logs "$id" nope 2>"$TMP/nope.txt"; rc=$?
[ $rc = 1 ] && grep -q "has no step 'nope'" "$TMP/nope.txt" || fail "logs of an unknown step: rc=$rc $(cat "$TMP/nope.txt")"

# --json errors are JSON on stdout, with the usual exit codes
"$BIN/loom" status r-nope --json >"$TMP/err.json"; rc=$?
[ $rc = 1 ] || fail "status of unknown run --json: exit $rc"
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["status"]=="NOT_FOUND" and e["kind"]=="request" and e["message"], e' \
  "$TMP/err.json" || fail "JSON error: $(cat "$TMP/err.json")"
"$BIN/loom" watch r-nope --json --endpoint "tcp://127.0.0.1:1" --timeout-ms 300 >"$TMP/err2.json"; rc=$?
[ $rc = 3 ] && grep -q '"kind": "unavailable"' "$TMP/err2.json" || fail "unreachable loomd --json: rc=$rc $(cat "$TMP/err2.json")"

# a foreach whose item fails: the step is failed (not cancelled) in the
# progress lines, the summary and --json; the failing item is its own row
cat >"$TMP/fe.yaml" <<'YAML'
version: 1
name: fe-fail
steps:
  fan:
    op: tool.exec
    foreach: [1, 2, 3]
    argv: [sh, -c, 'if [ "$0" = 2 ]; then echo bad item >&2; exit 3; fi; sleep 0.3', "${item}"]
YAML
"$BIN/loom" run "$TMP/fe.yaml" >"$TMP/fe.out" 2>&1 && fail "the failing foreach succeeded"
grep -Eq '^  fan +tool.exec +failed ' "$TMP/fe.out" || fail "summary: $(cat "$TMP/fe.out")"
grep -q 'cancelled' <(grep -E '^  fan ' "$TMP/fe.out") && fail "fan said cancelled: $(cat "$TMP/fe.out")"
fe=$("$BIN/loom" runs --workflow fe-fail --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
"$BIN/loom" status "$fe" --json | "$PY" -c '
import json,sys
st = {s["step"]: s["state"] for s in json.load(sys.stdin)["steps"]}
assert st["fan"] == "failed" and st["fan[1]"] == "failed", st' || fail "status --json of the failed foreach"

if [ $HAVE_NUMPY = 1 ]; then
  # llm info's block, pasted into a workflow, validates and runs; tokens stream
  "$BIN/loom" llm info "$TMP/tiny-chat.Q8_0.gguf" >"$TMP/info.txt" || fail "llm info"
  grep -q '^hidden ' "$TMP/info.txt" || fail "llm info says no 'hidden': $(cat "$TMP/info.txt")"
  { echo "version: 1"; echo "name: pasted"; sed -n '/^resources:/,$p' "$TMP/info.txt"
    echo "steps:"
    echo "  answer: {op: llm.generate, model: tiny_chat_q8_0, prompt: \"Hello\", max_tokens: 12}"
    echo "outputs: {text: \"\${steps.answer.output}\"}"; } >"$TMP/pasted.yaml"
  "$BIN/loom" validate "$TMP/pasted.yaml" >"$TMP/validate.txt" 2>&1 || fail "pasted block does not validate: $(cat "$TMP/validate.txt") $(cat "$TMP/pasted.yaml")"
  "$BIN/loom" run "$TMP/pasted.yaml" --stream >"$TMP/llm.out" 2>"$TMP/llm.err" || fail "llm run: $(cat "$TMP/llm.err")"
  grep -q '» answer' "$TMP/llm.err" || fail "no streamed tokens: $(cat "$TMP/llm.err")"
  "$BIN/loom" run "$TMP/pasted.yaml" --no-stream 2>"$TMP/llm2.err" >/dev/null || fail "llm run 2"
  grep -q '» answer' "$TMP/llm2.err" && fail "--no-stream streamed"
else
  echo "note: python3-numpy missing; the LLM part was not run"
fi
echo ok
