#!/usr/bin/env bash
# Secure mode across real network stacks (tests/integration/netns.sh):
# loomd, two worker hosts and a client host, each its own network
# namespace, joined to the loomd host by veth pairs; real TCP.
#
#   - secure mode (loomd --keys) works end to end: admitted worker, CLI
#     with loomd's public key, a workflow with a secret input and a prompt;
#   - traffic captured on the veths (AF_PACKET, sniff.py) holds neither the
#     secret nor the prompt in plain text; the same run against a plain
#     loomd does show both (so the capture can see them), and that loomd
#     warns that it listens on a non-loopback address without CURVE;
#   - a worker whose key is not admitted, and one without CURVE, never
#     register and no task reaches them; a client without loomd's key
#     gets nothing;
#   - a second admitted key cannot take over an existing worker id; the
#     same key reconnecting after a restart gets its id back;
#   - removing a key from the allow-list drops that worker without a restart;
#   - tenants: a team-b token cannot Get, List, Watch or Cancel a team-a run
#     (PERMISSION_DENIED, logged), the owner and an admin can; expired,
#     forged and missing tokens get UNAUTHENTICATED (logged);
#   - /api, /metrics and /v1 answer 401 (WWW-Authenticate: Bearer)
#     without a valid token, /healthz stays open.
# Skips (77) where `ip netns` is not permitted.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
. "$(dirname "$(readlink -f "$0")")/netns.sh"
netns_init || exit 77

for h in hub w1 w2 cl; do netns_host $h; done
netns_link hub w1 1
netns_link hub w2 2
netns_link hub cl 3

K="$TMP/keys"
"$BIN/loom" keygen --dir "$K" >/dev/null || fail "keygen --dir"
for n in w1 w2 rogue; do "$BIN/loom" keygen --dir "$TMP/$n" --name "$n" >/dev/null || fail "keygen $n"; done
[ "$(stat -c %a "$K/loomd.key")" = 600 ] || fail "loomd.key is not private"
cp "$TMP/w1/w1.pub" "$TMP/w2/w2.pub" "$K/workers/"

WF="$ROOT/tests/integration/workflows/secure.yaml"
CEP=tcp://10.77.3.1:7400
# Tokens (loomd --keys reads $K/auth.secret): an admin, two tenants, one
# expired (minted from Python: any language can), one forged (alice's with
# another tenant written in).
tok() { "$BIN/loom" keygen --token --secret-file "$K/auth.secret" "$@"; }
ADMIN=$(tok --subject ops --role admin) && ALICE=$(tok --subject alice --tenant team-a) &&
  BOB=$(tok --subject bob --tenant team-b) || fail "minting tokens"
EXPIRED=$(/usr/bin/python3 -c 'import hashlib, hmac, sys
s = open(sys.argv[1]).readline().strip(); h = "loom2.alice.team-a.user.1000"
print(h + "." + hmac.new(s.encode(), h.encode(), hashlib.sha256).hexdigest())' "$K/auth.secret")
FORGED=${ALICE/team-a/team-b}
as() { local t=$1; shift; on cl env LOOM_ENDPOINT=$CEP LOOM_SERVER_KEY="$K/loomd.pub" LOOM_AUTH_TOKEN="$t" "$BIN/loom" "$@"; }
cli() { as "$ADMIN" "$@"; }
probe() { # TOKEN RUN -> JSON of Get/List/Watch/Cancel statuses
  on cl env PYTHONPATH="$ROOT/$BUILD/gen/py" /usr/bin/python3 "$ROOT/tests/integration/tenant_probe.py" \
    $CEP "$K/loomd.pub" "$1" "$2"
}

on_bg hub "$TMP/loomd.log" "$BIN/loomd" --keys "$K" --client 'tcp://*:7400' --workers 'tcp://*:7401' \
  --ready-file "$TMP/ready" --heartbeat-ms 300 --http 0.0.0.0:7480
for _ in $(seq 200); do [ -f "$TMP/ready" ] && break; sleep 0.05; done
[ -f "$TMP/ready" ] || fail "loomd did not start"

# worker_state ID — the worker's state as loomd reports it ("" when unknown)
worker_state() {
  cli workers --all --json 2>/dev/null |
    /usr/bin/python3 -c "import json,sys; print(next((w['state'] for w in json.load(sys.stdin) if w['id']==sys.argv[1]), ''))" "$1"
}
wait_state() { # ID STATE
  for _ in $(seq 300); do [ "$(worker_state "$1")" = "$2" ] && return 0; sleep 0.1; done
  fail "worker $1 never became $2 (is: '$(worker_state "$1")')"
}
worker() { # HOST NAME LOG [flags]
  local host=$1 name=$2 log=$3; shift 3
  on_bg "$host" "$log" "$BIN/loom-worker-cpu" --endpoint tcp://10.77.${host#w}.1:7401 --id "$name" \
    --slots 2 "$@"
}

worker w1 w1 "$TMP/w1.log" --server-key "$K/loomd.pub" --key "$TMP/w1/w1.key"
W1_PID=$BG_PID
worker w2 rogue "$TMP/rogue.log" --server-key "$K/loomd.pub" --key "$TMP/rogue/rogue.key"
worker w2 naked "$TMP/naked.log"
wait_state w1 ready
for _ in $(seq 300); do grep -q 'CURVE key not admitted' "$TMP/loomd.log" && break; sleep 0.1; done
grep -q 'CURVE key not admitted.*address=10.77.2.2' "$TMP/loomd.log" || fail "the rogue key was not refused"

# --- secure run, traffic captured on the client's and w1's links
SECRET="sk-live-$(head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PROMPT="prompt-$(head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
on_bg hub "$TMP/sniff.log" /usr/bin/python3 "$ROOT/tests/integration/sniff.py" "$TMP/cap.bin" "$TMP/cap.ready" h1 h3
SNIFF=$BG_PID
for _ in $(seq 100); do [ -f "$TMP/cap.ready" ] && break; sleep 0.05; done
as "$ALICE" run "$WF" --input api_key="$SECRET" --input prompt="$PROMPT" --json >"$TMP/run.json" 2>"$TMP/run.err" ||
  fail "secure run failed: $(cat "$TMP/run.err")"
kill -TERM $SNIFF; wait $SNIFF
/usr/bin/python3 - "$TMP/run.json" "$SECRET" "$PROMPT" <<'PY' || fail "secure run: $(cat "$TMP/run.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "succeeded", d
assert d["outputs"]["said"] == sys.argv[3], d["outputs"]
assert int(str(d["outputs"]["used"]).strip()) == len(sys.argv[2]), d["outputs"]
assert {s["worker"] for s in d["steps"]} == {"w1"}, d["steps"]   # nothing reached rogue/naked
PY
[ "$(stat -c %s "$TMP/cap.bin")" -gt 2000 ] || fail "the capture saw no traffic"
grep -qaF "$SECRET" "$TMP/cap.bin" && fail "the secret input crossed the network in clear"
grep -qaF "$PROMPT" "$TMP/cap.bin" && fail "the prompt crossed the network in clear"
for w in rogue naked; do
  [ -z "$(worker_state $w)" ] || fail "unadmitted worker $w registered"
  grep -q 'msg="registered"' "$TMP/$w.log" && fail "unadmitted worker $w was told it registered"
done

# --- tenants: bob (team-b) cannot Get, List, Watch or Cancel alice's run;
# alice and an admin can; expired, forged and missing tokens are refused
RUN_A=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/run.json")
probe "$BOB" "$RUN_A" >"$TMP/p-bob.json" || fail "probe bob"
probe "$ALICE" "$RUN_A" >"$TMP/p-alice.json" || fail "probe alice"
probe "$ADMIN" "$RUN_A" >"$TMP/p-admin.json" || fail "probe admin"
probe "$EXPIRED" "$RUN_A" >"$TMP/p-expired.json" || fail "probe expired"
probe "$FORGED" "$RUN_A" >"$TMP/p-forged.json" || fail "probe forged"
probe - "$RUN_A" >"$TMP/p-none.json" || fail "probe without token"
/usr/bin/python3 - "$TMP" <<'PY' || fail "tenant checks: $(cat "$TMP"/p-*.json)"
import json, sys
p = {n: json.load(open(f"{sys.argv[1]}/p-{n}.json")) for n in ("bob", "alice", "admin", "expired", "forged", "none")}
b = p["bob"]
assert b["get"] == b["watch"] == b["cancel"] == "PERMISSION_DENIED", b
assert b["list"] == "OK" and b["listed"] is False, b
a = p["alice"]
assert a["get"] == a["watch"] == a["list"] == "OK" and a["listed"] is True, a
assert a["cancel"] == "OK", a                      # already finished: says so
assert p["admin"]["get"] == "OK" and p["admin"]["listed"] is True, p["admin"]
for n in ("expired", "forged", "none"):
    assert set(p[n].values()) == {"UNAUTHENTICATED"}, (n, p[n])
PY
as "$ALICE" status "$RUN_A" --json | grep -q '"state": "succeeded"' || fail "bob's cancel changed alice's run"
grep -q 'request refused: PERMISSION_DENIED.*subject=bob tenant=team-b run_tenant=team-a' "$TMP/loomd.log" ||
  fail "wrong-tenant access not logged"
grep -q 'request refused: UNAUTHENTICATED' "$TMP/loomd.log" || fail "refused tokens not logged"
# a running run of bob's: alice cannot cancel it, bob can
printf 'version: 1\nname: slow\nsteps:\n  nap: {op: sleep, ms: 60000}\n' >"$TMP/slow.yaml"
RUN_B=$(as "$BOB" run "$TMP/slow.yaml" --no-wait 2>"$TMP/slow.err") || fail "slow run: $(cat "$TMP/slow.err")"
RUN_B=$(echo "$RUN_B" | grep -o 'r-[0-9a-f-]*' | head -1)
as "$ALICE" cancel "$RUN_B" >"$TMP/cancel-a.out" 2>&1 && fail "alice cancelled bob's run"
grep -q PERMISSION_DENIED "$TMP/cancel-a.out" || fail "alice's cancel: $(cat "$TMP/cancel-a.out")"
as "$BOB" status "$RUN_B" --json | grep -q '"state": "running"' || fail "bob's run stopped"
as "$BOB" cancel "$RUN_B" >/dev/null || fail "bob cannot cancel his own run"

# --- the HTTP side: 401 without a token (dashboard, /api, /metrics), /healthz open
code() { on cl curl -s -o /dev/null -w '%{http_code}' "$@"; }
for p in /api/summary /metrics /api/recent_runs /v1/runs; do
  [ "$(code "http://10.77.3.1:7480$p")" = 401 ] || fail "HTTP $p answered without a token"
done
[ "$(code -H "Authorization: Bearer $FORGED" http://10.77.3.1:7480/metrics)" = 401 ] || fail "HTTP took a forged token"
[ "$(code http://10.77.3.1:7480/healthz)" = 200 ] || fail "/healthz is not open"
[ "$(code -H "Authorization: Bearer $ALICE" http://10.77.3.1:7480/metrics)" = 200 ] || fail "HTTP refused a valid token"
[ "$(code -H "Authorization: Bearer $ADMIN" http://10.77.3.1:7480/)" = 200 ] || fail "the dashboard refused an admin"
on cl curl -s -D - -o /dev/null http://10.77.3.1:7480/metrics | grep -qi '^WWW-Authenticate: Bearer' || fail "401 without WWW-Authenticate"

# --- a client without loomd's public key gets nothing
on cl env LOOM_ENDPOINT=$CEP timeout 5 "$BIN/loom" runs --json >"$TMP/plain-cli.out" 2>&1
grep -q '"run_id"' "$TMP/plain-cli.out" && fail "a plain client read the runs of a CURVE loomd"

# --- hijack: another admitted key claims w1's id
worker w2 w1 "$TMP/hijack.log" --server-key "$K/loomd.pub" --key "$TMP/w2/w2.key"
HIJACK=$BG_PID
for _ in $(seq 300); do grep -q 'registration refused' "$TMP/hijack.log" && break; sleep 0.1; done
grep -q 'bound to another key' "$TMP/hijack.log" || fail "the hijack was not refused: $(tail -3 "$TMP/hijack.log")"
kill -9 $HIJACK
cli run "$WF" --input api_key=k --input prompt=p --json >"$TMP/run2.json" 2>"$TMP/run2.err" || fail "run after hijack"
/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert {s['worker'] for s in d['steps']}=={'w1'}, d" "$TMP/run2.json" ||
  fail "a step ran on the hijacker: $(cat "$TMP/run2.json")"

# --- the same key after a restart gets its id back
kill -9 $W1_PID
wait_state w1 lost
worker w1 w1 "$TMP/w1b.log" --server-key "$K/loomd.pub" --key "$TMP/w1/w1.key"
wait_state w1 ready

# --- revoke w2's key: its worker is dropped without a loomd restart
worker w2 w2 "$TMP/w2.log" --server-key "$K/loomd.pub" --key "$TMP/w2/w2.key"
wait_state w2 ready
rm "$K/workers/w2.pub"
wait_state w2 lost
grep -q 'worker key revoked' "$TMP/loomd.log" || fail "no revocation logged"

# --- control: the same run against a plain loomd is readable on the wire
on_bg hub "$TMP/plain-loomd.log" "$BIN/loomd" --client 'tcp://*:7500' --workers 'tcp://*:7501' \
  --ready-file "$TMP/ready2"
for _ in $(seq 200); do [ -f "$TMP/ready2" ] && break; sleep 0.05; done
grep -q 'non-loopback address without CURVE' "$TMP/plain-loomd.log" ||
  fail "plain loomd on a non-loopback address did not warn"
on_bg w1 "$TMP/p1.log" "$BIN/loom-worker-cpu" --endpoint tcp://10.77.1.1:7501 --id p1 --slots 2
rm -f "$TMP/cap.ready"
on_bg hub "$TMP/sniff2.log" /usr/bin/python3 "$ROOT/tests/integration/sniff.py" "$TMP/cap2.bin" "$TMP/cap.ready" h1 h3
SNIFF=$BG_PID
for _ in $(seq 100); do [ -f "$TMP/cap.ready" ] && break; sleep 0.05; done
on cl env LOOM_ENDPOINT=tcp://10.77.3.1:7500 "$BIN/loom" run "$WF" --input api_key="$SECRET" \
  --input prompt="$PROMPT" --json >"$TMP/run3.json" 2>"$TMP/run3.err" || fail "plain run: $(cat "$TMP/run3.json")"
kill -TERM $SNIFF; wait $SNIFF
grep -qaF "$SECRET" "$TMP/cap2.bin" || fail "control: the capture does not show a plain-mode secret"
grep -qaF "$PROMPT" "$TMP/cap2.bin" || fail "control: the capture does not show a plain-mode prompt"
echo "PASS multihost"
