#!/usr/bin/env bash
# Payloads by reference in secure mode (loomd --keys): the workers' object
# endpoints speak CURVE with each worker's own key pair and admit the keys
# in $LOOM_OBJECT_PEER_KEYS (here loomd's workers/ allow-list). A 2 MB tool
# output made on wp reaches echo on wc and back over the network path
# (LOOM_OBJECT_SAME_HOST=0) and hashes exact; the reference carries wp's
# public key. A process whose key is not admitted gets nothing from wp's
# object endpoint.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
PY=/usr/bin/python3
N=2000000
K="$TMP/keys"
"$BIN/loom" keygen --dir "$K" >/dev/null || fail "keygen --dir"
for n in wp wc c1; do "$BIN/loom" keygen --dir "$TMP/$n" --name "$n" >/dev/null || fail "keygen $n"; done
cp "$TMP/wp/wp.pub" "$TMP/wc/wc.pub" "$K/workers/"
mkdir "$K/clients" && cp "$TMP/c1/c1.pub" "$K/clients/"
ADMIN=$("$BIN/loom" keygen --token --secret-file "$K/auth.secret" --subject ops --role admin) || fail "token"
export LOOM_SERVER_KEY="$K/loomd.pub" LOOM_CLIENT_KEY="$TMP/c1/c1.key" LOOM_AUTH_TOKEN=$ADMIN
export LOOM_OBJECT_DIR="$TMP/objects" LOOM_OBJECT_SAME_HOST=0 LOOM_OBJECT_TIMEOUT_MS=3000 LOOM_OBJECT_PEER_KEYS="$K/workers"
start_loomd --keys "$K"
start_worker wp --ops tool.exec --server-key "$K/loomd.pub" --key "$TMP/wp/wp.key"
start_worker wc --ops echo --server-key "$K/loomd.pub" --key "$TMP/wc/wc.key"

touch "$TMP/go"
"$BIN/loom" run "$ROOT/tests/pg/workflows/bigout.yaml" --input bytes="$N" --input dir="$TMP" --json \
  >"$TMP/ok.json" 2>"$TMP/ok-run.log" || fail "run failed: $(cat "$TMP/ok-run.log"; head -c 2000 "$TMP/ok.json")"
"$PY" - "$TMP/ok.json" "$N" "$(cat "$TMP/wp/wp.pub")" <<'PY' || fail "unexpected run: $(head -c 3000 "$TMP/ok.json")"
import hashlib, json, sys
d, n, key = json.load(open(sys.argv[1])), int(sys.argv[2]), sys.argv[3].strip()
assert d["state"] == "succeeded", d.get("error")
assert d["outputs"]["count"] == {"len": n, "sha256": hashlib.sha256(b"ab" * (n // 2)).hexdigest()}, d["outputs"]["count"]
s = {x["step"]: x for x in d["steps"]}
ref = s["make"]["output"]["blob"]["$object"]
assert ref["worker"] == "wp" and ref["key"] == key, ref
print("ok: output by reference over CURVE, producer key", key)
PY
grep -q 'msg="inputs fetched by reference"' "$TMP/wc.log" || fail "wc fetched nothing"
grep -q 'msg="inputs fetched by reference"' "$TMP/wp.log" || fail "wp fetched nothing"

# An unadmitted key (the CLI's own, made for the fetch) gets nothing from wp:
# `loom logs` presents it and must fall back to showing the reference.
RUN=$(jget "$TMP/ok.json" 'd["run_id"]')
"$BIN/loom" logs "$RUN" make --json >"$TMP/logs.json" 2>"$TMP/logs.err" || fail "loom logs failed"
grep -q 'cannot fetch the output of make by reference' "$TMP/logs.err" || fail "loom logs fetched with an unadmitted key: $(cat "$TMP/logs.err")"
grep -q '"\$object"' "$TMP/logs.json" || fail "loom logs shows no reference"
grep -q 'msg="object peer refused".*key not admitted' "$TMP/wp.log" || fail "wp did not refuse the unadmitted key"
echo ok
