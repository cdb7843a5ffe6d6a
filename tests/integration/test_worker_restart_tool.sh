#!/usr/bin/env bash
# A worker killed with -9 while its tool.exec runs, restarted with the same
# --id: the tool goes on under its keeper (workers/common/spool.h), the new
# worker process claims it from the spool and reports it running at
# Register, loomd adopts it, and its result ends the step: the tool ran
# once (one start, one done), attempt 1, the run succeeds.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
# a 12 s heartbeat timeout: the keeper waits 18 s for a claim, room for a
# worker restart on a loaded machine (under make asan at load 10 a restart
# took 8.8 s from kill -9 to registered)
start_loomd --heartbeat-ms 200 --heartbeat-timeout-ms 12000
start_worker w1; pid=$WORKER_PID
"$BIN/loom" run "$ROOT/tests/integration/workflows/restart_tool.yaml" --input dir="$TMP" --json \
  >"$TMP/out.json" 2>"$TMP/run.log" &
runner=$!; PIDS+=("$runner") # killed by cleanup if the test fails
for _ in $(seq 600); do grep -q start "$TMP/effects" 2>/dev/null && break; sleep 0.05; done
grep -q start "$TMP/effects" 2>/dev/null || fail "the tool never started"
kill -9 "$pid"
wait "$pid" 2>/dev/null
mv "$TMP/w1.log" "$TMP/w1-first.log"
start_worker w1 # (returns at once: loomd still lists the killed one)
for _ in $(seq 600); do grep -q '"registered"' "$TMP/w1.log" 2>/dev/null && break; sleep 0.05; done
grep -q 'spool of an earlier process.*running=1' "$TMP/w1.log" || fail "the restarted worker did not find its running tool"
touch "$TMP/go"
wait $runner; rc=$?
[ $rc -eq 0 ] || fail "run did not succeed (exit $rc): $(cat "$TMP/run.log")"
[ "$(grep -c '^start$' "$TMP/effects")" = 1 ] && [ "$(grep -c '^done$' "$TMP/effects")" = 1 ] ||
  fail "the tool ran more than once: $(cat "$TMP/effects")"
[ "$(jget "$TMP/out.json" 'd["outputs"]["v"]')" = 1 ] || fail "bad outputs: $(cat "$TMP/out.json")"
[ "$(jget "$TMP/out.json" 'd["steps"][0]["attempt"]')" = 1 ] || fail "step re-run: $(cat "$TMP/out.json")"
# kept (the restart came before loomd noticed the loss) or adopted (after)
grep -qE 'worker reconciled" id=w1 held=1 kept=1|task adopted.*state=running' "$TMP/loomd.log" ||
  fail "loomd did not keep the running task"
echo ok
