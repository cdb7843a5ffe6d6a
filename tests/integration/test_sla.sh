#!/usr/bin/env bash
# SLA: a run whose SLA no placement can meet is refused at submit (exit 4);
# run anyway (--allow-sla-miss), it succeeds after its sla.latency_ms, gets
# an sla.missed event, status shows it, and `loom run` exits 4 (not 0, not 1).
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd
start_worker w1
# loomd's planner sees that no worker can meet it: refused at submit
"$BIN/loom" run "$ROOT/tests/integration/workflows/sla.yaml" >"$TMP/out0.txt" 2>"$TMP/run0.log"
rc=$?
[ $rc -eq 4 ] && grep -q "refused" "$TMP/run0.log" || fail "expected the run refused (exit 4), got $rc: $(cat "$TMP/run0.log")"
# the client asks to run it anyway
"$BIN/loom" run "$ROOT/tests/integration/workflows/sla.yaml" --allow-sla-miss >"$TMP/out.txt" 2>"$TMP/run.log"
rc=$?
[ $rc -eq 4 ] || fail "expected exit 4 (SLA missed), got $rc: $(cat "$TMP/run.log")"
grep -q "SLA missed" "$TMP/run.log" || fail "no SLA line in the progress: $(cat "$TMP/run.log")"
grep -q '"slept": 300' "$TMP/out.txt" || fail "outputs: $(cat "$TMP/out.txt")"
id=$("$BIN/loom" runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
"$BIN/loom" status "$id" --json | grep -q '"sla_met": false' || fail "status does not say the SLA was missed"
"$BIN/loom" status "$id" | grep -q "sla [0-9]* ms missed" || fail "text status does not say missed"
# the same workflow with a generous override meets it
"$BIN/loom" run "$ROOT/tests/integration/workflows/sla.yaml" --sla-ms 10000 --quiet >/dev/null 2>&1 ||
  fail "--sla-ms 10000 should meet the SLA (exit $?)"
echo ok
