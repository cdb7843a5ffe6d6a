#!/usr/bin/env bash
# `loom plan`, `loom tco` and `loom simulate` end to end on the example
# files: every example workflow planned on the example fleet meets its SLA
# and costs no more than the best homogeneous baseline that meets it; the
# paper's worked example through the CLI picks option B; tco's fleet is no
# dearer than any homogeneous fleet; simulate runs and reports; bad input
# gives clear errors.
set -u
BUILD=${BUILD:-build}
LOOM="$BUILD/bin/loom"
FLEET=examples/fleets/mixed.yaml
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { # check DESCRIPTION CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

# 1. every example workflow (files with a steps: key) on the example fleet
# (examples/paper/ is the paper's toy: it needs its own profile, see 2.)
n=0
for wf in examples/*.yaml; do
  grep -q '^steps:' "$wf" || continue
  n=$((n + 1))
  "$LOOM" plan "$wf" --fleet "$FLEET" --json --baseline homogeneous:all --mc 2000 >"$tmp/plan.json" 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL $wf: loom plan exit $rc"; cat "$tmp/err"; fail=1; continue
  fi
  jq -e '.meets_sla == true and .target_ms <= (if .sla.latency_ms > 0 then .sla.latency_ms else 1e300 end)' \
    "$tmp/plan.json" >/dev/null
  check "$wf: predicted p$(jq -r .sla.percentile "$tmp/plan.json") $(jq -r .target_ms "$tmp/plan.json") ms meets SLA $(jq -r .sla.latency_ms "$tmp/plan.json") ms" $?
  if [ "$(jq -r .sla.objective "$tmp/plan.json")" = latency ]; then
    # objective latency: no homogeneous fleet is faster
    best=$(jq '[.baselines[] | select(.target_ms != null) | .target_ms] | min // 1e300' "$tmp/plan.json")
    jq -e --argjson best "$best" '.target_ms <= $best * (1 + 1e-9)' "$tmp/plan.json" >/dev/null
    check "$wf (objective latency): p-target $(jq -r .target_ms "$tmp/plan.json") ms <= fastest homogeneous $best ms" $?
  else
    best=$(jq '[.baselines[] | select(.meets_sla) | .cost_usd] | min // 1e300' "$tmp/plan.json")
    jq -e --argjson best "$best" '.cost_usd <= $best * (1 + 1e-9)' "$tmp/plan.json" >/dev/null
    check "$wf: cost \$$(jq -r .cost_usd "$tmp/plan.json") <= best homogeneous \$$best" $?
  fi
  jq -e '.monte_carlo.attainment >= 0.9 * (.sla.percentile / 100)' "$tmp/plan.json" >/dev/null
  check "$wf: Monte Carlo attainment $(jq -r .monte_carlo.attainment "$tmp/plan.json")" $?
done
[ "$n" -ge 1 ]; check "planned $n example workflows" $?

# 2. the paper's worked example through the CLI: B at 120 ms, fastest at 100, C at 200
P="examples/paper/workflow.yaml --fleet examples/paper/fleet.yaml --profile examples/paper/profile.yaml --json --mc 0"
"$LOOM" plan $P >"$tmp/b.json"; rc=$?
[ $rc -eq 0 ] && jq -e '[.ops[].device] == ["HP","CO"] and (.cost_usd - 0.095 | fabs) < 1e-12 and .target_ms == 120' "$tmp/b.json" >/dev/null
check "paper example, SLA 120 ms: option B (prefill HP, decode CO, \$0.095)" $?
"$LOOM" plan $P --sla 100 >"$tmp/a.json"; rc=$?
[ $rc -eq 4 ] && jq -e '.meets_sla == false and .miss_ms == 5 and [.ops[].device] == ["HP","HP"]' "$tmp/a.json" >/dev/null
check "paper example, SLA 100 ms: infeasible (exit 4), fastest A misses by 5 ms" $?
"$LOOM" plan $P --sla 200 >"$tmp/c.json"; rc=$?
[ $rc -eq 0 ] && jq -e '[.ops[].device] == ["CO","CO"] and (.cost_usd - 0.06 | fabs) < 1e-12' "$tmp/c.json" >/dev/null
check "paper example, SLA 200 ms: option C (\$0.060)" $?
"$LOOM" plan $P --explain | jq -e '.ops[0].runner_up.device == "CO"' >/dev/null
check "paper example --explain names the runner-up" $?

# 3. tco: the chosen fleet is no dearer than any homogeneous fleet that works
"$LOOM" tco examples/workloads/support.yaml --json >"$tmp/tco.json"; rc=$?
[ $rc -eq 0 ] && jq -e '.feasible and (.usd_per_hour <= ([.classes[] | select(.homogeneous.meets_sla) | .homogeneous.usd_per_hour] | min) + 1e-9)' "$tmp/tco.json" >/dev/null
check "tco: cheapest fleet \$$(jq -r .usd_per_hour "$tmp/tco.json")/h <= every homogeneous fleet" $?
"$LOOM" tco examples/workloads/support.yaml --owned "$FLEET" --json >"$tmp/tco2.json"
jq -e --slurpfile a "$tmp/tco.json" '.usd_per_hour <= $a[0].usd_per_hour + 1e-9' "$tmp/tco2.json" >/dev/null
check "tco --owned: sunk hardware never raises the bill" $?

# 4. simulate: runs, reports, and the plan's fleet serves the load
"$LOOM" simulate examples/workloads/support.yaml --fleet "$FLEET" --seconds 30 --json >"$tmp/sim.json"; rc=$?
[ $rc -eq 0 ] && jq -e '.runs > 100 and .attainment > 0.9 and (.devices | length) > 0 and .p99_ms >= .p50_ms' "$tmp/sim.json" >/dev/null
check "simulate: $(jq -r .runs "$tmp/sim.json") runs, attainment $(jq -r .attainment "$tmp/sim.json")" $?
"$LOOM" simulate examples/workloads/support.yaml --fleet "$FLEET" --plan homogeneous:L4 --seconds 10 --json >"$tmp/simh.json"
jq -e '.runs > 0' "$tmp/simh.json" >/dev/null
check "simulate --plan homogeneous:L4 runs" $?

# 5. bad input: usage errors exit 2, bad files name file:line
"$LOOM" plan >/dev/null 2>&1; [ $? -eq 2 ]; check "plan without FILE: exit 2" $?
"$LOOM" plan examples/support-rag.yaml --method magic >/dev/null 2>&1; [ $? -eq 2 ]; check "plan --method magic: exit 2" $?
"$LOOM" simulate examples/workloads/support.yaml >/dev/null 2>&1; [ $? -eq 2 ]; check "simulate without --fleet: exit 2" $?
printf 'devices:\n  - {class: H100-SXM, count: 2}\n  - {class: Quantum9, count: 1}\n' >"$tmp/bad-fleet.yaml"
"$LOOM" plan examples/support-rag.yaml --fleet "$tmp/bad-fleet.yaml" --catalog examples/catalog.yaml 2>"$tmp/err" >/dev/null
rc=$?; [ $rc -eq 1 ] && grep -q "bad-fleet.yaml:3:.*devices\[1\].*unknown device class 'Quantum9'" "$tmp/err"
ok=$?; check "bad fleet: file:line and field named ($(head -c 120 "$tmp/err"))" $ok
printf 'workflows:\n  - {file: nope.yaml, rate_per_s: -3}\n' >"$tmp/bad-wl.yaml"
"$LOOM" tco "$tmp/bad-wl.yaml" 2>"$tmp/err" >/dev/null; rc=$?
[ $rc -eq 1 ] && grep -q "bad-wl.yaml:2:.*rate_per_s" "$tmp/err"; check "bad workload: file:line and field named" $?
head -c 3000 /dev/urandom >"$tmp/garbage.yaml"
"$LOOM" plan examples/support-rag.yaml --profile "$tmp/garbage.yaml" >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ]; check "garbage profile: clean error (exit $rc)" $?
# A profile entry that matches nothing (misspelt device or step) is an error
# naming the file, line and entry, not an entry silently never used.
sed 's/device: CO, latency_ms: 30/device: C0, latency_ms: 30/' examples/paper/profile.yaml >"$tmp/typo-dev.yaml"
"$LOOM" plan examples/paper/workflow.yaml --fleet examples/paper/fleet.yaml --profile "$tmp/typo-dev.yaml" 2>"$tmp/err" >/dev/null
rc=$?; [ $rc -eq 1 ] && grep -q "typo-dev.yaml:12:[0-9]*: ops\[3\]: device 'C0' matches nothing" "$tmp/err"
ok=$?; check "profile with a misspelt device: file:line and entry named ($(head -c 120 "$tmp/err"))" $ok
printf 'version: 1\nops:\n  - {op: llm.decode, device: HP, step: answr, latency_ms: 20}\n' >"$tmp/typo-step.yaml"
"$LOOM" plan examples/paper/workflow.yaml --fleet examples/paper/fleet.yaml --profile "$tmp/typo-step.yaml" 2>"$tmp/err" >/dev/null
rc=$?; [ $rc -eq 1 ] && grep -q "typo-step.yaml:3:[0-9]*: ops\[0\]: step 'answr' matches nothing" "$tmp/err"
ok=$?; check "profile with a misspelt step: file:line and entry named ($(head -c 120 "$tmp/err"))" $ok
# --sla is a whole number of ms, like sla.latency_ms in the workflow
"$LOOM" plan examples/support-rag.yaml --sla 119.5 >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "whole number" "$tmp/err"; check "plan --sla 119.5: usage error (exit $rc)" $?
"$LOOM" plan /nonexistent.yaml --fleet "$FLEET" >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] || [ $rc -eq 3 ]; check "missing workflow file: exit $rc" $?
for c in plan tco simulate; do "$LOOM" $c --help | grep -q "usage: loom $c"; check "$c --help" $?; done

exit $fail
