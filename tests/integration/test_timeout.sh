#!/usr/bin/env bash
# timeout_ms: the tool and its child are killed, the run fails fast with a
# "timed out" error, and loomd keeps serving the next run.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd
start_worker w1
start=$(date +%s%N)
"$BIN/loom" run "$ROOT/tests/integration/workflows/timeout.yaml" --input dir="$TMP" --json \
  >"$TMP/out.json" 2>"$TMP/run.log"
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc -eq 1 ] || fail "expected exit 1, got $rc: $(cat "$TMP/run.log")"
grep -q "timed out" "$TMP/out.json" || fail "no 'timed out' in: $(cat "$TMP/out.json")"
[ $ms -lt 10000 ] || fail "timeout took ${ms} ms"
sleep 0.3
for f in slow.pid child.pid; do
  pid=$(cat "$TMP/$f" 2>/dev/null) || fail "tool did not start ($f)"
  alive "$pid" && fail "process $pid ($f) still alive after the timeout"
done
"$BIN/loom" run "$ROOT/tests/integration/workflows/stitch.yaml" --input who=x --quiet >/dev/null 2>&1 ||
  fail "loomd does not serve after a timeout"
echo ok
