#!/usr/bin/env bash
# loomd --inline-ops noop,echo runs those ops itself (no worker round trip):
# a run made only of them succeeds with no worker registered, its steps are
# recorded as run by "loomd", a secret echoed inline is redacted, and a run
# that also needs a worker op still waits for (and uses) a real worker.
# Without the flag, noop goes to a worker as before. Bad flag values are
# refused with the reason.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
WF="$ROOT/tests/integration/workflows/inline_ops.yaml"
out=$("$BIN/loomd" --inline-ops noop,sleep 2>&1) && fail "loomd accepted --inline-ops noop,sleep"
echo "$out" | grep -q "expected noop, echo or noop,echo, got 'sleep'" || fail "unclear error: $out"

start_loomd --inline-ops noop,echo
"$BIN/loom" run "$WF" --input who=inline --input key=s3cr3t-value --input 'items=[1,2,3]' --json \
  >"$TMP/out.json" 2>"$TMP/run.log" || fail "inline run failed: $(cat "$TMP/run.log")"
python3 - "$TMP/out.json" <<'PY' || fail "unexpected result: $(cat "$TMP/out.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d["state"]
o = d["outputs"]
assert o["shout"] == {"said": "hello inline", "n": 3}, o
assert o["fan"] == ["item 1", "item 2", "item 3"], o
assert "s3cr3t-value" not in json.dumps(d) and o["leak"] == "key=***", o["leak"]
assert o["tool"] is None, o
steps = {s["step"]: s for s in d["steps"]}
for s in ("first", "hello", "shout", "leak", "fan[0]", "fan[2]"):
    assert steps[s]["worker"] == "loomd", steps[s]
PY
id=$(jget "$TMP/out.json" 'd["run_id"]')
"$BIN/loom" watch "$id" --json >"$TMP/events.json" 2>&1 || true
grep -q "s3cr3t-value" "$TMP/events.json" && fail "the secret reached the run's events"

# a worker op in the same run waits for a worker (none yet), the rest
# runs inline meanwhile
id=$("$BIN/loom" run "$WF" --input who=worker --input key=k --input 'items=[]' --no-wait 2>"$TMP/run2.log") ||
  fail "mixed run refused: $(cat "$TMP/run2.log")"
start_worker w1
"$BIN/loom" watch "$id" >/dev/null 2>&1
"$BIN/loom" status "$id" --json >"$TMP/out2.json" 2>"$TMP/run2.log" || fail "status failed: $(cat "$TMP/run2.log")"
python3 - "$TMP/out2.json" <<'PY' || fail "unexpected mixed result: $(cat "$TMP/out2.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded" and d["outputs"]["tool"] == "hello worker", d["outputs"]
steps = {s["step"]: s for s in d["steps"]}
assert steps["tool"]["worker"] == "w1" and steps["hello"]["worker"] == "loomd", steps
PY
kill "$LOOMD_PID"; wait "$LOOMD_PID" 2>/dev/null

# without the flag, noop and echo go to the worker
start_loomd
start_worker w2
"$BIN/loom" run "$WF" --input who=x --input key=k --input 'items=[1]' --json \
  >"$TMP/out3.json" 2>"$TMP/run3.log" || fail "run without --inline-ops failed: $(cat "$TMP/run3.log")"
python3 - "$TMP/out3.json" <<'PY' || fail "noop ran inline without --inline-ops: $(cat "$TMP/out3.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert all(s["worker"] == "w2" for s in d["steps"] if s["step"] not in ("tool", "fan")), d["steps"]
PY
echo "ok"
