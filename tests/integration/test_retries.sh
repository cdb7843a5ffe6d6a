#!/usr/bin/env bash
# retries: a step that fails twice succeeds on its third attempt; a step
# that always fails exhausts its retries and fails the run with the tool's
# stderr tail in the error (exit 1).
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd
start_worker w1
wf="$ROOT/tests/integration/workflows/retries.yaml"
"$BIN/loom" run "$wf" --input dir="$TMP" --json >"$TMP/ok.json" 2>"$TMP/run.log" ||
  fail "run should succeed: $(cat "$TMP/run.log")"
python3 - "$TMP/ok.json" <<'PY' || fail "bad result: $(cat "$TMP/ok.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["outputs"]["tries"] == 3, d["outputs"]
s = {x["step"]: x for x in d["steps"]}
assert s["flaky"]["attempt"] == 3, s["flaky"]
assert s["broken"]["state"] == "skipped"
PY
rm -f "$TMP/count"
"$BIN/loom" run "$wf" --input dir="$TMP" --input break_it=true --json >"$TMP/bad.json" 2>"$TMP/run2.log"
rc=$?
[ $rc -eq 1 ] || fail "a failed run must exit 1, got $rc"
python3 - "$TMP/bad.json" <<'PY' || fail "bad failure report: $(cat "$TMP/bad.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "failed", d["state"]
assert "broken" in d["error"] and "disk on fire" in d["error"] and "status 3" in d["error"], d["error"]
s = {x["step"]: x for x in d["steps"]}
assert s["broken"]["attempt"] == 2, s["broken"]
PY
echo ok
