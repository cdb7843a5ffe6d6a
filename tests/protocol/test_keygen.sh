#!/usr/bin/env bash
# loom keygen: secrets, CURVE keys, minting and verifying tokens; a minted
# token is accepted by a server holding the secret (and a forged one is not),
# checked from Python through the .proto files.
set -u
BUILD=${BUILD:-build}
LOOM="$BUILD/bin/loom"
fail() { echo "FAIL: $*"; exit 1; }
out=$("$LOOM" keygen --json) || fail "keygen"
secret=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["auth_secret"]) == 64; print(d["auth_secret"])') || fail "keygen --json: $out"
tok=$("$LOOM" keygen --token --subject ci-test --ttl 600 --secret "$secret") || fail "mint"
[[ $tok == loom2.ci-test.default.user.* ]] || fail "token format: $tok"
"$LOOM" keygen --verify "$tok" --secret "$secret" | grep -q "valid token for 'ci-test' (tenant default, role user)" || fail "verify"
t2=$("$LOOM" keygen --token --subject ops --tenant team-b --role admin --secret "$secret") || fail "mint with tenant"
"$LOOM" keygen --verify "$t2" --secret "$secret" --json | grep -q '"tenant": "team-b", "role": "admin"' || fail "verify tenant/role"
"$LOOM" keygen --token --subject x --role root --secret "$secret" >/dev/null 2>&1 && fail "unknown role accepted"
LOOM_AUTH_SECRET=other "$LOOM" keygen --verify "$tok" 2>&1 | grep -q "does not match" || fail "wrong secret accepted"
"$LOOM" keygen --token --subject 'bad subject' --secret "$secret" >/dev/null 2>&1 && fail "bad subject accepted"
"$LOOM" keygen --token --secret "$secret" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing --subject is not a usage error"
"$LOOM" keygen --help | grep -q "usage: loom keygen" || fail "--help"
echo "ok: keygen, mint, verify"

if ! /usr/bin/python3 -c 'import zmq, google.protobuf' 2>/dev/null; then
  echo "ok (server check skipped: python3-zmq/protobuf missing)"; exit 0
fi
log=$(mktemp)
"$BUILD/tests/loom-test-server" --secret "$secret" >"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q '^endpoint ' "$log" && break; sleep 0.05; done
ep=$(sed -n 's/^endpoint //p' "$log")
forged="loom1.ci-test.0.$(printf '0%.0s' $(seq 64))"
PYTHONPATH="$BUILD/gen/py" /usr/bin/python3 - "$ep" "$tok" "$forged" <<'PY' || fail "server auth"
import sys, time, zmq
from loom.v1 import envelope_pb2 as E, rpc_pb2 as R
ep, good, forged = sys.argv[1:4]
s = zmq.Context.instance().socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0); s.connect(ep)
def health(tok, rid):
    e = E.Envelope(version=1, request_id=rid, method="loom.v1.Loom/Health")
    e.metadata.add(key="authorization", value=tok)
    s.send_multipart([e.SerializeToString(), R.HealthRequest().SerializeToString()])
    assert s.poll(5000), "no reply"
    r = E.Envelope(); r.ParseFromString(s.recv_multipart()[0]); return r
assert health(good, 1).status == E.OK
r = health(forged, 2); assert r.status == E.UNAUTHENTICATED and "does not match" in r.status_message, r
print("ok: minted token accepted, forged token refused:", r.status_message)
PY
