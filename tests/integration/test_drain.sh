#!/usr/bin/env bash
# SIGTERM drains a worker: it finishes the task it runs (reported once, not
# re-run), takes no new ones (loomd places the next step on another worker),
# then exits.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd --heartbeat-ms 100 --heartbeat-timeout-ms 1000
start_worker w1; pid_w1=$WORKER_PID
"$BIN/loom" run "$ROOT/tests/integration/workflows/killme.yaml" --input dir="$TMP" --json \
  >"$TMP/out.json" 2>"$TMP/run.log" &
runner=$!
for _ in $(seq 600); do grep -q b-start "$TMP/effects" 2>/dev/null && break; sleep 0.05; done
grep -q b-start "$TMP/effects" || fail "step b did not start"
start_worker w2
kill -TERM "$pid_w1"
# b finishes once w1 drains (it waits for the go file); c then goes to w2
for _ in $(seq 200); do grep -q "draining before exit" "$TMP/w1.log" && break; sleep 0.05; done
touch "$TMP/go"
wait $runner || fail "run failed: $(cat "$TMP/run.log")"
for _ in $(seq 100); do alive "$pid_w1" || break; sleep 0.05; done
alive "$pid_w1" && fail "the drained worker did not exit"
python3 - "$TMP/out.json" "$TMP/effects" <<'PY' || fail "assertions failed"
import json, sys
d = json.load(open(sys.argv[1]))
eff = open(sys.argv[2]).read().split()
assert d["state"] == "succeeded", d
assert eff.count("b-start") == 1 and eff.count("b-done") == 1, eff   # finished, not re-run
s = {x["step"]: x for x in d["steps"]}
assert s["b"]["worker"] == "w1" and s["b"]["attempt"] == 1, s["b"]
assert s["c"]["worker"] == "w2", s["c"]                              # no new work on w1
PY
grep -q "draining before exit" "$TMP/w1.log" || fail "w1 did not log its drain"
echo ok
