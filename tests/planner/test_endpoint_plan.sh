#!/usr/bin/env bash
# loom plan with a rented model API in the fleet (tests/planner/endpoint/):
# a model both on file and behind an endpoint goes to the owned CPU when
# the SLA is loose (cheaper: energy only, ~7 s of decode) and to the
# per-token API when the SLA is tight (the CPU would miss it); --explain
# names both prices and "per token". An endpoint-only model always goes to
# the API, a file-only one never does; a catalog endpoint without prices
# is an error naming the field.
set -u
BUILD=${BUILD:-build}
LOOM="$BUILD/bin/loom"
DIR=tests/planner/endpoint
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for m in chat api_only file_only; do
  sed "s/MODEL_NAME/$m/" "$DIR/answer.yaml" >"$tmp/$m.yaml"
  cp "$DIR/catalog.yaml" "$DIR/fleet.yaml" "$tmp/"
done
plan() { # plan MODEL SLA_MS -> device of answer.decode, plus the JSON in $tmp/p.json
  "$LOOM" plan "$tmp/$1.yaml" --fleet "$tmp/fleet.yaml" --sla "$2" --mc 0 --json --explain >"$tmp/p.json" 2>"$tmp/err" ||
    fail "loom plan $1 --sla $2: $(cat "$tmp/err")"
  /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ops = {o["name"]: o for o in d["ops"]}
pre, dec = ops["answer.prefill"], ops["answer.decode"]
assert pre["device"] == dec["device"], (pre, dec)   # the KV cache does not leave an API
print(dec["device"], d["meets_sla"], dec.get("why", ""))' "$tmp/p.json"
}
read -r dev ok why < <(plan chat 60000)
[ "$dev" = small-cpu ] && [ "$ok" = True ] || fail "loose SLA should pick the owned CPU, got $dev ($ok): $why"
echo "$why" | grep -q "runner-up .* on chat-api (per token)" || fail "--explain should name the API's per-token price: $why"
read -r dev ok why < <(plan chat 3000)
[ "$dev" = chat-api ] && [ "$ok" = True ] || fail "tight SLA should pick the API, got $dev ($ok): $why"
echo "$why" | grep -q "every other device misses the SLA" || fail "why: $why"
/usr/bin/python3 - "$tmp/p.json" <<'PY' || fail "per-token cost: $(cat "$tmp/p.json")"
import json, sys
d = json.load(open(sys.argv[1]))
ops = {o["name"]: o for o in d["ops"]}
# 200 prompt tokens at $0.50/M + 100 output tokens at $1.50/M
assert abs(ops["answer.prefill"]["usd"] - 200 * 0.5e-6) < 1e-12, ops["answer.prefill"]
assert abs(ops["answer.decode"]["usd"] - 100 * 1.5e-6) < 1e-12, ops["answer.decode"]
assert ops["answer.decode"]["bound"] == "per-token"
assert abs(ops["answer.decode"]["ms"] - 1000) < 1e-6    # 100 tokens at 100 tok/s
PY
read -r dev ok why < <(plan api_only 600000)
[ "$dev" = chat-api ] || fail "an endpoint-only model must run on the API, got $dev"
read -r dev ok why < <(plan file_only 600000)
[ "$dev" = small-cpu ] || fail "a file-only model must not run on the API, got $dev"
sed '/usd_per_mtok_out: 1.50/d' "$DIR/catalog.yaml" >"$tmp/bad-catalog.yaml"
"$LOOM" validate "$tmp/bad-catalog.yaml" >"$tmp/v.txt" 2>&1 && fail "a catalog endpoint without usd_per_mtok_out was accepted"
grep -q "devices\[chat-api\].usd_per_mtok_out" "$tmp/v.txt" || fail "error should name the field: $(cat "$tmp/v.txt")"
echo ok
