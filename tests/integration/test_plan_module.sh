#!/usr/bin/env bash
# The partitioned MLIR module is what runs (issue 18): a run's tasks go to
# the devices (worker ids) its module's functions name, `loom status --mlir`
# prints that module, `loom run --plan FILE.mlir` follows an edited module
# (op c moved to the other worker; a and b split with a send/recv pair), and
# a module that does not verify, names a device that is not a ready
# worker, or puts an op on a worker that cannot run it, is refused at submit
# with the reason, located at the op in the module.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
WF="$ROOT/tests/integration/workflows/plan_module.yaml"
GEN="$ROOT/tests/integration/plan_module.py"
start_loomd
start_worker w-a
start_worker w-b

# where a run's steps ran: "a=w-x b=w-y c=w-z" (sorted by step)
ran_on() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"] == "succeeded", d
print(" ".join(sorted("%s=%s" % (s["step"], s["worker"]) for s in d["steps"])))' "$1"
}
# where a module places each node, the same way
placed_by() {
  python3 -c 'import re,sys
t = open(sys.argv[1]).read()
print(" ".join(sorted("%s=%s" % (m.group(1), m.group(2)) for m in
      re.finditer(r"\"loom\.tool\".*?node = \"(\w+)\".*?target = \"([\w-]+)\"", t))))' "$1"
}

# 1. a planned run: its module is stored with it and is where its tasks went
"$BIN/loom" run "$WF" --input who=x --json >"$TMP/r1.json" 2>"$TMP/run1.log" || fail "run 1: $(cat "$TMP/run1.log")"
run1=$(jget "$TMP/r1.json" 'd["run_id"]')
"$BIN/loom" status "$run1" --mlir >"$TMP/m1.mlir" || fail "loom status --mlir printed no module"
grep -q 'func.func @"plan-module@w-' "$TMP/m1.mlir" || fail "not a device function: $(cat "$TMP/m1.mlir")"
[ "$(ran_on "$TMP/r1.json")" = "$(placed_by "$TMP/m1.mlir")" ] ||
  fail "run 1 ran on $(ran_on "$TMP/r1.json"), its module says $(placed_by "$TMP/m1.mlir")"

# 2. an edited module: c on the worker the planner did not give it, a and b
# on different workers (b receives a's output through the send/recv pair)
c1=$(ran_on "$TMP/r1.json" | sed -n 's/.*c=\([^ ]*\).*/\1/p')
other=$([ "$c1" = w-a ] && echo w-b || echo w-a)
python3 "$GEN" "$c1" "$other" "$other" >"$TMP/m2.mlir"
"$BIN/loom" run "$WF" --input who=y --plan "$TMP/m2.mlir" --json >"$TMP/r2.json" 2>"$TMP/run2.log" ||
  fail "run 2 (edited module): $(cat "$TMP/run2.log")"
want="a=$c1 b=$other c=$other"
[ "$(ran_on "$TMP/r2.json")" = "$want" ] || fail "edited module: ran on $(ran_on "$TMP/r2.json"), module says $want"
[ "$(jget "$TMP/r2.json" 'd["outputs"]["b"]')" = "b:a:y" ] || fail "wrong output: $(cat "$TMP/r2.json")"
run2=$(jget "$TMP/r2.json" 'd["run_id"]')
"$BIN/loom" status "$run2" --mlir >"$TMP/m2-stored.mlir" || fail "run 2 has no module"
[ "$(placed_by "$TMP/m2-stored.mlir")" = "$want" ] || fail "run 2's stored module: $(placed_by "$TMP/m2-stored.mlir")"

# 3. refused at submit: a module that does not verify (MLIR's diagnostic),
# and one naming a device that is not a ready worker
python3 "$GEN" w-a w-b w-b --break >"$TMP/bad.mlir"
if "$BIN/loom" run "$WF" --input who=z --plan "$TMP/bad.mlir" 2>"$TMP/bad.log"; then fail "unverifiable module accepted"; fi
grep -q "INVALID_ARGUMENT" "$TMP/bad.log" && grep -q "plan.mlir:[0-9]*:[0-9]*" "$TMP/bad.log" ||
  fail "no located diagnostic: $(cat "$TMP/bad.log")"
python3 "$GEN" w-a w-nowhere w-a >"$TMP/gone.mlir"
if "$BIN/loom" run "$WF" --input who=z --plan "$TMP/gone.mlir" 2>"$TMP/gone.log"; then fail "module on an unknown device accepted"; fi
grep -q "plan.mlir:[0-9]*:[0-9]*.*w-nowhere.*not a ready worker" "$TMP/gone.log" ||
  fail "unclear refusal: $(cat "$TMP/gone.log")"
# a worker that does not run echo: a module putting b there is refused at b's op
start_worker w-tools --ops tool.exec
python3 "$GEN" w-a w-tools w-a >"$TMP/unable.mlir"
line=$(grep -n 'node = "b"' "$TMP/unable.mlir" | cut -d: -f1)
if "$BIN/loom" run "$WF" --input who=z --plan "$TMP/unable.mlir" 2>"$TMP/unable.log"; then
  fail "module with an op on a worker that cannot run it accepted"
fi
grep -q "plan.mlir:$line:[0-9]*.*node 'b' (echo) on device 'w-tools', which does not run echo" "$TMP/unable.log" ||
  fail "capability refusal not located at b's op (line $line): $(cat "$TMP/unable.log")"
echo ok
