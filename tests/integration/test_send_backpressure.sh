#!/usr/bin/env bash
# A worker that stops reading its socket (SIGSTOP) while loomd has big
# tasks for it: loomd's send queue to it fills (--worker-send-queue 1, 2 MB
# tasks, so the kernel's socket buffers fill after a few: 3 here). A full send
# queue is back-pressure, not a loss: loomd keeps the tasks, the worker is
# never declared lost, and once it reads again (SIGCONT) every run
# succeeds with each step run once, under attempt 1.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
N=10
start_loomd --worker-send-queue 1 --heartbeat-timeout-ms 60000 --placement least-loaded
start_worker bp --slots 1
python3 -c 'print("x" * (2 << 20), end="")' >"$TMP/big.txt"
cat >"$TMP/bp.yaml" <<EOF
version: 1
name: bp
inputs:
  s: {type: string}
steps:
  count:
    op: tool.exec
    argv: [sh, -c, 'n=\$(wc -c); echo "\$LOOM_TASK_KEY" >> "\$0"; echo \$n', "$TMP/ran"]
    stdin: \${inputs.s}
outputs:
  bytes: \${steps.count.output}
EOF
kill -STOP "$WORKER_PID"
ids=()
for i in $(seq $N); do
  ids+=("$("$BIN/loom" run "$TMP/bp.yaml" --input s=@"$TMP/big.txt" --no-wait)") || fail "submit $i"
done
for _ in $(seq 300); do grep -q "send queue is full" "$TMP/loomd.log" && break; sleep 0.1; done
grep -q "send queue is full" "$TMP/loomd.log" ||
  fail "loomd's send queue to the stopped worker never filled: the test did not exercise back-pressure"
kill -CONT "$WORKER_PID"
for id in "${ids[@]}"; do
  for _ in $(seq 600); do
    "$BIN/loom" status "$id" --json >"$TMP/st.json" 2>/dev/null &&
      grep -Eq '"state": "(succeeded|failed|cancelled)"' "$TMP/st.json" && break
    sleep 0.1
  done
  [ "$(jget "$TMP/st.json" '[d["state"], d["outputs"]["bytes"], [s["attempt"] for s in d["steps"]]]')" = \
    "[\"succeeded\", $((2 << 20)), [1]]" ] || fail "run $id: not succeeded once under attempt 1: $(head -c 600 "$TMP/st.json")"
done
[ "$(wc -l <"$TMP/ran")" = $N ] || fail "$(wc -l <"$TMP/ran") executions for $N steps"
[ "$(sort -u "$TMP/ran" | wc -l)" = $N ] || fail "a step ran twice"
! grep -qi "lost" "$TMP/loomd.log" || fail "the worker was declared lost"
[ "$(grep -c "worker registered" "$TMP/loomd.log")" = 1 ] || fail "the worker had to register again"
"$BIN/loom" workers --json >"$TMP/w.json" || fail "loom workers"
[ "$(jget "$TMP/w.json" '[(w["state"], w["tasks_done"]) for w in d if w["id"] == "bp"]')" = "[[\"ready\", $N]]" ] ||
  fail "worker state: $(cat "$TMP/w.json")"
echo "ok: $N runs of 2 MB tasks through a full send queue to a stopped worker; none lost, each step once"
