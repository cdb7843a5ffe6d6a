#!/usr/bin/env bash
# One workflow across all four kinds of model and tool: a built-in GGUF
# step (a generated model on the real CPU engine, schema-constrained), an
# endpoint step (the FAKE OpenAI-compatible server of
# test_endpoint_fake_server.sh: no real model server can be started here),
# a tool.mcp step on the real @modelcontextprotocol/server-everything (stdio)
# and a tool.http POST to a real local HTTP server; each step's output feeds
# the next and the final outputs are checked exactly.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
NPM=${LOOM_NPM_DIR:-$ROOT/var/npm}/node_modules/.bin
if [ ! -x "$NPM/mcp-server-everything" ]; then
  echo "SKIP: MCP servers not installed in $NPM (deploy/install-npm.sh needs npm and the npm registry)"
  exit 77
fi
/usr/bin/python3 "$ROOT/tests/llm/gen_gguf.py" --arch llama --type Q8_0 -o "$TMP/tiny.gguf" >/dev/null || fail "gen_gguf"
/usr/bin/python3 "$ROOT/tests/integration/openai_fake_server.py" "$TMP/oport" 2>"$TMP/openai.log" &
PIDS+=($!)
/usr/bin/python3 "$ROOT/tests/integration/http_echo.py" "$TMP/hport" 2>"$TMP/http.log" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$TMP/oport" ] && [ -s "$TMP/hport" ] && break; sleep 0.05; done
[ -s "$TMP/oport" ] && [ -s "$TMP/hport" ] || fail "local servers did not start"
"$BIN/loom" tools list --json -- "$NPM/mcp-server-everything" stdio >"$TMP/tools.json" 2>"$TMP/tools.log" ||
  fail "tools list: $(cat "$TMP/tools.log")"
ECHO=$(/usr/bin/python3 -c 'import json,sys; print([t["name"] for t in json.load(open(sys.argv[1])) if t.get("inputSchema", {}).get("required") == ["message"]][0])' "$TMP/tools.json")
cat >"$TMP/mixed.yaml" <<YAML
version: 1
name: mixed
resources:
  models:
    tiny: {path: tiny.gguf}
    api: {endpoint: "http://127.0.0.1:$(cat "$TMP/oport")/v1", model: echo}
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
    prompt: "summary of \${steps.local.output.topic}"
  tool:
    op: tool.mcp
    server: everything
    tool: $ECHO
    arguments: {message: "\${steps.remote.output}"}
  post:
    op: tool.http
    method: POST
    url: "http://127.0.0.1:$(cat "$TMP/hport")/notes"
    body: {note: "\${steps.tool.output}", topic: "\${steps.local.output.topic}"}
    expect_status: 200
outputs:
  topic: \${steps.local.output.topic}
  remote: \${steps.remote.output}
  tool: \${steps.tool.output}
  post: \${steps.post.output.body}
YAML
start_loomd
start_worker w1
"$BIN/loom" run "$TMP/mixed.yaml" --json >"$TMP/out.json" 2>"$TMP/run.log" || fail "run: $(cat "$TMP/run.log" "$TMP/out.json")"
/usr/bin/python3 - "$TMP/out.json" <<'PY' || fail "outputs: $(cat "$TMP/out.json")"
import json, sys
o = json.load(open(sys.argv[1]))["outputs"]
assert isinstance(o["topic"], str) and len(o["topic"]) <= 24, o["topic"]
assert o["remote"] == "summary of " + o["topic"], o["remote"]
assert o["tool"] == "Echo: " + o["remote"], o["tool"]
assert o["post"]["method"] == "POST" and o["post"]["path"] == "/notes", o["post"]
assert json.loads(o["post"]["body"]) == {"note": o["tool"], "topic": o["topic"]}, o["post"]
PY
echo ok
