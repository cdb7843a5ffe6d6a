#!/usr/bin/env bash
# tool.http against a real local HTTP server (http_echo.py): every method
# (GET POST PUT PATCH DELETE HEAD) with JSON and text bodies and headers
# arrives as sent; expect_status accepts listed codes/classes; parse: text
# keeps JSON as text. Failures: a status outside expect_status (not
# retried), parse: json on a text answer, a response over max_output_bytes,
# the step's timeout_ms, and 503s retried until the server recovers.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
/usr/bin/python3 "$ROOT/tests/integration/http_echo.py" "$TMP/port" 2>"$TMP/http.log" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$TMP/port" ] && break; sleep 0.05; done
[ -s "$TMP/port" ] || fail "http_echo.py did not start"
url="http://127.0.0.1:$(cat "$TMP/port")"
start_loomd
start_worker w1
"$BIN/loom" run "$ROOT/tests/integration/workflows/http_methods.yaml" --input url="$url" --input q=why \
  --json >"$TMP/out.json" 2>"$TMP/run.log" || fail "run failed: $(cat "$TMP/run.log") $(cat "$TMP/out.json")"
/usr/bin/python3 - "$TMP/out.json" <<'PY' || fail "outputs: $(cat "$TMP/out.json")"
import json, sys
o = json.load(open(sys.argv[1]))["outputs"]
g = o["get"]
assert g["status"] == 200 and g["headers"]["content-type"] == "application/json", g
assert g["body"]["method"] == "GET" and g["body"]["path"] == "/get?q=why", g
assert g["body"]["headers"]["x-token"] == "t-why" and g["body"]["body"] == "", g
p = o["post_json"]
assert p["method"] == "POST" and p["headers"]["content-type"] == "application/json", p
assert json.loads(p["body"]) == {"q": "why", "n": 3, "tags": ["a", "b"]}, p
t = o["post_text"]   # a string body defaults to POST, sent as text
assert t["method"] == "POST" and t["body"] == "hello why", t
assert t["headers"]["content-type"].startswith("text/plain"), t
u = o["put"]
assert u["method"] == "PUT" and json.loads(u["body"]) == [1, 2, "GET"], u
a = o["patch"]
assert a["method"] == "PATCH" and json.loads(a["body"]) == {"n": 4}, a
assert a["headers"]["content-type"] == "application/merge-patch+json", a   # header wins
d = o["delete"]
assert d["method"] == "DELETE" and d["path"] == "/items/1" and d["body"] == "", d
h = o["head"]
assert h["status"] == 200 and h["body"] is None and h["headers"]["x-echo-method"] == "HEAD", h
assert o["created"] == 201 and o["missing_ok"] == 404, o
assert o["text"] == "plain words, not JSON", o["text"]
assert isinstance(o["raw"], str) and json.loads(o["raw"])["method"] == "GET", o["raw"]
PY

# fail_case NAME YAML-STEP-FIELDS EXPECTED-ERROR-SUBSTRING ATTEMPTS
fail_case() {
  cat >"$TMP/$1.yaml" <<YAML
version: 1
name: $1
steps:
  call:
    op: tool.http
$2
YAML
  "$BIN/loom" run "$TMP/$1.yaml" --json >"$TMP/$1.json" 2>"$TMP/$1.err"
  local rc=$?
  [ $rc -eq 1 ] || fail "$1: run should fail (exit 1), got $rc: $(cat "$TMP/$1.json" "$TMP/$1.err")"
  /usr/bin/python3 - "$TMP/$1.json" "$3" "$4" <<'PY' || fail "$1: $(cat "$TMP/$1.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert sys.argv[2] in d["error"], d["error"]
s = [x for x in d["steps"] if x["step"] == "call"][0]
assert s["attempt"] == int(sys.argv[3]), s
PY
}
fail_case unexpected "    url: $url/status/200
    expect_status: [201, 202]
    retries: 2" "answered 200 (not in expect_status)" 1
fail_case notjson "    url: $url/text
    parse: json" "with a body that is not JSON" 1
fail_case toobig "    url: $url/big/100000
    max_output_bytes: 1000" "larger than 1000 bytes" 1
fail_case slow "    url: $url/slow/20000
    timeout_ms: 600" "timed out" 1
fail_case down "    url: $url/flaky/down/5
    retries: 1" "answered 503" 2
# 503 twice, then 200: retried (5xx is retryable) and succeeds on attempt 3.
cat >"$TMP/flaky.yaml" <<YAML
version: 1
name: flaky
steps:
  call: {op: tool.http, url: "$url/flaky/up/2", retries: 3}
outputs:
  method: \${steps.call.output.body.method}
YAML
"$BIN/loom" run "$TMP/flaky.yaml" --json >"$TMP/flaky.json" 2>"$TMP/flaky.err" ||
  fail "flaky: $(cat "$TMP/flaky.json" "$TMP/flaky.err")"
/usr/bin/python3 - "$TMP/flaky.json" <<'PY' || fail "flaky: $(cat "$TMP/flaky.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["outputs"]["method"] == "GET", d
assert [x for x in d["steps"] if x["step"] == "call"][0]["attempt"] == 3, d
PY
echo ok
