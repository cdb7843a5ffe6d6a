#!/usr/bin/env bash
# The example tools (examples/tools/*.py) that the example workflows call
# through tool.exec: each prints one JSON document for good input and fails
# clearly (non-zero, message on stderr) for bad input, as tool.exec expects.
set -u
cd "$(dirname "$(readlink -f "$0")")/../../examples"
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }
fail=0
check() { # check NAME PYTHON-ASSERTION -- COMMAND...: stdout must be JSON satisfying the assertion
  local name=$1 cond=$2; shift 3
  local out
  out=$("$@" 2>&1)
  local rc=$?
  if [ $rc -ne 0 ]; then echo "FAIL $name: exit $rc: $out"; fail=1; return; fi
  if ! python3 -c 'import json,sys; v=json.loads(sys.argv[1]); assert '"$cond"', v' "$out" 2>/dev/null; then
    echo "FAIL $name: unexpected output: $out"; fail=1
  fi
}
check ticket 'v["id"] == "T-1001" and v["priority"] == "high"' -- python3 tools/ticket_lookup.py --id t-1001
check calc 'v["observation"] == 256.0' -- python3 tools/react_tool.py calculator "2**10 / 4"
check calc-bad 'str(v["observation"]).startswith("error")' -- python3 tools/react_tool.py calculator "__import__('os')"
check search 'v["observation"][0]["id"] == "quotas"' -- python3 tools/react_tool.py search_docs "GPU hours on the pro plan"
check unknown-tool 'str(v["observation"]).startswith("error: unknown tool")' -- python3 tools/react_tool.py rm "-rf /"
check corpus 'v["hits"][0]["id"] == "decode" and len(v["hits"]) == 2' -- python3 tools/corpus_search.py --k 2 "why is decode memory bound"
out=$(echo '[{"confidence": 0.9}, {"confidence": 0.2}, {}, 3]' | python3 tools/collect.py confidence)
[ "$out" = "[0.9, 0.2, 0.0, 0.0]" ] || { echo "FAIL collect: $out"; fail=1; }
if python3 tools/ticket_lookup.py --id T-9999 >/dev/null 2>&1; then echo "FAIL ticket: unknown id accepted"; fail=1; fi
if echo 'not json' | python3 tools/collect.py confidence >/dev/null 2>&1; then echo "FAIL collect: bad stdin accepted"; fail=1; fi
[ $fail -eq 0 ] && echo "ok: example tools"
exit $fail
