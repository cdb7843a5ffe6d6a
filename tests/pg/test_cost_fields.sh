#!/usr/bin/env bash
# The engine's cost and prediction fields, from the views of a real
# PostgreSQL: loomd --db --placement planner with two CPU workers that
# register different prices runs the chain workflow; then every step has a
# prediction (v_cost_model_error), an actual cost = wall time x the chosen
# worker's price (v_step_placement), the run's cost is the sum of its task
# costs (v_cost_per_run), the reason names the chosen worker and its class,
# and needs holds the DAG edges. A second run under the default
# least-loaded policy has its reason and no predictions.
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
start_loomd --db "$DB_URL" --placement planner
# worker NAME PRICE — a CPU worker registering PRICE $/h; waits until registered
worker() {
  (cd "$ROOT" && exec "$BIN/loom-worker-cpu" --endpoint "$WORKER_EP" --id "$1" --price "$2") \
    >>"$TMP/$1.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 100); do
    "$BIN/loom" workers --json 2>/dev/null | grep -q "\"id\": \"$1\"" && return 0
    sleep 0.05
  done
  fail "worker $1 did not register"
}
worker wcheap 0.5
worker wdear 40
mkdir -p "$TMP/fx"
"$BIN/loom" run "$ROOT/tests/pg/workflows/chain.yaml" --input dir="$TMP/fx" --input pause=0.2 \
  --quiet >/dev/null 2>&1 || fail "planned run failed"
wait_for 10 "SELECT count(*) FROM sla_outcomes" 1
RUN=$(q "SELECT id FROM runs ORDER BY submitted_at DESC LIMIT 1")
echo "planned run $RUN:"
q "SELECT step_id, worker_id, needs, predicted_ms, actual_ms, cost, reason FROM v_step_placement
   WHERE run_id = '$RUN' ORDER BY step_id"
price() { case $1 in wcheap) echo 0.5 ;; wdear) echo 40 ;; *) echo 0 ;; esac; }
for s in s1 s2 s3; do
  row=$(q "SELECT worker_id, device_class, reason, predicted_ms > 0, predicted_ms IS NOT NULL,
                  actual_ms > 0, cost > 0, cost FROM v_step_placement WHERE run_id = '$RUN' AND step_id = '$s'")
  IFS='|' read -r w dc reason pred_pos pred_set act_pos cost_pos cost <<<"$row"
  [ -n "$w" ] || fail "$s: no worker in v_step_placement"
  [ "$dc" = cpu ] || fail "$s: device class [$dc]"
  [ "$pred_set" = t ] && [ "$pred_pos" = t ] || fail "$s: no predicted_ms"
  [ "$act_pos" = t ] || fail "$s: no actual_ms"
  [ "$cost_pos" = t ] || fail "$s: cost not > 0 ($cost)"
  case "$reason" in "planned: cpu worker $w ("*) ;; *) fail "$s: reason does not name the chosen worker $w: [$reason]" ;; esac
  # actual cost = actual wall ms x price / 3,600,000 (same timestamps)
  ok=$(q "SELECT abs(cost - actual_ms * $(price "$w") / 3600000.0) < 1e-12 FROM v_step_placement
          WHERE run_id = '$RUN' AND step_id = '$s'")
  [ "$ok" = t ] || fail "$s: cost is not wall time x price of $w"
  pc=$(q "SELECT predicted_cost > 0 FROM tasks WHERE run_id = '$RUN' AND step_id = '$s'")
  [ "$pc" = t ] || fail "$s: no predicted_cost"
done
# the plan with a loose SLA puts every step on the cheaper worker
[ "$(q "SELECT string_agg(DISTINCT worker_id, ',') FROM tasks WHERE run_id = '$RUN'")" = wcheap ] \
  || fail "plan did not choose the cheaper worker"
[ "$(q "SELECT count(*) FROM tasks WHERE run_id = '$RUN' AND reason LIKE '%runner-up wdear%'")" = 3 ] \
  || fail "reason does not carry the runner-up"
[ "$(q "SELECT count(*) FROM v_cost_model_error WHERE run_id = '$RUN'")" = 3 ] || fail "cost model error rows"
[ "$(q "SELECT bool_and(actual_ms > 0 AND predicted_ms > 0) FROM v_cost_model_error WHERE run_id = '$RUN'")" = t ] \
  || fail "cost model error values"
[ "$(q "SELECT tasks FROM v_cost_model_error_by_op WHERE op = 'tool.exec' AND device_class = 'cpu'")" = 3 ] \
  || fail "cost model error by op"
[ "$(q "SELECT cost > 0 AND abs(cost - (SELECT sum(cost) FROM tasks WHERE run_id = '$RUN')) < 1e-15
        FROM v_cost_per_run WHERE run_id = '$RUN'")" = t ] || fail "run cost is not > 0 and the sum of task costs"
got=$(q "SELECT runs || '|' || (total_cost > 0)::text FROM v_cost_per_workflow WHERE workflow = 'pg-chain'")
[ "$got" = '1|true' ] || fail "cost per workflow: [$got]"
[ "$(q "SELECT string_agg(step_id || '=' || needs, ' ' ORDER BY step_id) FROM tasks WHERE run_id = '$RUN'")" \
  = 's1=[] s2=["s1"] s3=["s2"]' ] || fail "needs (DAG edges)"

# The least-loaded policy: its reason, no predictions, costs still measured.
kill "$LOOMD_PID"; wait "$LOOMD_PID" 2>/dev/null
restart_loomd --db "$DB_URL" --placement least-loaded
sleep 1.5 # workers re-register with the new loomd
for _ in $(seq 100); do
  [ "$("$BIN/loom" workers --json 2>/dev/null | grep -c '"id": "w')" = 2 ] && break; sleep 0.05
done
"$BIN/loom" run "$ROOT/tests/pg/workflows/chain.yaml" --input dir="$TMP/fx" --input pause=0.05 \
  --quiet >/dev/null 2>&1 || fail "least-loaded run failed"
wait_for 10 "SELECT count(*) FROM sla_outcomes" 2
RUN2=$(q "SELECT id FROM runs ORDER BY submitted_at DESC LIMIT 1")
q "SELECT step_id, worker_id, needs, predicted_ms, cost, reason FROM v_step_placement
   WHERE run_id = '$RUN2' ORDER BY step_id"
[ "$(q "SELECT count(*) FROM tasks WHERE run_id = '$RUN2' AND predicted_ms IS NULL AND predicted_cost IS NULL
        AND reason LIKE 'least-loaded worker of a kind that runs tool.exec (cpu worker ' || worker_id || ')'
        AND cost > 0")" = 3 ] || fail "least-loaded run: reasons / predictions / costs"
[ "$(q "SELECT string_agg(step_id || '=' || needs, ' ' ORDER BY step_id) FROM tasks WHERE run_id = '$RUN2'")" \
  = 's1=[] s2=["s1"] s3=["s2"]' ] || fail "least-loaded run: needs"
echo ok
