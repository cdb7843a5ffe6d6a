#!/usr/bin/env bash
# loomd with --placement planner, real CPU workers on loopback registering
# different prices: every step of a run goes where the plan says (the
# cheap worker), the run's events show the plan, and killing the planned
# worker mid-run triggers a re-plan (REPLANNED event saying why) after which
# the run still completes on the remaining worker.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
WF="$ROOT/tests/planner/workflows/plan_follow.yaml"
start_loomd --placement planner --heartbeat-ms 250 --heartbeat-timeout-ms 2500
start_worker dear --price 30 --slots 4
start_worker cheap --price 0.2 --slots 4
CHEAP_PID=$WORKER_PID

# 1. all steps on the cheap worker, as planned
"$BIN/loom" run "$WF" --input ms=50 >"$TMP/run1.out" 2>"$TMP/run1.err" || fail "run 1 failed: $(cat "$TMP/run1.err")"
grep -q "planned:.*first->cheap" "$TMP/run1.err" || fail "no PLANNED event naming cheap: $(cat "$TMP/run1.err")"
n=$(grep -c "started on cheap" "$TMP/run1.err")
[ "$n" -eq 4 ] || fail "expected 4 steps on cheap, got $n: $(cat "$TMP/run1.err")"
grep -q "started on dear" "$TMP/run1.err" && fail "a step ran on the dear worker: $(cat "$TMP/run1.err")"
echo "ok   run 1: 4/4 steps on the planned (cheap) worker"

# 2. kill the planned worker while its first step sleeps: re-plan, finish on dear
"$BIN/loom" run "$WF" --input ms=1500 --timeout-ms 30000 >"$TMP/run2.out" 2>"$TMP/run2.err" &
RUN_PID=$!
for _ in $(seq 200); do grep -q "first.*started on cheap" "$TMP/run2.err" && break; sleep 0.05; done
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
