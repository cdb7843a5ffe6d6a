#!/usr/bin/env bash
# cancel: the running tool is killed, later steps never run, the run ends
# cancelled, and `loom run` following it exits 1.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd
start_worker w1
"$BIN/loom" run "$ROOT/tests/integration/workflows/cancel.yaml" --input dir="$TMP" --json \
  >"$TMP/out.json" 2>"$TMP/run.log" &
runner=$!
for _ in $(seq 100); do [ -s "$TMP/long.pid" ] && break; sleep 0.05; done
[ -s "$TMP/long.pid" ] || fail "long step did not start"
id=$("$BIN/loom" runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
"$BIN/loom" cancel "$id" >"$TMP/cancel.txt" || fail "cancel failed"
grep -q cancelled "$TMP/cancel.txt" || fail "cancel said: $(cat "$TMP/cancel.txt")"
wait $runner; rc=$?
[ $rc -eq 1 ] || fail "loom run of a cancelled run should exit 1, got $rc"
sleep 0.3
alive "$(cat "$TMP/long.pid")" && fail "the running tool was not killed"
[ -e "$TMP/after.ran" ] && fail "a step after the cancel ran"
"$BIN/loom" status "$id" --json | grep -q '"state": "cancelled"' || fail "status is not cancelled"
# cancelling again reports the final state, cancelling nonsense is the user's error
"$BIN/loom" cancel "$id" | grep -q cancelled || fail "second cancel"
"$BIN/loom" cancel r-nope 2>"$TMP/err.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "your request" "$TMP/err.txt" || fail "unknown run: rc=$rc $(cat "$TMP/err.txt")"
# loom retry: a new run of the cancelled one, labelled retry_of; a retry of
# an active run is the user's error; then cancel it too
rm -f "$TMP/long.pid"
new=$("$BIN/loom" retry "$id") || fail "loom retry"
[ -n "$new" ] && [ "$new" != "$id" ] || fail "retry gave '$new'"
"$BIN/loom" retry "$new" 2>"$TMP/err.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "still active" "$TMP/err.txt" || fail "retry of an active run: rc=$rc $(cat "$TMP/err.txt")"
"$BIN/loom" runs --label "retry_of=$id" --json | grep -q "\"run_id\": \"$new\"" || fail "runs --label retry_of"
"$BIN/loom" cancel "$new" | grep -q cancelled || fail "cancel the retry"
# a run with secret inputs cannot be retried (they were never stored)
printf 'version: 1\nname: secretive\ninputs:\n  key: {type: string, secret: true}\nsteps:\n  s: {op: echo, value: ok}\n' >"$TMP/secret.yaml"
"$BIN/loom" run "$TMP/secret.yaml" --input key=hush --quiet >/dev/null 2>&1 || fail "secret run"
sid=$("$BIN/loom" runs --workflow secretive --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
"$BIN/loom" retry "$sid" 2>"$TMP/err.txt"; rc=$?
[ $rc -eq 1 ] && grep -q "secret inputs" "$TMP/err.txt" || fail "retry of a run with secrets: rc=$rc $(cat "$TMP/err.txt")"
echo ok
