#!/usr/bin/env bash
# Layer-wise KV streaming under real loomd with real loom-worker-cpu
# workers and the real CPU engine (issue 15, item 2). A module splits two
# llm.generate steps (greedy, seeded) into llm.prefill on wp and llm.decode
# on wd. The prefill streams its KV cache layer by layer and announces the
# stream's reference when it starts, so loomd dispatches the decode then and
# wd fetches the layers while wp computes. The model is thin but deep
# (tests/llm/gen_gguf.py --shape thin: 12 layers) and the prompt long (two
# batches), so a prefill takes a visible while:
#   1. streamed split == the same steps run whole on wd (greedy and seeded);
#      each decode was dispatched before its prefill finished; wd took the
#      streamed same-host path; the events say so;
#   2. the same over the network path (decoder wn, LOOM_OBJECT_SAME_HOST=0);
#   3. wp is killed mid-stream (decoder wk has started fetching, wp has
#      written part of the stream): wk re-runs the prefill, the run succeeds
#      with the same answers, the fallback's reason is an event in the
#      store, and loomd does not run the prefill again.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
HERE="$ROOT/tests/llm"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "skip: python3-numpy is not installed"; exit 77; }
"$PY" "$HERE/gen_gguf.py" --shape thin --type F16 --fast -o "$TMP/kv.gguf" >/dev/null || fail "gen model"
export LOOM_OBJECT_DIR="$TMP/objects"
PROMPT=$("$PY" -c 'print(" ".join("the quick brown fox jumps over the lazy dog number %d" % i for i in range(12)))')
# workflow NAME STEP...: steps greedy (temperature 0) and/or seeded
workflow() {
  local name=$1; shift
  {
    echo "version: 1"
    echo "name: kv-stream"
    echo "resources:"
    echo "  models:"
    echo "    chat: {path: kv.gguf, arch: llama, layers: 12, hidden: 256, heads: 4, kv_heads: 4, vocab: 405, context: 4096, dtype: f16}"
    echo "steps:"
    for s in "$@"; do
      case $s in
        greedy) echo "  greedy: {op: llm.generate, model: chat, prompt: \"$PROMPT\", max_tokens: 6, temperature: 0}" ;;
        seeded) echo "  seeded: {op: llm.generate, model: chat, prompt: \"$PROMPT\", max_tokens: 6, temperature: 0.9, seed: 42}" ;;
      esac
    done
    echo "outputs:"
    for s in "$@"; do echo "  $s: \${steps.$s.output}"; done
  } >"$TMP/$name.yaml"
}
workflow kv greedy seeded
workflow kv1 greedy
# module split|whole DEV STEP...: the partitioned module, as loomd lowers
# such a plan (prefills on wp; decodes, or whole steps, on DEV)
module() {
  "$PY" - "$@" <<'PY'
import sys
f = 'budget_ms = 0.000000e+00 : f64, pred_cost = 0.000000e+00 : f64, pred_ms = 0.000000e+00 : f64'
fa = 'loom.sla_ms = 0.000000e+00 : f64, loom.workflow = "kv-stream"'
kind, dev, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
v = lambda i, s: {"i": i, "s": s, "f": f, "d": dev}
if kind == "split":
    wp = "\n".join('''    %%p%(i)d = "loom.llm.prefill"(%%arg0) {%(f)s, model = "chat", node = "%(s)s.prefill", step = "%(s)s", target = "wp"} : (!loom.text) -> !loom.kv
    %%t%(i)d = "loom.kv.transfer"(%%p%(i)d) {%(f)s, node = "%(s)s.prefill", step = "%(s)s", target = "wp", to = "%(d)s"} : (!loom.kv) -> !loom.kv
    "loom.send"(%%t%(i)d) {channel = "kv-stream:%(s)s/kv.transfer->%(d)s", target = "wp", to = "%(d)s"} : (!loom.kv) -> ()''' % v(i, s) for i, s in enumerate(steps))
    body = "\n".join('''    %%r%(i)d = "loom.recv"() {channel = "kv-stream:%(s)s/kv.transfer->%(d)s", from = "wp", target = "%(d)s"} : () -> !loom.kv
    %%x%(i)d = "loom.llm.decode"(%%r%(i)d) {%(f)s, model = "chat", node = "%(s)s.decode", step = "%(s)s", target = "%(d)s"} : (!loom.kv) -> !loom.text''' % v(i, s) for i, s in enumerate(steps))
    print('''module {
  func.func @"kv-stream@wp"(%%arg0: !loom.text) attributes {loom.device = "wp", %(fa)s} {
%(wp)s
    return
  }''' % {"fa": fa, "wp": wp})
else:
    body = "\n".join('''    %%x%(i)d = "loom.llm.generate"(%%arg0) {%(f)s, decode = "%(s)s.decode", model = "chat", prefill = "%(s)s.prefill", step = "%(s)s", target = "%(d)s"} : (!loom.text) -> !loom.text''' % v(i, s) for i, s in enumerate(steps))
    print("module {")
print('''  func.func @"kv-stream@%(d)s"(%%arg0: !loom.text) -> !loom.text attributes {loom.device = "%(d)s", %(fa)s} {
%(body)s
    return %%x%(last)d : !loom.text
  }
}''' % {"fa": fa, "d": dev, "body": body, "last": len(steps) - 1})
PY
}
module whole wd greedy seeded >"$TMP/whole.mlir"
module split wd greedy seeded >"$TMP/split.mlir"
module split wn greedy seeded >"$TMP/splitn.mlir"
module split wk greedy >"$TMP/splitk.mlir"
start_loomd
start_worker wp --ops llm.generate,llm.prefill,llm.decode; pid_wp=$WORKER_PID
start_worker wd --ops llm.generate,llm.prefill,llm.decode; pid_wd=$WORKER_PID

# run NAME PLAN [WORKFLOW]: runs WORKFLOW.yaml (kv) from module PLAN ->
# $TMP/NAME.json (status) and NAME.events (the run's events replayed from
# loomd's store).
run() {
  "$BIN/loom" run "$TMP/${3:-kv}.yaml" --plan "$TMP/$2.mlir" --allow-sla-miss --json >"$TMP/$1.run.json" 2>"$TMP/$1.log" ||
    fail "$1 run failed: $(cat "$TMP/$1.log" "$TMP/$1.run.json")"
  local id; id=$(jget "$TMP/$1.run.json" 'd["run_id"]')
  "$BIN/loom" status "$id" --json >"$TMP/$1.json" || fail "no status of $1"
  "$BIN/loom" watch "$id" --no-stream >/dev/null 2>"$TMP/$1.events" || fail "loom watch $id failed"
}

# check NAME overlap|fallback DECODER: split == whole, placement, and
# (overlap) each decode dispatched before its prefill finished.
check() {
  "$PY" - "$TMP/$1.json" "$TMP/whole.json" "$2" "$3" <<'PY' || fail "$1: $(cat "$TMP/$1.json")"
import json, sys
split, whole = (json.load(open(p)) for p in sys.argv[1:3])
overlap = sys.argv[3] == "overlap"
assert split["state"] == "succeeded" and whole["state"] == "succeeded", (split.get("error"), whole.get("error"))
steps = sorted(split["outputs"])
assert all(split["outputs"][s] == whole["outputs"][s] for s in steps), (split["outputs"], whole["outputs"])
assert all(isinstance(v, str) and v for v in split["outputs"].values()), split["outputs"]
if len(steps) == 2:
    assert split["outputs"]["greedy"] != split["outputs"]["seeded"], "seeded sampling was not seeded"
recs = {}
for s in split["steps"]:
    if s.get("worker"):
        recs.setdefault(s["step"], []).append(s)
for step in steps:
    dec = [r for r in recs[step] if r["op"] == "llm.decode"]
    pre = recs[step + ".prefill"]
    assert len(dec) == 1 and dec[0]["worker"] == sys.argv[4], recs
    assert len(pre) == 1 and pre[0]["worker"] == "wp", pre   # never run again
    if overlap:
        assert dec[0]["started_ms"] < pre[0]["finished_ms"], (step, dec[0], pre[0])
print("%s: split == whole %r" % (sys.argv[1], split["outputs"]))
PY
}

# 1. streamed, same host
run whole whole
run same split
check same overlap wd
[ "$(grep -c 'msg="kv received".*path=same-host.*streamed=1' "$TMP/wd.log")" = 2 ] || fail "wd did not take the streamed same-host path"
[ "$(grep -c 'msg="prefilled".*streamed=yes' "$TMP/wp.log")" = 2 ] || fail "wp did not stream"
grep -q "the decode starts now, while the prefill runs" "$TMP/same.events" || fail "no early-dispatch event: $(cat "$TMP/same.events")"
grep -q "KV cache from worker wp (same-host path, streamed layer by layer while its prefill ran)" "$TMP/same.events" ||
  fail "no streamed-transfer event: $(cat "$TMP/same.events")"

# 2. streamed, network path
kill -TERM "$pid_wd"
LOOM_OBJECT_SAME_HOST=0 LOOM_OBJECT_TIMEOUT_MS=3000 start_worker wn --ops llm.generate,llm.prefill,llm.decode; pid_wn=$WORKER_PID
run net splitn
check net overlap wn
[ "$(grep -c 'msg="kv received".*path=network.*streamed=1' "$TMP/wn.log")" = 2 ] || fail "wn did not take the streamed network path"

# 3. the producer dies mid-stream: wk has begun fetching and wp's stream
# file holds its first segments but not all (~16 KiB per token: the whole
# stream is ~6 MB).
run_bg() { # like run (one step), in the background ($runner)
  "$BIN/loom" run "$TMP/kv1.yaml" --plan "$TMP/splitk.mlir" --allow-sla-miss --json >"$TMP/kill.run.json" 2>"$TMP/kill.log" &
  runner=$!
}
kill -TERM "$pid_wn"
# wk loads the model at start: loaded on the first task instead, it took
# longer than wp's whole prefill on a loaded machine, and the stream was
# complete before wk began to fetch it (nothing left to kill midway).
LOOM_MODELS="chat=$TMP/kv.gguf" start_worker wk --ops llm.generate,llm.prefill,llm.decode
run_bg
midway=
for _ in $(seq 600); do
  if grep -q 'kv stream: fetching while the producer computes' "$TMP/wk.log"; then
    f=$(ls -t "$LOOM_OBJECT_DIR/$pid_wp/" 2>/dev/null | head -1) # the newest: the stream being written
    sz=$(stat -c %s "$LOOM_OBJECT_DIR/$pid_wp/$f" 2>/dev/null || echo 0)
    if [ "$sz" -gt 0 ]; then midway=$sz; kill -9 "$pid_wp"; break; fi
  fi
  sleep 0.02
done
[ -n "$midway" ] || fail "never caught wp mid-stream: $(tail -5 "$TMP/wp.log" "$TMP/wk.log")"
wait "$runner" || fail "the run did not survive the producer's death: $(cat "$TMP/kill.log" "$TMP/kill.run.json")"
id=$(jget "$TMP/kill.run.json" 'd["run_id"]')
"$BIN/loom" status "$id" --json >"$TMP/kill.json" || fail "no status"
"$BIN/loom" watch "$id" --no-stream >/dev/null 2>"$TMP/kill.events" || fail "loom watch failed"
check kill fallback wk
grep -q 'kv transfer failed; re-running the prefill here.*is gone' "$TMP/wk.log" || fail "wk did not fall back: $(grep kv "$TMP/wk.log")"
grep -q "KV transfer from worker wp failed (.*is gone.*); re-ran the prefill of [0-9]* tokens here" "$TMP/kill.events" ||
  fail "no fallback event in the store: $(cat "$TMP/kill.events")"
echo "ok: killed wp after ${midway} bytes of its stream; wk re-ran the prefill"
