#!/usr/bin/env bash
# One workflow across all four kinds of model and tool, every one real:
#  - a built-in GGUF step: a generated model on the real CPU engine,
#    schema-constrained (Loom's grammar);
#  - endpoint steps against a REAL OpenAI-compatible server: llama.cpp
#    through node-llama-cpp (deploy/npm/openai-server.mjs) serving
#    generated GGUF files — a streamed chat completion whose schema goes
#    as response_format (llama.cpp's grammar enforces it) and embeddings;
#  - a tool.mcp step on the real @modelcontextprotocol/server-everything
#    (stdio; the echo tool found by tools/list, not by name);
#  - a tool.http POST to a real local HTTP server (tests/integration/http_echo.py).
# Each step's output feeds the next; outputs are checked exactly where the
# value is determined (enum, echo, POST body) and by shape where a random
# model writes it. The protocol corner cases (429 retry, timeouts, errors
# mid-stream) are in test_endpoint_fake_server.sh.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
NPM_DIR=${LOOM_NPM_DIR:-$ROOT/var/npm}
NPM=$NPM_DIR/node_modules/.bin
if [ ! -x "$NPM/mcp-server-everything" ] || [ ! -d "$NPM_DIR/node_modules/node-llama-cpp" ]; then
  echo "SKIP: MCP servers or node-llama-cpp not installed in $NPM_DIR (deploy/install-npm.sh needs npm and the npm registry)"
  exit 77
fi
PY=/usr/bin/python3
"$PY" "$ROOT/tests/llm/gen_gguf.py" --arch llama --type Q8_0 -o "$TMP/tiny.gguf" >/dev/null || fail "gen_gguf llama"
"$PY" "$ROOT/tests/llm/gen_gguf.py" --arch llama --type Q8_0 --seed 7 -o "$TMP/served.gguf" >/dev/null || fail "gen_gguf served"
"$PY" "$ROOT/tests/llm/gen_gguf.py" --arch bert --type F16 -o "$TMP/embed.gguf" >/dev/null || fail "gen_gguf bert"
node "$ROOT/deploy/npm/openai-server.mjs" --npm-dir "$NPM_DIR" --model chat="$TMP/served.gguf" \
  --embed minilm="$TMP/embed.gguf" --threads 1 --port-file "$TMP/oport" 2>"$TMP/openai.log" &
OPENAI_PID=$!; PIDS+=($OPENAI_PID)
"$PY" "$ROOT/tests/integration/http_echo.py" "$TMP/hport" 2>"$TMP/http.log" &
PIDS+=($!)
# node's start and llama.cpp's model load take seconds on a loaded machine: up to 2 minutes
for _ in $(seq 1200); do
  [ -s "$TMP/oport" ] && [ -s "$TMP/hport" ] && break
  alive "$OPENAI_PID" || fail "the llama.cpp server exited: $(cat "$TMP/openai.log")"
  sleep 0.1
done
[ -s "$TMP/oport" ] && [ -s "$TMP/hport" ] || fail "local servers did not start"
"$BIN/loom" tools list --json -- "$NPM/mcp-server-everything" stdio >"$TMP/tools.json" 2>"$TMP/tools.log" ||
  fail "tools list: $(cat "$TMP/tools.log")"
ECHO=$("$PY" -c 'import json,sys; print([t["name"] for t in json.load(open(sys.argv[1])) if t.get("inputSchema", {}).get("required") == ["message"]][0])' "$TMP/tools.json")
API="http://127.0.0.1:$(cat "$TMP/oport")/v1"
# the server answers garbage with OpenAI-style errors and keeps serving
for req in 'garbage' '{"model": "nope", "messages": [{"role": "user", "content": "x"}]}' '{"model": "chat", "messages": 3}'; do
  code=$(curl -s -o "$TMP/bad.json" -w '%{http_code}' -H 'Content-Type: application/json' -d "$req" "$API/chat/completions")
  case $code in 400|404) grep -q '"error"' "$TMP/bad.json" || fail "no error body for $req: $(cat "$TMP/bad.json")" ;;
    *) fail "server answered $code to $req: $(cat "$TMP/bad.json")" ;; esac
done
cat >"$TMP/mixed.yaml" <<YAML
version: 1
name: mixed
resources:
  models:
    tiny: {path: tiny.gguf}
    api: {endpoint: "$API", model: chat}
    api_embed: {endpoint: "$API", model: minilm}
  tools:
    everything: {command: "$NPM/mcp-server-everything", args: [stdio]}
steps:
  local:
    op: llm.generate
    model: tiny
    prompt: Name a topic.
    max_tokens: 48
    schema: {type: object, properties: {topic: {type: string, maxLength: 24}}, required: [topic]}
  remote:
    op: llm.generate
    model: api
    prompt: "Classify \${steps.local.output.topic}"
    max_tokens: 64
    schema: {type: object, properties: {label: {enum: [red, green, blue]}}, required: [label]}
  vector:
    op: embed
    model: api_embed
    input: \${steps.local.output.topic}
  tool:
    op: tool.mcp
    server: everything
    tool: $ECHO
    arguments: {message: "\${steps.remote.output.label}"}
  post:
    op: tool.http
    method: POST
    url: "http://127.0.0.1:$(cat "$TMP/hport")/notes"
    body: {note: "\${steps.tool.output}", topic: "\${steps.local.output.topic}", dims: "\${steps.vector.output}"}
    expect_status: 200
outputs:
  topic: \${steps.local.output.topic}
  label: \${steps.remote.output.label}
  vector: \${steps.vector.output}
  tool: \${steps.tool.output}
  post: \${steps.post.output.body}
YAML
start_loomd
start_worker w1
"$BIN/loom" run "$TMP/mixed.yaml" --json >"$TMP/out.json" 2>"$TMP/run.log" || fail "run: $(cat "$TMP/run.log" "$TMP/out.json")"
"$PY" - "$TMP/out.json" <<'PY' || fail "outputs: $(cat "$TMP/out.json")"
import json, math, sys
o = json.load(open(sys.argv[1]))["outputs"]
assert isinstance(o["topic"], str) and len(o["topic"]) <= 24, o["topic"]
assert o["label"] in ("red", "green", "blue"), o["label"]      # llama.cpp's grammar held the enum
v = o["vector"]
v = v[0] if v and isinstance(v[0], list) else v
assert len(v) == 64 and abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3, v   # bert dim 64, L2-normalised
assert o["tool"] == "Echo: " + o["label"], o["tool"]
assert o["post"]["method"] == "POST" and o["post"]["path"] == "/notes", o["post"]
body = json.loads(o["post"]["body"])
assert body["note"] == o["tool"] and body["topic"] == o["topic"], body
PY
# the endpoint answer was streamed (SSE pieces became Progress events) and metered
grep -q 'msg="generated".*endpoint=.*prompt_tokens=[1-9].*streamed=[1-9]' "$TMP/w1.log" ||
  fail "no streamed endpoint generation in the worker log: $(grep generated "$TMP/w1.log")"
echo ok
