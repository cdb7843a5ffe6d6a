#!/usr/bin/env bash
# The operator dashboard with the PostgreSQL store: the same pages and
# checks as the in-memory test (tests/integration/dashboard.sh,
# dashboard_cdp.py) against loomd --db --http, plus the history page from
# the views. Then loomd restarts with an empty memory: List and Get (what
# the dashboard reads) still show the runs, their labels and fan-out items
# from PostgreSQL. /metrics from the first loomd passes `promtool check
# metrics` and counts the runs in the shared state vocabulary.
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
HP=$(free_port)
start_loomd --db "$DB_URL" --http "127.0.0.1:$HP"
STORE=pg HISTORY=1
. "$ROOT/tests/integration/dashboard.sh"
LOGS="$ROOT/$BUILD/test-logs"
curl -s "http://127.0.0.1:$HP/metrics" >"$LOGS/pg_dashboard_loomd.metrics.txt"
promtool check metrics <"$LOGS/pg_dashboard_loomd.metrics.txt" || fail "promtool rejected /metrics"
m() { grep -q "^$1\$" "$LOGS/pg_dashboard_loomd.metrics.txt" || fail "metrics: no '$1'"; }
m 'loom_runs_finished_total{state="succeeded"} 2'
m 'loom_runs_finished_total{state="failed"} 2'       # the failing run and its retry
m 'loom_runs_finished_total{state="cancelled"} 1'
m 'loom_workers{device_class="cpu"} 2'
m 'loom_db_up 1'
grep -q 'timed_out' "$LOGS/pg_dashboard_loomd.metrics.txt" && fail "metrics use a state word outside the vocabulary"

# history only: a new loomd, nothing in memory
wait_for 20 "SELECT count(*) FROM runs WHERE state IN ('succeeded', 'failed', 'cancelled')" 5
kill "$LOOMD_PID"; wait "$LOOMD_PID" 2>/dev/null
restart_loomd --db "$DB_URL" --http "127.0.0.1:$HP"
fan=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fan"])' "$TMP/runs.json")
"$BIN/loom" runs --label team=ops --json >"$TMP/history.json" || fail "loom runs from history"
/usr/bin/python3 - "$TMP/history.json" "$fan" <<'PY' || fail "history list: $(cat "$TMP/history.json")"
import json, sys
runs = json.load(open(sys.argv[1]))
# the labelled fan-out run, the labelled failing run and its retry
assert len(runs) == 3 and sys.argv[2] in [r["run_id"] for r in runs], runs
assert all(r["labels"]["team"] == "ops" for r in runs), runs
fan = next(r for r in runs if r["run_id"] == sys.argv[2])
assert fan["sla"] == "met" and fan["cost_usd"] > 0, fan
PY
curl -s "http://127.0.0.1:$HP/v1/runs/$fan" | /usr/bin/python3 -c '
import json, sys
run = json.load(sys.stdin)["run"]
items = [s for s in run["steps"] if s["step_id"].startswith("fan[")]
assert len(items) == 6 and all(s["worker_id"] for s in items), run["steps"]
assert {l["key"]: l["value"] for l in run["labels"]}["env"] == "test", run["labels"]' \
  || fail "Get from history lacks the fan-out items or labels"
echo ok
