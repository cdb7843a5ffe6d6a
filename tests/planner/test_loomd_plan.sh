#!/usr/bin/env bash
# loomd with --placement planner, real CPU workers on loopback registering
# different prices: every step of a run goes where the plan says (the
# cheap worker), the run's events show the plan, a run that falls behind its
# plan is re-planned, and killing the planned worker mid-run triggers a
# re-plan (REPLANNED event saying why) after which the run still completes
# on the remaining worker.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
WF="$ROOT/tests/planner/workflows/plan_follow.yaml"
start_loomd --placement planner --heartbeat-ms 250 --heartbeat-timeout-ms 2500
start_worker dear --price 30 --slots 4
start_worker cheap --price 0.2 --slots 4
CHEAP_PID=$WORKER_PID

# 0. the Plan RPC: loomd plans on its live workers (and on a fleet sent along)
"$BIN/loom" plan "$WF" --live --json >"$TMP/live.json" 2>"$TMP/live.err" || fail "plan --live failed: $(cat "$TMP/live.err")"
python3 - "$TMP/live.json" <<'PY' || fail "unexpected live plan: $(cat "$TMP/live.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["meets_sla"], d
assert [p["worker"] for p in d["placements"]] == ["cheap"] * 4, d["placements"]
assert d["sla_latency_ms"] == 20000, d
PY
printf 'version: 1\ncatalog: %s/examples/catalog.yaml\ndevices:\n  - {class: L4, count: 2}\n  - {class: EPYC-9654, count: 1, ownership: owned}\n' "$ROOT" >"$TMP/fleet.yaml"
"$BIN/loom" plan "$WF" --live --fleet "$TMP/fleet.yaml" --json >"$TMP/live2.json" 2>"$TMP/live2.err" || fail "plan --live --fleet failed: $(cat "$TMP/live2.err")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert {p["device_model"] for p in d["placements"]} <= {"L4","EPYC-9654"}, d' "$TMP/live2.json" \
  || fail "fleet plan: $(cat "$TMP/live2.json")"
echo "ok   Plan RPC: live workers and a fleet sent along"

# 1. all steps on the cheap worker, as planned; --explain shows the plan's placements
"$BIN/loom" run "$WF" --input ms=50 --explain >"$TMP/run1.out" 2>"$TMP/run1.err" || fail "run 1 failed: $(cat "$TMP/run1.err")"
grep -q "^ *last *noop *on cheap *start" "$TMP/run1.err" || fail "--explain did not print the placements: $(cat "$TMP/run1.err")"
grep -q "planned:.*first->cheap" "$TMP/run1.err" || fail "no PLANNED event naming cheap: $(cat "$TMP/run1.err")"
n=$(grep -c "started on cheap" "$TMP/run1.err")
[ "$n" -eq 4 ] || fail "expected 4 steps on cheap, got $n: $(cat "$TMP/run1.err")"
grep -q "started on dear" "$TMP/run1.err" && fail "a step ran on the dear worker: $(cat "$TMP/run1.err")"
echo "ok   run 1: 4/4 steps on the planned (cheap) worker"

# 2. a step far slower than planned (3 s where the plan expects 50 ms, over a
#    tenth of the 20 s SLA): the next step triggers a re-plan that says why
"$BIN/loom" run "$WF" --input ms=3000 >"$TMP/run0.out" 2>"$TMP/run0.err" || fail "slow run failed: $(cat "$TMP/run0.err")"
grep -q "re-planned: run is [0-9]* ms behind its plan at second" "$TMP/run0.err" \
  || fail "no REPLANNED event for the lagging run: $(cat "$TMP/run0.err")"
echo "ok   slow run: re-planned because it fell behind its plan"

# 3. kill the planned worker while its first step sleeps: re-plan, finish on dear
"$BIN/loom" run "$WF" --input ms=1500 --timeout-ms 30000 >"$TMP/run2.out" 2>"$TMP/run2.err" &
RUN_PID=$!
for _ in $(seq 200); do grep -q "first.*started on cheap" "$TMP/run2.err" 2>/dev/null && break; sleep 0.05; done
grep -q "first.*started on cheap" "$TMP/run2.err" || fail "run 2 did not start on cheap: $(cat "$TMP/run2.err")"
kill -9 "$CHEAP_PID"
wait "$RUN_PID"; rc=$?
[ $rc -eq 0 ] || fail "run 2 did not succeed after the worker died (exit $rc): $(cat "$TMP/run2.err")"
grep -q "re-planned:.*cheap.* \(lost\|gone\)" "$TMP/run2.err" || fail "no REPLANNED event saying the worker was lost: $(cat "$TMP/run2.err")"
grep -q "re-planned:.*first->dear" "$TMP/run2.err" || fail "re-plan did not move work to dear: $(cat "$TMP/run2.err")"
grep -q "last.*started on dear" "$TMP/run2.err" || fail "the last step did not run on dear: $(cat "$TMP/run2.err")"
echo "ok   run 2: cheap killed mid-run -> re-planned onto dear, run succeeded"
cat "$TMP/run2.err" | grep "planned" | cut -c1-200
echo "ok"
