#!/usr/bin/env bash
# kill -9 loomd in the middle of a three-step run (step 1 done, step 2
# running), restart it on the same PostgreSQL: the run resumes under its id
# and completes; step 1 is not recomputed, every step's side effect happened
# exactly once, and the database shows the whole run. The worker is killed
# with loomd (with the tool it runs, so the interrupted step's effect is lost):
# a task that was running is re-dispatched, so a tool that survived the
# crash would run its step a second time (at-least-once for that step).
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
start_loomd --db "$DB_URL"
start_worker_bg w1
mkdir -p "$TMP/fx"
id=$("$BIN/loom" run "$ROOT/tests/pg/workflows/chain.yaml" --input dir="$TMP/fx" \
     --input pause=3 --no-wait) || fail "submit failed"
# acknowledged => its row is durable
[ "$(q "SELECT count(*) FROM runs WHERE id = '$id'")" = 1 ] || fail "acked run $id not in the database"
# wait until s1 is stored as succeeded and s2 is running
wait_for 20 "SELECT string_agg(task_id || '=' || state, ',' ORDER BY task_id) FROM tasks WHERE run_id = '$id' AND state IN ('succeeded','running','assigned')" "s1=succeeded,s2=running"
kill -9 "$LOOMD_PID"
kill_tree "$WORKER_PID"
sleep 0.2
[ "$(cat "$TMP/fx/effects")" = "s1" ] || fail "before restart effects were: $(cat "$TMP/fx/effects")"
[ "$(q "SELECT state FROM runs WHERE id = '$id'")" = running ] || fail "run not left running"

restart_loomd --db "$DB_URL"
grep -q "run recovered.*run=$id" "$TMP/loomd.log" || fail "loomd did not recover $id"
start_worker_bg w2
wait_for 30 "SELECT state FROM runs WHERE id = '$id'" succeeded
[ "$(sort "$TMP/fx/effects" | tr '\n' ' ')" = "s1 s2 s3 " ] || fail "side effects: $(cat "$TMP/fx/effects")"
# from the database: outputs stitched across the restart, every step once,
# s1's output carried over (not recomputed: its worker was w1, the rest w2)
q "SELECT outputs FROM runs WHERE id = '$id'" | grep -q '"one-two-three"' || fail "outputs: $(q "SELECT outputs FROM runs WHERE id = '$id'")"
[ "$(q "SELECT string_agg(task_id || ':' || state, ',' ORDER BY task_id) FROM v_step_placement WHERE run_id = '$id'")" = "s1:succeeded,s2:succeeded,s3:succeeded" ] || fail "tasks: $(q "SELECT * FROM tasks WHERE run_id = '$id'")"
[ "$(q "SELECT worker_id FROM tasks WHERE run_id = '$id' AND task_id = 's1'")" = w1 ] || fail "s1 was recomputed"
[ "$(q "SELECT count(*) FROM v_run_events WHERE run_id = '$id' AND detail LIKE '%recovered after a loomd restart%'")" = 1 ] || fail "no recovery event"
[ "$(q "SELECT count(*) FROM sla_outcomes WHERE run_id = '$id'")" = 1 ] || fail "no SLA outcome"
"$BIN/loom" status "$id" | grep -q succeeded || fail "loom status after recovery"
echo ok
