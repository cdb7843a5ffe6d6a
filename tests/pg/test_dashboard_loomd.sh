#!/usr/bin/env bash
# The dashboard of a real loomd --db --http after real runs: three runs of
# the chain workflow through two CPU workers; headless Chromium loads the
# page and the fleet (2 workers), runs (3 recent, 0 live) and SLA
# (pg-chain: 3 runs, 3 met, 100.0%) panels must show those numbers; a
# screenshot is saved under build/test-logs/. /metrics from the same loomd
# passes `promtool check metrics` and counts the runs.
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
command -v chromium >/dev/null || { echo "skip: chromium not installed"; exit 77; }
HP=$(free_port)
start_loomd --db "$DB_URL" --http "127.0.0.1:$HP"
start_worker_bg w1
start_worker_bg w2
mkdir -p "$TMP/fx"
for i in 1 2 3; do
  "$BIN/loom" run "$ROOT/tests/pg/workflows/chain.yaml" --input dir="$TMP/fx" --input pause=0.05 \
    --quiet >/dev/null 2>&1 || fail "run $i failed"
done
wait_for 10 "SELECT count(*) FROM sla_outcomes" 3
LOGS="$ROOT/$BUILD/test-logs"; mkdir -p "$LOGS"
chrome() {
  local d; d=$(mktemp -d)
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
    --user-data-dir="$d" --virtual-time-budget=8000 "$@" "http://127.0.0.1:$HP/" 2>/dev/null
  rm -rf "$d"
}
chrome --dump-dom >"$LOGS/pg_dashboard_loomd.html"
dom="$LOGS/pg_dashboard_loomd.html"
grep -q 'data-loaded="yes"' "$dom" || fail "dashboard did not load (see $dom)"
text() { sed -n "s/.*id=\"$1\"[^>]*>\([^<]*\)<.*/\1/p" "$dom" | head -1; }
[ "$(text fleet-workers)" = 2 ] || fail "fleet workers: $(text fleet-workers)"
[ "$(text runs-recent)" = 3 ] || fail "recent runs: $(text runs-recent)"
[ "$(text runs-live)" = 0 ] || fail "live runs: $(text runs-live)"
grep -q '<tr data-workflow="pg-chain"><td>pg-chain</td><td class="num">3</td><td class="num met">3</td><td class="num missed">0</td><td class="num">100.0%</td>' "$dom" \
  || fail "SLA panel wrong: $(grep -o '<tr data-workflow[^/]*' "$dom" | head -2)"
grep -q 'data-task="s3" data-device="cpu"' "$dom" || fail "no DAG for the newest run"
chrome --window-size=1400,1800 --screenshot="$LOGS/pg_dashboard_loomd.png" >/dev/null
[ -s "$LOGS/pg_dashboard_loomd.png" ] || fail "no screenshot"
curl -s "http://127.0.0.1:$HP/metrics" >"$LOGS/pg_dashboard_loomd.metrics.txt"
promtool check metrics <"$LOGS/pg_dashboard_loomd.metrics.txt" || fail "promtool rejected /metrics"
grep -q '^loom_runs_finished_total{state="succeeded"} 3$' "$LOGS/pg_dashboard_loomd.metrics.txt" || fail "metrics runs"
grep -q '^loom_workers{device_class="cpu"} 2$' "$LOGS/pg_dashboard_loomd.metrics.txt" || fail "metrics workers"
grep -q '^loom_db_up 1$' "$LOGS/pg_dashboard_loomd.metrics.txt" || fail "metrics db_up"
echo ok
