#!/usr/bin/env bash
# protocol/openapi.json (checked in, served by loomd at /v1/openapi.json) is
# what protocol/gen_openapi.py makes from the .proto files now, and it is a
# well-formed OpenAPI 3 document whose paths are the gateway's routes.
set -u
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
gen="$BUILD/gen/openapi.json"
[ -f "$gen" ] || { echo "missing $gen (make builds it)"; exit 1; }
if ! cmp -s "$gen" "$ROOT/protocol/openapi.json"; then
  echo "FAIL: protocol/openapi.json is stale: run 'make openapi' and commit it"
  diff "$gen" "$ROOT/protocol/openapi.json" | head -20
  exit 1
fi
/usr/bin/python3 - "$ROOT/protocol/openapi.json" <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["openapi"].startswith("3."), d["openapi"]
want = {"/v1/runs", "/v1/runs/{run_id}", "/v1/runs/{run_id}/cancel", "/v1/runs/{run_id}/retry", "/v1/runs/{run_id}/events",
        "/v1/plan", "/v1/workers", "/v1/health", "/v1/openapi.json"}
assert set(d["paths"]) == want, set(d["paths"]) ^ want
refs = set()
def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "$ref": refs.add(v.split("/")[-1])
            walk(v)
    elif isinstance(x, list):
        for v in x: walk(v)
walk(d)
missing = refs - set(d["components"]["schemas"])
assert not missing, missing
print("ok: %d paths, %d schemas, every $ref resolves" % (len(d["paths"]), len(d["components"]["schemas"])))
PY
