#!/usr/bin/env bash
# Model shapes from GGUF headers (cli/model_files.c): a model declared by
# path alone validates and plans with the file's shape (no "no shape"
# note); a declared value that contradicts the file is an error naming
# both values and the field; a file the CLI cannot read is only a warning.
# Also: gen_gguf.py writes general.file_type as llama.cpp's ftype (Q8_0 = 7).
set -u
BUILD=${BUILD:-build}
LOOM="$BUILD/bin/loom"
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
/usr/bin/python3 "$ROOT/tests/llm/gen_gguf.py" --arch llama --type Q8_0 -o "$tmp/chat.gguf" >/dev/null || fail "gen_gguf"
# general.file_type, read straight from the header (first metadata keys)
/usr/bin/python3 - "$tmp/chat.gguf" <<'PY' || fail "general.file_type"
import struct, sys
b = open(sys.argv[1], "rb").read()
n_kv = struct.unpack_from("<Q", b, 16)[0]
off = 24
for _ in range(n_kv):
    kl = struct.unpack_from("<Q", b, off)[0]; key = b[off + 8:off + 8 + kl].decode(); off += 8 + kl
    t = struct.unpack_from("<I", b, off)[0]; off += 4
    if key == "general.file_type":
        assert t == 4 and struct.unpack_from("<I", b, off)[0] == 7, (t, struct.unpack_from("<I", b, off))
        sys.exit(0)
    if t == 8:   # string
        off += 8 + struct.unpack_from("<Q", b, off)[0]
    elif t in (4, 5, 6):
        off += 4
    else:
        sys.exit("unexpected type %d before general.file_type" % t)
sys.exit("no general.file_type")
PY
wf() { # wf NAME MODEL-FIELDS
  cat >"$tmp/$1.yaml" <<YAML
version: 1
name: $1
sla: {latency_ms: 60000}
resources:
  models:
    chat: {path: chat.gguf$2}
steps:
  answer: {op: llm.generate, model: chat, prompt: hi, expect: {prompt_tokens: 10, output_tokens: 5}}
YAML
}
wf bare ""
"$LOOM" validate "$tmp/bare.yaml" >"$tmp/v.txt" 2>&1 || fail "path-only model rejected: $(cat "$tmp/v.txt")"
"$LOOM" plan "$tmp/bare.yaml" --catalog "$ROOT/examples/catalog.yaml" --json --mc 0 >"$tmp/p.json" 2>"$tmp/p.err" ||
  fail "plan: $(cat "$tmp/p.err")"
grep -q "no shape" "$tmp/p.json" && fail "the planner did not get the file's shape: $(grep -o '"notes".*' "$tmp/p.json")"
wf agree ", arch: llama, layers: 2, dtype: q8_0"
"$LOOM" validate "$tmp/agree.yaml" >"$tmp/v.txt" 2>&1 || fail "matching shape rejected: $(cat "$tmp/v.txt")"
wf clash ", layers: 24, dtype: f16"
"$LOOM" validate "$tmp/clash.yaml" >"$tmp/v.txt" 2>&1 && fail "a contradicting shape was accepted"
grep -q "clash.yaml:6:5: resources.models.chat.layers: declared 24 but the file has 2" "$tmp/v.txt" ||
  fail "layers error: $(cat "$tmp/v.txt")"
grep -q "resources.models.chat.dtype: declared f16 but the file has q8_0" "$tmp/v.txt" || fail "dtype error: $(cat "$tmp/v.txt")"
"$LOOM" plan "$tmp/clash.yaml" --catalog "$ROOT/examples/catalog.yaml" --mc 0 >/dev/null 2>"$tmp/p.err" &&
  fail "plan accepted a contradicting shape"
grep -q "declared 24 but the file has 2" "$tmp/p.err" || fail "plan error: $(cat "$tmp/p.err")"
rm "$tmp/chat.gguf"
"$LOOM" validate "$tmp/bare.yaml" >"$tmp/v.txt" 2>&1 || fail "a missing file should only warn: $(cat "$tmp/v.txt")"
grep -q "warning: resources.models.chat.path: cannot read" "$tmp/v.txt" || fail "no warning: $(cat "$tmp/v.txt")"
echo ok
