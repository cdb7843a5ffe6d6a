#!/usr/bin/env bash
# kill -9 loomd --db while a chain is held ahead on a worker (worker-side
# chaining, on by default): step a runs, b, c and d wait behind it on the
# worker, unrecorded. While loomd is down the worker runs a and b and starts
# c. The restarted loomd recovers the run from PostgreSQL with a as its only
# ready step; the worker re-registers holding a and b (finished), c
# (running) and d (queued), and loomd adopts a by its task key and rebuilds
# b, c and d as sent ahead behind it (engine_adopt.c). The run succeeds,
# every step's effect happened exactly once (none executed again), outputs
# flow across the restart, and PostgreSQL has every step and its events.
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
# a long lease (half the heartbeat timeout): the worker keeps starting the
# chain's tasks while loomd is down
HB=(--heartbeat-ms 500 --heartbeat-timeout-ms 20000)
start_loomd --db "$DB_URL" "${HB[@]}"
start_worker_bg w1
fx="$TMP/fx"; mkdir -p "$fx"; touch "$fx/effects"
id=$("$BIN/loom" run "$ROOT/tests/pg/workflows/chain_ahead.yaml" --input dir="$fx" --no-wait) ||
  fail "submit failed"
has() { grep -qxF "$1" "$fx/effects"; }
until_has() { # until_has SECONDS LINE
  for _ in $(seq $(($1 * 20))); do has "$2" && return 0; sleep 0.05; done
  fail "effects never showed '$2': $(cat "$fx/effects")"
}
until_has 30 "start $id:a"
# b, c, d are on the worker already but not loomd's yet: no record
[ "$(q "SELECT count(*) FROM tasks WHERE run_id = '$id' AND task_id IN ('b','c','d')")" = 0 ] ||
  fail "a chained step was recorded before its predecessor finished: $(q "SELECT task_id, state FROM tasks WHERE run_id = '$id'")"
kill -9 "$LOOMD_PID"
wait "$LOOMD_PID" 2>/dev/null
# with loomd down, the worker goes on along the chain: it held b and c
until_has 30 "start $id:c"
has "done $id:b" || fail "b did not run while loomd was down"
has "done $id:c" && fail "c finished before loomd came back (too slow a machine for this test)"
[ "$(q "SELECT state FROM runs WHERE id = '$id'")" = running ] || fail "run not left running"

restart_loomd --db "$DB_URL" "${HB[@]}"
grep -q "run recovered.*run=$id" "$TMP/loomd.log" || fail "loomd did not recover $id"
wait_for 60 "SELECT state FROM runs WHERE id = '$id'" succeeded
# every step once, none executed again
for s in a b c d; do
  [ "$(grep -cxF "start $id:$s" "$fx/effects")" = 1 ] && [ "$(grep -cxF "done $id:$s" "$fx/effects")" = 1 ] ||
    fail "step $s did not run exactly once: $(cat "$fx/effects")"
done
grep -q "^again" "$fx/effects" && fail "a step was executed again: $(cat "$fx/effects")"
grep -q "chained task adopted.*key=$id:b" "$TMP/loomd.log" || fail "b was not adopted as a chained task"
# PostgreSQL: outputs through the chain, each step once on w1, its events
q "SELECT outputs FROM runs WHERE id = '$id'" | grep -q '"one-two-three-four"' ||
  fail "outputs: $(q "SELECT outputs FROM runs WHERE id = '$id'")"
[ "$(q "SELECT string_agg(task_id || ':' || state || ':' || worker_id || ':' || attempts, ',' ORDER BY task_id) FROM tasks WHERE run_id = '$id'")" = \
  "a:succeeded:w1:1,b:succeeded:w1:1,c:succeeded:w1:1,d:succeeded:w1:1" ] ||
  fail "tasks: $(q "SELECT task_id, state, worker_id, attempts FROM tasks WHERE run_id = '$id'")"
for s in a b c d; do
  [ "$(q "SELECT count(*) FROM events WHERE run_id = '$id' AND task_id = '$s' AND kind = 'step.finished'")" = 1 ] ||
    fail "events of $s: $(q "SELECT kind, detail FROM events WHERE run_id = '$id' AND task_id = '$s'")"
done
[ "$(q "SELECT count(*) FROM events WHERE run_id = '$id' AND kind = 'run.finished'")" = 1 ] ||
  fail "run events: $(q "SELECT task_id, kind FROM events WHERE run_id = '$id' ORDER BY id")"
echo ok
