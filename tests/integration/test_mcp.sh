#!/usr/bin/env bash
# tool.mcp against real MCP servers from npm (deploy/install-npm.sh):
# @modelcontextprotocol/server-everything over stdio (declared in the
# workflow's resources.tools, started and kept by the worker) and over
# Streamable HTTP (by URL), @modelcontextprotocol/server-filesystem from the
# worker's own LOOM_MCP_CONFIG. Tool names are discovered with tools/list
# (`loom tools list --json`) by their input schemas, never hard-coded.
# Asserts: text, structured and file results as step outputs; the stdio
# server is started once and reused, and started again after it dies; an
# isError result fails the step with the server's message, without retry;
# `loom validate` rejects an unknown tool and arguments that break the
# schema, and only warns about an unreachable server.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
NPM=${LOOM_NPM_DIR:-$ROOT/var/npm}/node_modules/.bin
if [ ! -x "$NPM/mcp-server-everything" ] || [ ! -x "$NPM/mcp-server-filesystem" ]; then
  echo "SKIP: MCP servers not installed in $NPM (deploy/install-npm.sh needs npm and the npm registry)"
  exit 77
fi
EVERY="$NPM/mcp-server-everything"

# Discover the tools by schema from the stdio server.
"$BIN/loom" tools list --json -- "$EVERY" stdio >"$TMP/tools.json" 2>"$TMP/tools.log" ||
  fail "loom tools list (stdio): $(cat "$TMP/tools.log")"
read -r ECHO SUM STRUCT CITY < <(/usr/bin/python3 - "$TMP/tools.json" <<'PY'
import json, sys
tools = json.load(open(sys.argv[1]))
def req(t): return sorted(t.get("inputSchema", {}).get("required", []))
echo = [t["name"] for t in tools if req(t) == ["message"]][0]
add = [t["name"] for t in tools if req(t) == ["a", "b"]][0]
st = [t for t in tools if t.get("outputSchema") and len(req(t)) == 1
      and "enum" in t["inputSchema"]["properties"][req(t)[0]]][0]
p = req(st)[0]
print(echo, add, st["name"], p + "=" + st["inputSchema"]["properties"][p]["enum"][0].replace(" ", "_"))
PY
)
[ -n "$CITY" ] || fail "could not discover the tools: $(head -c 600 "$TMP/tools.json")"
CITY_KEY=${CITY%%=*}; CITY_VAL=${CITY#*=}; CITY_VAL=${CITY_VAL//_/ }

# The same server over Streamable HTTP.
hport=$(free_port)
(PORT=$hport exec "$EVERY" streamableHttp) >"$TMP/http-server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  "$BIN/loom" tools list "http://127.0.0.1:$hport/mcp" >"$TMP/http-tools.txt" 2>"$TMP/http-tools.log" && break
  sleep 0.1
done
grep -q "^$SUM\$" "$TMP/http-tools.txt" || fail "loom tools list over HTTP: $(cat "$TMP/http-tools.txt" "$TMP/http-tools.log")"
"$BIN/loom" tools call "http://127.0.0.1:$hport/mcp" "$ECHO" '{"message": "over http"}' >"$TMP/call.txt" 2>&1 ||
  fail "loom tools call: $(cat "$TMP/call.txt")"
grep -q "over http" "$TMP/call.txt" || fail "loom tools call output: $(cat "$TMP/call.txt")"

# The filesystem server comes from the worker's own configuration.
mkdir -p "$TMP/files"
cat >"$TMP/mcp.json" <<JSON
{"mcpServers": {"files": {"command": "$NPM/mcp-server-filesystem", "args": ["$TMP/files"]}}}
JSON
"$BIN/loom" tools list --json -- "$NPM/mcp-server-filesystem" "$TMP/files" >"$TMP/fs-tools.json" 2>"$TMP/fs.log" ||
  fail "filesystem tools: $(cat "$TMP/fs.log")"
read -r WRITE READ < <(/usr/bin/python3 - "$TMP/fs-tools.json" <<'PY'
import json, sys
tools = json.load(open(sys.argv[1]))
def req(t): return sorted(t.get("inputSchema", {}).get("required", []))
write = [t["name"] for t in tools if req(t) == ["content", "path"]][0]
# the plain-text reader: path only, and a head/tail option
read = [t["name"] for t in tools if req(t) == ["path"] and "head" in t["inputSchema"].get("properties", {})][0]
print(write, read)
PY
)
[ -n "$READ" ] || fail "could not discover the filesystem tools: $(head -c 600 "$TMP/fs-tools.json")"

cat >"$TMP/mcp.yaml" <<YAML
version: 1
name: mcp-tools
inputs:
  q: string
resources:
  tools:
    everything: {command: "$EVERY", args: [stdio]}
    web: {url: "http://127.0.0.1:$hport/mcp"}
steps:
  echo:
    op: tool.mcp
    server: everything
    tool: $ECHO
    arguments: {message: "\${inputs.q}"}
  sum:
    op: tool.mcp
    server: web
    tool: $SUM
    arguments: {a: 2, b: 40}
  structured:
    op: tool.mcp
    server: everything
    tool: $STRUCT
    arguments: {$CITY_KEY: "$CITY_VAL"}
  write:
    op: tool.mcp
    server: files
    tool: $WRITE
    arguments: {path: "$TMP/files/note.txt", content: "\${steps.echo.output}"}
  read:
    op: tool.mcp
    server: files
    needs: [write]
    tool: $READ
    arguments: {path: "$TMP/files/note.txt"}
outputs:
  echo: \${steps.echo.output}
  sum: \${steps.sum.output}
  structured: \${steps.structured.output}
  read: \${steps.read.output}
YAML
"$BIN/loom" validate "$TMP/mcp.yaml" >"$TMP/validate.txt" 2>&1 || fail "validate: $(cat "$TMP/validate.txt")"

start_loomd
LOOM_MCP_CONFIG="$TMP/mcp.json" start_worker w1
for i in 1 2; do
  "$BIN/loom" run "$TMP/mcp.yaml" --input q="why $i" --json >"$TMP/out$i.json" 2>"$TMP/run$i.log" ||
    fail "run $i failed: $(cat "$TMP/run$i.log" "$TMP/out$i.json")"
  /usr/bin/python3 - "$TMP/out$i.json" "$i" "$TMP/files/note.txt" <<'PY' || fail "outputs of run $i: $(cat "$TMP/out$i.json")"
import json, sys
o = json.load(open(sys.argv[1]))["outputs"]
i = sys.argv[2]
assert o["echo"] == "Echo: why " + i, o["echo"]
assert "42" in o["sum"], o["sum"]
assert isinstance(o["structured"], dict) and o["structured"], o["structured"]   # structuredContent
# the reader answers structuredContent {"content": text} (older releases: text only)
r = o["read"]["content"] if isinstance(o["read"], dict) else o["read"]
assert r == "Echo: why " + i, o["read"]
assert open(sys.argv[3]).read() == "Echo: why " + i
PY
done
n=$(grep -c 'msg="MCP server ready" server=everything ' "$TMP/w1.log")
[ "$n" = 1 ] || fail "the stdio server should start once for two runs, started $n times"

# Kill the kept stdio server: the next call starts it again.
srv=$(pgrep -P "$WORKER_PID" -f "mcp-server-everything" | head -1)
[ -n "$srv" ] || fail "no stdio server child of the worker"
kill -9 "$srv"
"$BIN/loom" run "$TMP/mcp.yaml" --input q="again" --json >"$TMP/out3.json" 2>"$TMP/run3.log" ||
  fail "run after the server died: $(cat "$TMP/run3.log" "$TMP/out3.json")"
grep -q 'msg="MCP server gone; starting it again" server=everything' "$TMP/w1.log" || fail "worker did not notice the dead server"

# isError: the step fails with the server's message, at once.
cat >"$TMP/bad.yaml" <<YAML
version: 1
name: mcp-bad
resources:
  tools:
    everything: {command: "$EVERY", args: [stdio]}
steps:
  nope:
    op: tool.mcp
    server: everything
    tool: no-such-tool-here
    retries: 2
YAML
"$BIN/loom" run "$TMP/bad.yaml" --json >"$TMP/bad.json" 2>"$TMP/bad.log"
[ $? -eq 1 ] || fail "a failing tool should fail the run: $(cat "$TMP/bad.json" "$TMP/bad.log")"
/usr/bin/python3 - "$TMP/bad.json" <<'PY' || fail "isError report: $(cat "$TMP/bad.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert "no-such-tool-here" in d["error"] and "not found" in d["error"], d["error"]
assert [s for s in d["steps"] if s["step"] == "nope"][0]["attempt"] == 1, d
PY

# loom validate: unknown tool, arguments against the schema, unreachable server.
"$BIN/loom" validate "$TMP/bad.yaml" >"$TMP/v1.txt" 2>&1 && fail "validate accepted an unknown tool"
grep -q "has no tool 'no-such-tool-here'" "$TMP/v1.txt" || fail "validate (unknown tool): $(cat "$TMP/v1.txt")"
sed -e "s/{a: 2, b: 40}/{a: 2, b: forty}/" "$TMP/mcp.yaml" >"$TMP/badargs.yaml"
"$BIN/loom" validate "$TMP/badargs.yaml" >"$TMP/v2.txt" 2>&1 && fail "validate accepted b: forty"
grep -q "badargs.yaml:.*steps.sum.arguments: .*\$.b: expected number, got string" "$TMP/v2.txt" ||
  fail "validate (schema): $(cat "$TMP/v2.txt")"
sed -e "s#127.0.0.1:$hport#127.0.0.1:1#" "$TMP/mcp.yaml" >"$TMP/down.yaml"
"$BIN/loom" validate "$TMP/down.yaml" >"$TMP/v3.txt" 2>&1 || fail "unreachable server should only warn: $(cat "$TMP/v3.txt")"
grep -q "warning: steps.sum.server: MCP server 'web' not checked" "$TMP/v3.txt" || fail "validate (down): $(cat "$TMP/v3.txt")"
echo ok
