#!/usr/bin/env bash
# Constrained decoding always yields schema-valid JSON or a clear error:
# `loom llm generate --schema` on a generated random-weight llama model,
# for the examples' schemas (react-agent, research-fanout), a nested one
# and free-form `--format json`, across seeds, temperatures and token
# budgets from below the schema's shortest value up to 300 tokens.
#  - a budget of at least the shortest value's length always succeeds, and
#    the output parses and validates against the schema (python3-jsonschema);
#  - a smaller budget fails (exit 1) naming the shortest value's need,
#    printing no text on stdout.
# The regression this guards: a token near the budget's end (a UTF-8 lead
# byte, an escape) could leave more to close than tokens remained, and the
# output ended unclosed ("'}' expected near end of file").
set -u
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BIN=$ROOT/${BUILD:-build}/bin
PY=/usr/bin/python3
"$PY" -c 'import numpy, jsonschema' 2>/dev/null || { echo "skip: python3-numpy or python3-jsonschema is not installed"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/loom-json.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$PY" "$ROOT/tests/llm/gen_gguf.py" --arch llama --type Q8_0 --ctx 1024 -o "$TMP/chat.gguf" >/dev/null || { echo "FAIL: gen_gguf"; exit 1; }
exec "$PY" - "$BIN/loom" "$TMP/chat.gguf" <<'PY'
import json, random, subprocess, sys
import jsonschema

loom, model = sys.argv[1], sys.argv[2]
SCHEMAS = {
    "react-think": {"type": "object", "properties": {
        "thought": {"type": "string", "maxLength": 200},
        "action": {"enum": ["search_docs", "calculator", "finish"]},
        "input": {"type": "string", "maxLength": 120}},
        "required": ["thought", "action", "input"]},
    "research-plan": {"type": "object", "properties": {
        "questions": {"type": "array", "items": {"type": "string", "maxLength": 120}, "minItems": 4, "maxItems": 4}},
        "required": ["questions"]},
    "research-answer": {"type": "object", "properties": {
        "answer": {"type": "string", "maxLength": 400},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
        "required": ["answer", "confidence"]},
    "nested": {"type": "object", "properties": {
        "id": {"type": "integer"}, "ok": {"type": "boolean"}, "note": {"type": ["string", "null"], "minLength": 2},
        "tags": {"type": "array", "items": {"enum": ["a", "bb"]}, "minItems": 2},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string", "minLength": 1}, "score": {"type": "number"}}, "required": ["name"]}}},
        "required": ["id", "tags", "note"]},
    "free": None,  # --format json: any JSON value
}

def shortest(s):
    """The shortest compact JSON text of schema s (the subset above)."""
    if s is None:
        return "0"
    if "enum" in s:
        return min((json.dumps(v, separators=(",", ":")) for v in s["enum"]), key=len)
    t = s["type"] if isinstance(s["type"], list) else [s["type"]]
    c = []
    if "null" in t: c.append("null")
    if "boolean" in t: c.append("true")
    if "number" in t or "integer" in t: c.append("0")
    if "string" in t: c.append('"' + "a" * s.get("minLength", 0) + '"')
    if "array" in t: c.append("[" + ",".join([shortest(s["items"])] * s.get("minItems", 0)) + "]")
    if "object" in t:
        c.append("{" + ",".join('"%s":%s' % (k, shortest(s["properties"][k])) for k in s.get("required", [])) + "}")
    return min(c, key=len)

rnd = random.Random(12)
words = ["task", "what", "is", "600", "*", "24", '{"thought":', '"x"}', "search", "finish", "é", "数", "\\u00e9", "observation:"]
runs = ok = refused = 0
for name, schema in SCHEMAS.items():
    need = len(shortest(schema))
    budgets = [max(1, need - 1), need, need + 1, need + 2, need + 5] + [rnd.randint(need, 300) for _ in range(3)]
    for i, n in enumerate(budgets):
        prompt = " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 120)))
        temp = [0, 0.1, 1.0][i % 3]
        args = [loom, "llm", "generate", model, "-p", prompt, "-n", str(n), "--temp", str(temp), "--seed", str(rnd.randint(0, 1 << 30)),
                "-t", "1", "--json"]
        args += ["--schema", json.dumps(schema)] if schema is not None else ["--format", "json"]
        p = subprocess.run(args, capture_output=True, text=True, timeout=120)
        runs += 1
        what = "%s budget=%d temp=%s" % (name, n, temp)
        if n < need:
            assert p.returncode == 1 and "shortest JSON value" in p.stderr and not p.stdout.strip(), (what, p.returncode, p.stderr, p.stdout)
            refused += 1
            continue
        assert p.returncode == 0, (what, p.returncode, p.stderr)
        d = json.loads(p.stdout)
        assert d["generated_tokens"] <= n, (what, d)
        try:
            v = json.loads(d["text"])
        except ValueError as e:
            raise AssertionError("%s: output is not JSON (%s): %r" % (what, e, d["text"]))
        if schema is not None:
            jsonschema.validate(v, schema)
        ok += 1
print("ok: %d constrained generations (%d schema-valid JSON, %d budgets below the shortest value refused)" % (runs, ok, refused))
PY
