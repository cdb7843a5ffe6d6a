# dashboard.sh — the dashboard test's body, sourced by
# tests/integration/test_dashboard.sh (in-memory store) and
# tests/pg/test_dashboard_loomd.sh (PostgreSQL) after start_loomd with
# --http 127.0.0.1:$HP: two priced CPU workers, four runs (a labelled
# fan-out run, a plain one, a labelled failing one with an SLA, a long one
# left running), then tests/integration/dashboard_cdp.py checks every page
# in headless Chromium. Screenshots: $BUILD/test-logs/dashboard_$STORE_*.png.
command -v chromium >/dev/null || { echo "skip: chromium not installed"; exit 77; }
/usr/bin/python3 -c 'import websocket' 2>/dev/null || { echo "skip: python3-websocket not installed"; exit 77; }
start_worker w1 --slots 2 --price 2.5
start_worker w2 --slots 1 --price 0.4
cat >"$TMP/fail.yaml" <<'YAML'
version: 1
name: explodes
sla: {latency_ms: 5000}
steps:
  explode:
    op: tool.exec
    argv: [sh, -c, 'echo boom >&2; exit 3']
YAML
wf=$ROOT/tests/integration/workflows
"$BIN/loom" run "$wf/stitch.yaml" --input who=dash --label team=ops --label env=test --quiet >/dev/null 2>&1 \
  || fail "the fan-out run failed"
"$BIN/loom" run "$wf/stitch.yaml" --input who=plain --quiet >/dev/null 2>&1 || fail "the plain run failed"
"$BIN/loom" run "$TMP/fail.yaml" --label team=ops --quiet >/dev/null 2>&1 && fail "the failing run succeeded"
running=$("$BIN/loom" run "$wf/cancel.yaml" --input dir="$TMP" --no-wait) || fail "submit the long run"
for _ in $(seq 100); do [ -s "$TMP/long.pid" ] && break; sleep 0.1; done
ids=$("$BIN/loom" runs --json | /usr/bin/python3 -c '
import json,sys
runs = json.load(sys.stdin)
def one(cond):
    m = [r["run_id"] for r in runs if cond(r)]
    assert len(m) == 1, m
    return m[0]
print(json.dumps({"fan": one(lambda r: r["workflow"] == "stitch" and "team" in r.get("labels", {})),
                  "plain": one(lambda r: r["workflow"] == "stitch" and "team" not in r.get("labels", {})),
                  "failed": one(lambda r: r["workflow"] == "explodes"),
                  "running": one(lambda r: r["workflow"] == "cancel-me"), "total": len(runs)}))') \
  || fail "loom runs --json"
echo "$ids" >"$TMP/runs.json"
LOGS="$ROOT/$BUILD/test-logs"; mkdir -p "$LOGS"
timeout 240 /usr/bin/python3 "$ROOT/tests/integration/dashboard_cdp.py" "http://127.0.0.1:$HP" "$TMP/runs.json" \
  "$LOGS/dashboard_$STORE" ${HISTORY:+--history} || fail "dashboard checks (screenshots: $LOGS/dashboard_${STORE}_*.png)"
