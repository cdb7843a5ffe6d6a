#!/usr/bin/env bash
# Real loomd + loom-worker-cpu on loopback: a workflow's compute steps (a
# built-in matmul and a user .mlir kernel) and its vector.search step run as
# JIT-compiled kernels in the CPU worker; then loom-worker-npu registers as
# an emulated NPU and runs the matmul in int8 (exact for these small ints).
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
WF="$ROOT/tests/mlir/workflows/compute.yaml"
"$BIN/loom" validate "$WF" >/dev/null || fail "compute.yaml does not validate"

start_loomd
start_worker w1
"$BIN/loom" run "$WF" --input 'q=[1, 0.1, 0]' --json >"$TMP/cpu.json" 2>"$TMP/run.log" \
  || fail "run on the CPU worker failed: $(cat "$TMP/run.log")"
python3 - "$TMP/cpu.json" <<'PY' || fail "unexpected CPU outputs: $(cat "$TMP/cpu.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d["state"]
o = d["outputs"]
assert o["product"] == [[4, 5], [10, 11]], o["product"]
assert o["target"] == "cpu", o["target"]
assert o["doubled"] == [2.5, 4.5, 6.5, 8.5, 10.5, 12.5, 14.5, 16.5], o["doubled"]
assert [h["id"] for h in o["hits"]] == ["refunds", "returns"], o["hits"]
assert abs(o["hits"][0]["score"] - 1.0) < 1e-6, o["hits"]
PY
echo "ok   CPU worker ran matmul, a user .mlir kernel and vector.search from compiled units"

# With the planner's placement, loomd lowers each planned run through every
# pass, once per plan: a repeated plan is borrowed from the plan cache
# (its PLANNED text says "module ... (cached)") or, planned again, hits the
# lowering's cache (its "plan lowered" line says "(cached)"). The first run's
# plan is uncalibrated and its time includes compiling the kernels; the
# calibration (an EWMA) then moves the plan's predictions, and so its hash,
# until it settles within its band (placement_planner.c CALIB_BAND): in a
# fresh chroot the first three plans all differed. Up to 10 runs, stopping
# at the first hit.
start_loomd --placement planner
start_worker w2
for n in 1 2 3 4 5 6 7 8 9 10; do
  "$BIN/loom" run "$WF" --input 'q=[1, 0, 0]' --json >"$TMP/planned$n.json" 2>"$TMP/run.log" \
    || fail "planned run $n failed: $(cat "$TMP/run.log")"
  [ "$n" -ge 2 ] && grep -Eq 'msg="(plan lowered|planned)".*\(cached\)' "$TMP/loomd.log" && break
done
grep -q 'msg="plan lowered".*lowered to 1 device functions' "$TMP/loomd.log" \
  || fail "loomd did not lower the plan: $(grep -i lower "$TMP/loomd.log")"
grep -Eq 'msg="(plan lowered|planned)".*\(cached\)' "$TMP/loomd.log" || fail "every repeated plan was lowered again"
echo "ok   loomd lowered each planned run (a repeated plan from the cache, run $n)"

# The NPU worker (emulation) on a second loomd of its own.
start_loomd
(cd "$ROOT" && exec "$BIN/loom-worker-npu" --endpoint "$WORKER_EP" --id npu1) >"$TMP/npu1.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do
  "$BIN/loom" workers --json 2>/dev/null | grep -q '"id": "npu1"' && break
  sleep 0.05
done
"$BIN/loom" workers --json >"$TMP/workers.json" 2>&1 || fail "loom workers failed"
grep -q 'emulation' "$TMP/workers.json" || fail "NPU worker does not say it is an emulation: $(cat "$TMP/workers.json")"
"$BIN/loom" run "$WF" --input 'q=[0, 0, 1]' --json >"$TMP/npu.json" 2>"$TMP/run2.log" \
  || fail "run on the NPU worker failed: $(cat "$TMP/run2.log")"
python3 - "$TMP/npu.json" <<'PY' || fail "unexpected NPU outputs: $(cat "$TMP/npu.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d["state"]
o = d["outputs"]
# int8: a scales by 6/127, b by 1/127; these products dequantise to within 5%.
for got, want in zip(sum(o["product"], []), [4, 5, 10, 11]):
    assert abs(got - want) <= 0.05 * want, o["product"]
assert o["target"] == "npu", o["target"]
assert [h["id"] for h in o["hits"]] == ["warranty", "refunds"], o["hits"]
PY
echo "ok   NPU worker (emulation) ran the int8 matmul"
