#!/usr/bin/env bash
# Submit → dispatch → tool.exec → results → outputs through real loomd and
# two CPU workers: stitching of JSON outputs, foreach fan-out gathered in
# order across both workers, when: true/false, stdin from a template.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd
start_worker w1
start_worker w2
"$BIN/loom" run "$ROOT/tests/integration/workflows/stitch.yaml" --input who=world --json \
  >"$TMP/out.json" 2>"$TMP/run.log" || fail "run failed: $(cat "$TMP/run.log")"
python3 - "$TMP/out.json" <<'PY' || fail "unexpected outputs: $(cat "$TMP/out.json")"
import json, sys
d = json.load(open(sys.argv[1]))
o = d["outputs"]
assert d["state"] == "succeeded", d["state"]
assert o["greeting"] == "hello world", o
assert o["upper"] == "HELLO WORLD", o
assert o["fanned"] == [{"got": x} for x in "abcdef"], o["fanned"]
assert o["maybe"] is None, o
assert o["surely"] == "n is 3", o
steps = {s["step"]: s for s in d["steps"]}
assert steps["maybe"]["state"] == "skipped", steps["maybe"]
assert steps["fan"]["state"] == "succeeded"
PY
# The run is listed and its status is readable afterwards.
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/out.json")
"$BIN/loom" status "$id" >"$TMP/status.txt" || fail "status failed"
grep -q succeeded "$TMP/status.txt" || fail "status does not say succeeded"
"$BIN/loom" runs | grep -q "$id" || fail "runs does not list $id"
echo "ok"
