#!/usr/bin/env bash
# A step's timeout_ms counts execution only: a task sent to a busy one-slot
# worker waits in its queue behind a 4 s task, then runs 0.3 s within its
# 3 s timeout and succeeds (the clock starts at the worker's start of the
# task, not when loomd sent it). least-loaded placement queues tasks on
# workers (up to slots x depth), which is what this needs.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd --placement least-loaded
start_worker w1 --slots 1
"$BIN/loom" run "$ROOT/tests/integration/workflows/timeout_queued.yaml" --input dir="$TMP" \
  --json >"$TMP/out.json" 2>"$TMP/run.log"
rc=$?
[ $rc -eq 0 ] || fail "run failed (exit $rc): $(cat "$TMP/out.json" "$TMP/run.log")"
[ "$(jget "$TMP/out.json" 'd["outputs"]["timed"]')" = 2 ] || fail "bad outputs: $(cat "$TMP/out.json")"
end=$(cat "$TMP/blocker.end") start=$(cat "$TMP/timed.start")
# not vacuous: timed really waited behind blocker on the worker
[ "$start" -ge "$end" ] || fail "timed started before blocker ended: the test did not queue it"
python3 - "$TMP/out.json" <<'PY' || fail "timed did not outlive its timeout while queued"
import json, sys
d = json.load(open(sys.argv[1]))
s = {x["step"]: x for x in d["steps"]}
# From the run's submission to its end, timed lived more than its 3 s
# timeout (it waited behind blocker), yet succeeded: only its execution
# (started_ms: when the worker started it) counts against timeout_ms.
sub, started, ended = d["submitted_ms"], s["timed"]["started_ms"], s["timed"]["finished_ms"]
assert ended - sub > 3000, (sub, ended)
assert ended - started < 3000, (started, ended)
print("timed: %d ms from submission to its end, %d ms executing" % (ended - sub, ended - started))
PY
echo ok
