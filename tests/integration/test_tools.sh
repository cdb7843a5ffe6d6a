#!/usr/bin/env bash
# tool.exec: only allow-listed worker variables reach the tool (LOOM_SECRET
# and HOME do not), explicit env does, cwd and stdin templates work, parse
# text keeps "42\n"-style output as text and auto parses JSON. tool.http:
# GET of JSON from a local server; a 404 fails at once (4xx is not retried)
# with the status in the error; the worker keeps serving afterwards.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
mkdir -p "$TMP/www" "$TMP/cwd"
echo '{"k": [1, 2, 3]}' >"$TMP/www/data.json"
port=$(free_port)
(cd "$TMP/www" && exec python3 -m http.server "$port" --bind 127.0.0.1) >"$TMP/http.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/data.json" >/dev/null 2>&1 && break; sleep 0.05; done
start_loomd
LOOM_SECRET=leaked start_worker w1
url="http://127.0.0.1:$port"
"$BIN/loom" run "$ROOT/tests/integration/workflows/tools.yaml" --input dir="$TMP/cwd" --input url="$url" \
  --json >"$TMP/out.json" 2>"$TMP/run.log" || fail "run failed: $(cat "$TMP/run.log") $(cat "$TMP/out.json")"
python3 - "$TMP/out.json" "$TMP/cwd" <<'PY' || fail "outputs: $(cat "$TMP/out.json")"
import json, os, sys
o = json.load(open(sys.argv[1]))["outputs"]
assert o["env"] == "hi|nohome|nosecret", o["env"]       # allow-list: PATH only
assert os.path.realpath(o["where"]) == os.path.realpath(sys.argv[2]), o["where"]
assert o["count"].strip() == str(len("hi|nohome|nosecret")), o["count"]  # stdin, parse: text
assert o["number"] == 42, o["number"]                   # auto: JSON when it parses
assert o["status"] == 200 and o["body"] == {"k": [1, 2, 3]}, o
PY
"$BIN/loom" run "$ROOT/tests/integration/workflows/unknown_op.yaml" --input url="$url" --json \
  >"$TMP/404.json" 2>"$TMP/404.log"
rc=$?
[ $rc -eq 1 ] || fail "a 404 should fail the run (exit 1), got $rc"
python3 - "$TMP/404.json" <<'PY' || fail "404 report: $(cat "$TMP/404.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert "answered 404" in d["error"], d["error"]
s = [x for x in d["steps"] if x["step"] == "missing"][0]
assert s["attempt"] == 1, s                              # 4xx: not retried
PY
"$BIN/loom" run "$ROOT/tests/integration/workflows/stitch.yaml" --input who=x --quiet >/dev/null 2>&1 ||
  fail "worker stopped serving"
echo ok
