#!/usr/bin/env bash
# Model endpoints, protocol behaviour, against a FAKE OpenAI-compatible
# server (openai_fake_server.py: real HTTP, scripted answers): a streamed
# chat answer (first delta null) arrives whole and as progress pieces, the
# API key from the worker's environment goes as a Bearer token, format: json
# becomes response_format and the output JSON; embeddings keep input order;
# 429s are retried (Retry-After) until they pass; max_concurrency bounds the
# calls in flight; a 503 after its retries, a 400 (not retried), an error
# event inside a 200 stream, a missing secret and the step's timeout each
# fail the step with the HTTP status or cause in the error.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
/usr/bin/python3 "$ROOT/tests/integration/openai_fake_server.py" "$TMP/port" 2>"$TMP/server.log" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$TMP/port" ] && break; sleep 0.05; done
[ -s "$TMP/port" ] || fail "openai_fake_server.py did not start"
EP="http://127.0.0.1:$(cat "$TMP/port")/v1"
start_loomd
TEST_KEY=sk-test-123 start_worker w1 --slots 8

cat >"$TMP/ok.yaml" <<YAML
version: 1
name: endpoint-ok
resources:
  models:
    chat: {endpoint: "$EP", model: echo, api_key_secret: TEST_KEY}
    flaky: {endpoint: "$EP", model: flaky, retries: 3}
    busy: {endpoint: "$EP", model: busy, max_concurrency: 2}
    emb: {endpoint: "$EP", model: embedder}
steps:
  hello:
    op: llm.generate
    model: chat
    system: Be brief.
    prompt: hello world from loom
    max_tokens: 16
    temperature: 0
  js:
    op: llm.generate
    model: chat
    prompt: '{"a": [1, 2], "b": "c"}'
    format: json
  retry:
    op: llm.generate
    model: flaky
    prompt: third time lucky
  many:
    op: llm.generate
    model: busy
    foreach: [1, 2, 3, 4, 5, 6]
    prompt: "item \${item}"
  vec:
    op: embed
    model: emb
    input: ["a b c", "dddd"]
outputs:
  hello: \${steps.hello.output}
  js: \${steps.js.output}
  retry: \${steps.retry.output}
  many: \${steps.many.output}
  vec: \${steps.vec.output}
YAML
"$BIN/loom" run "$TMP/ok.yaml" --json >"$TMP/ok.json" 2>"$TMP/ok.log" ||
  fail "run failed: $(cat "$TMP/ok.log" "$TMP/ok.json")"
curl -s "$EP/../stats" >"$TMP/stats.json"
/usr/bin/python3 - "$TMP/ok.json" "$TMP/stats.json" <<'PY' || fail "outputs: $(cat "$TMP/ok.json") stats: $(head -c 2000 "$TMP/stats.json")"
import json, sys
o = json.load(open(sys.argv[1]))["outputs"]
st = json.load(open(sys.argv[2]))
assert o["hello"] == "hello world from loom", o["hello"]
assert o["js"] == {"a": [1, 2], "b": "c"}, o["js"]
assert o["retry"] == "third time lucky", o["retry"]
assert o["many"] == ["item %d" % i for i in range(1, 7)], o["many"]
assert o["vec"] == [[5.0, 2.0, 1.0], [4.0, 0.0, 1.0]], o["vec"]
reqs = st["requests"]
hello = [r for r in reqs if r.get("messages", [{}])[-1].get("content") == "hello world from loom"][0]
assert hello["stream"] is True and hello["model"] == "echo" and hello["max_tokens"] == 16, hello
assert hello["messages"][0] == {"role": "system", "content": "Be brief."}, hello
js = [r for r in reqs if "format" not in r and r.get("response_format")][0]
assert js["response_format"] == {"type": "json_object"}, js
assert "Bearer sk-test-123" in st["auth"], st["auth"]
assert st["flaky_calls"] == 3, st["flaky_calls"]          # two 429s, then the answer
assert st["max_in_flight"] == 2, st["max_in_flight"]      # max_concurrency: 2 of 6
PY
grep -q 'model=echo .*tokens=4 .*attempts=1' "$TMP/w1.log" || fail "hello not logged: $(grep generated "$TMP/w1.log")"
grep -q 'model=flaky .*attempts=3' "$TMP/w1.log" || fail "flaky attempts: $(grep generated "$TMP/w1.log")"
grep -q 'model=echo .*streamed=4' "$TMP/w1.log" || fail "no streamed pieces: $(grep generated "$TMP/w1.log")"

# fail_case NAME MODEL-FIELDS STEP-EXTRA EXPECTED-ERROR ATTEMPT
fail_case() {
  cat >"$TMP/$1.yaml" <<YAML
version: 1
name: $1
resources:
  models:
    m: {endpoint: "$EP", $2}
steps:
  call: {op: llm.generate, model: m, prompt: "x y", $3}
YAML
  "$BIN/loom" run "$TMP/$1.yaml" --json >"$TMP/$1.json" 2>"$TMP/$1.err"
  local rc=$?
  [ $rc -eq 1 ] || fail "$1: run should fail (exit 1), got $rc: $(cat "$TMP/$1.json" "$TMP/$1.err")"
  /usr/bin/python3 - "$TMP/$1.json" "$4" "$5" <<'PY' || fail "$1: $(cat "$TMP/$1.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert sys.argv[2] in d["error"], d["error"]
s = [x for x in d["steps"] if x["step"] == "call"][0]
assert s["attempt"] == int(sys.argv[3]), s
PY
}
fail_case down "model: down, retries: 1" "retries: 1" "answered HTTP 503: overloaded" 2
fail_case bad "model: bad" "retries: 2" "answered HTTP 400: max_tokens is too large" 1
fail_case crash "model: crash, retries: 0" "retries: 0" "then an error in the stream: the model crashed mid-answer" 1
fail_case nokey "model: echo, api_key_secret: NO_SUCH_KEY" "retries: 1" "secret 'NO_SUCH_KEY'" 1
fail_case slow "model: slow, retries: 0" "timeout_ms: 1500" "timed out" 1
echo ok
