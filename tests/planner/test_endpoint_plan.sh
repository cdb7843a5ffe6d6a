#!/usr/bin/env bash
# loom plan with a rented model API in the fleet (tests/planner/endpoint/):
# a model both on file and behind an endpoint goes to the owned CPU when
# the SLA is loose (cheaper: energy only, ~8 s of decode) and to the
# per-token API when the SLA is tight (the CPU would miss it), or when the
# API's tokens are priced below the CPU's energy (cheaper within the SLA);
# --explain names both prices, "per token", and a runner-up that moves the
# prefill and decode together (an API keeps its KV cache), so its verdict
# (meets or misses the SLA) is the real one. An endpoint-only model always goes to
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
ru = dec["runner_up"]
assert ru["device"] != dec["device"] and ru["run_usd"] < 1e9 and ru["target_ms"] < 1e9, ru  # a real alternative
print(dec["device"], d["meets_sla"], ru["meets_sla"], dec.get("why", ""))' "$tmp/p.json"
}
read -r dev ok ru_ok why < <(plan chat 60000)
[ "$dev" = small-cpu ] && [ "$ok" = True ] || fail "loose SLA should pick the owned CPU, got $dev ($ok): $why"
echo "$why" | grep -q "^cheapest that keeps the SLA" || fail "loose SLA: the CPU is cheaper, the API also meets it: $why"
echo "$why" | grep -q "runner-up .* on chat-api (per token)" || fail "--explain should name the API's per-token price: $why"
[ "$ru_ok" = True ] || fail "the API runner-up meets a loose SLA"
read -r dev ok ru_ok why < <(plan chat 3000)
[ "$dev" = chat-api ] && [ "$ok" = True ] || fail "tight SLA should pick the API, got $dev ($ok): $why"
echo "$why" | grep -q "every other device misses the SLA" || fail "why: $why"
[ "$ru_ok" = False ] || fail "the CPU runner-up misses a 3 s SLA"
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
# an API whose tokens cost less than the CPU's energy wins on cost even with a loose SLA
cp "$tmp/catalog.yaml" "$tmp/catalog.orig"
sed -i 's/usd_per_mtok_in: 0.50/usd_per_mtok_in: 0.005/; s/usd_per_mtok_out: 1.50/usd_per_mtok_out: 0.01/' "$tmp/catalog.yaml"
read -r dev ok ru_ok why < <(plan chat 60000)
[ "$dev" = chat-api ] && [ "$ok" = True ] && [ "$ru_ok" = True ] || fail "a cheaper API should win within a loose SLA, got $dev ($ok): $why"
echo "$why" | grep -q "^cheapest that keeps the SLA (.* on chat-api (per token).*runner-up .* on small-cpu" || fail "why: $why"
cp "$tmp/catalog.orig" "$tmp/catalog.yaml"
# an endpoint-only model always runs on the API, a file-only one never does
dev=$("$LOOM" plan "$tmp/api_only.yaml" --fleet "$tmp/fleet.yaml" --sla 600000 --mc 0 --json 2>/dev/null |
  /usr/bin/python3 -c 'import json,sys; print({o["name"]: o for o in json.load(sys.stdin)["ops"]}["answer.decode"]["device"])')
[ "$dev" = chat-api ] || fail "an endpoint-only model must run on the API, got $dev"
dev=$("$LOOM" plan "$tmp/file_only.yaml" --fleet "$tmp/fleet.yaml" --sla 600000 --mc 0 --json 2>/dev/null |
  /usr/bin/python3 -c 'import json,sys; print({o["name"]: o for o in json.load(sys.stdin)["ops"]}["answer.decode"]["device"])')
[ "$dev" = small-cpu ] || fail "a file-only model must not run on the API, got $dev"
sed '/usd_per_mtok_out: 1.50/d' "$DIR/catalog.yaml" >"$tmp/bad-catalog.yaml"
"$LOOM" validate "$tmp/bad-catalog.yaml" >"$tmp/v.txt" 2>&1 && fail "a catalog endpoint without usd_per_mtok_out was accepted"
grep -q "devices\[chat-api\].usd_per_mtok_out" "$tmp/v.txt" || fail "error should name the field: $(cat "$tmp/v.txt")"
echo ok
