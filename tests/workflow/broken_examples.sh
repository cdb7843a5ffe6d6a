#!/usr/bin/env bash
# Checks `loom validate` against the workflow examples:
#   - every file in examples/ and its subfolders (except broken/) validates;
#   - every examples/broken/NAME.yaml fails with exit 1 and prints exactly
#     examples/broken/NAME.expected on stderr (byte for byte), run from
#     inside examples/broken so the messages carry the bare file name;
#   - --json output parses and agrees on ok/errors.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
LOOM="$(cd "$BUILD/bin" && pwd)/loom"
fail=0; n=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# The Done-when command of issue 2: every file of examples/ validates. Files
# without steps: are the planner's catalog/fleet/profile/workload files,
# which `loom validate` recognises and checks with the planner's loaders.
if ! out=$("$LOOM" validate examples/*.yaml 2>&1); then
  echo "FAIL loom validate examples/*.yaml:"; echo "$out"; fail=1
fi
for f in examples/*.yaml examples/*/*.yaml; do
  case $f in examples/broken/*) continue ;; esac
  n=$((n+1))
  if ! out=$("$LOOM" validate "$f" 2>&1); then
    echo "FAIL $f: expected ok, got:"; echo "$out"; fail=1
  elif ! grep -qE "^$f: ok( \((catalog|fleet|profile|workload)\))?$" <<<"$out"; then
    echo "FAIL $f: no '$f: ok' line"; fail=1
  fi
done
for w in support-rag react-agent research-fanout; do
  "$LOOM" validate "examples/$w.yaml" | grep -qx "examples/$w.yaml: ok" || { echo "FAIL examples/$w.yaml is not an ok workflow"; fail=1; }
done
# A broken planner file is reported, not taken for a workflow.
printf 'version: 1\ncatalog: ../catalog.yaml\ndevices:\n  - {class: no-such-gpu, count: 1}\n' >"$tmp.yaml"
if "$LOOM" validate "$tmp.yaml" >/dev/null 2>"$tmp"; then echo "FAIL a broken fleet validated"; fail=1; fi
grep -q "steps" "$tmp" && { echo "FAIL a broken fleet was checked as a workflow: $(cat "$tmp")"; fail=1; }
rm -f "$tmp.yaml"
cd examples/broken
for f in *.yaml; do
  n=$((n+1))
  exp="${f%.yaml}.expected"
  if [ ! -f "$exp" ]; then echo "FAIL $f: missing $exp"; fail=1; continue; fi
  "$LOOM" validate "$f" >/dev/null 2>"$tmp"
  rc=$?
  if [ $rc -ne 1 ]; then echo "FAIL $f: exit $rc, want 1"; fail=1; fi
  if ! cmp -s "$exp" "$tmp"; then
    echo "FAIL $f: message differs"; diff -u "$exp" "$tmp"; fail=1
  fi
  # the JSON form carries the same first message
  first=$(head -n1 "$exp")
  if ! "$LOOM" validate --json "$f" 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
f = doc["files"][0]
assert doc["ok"] is False and f["ok"] is False, "json says ok"
assert f["errors"][0]["text"] == sys.argv[1], (f["errors"][0]["text"], sys.argv[1])
' "$first"; then echo "FAIL $f: --json disagrees"; fail=1; fi
done
[ $fail -eq 0 ] && echo "ok: $n workflow files checked"
exit $fail
