#!/usr/bin/env bash
# KV hand-off between two real loom-worker-cpu processes under real loomd:
# llm.prefill runs on wp, llm.decode on a decode worker, and the KV cache
# goes worker to worker by reference (loomd only sees {"$object": ...}).
# Split generation must equal unsplit llm.generate, greedy and seeded, on
#   1. the same-host path (the producer's shared-memory file),
#   2. the network path (decode worker with LOOM_OBJECT_SAME_HOST=0: chunked
#      ZeroMQ from wp's object endpoint),
#   3. a corrupted chunk: a byte of wp's stored cache is flipped after its
#      prefill (the object server sends from that file), so the checksum
#      fails on receipt and the decode worker re-runs the prefill;
#   4. the fallback: wp is killed after its prefill and before the decode
#      fetches; the decode worker re-runs the prefill and says so in an event.
# A q8_0 cache (kv_dtype: q8_0, lossy) travels too and decodes on the other
# worker (layout translation). The fallbacks' reasons are events of the run in loomd's store (replayed by
# `loom watch`). The unsplit llm.generate steps share a prompt on one
# worker, so the second reuses the first's KV prefix (llm/llm_prefix.h).
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
HERE="$ROOT/tests/llm"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "skip: python3-numpy is not installed"; exit 77; }
"$PY" "$HERE/gen_gguf.py" --arch llama --type Q8_0 --ctx 2048 -o "$TMP/chat.gguf" || fail "gen llama"
export LOOM_OBJECT_DIR="$TMP/objects"
start_loomd
start_worker wp --ops llm.prefill; pid_wp=$WORKER_PID
start_worker wd --ops llm.decode; pid_wd=$WORKER_PID
start_worker wg --ops llm.generate,tool.exec

# `gate` holds the decode steps back until the test creates $dir/go.
cat >"$TMP/handoff.yaml" <<YAML
version: 1
name: handoff
sla: {latency_ms: 120000}
inputs:
  dir: string
resources:
  models:
    chat: {path: chat.gguf, arch: llama, layers: 2, hidden: 64, heads: 4, kv_heads: 2, vocab: 405, context: 2048, dtype: q8_0}
steps:
  pre: {op: llm.prefill, model: chat, system: Be brief., prompt: "What is the capital of France? Answer in one word."}
  gate:
    op: tool.exec
    argv: [sh, -c, 'while [ ! -f "\$0/go" ]; do sleep 0.05; done; echo "{}"', "\${inputs.dir}"]
  dec: {op: llm.decode, model: chat, prefill: pre, needs: [gate], max_tokens: 16}
  dec_seeded: {op: llm.decode, model: chat, prefill: pre, needs: [gate], max_tokens: 16, temperature: 0.9, seed: 42}
  pre_q8: {op: llm.prefill, model: chat, system: Be brief., prompt: "What is the capital of France? Answer in one word.", kv_dtype: q8_0}
  dec_q8: {op: llm.decode, model: chat, prefill: pre_q8, needs: [gate], max_tokens: 16}
  whole: {op: llm.generate, model: chat, system: Be brief., prompt: "What is the capital of France? Answer in one word.", max_tokens: 16}
  whole_seeded: {op: llm.generate, model: chat, system: Be brief., prompt: "What is the capital of France? Answer in one word.", max_tokens: 16, temperature: 0.9, seed: 42}
outputs:
  split: \${steps.dec.output}
  whole: \${steps.whole.output}
  split_seeded: \${steps.dec_seeded.output}
  split_q8: \${steps.dec_q8.output}
  whole_seeded: \${steps.whole_seeded.output}
YAML

# run NAME: runs the workflow (events on stderr into NAME-run.log, the
# finished run as JSON into NAME.json).
run() {
  "$BIN/loom" run "$TMP/handoff.yaml" --input dir="$TMP" >"$TMP/$1.txt" 2>"$TMP/$1-run.log" ||
    fail "$1 run failed: $(cat "$TMP/$1-run.log" "$TMP/$1.txt")"
  local id; id=$(sed -n 's/^run \(r-[^ ]*\) submitted.*/\1/p' "$TMP/$1-run.log")
  "$BIN/loom" status "$id" --json >"$TMP/$1.json" || fail "loom status $id failed"
}

# check OUT.json DECODER: split == unsplit, placement as forced, and the
# prefill output loomd kept is a reference, not the cache.
check() {
  "$PY" - "$1" "$2" <<'PY' || fail "unexpected result: $(cat "$1")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d.get("error")
s = {x["step"]: x for x in d["steps"]}
assert s["pre"]["worker"] == "wp", s["pre"]
assert s["dec"]["worker"] == sys.argv[2] and s["dec_seeded"]["worker"] == sys.argv[2], s["dec"]
o = d["outputs"]
assert isinstance(o["split"], str) and o["split"], o
assert o["split"] == o["whole"], o
assert o["split_seeded"] == o["whole_seeded"], o
assert o["split_seeded"] != o["split"], o   # sampling really was seeded, not greedy
pre = s["pre"]["output"]
ref = pre["kv"]["$object"]
assert ref["worker"] == "wp" and len(ref["id"]) == 64 and ref["size"] > 10000, ref
assert ref["media"] == "loom-kv-v1/f32" and pre["kv_layout"] == "loom-kv-v1", pre
assert len(json.dumps(pre)) < ref["size"] / 4, "loomd holds more than a reference"
# layout translation: the q8_0 cache (lossy, so its text may differ) is
# under a third of the f32 one and decodes on the other worker
q8 = s["pre_q8"]["output"]["kv"]["$object"]
assert q8["media"] == "loom-kv-v1/q8_0" and q8["size"] < ref["size"] / 3, q8
assert s["dec_q8"]["worker"] == sys.argv[2] and isinstance(o["split_q8"], str) and o["split_q8"], o
print("ok: split == unsplit (greedy %r, seeded %r); loomd kept %d bytes for a %d-byte cache"
      % (o["split"], o["split_seeded"], len(json.dumps(pre)), ref["size"]))
PY
}

# 1. same host: the decode worker reads wp's shared-memory file.
touch "$TMP/go"
run same
check "$TMP/same.json" wd
[ "$(grep -c 'msg="kv received".*path=same-host' "$TMP/wd.log")" = 3 ] || fail "wd did not take the same-host path"
# prefix reuse: whole and whole_seeded share their prompt on wg, so the
# second reuses the first one's KV (and equals the split runs all the same)
grep -q 'msg="generated".*reused_tokens=[1-9]' "$TMP/wg.log" || fail "wg reused no prefix"
grep -q "reused the KV of [0-9]* of [0-9]* prompt tokens" "$TMP/same-run.log" || fail "no prefix reuse event"
grep -q "KV cache from worker wp (same-host path)" "$TMP/same-run.log" || fail "no transfer event: $(cat "$TMP/same-run.log")"

# 2. network: a decode worker that may not use the shared-memory path.
kill -TERM "$pid_wd"
for _ in $(seq 200); do alive "$pid_wd" || break; sleep 0.05; done
LOOM_OBJECT_SAME_HOST=0 LOOM_OBJECT_TIMEOUT_MS=1500 start_worker wn --ops llm.decode
run net
grep -q "KV cache from worker wp (network path)" "$TMP/net-run.log" || fail "no transfer event: $(cat "$TMP/net-run.log")"
check "$TMP/net.json" wn
[ "$(grep -c 'msg="kv received".*path=network' "$TMP/wn.log")" = 3 ] || fail "wn did not take the network path"

# wait_pre: runs the workflow in the background (gate closed) until its
# prefill step has succeeded; sets $runner and $id.
wait_pre() {
  rm -f "$TMP/go"
  run "$1" &
  runner=$!
  id=
  for _ in $(seq 1200); do
    id=$("$BIN/loom" runs --json 2>/dev/null | "$PY" -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["state"] == "running"]; print(r[0]["run_id"] if r else "")')
    [ -n "$id" ] && "$BIN/loom" status "$id" --json >"$TMP/$1-pre.json" 2>/dev/null && "$PY" -c '
import json, sys
sys.exit(0 if any(s["step"] == "pre" and s["state"] == "succeeded" for s in json.load(open(sys.argv[1]))["steps"]) else 1)' "$TMP/$1-pre.json" && return 0
    sleep 0.1
  done
  fail "the prefill of run $1 did not finish"
}

# expect_fallback NAME REASON COUNT: COUNT decode steps of run NAME re-ran
# the prefill on wn because of REASON, said so in the run's events, and
# those events are in loomd's store.
expect_fallback() {
  [ "$(grep -c "kv transfer failed; re-running the prefill here.*$2" "$TMP/wn.log")" = "$3" ] || fail "wn did not fall back ($2)"
  grep -q "KV transfer from worker wp failed (.*$2.*); re-ran the prefill of [0-9]* tokens here" "$TMP/$1-run.log" ||
    fail "no fallback event with the reason: $(cat "$TMP/$1-run.log")"
  local rid; rid=$(sed -n 's/^run \(r-[^ ]*\) submitted.*/\1/p' "$TMP/$1-run.log")
  "$BIN/loom" watch "$rid" --no-stream >/dev/null 2>"$TMP/$1-replay.log" || fail "loom watch $rid failed"
  [ "$(grep -c "KV transfer from worker wp failed (.*$2.*); re-ran the prefill" "$TMP/$1-replay.log")" = "$3" ] ||
    fail "the store lacks the fallback events: $(cat "$TMP/$1-replay.log")"
}

# 3. corrupted chunk: flip one byte in the middle of wp's stored cache.
wait_pre bad
"$PY" - "$TMP/bad-pre.json" <<'PY' || fail "cannot corrupt the stored cache"
import json, sys
d = json.load(open(sys.argv[1]))
ref = [s for s in d["steps"] if s["step"] == "pre"][0]["output"]["kv"]["$object"]
with open(ref["path"], "r+b") as f:   # the producer serves from this file
    f.seek(ref["size"] // 2)
    b = f.read(1)
    f.seek(ref["size"] // 2)
    f.write(bytes([b[0] ^ 0x5a]))
PY
touch "$TMP/go"
wait $runner || fail "the run did not survive a corrupted chunk"
check "$TMP/bad.json" wn
expect_fallback bad "checksum mismatch" 2  # dec_q8's own cache was intact

# 4. fallback: kill the producer between its prefill and the decode.
wait_pre fb
kill -9 "$pid_wp"
touch "$TMP/go"
wait $runner || fail "the run did not survive the producer's death"
check "$TMP/fb.json" wn
expect_fallback fb "sent nothing\\|cannot connect" 3
echo ok
