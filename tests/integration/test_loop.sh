#!/usr/bin/env bash
# Bounded loops: until: stops the first loop after 3 iterations (loop.prev
# seen), max_iterations stops the second after 4.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
start_loomd
start_worker w1
"$BIN/loom" run "$ROOT/tests/integration/workflows/loop.yaml" --input dir="$TMP" --json \
  >"$TMP/out.json" 2>"$TMP/run.log" || fail "run failed: $(cat "$TMP/run.log")"
python3 - "$TMP/out.json" <<'PY' || fail "bad outputs: $(cat "$TMP/out.json")"
import json, sys
o = json.load(open(sys.argv[1]))["outputs"]
assert o["n"] == 3 and o["prev"]["n"] == 2 and o["prev"]["prev"]["n"] == 1, o
assert o["prev"]["prev"]["prev"] is None, o  # loop.prev is null on iteration 0
assert o["iterations"] == 3 and o["capped"] == 4 and o["last"] == "iteration 3", o
PY
echo ok
