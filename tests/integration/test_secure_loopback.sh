#!/usr/bin/env bash
# Secure mode (loomd --keys) on loopback, no namespaces needed:
#   - worker allow-list reloads without a restart: a worker whose key is
#     not admitted waits (its handshake refused); copying its .pub into
#     workers/ gets it registered; editing the file in place (the folder
#     does not change) takes effect on SIGHUP: the worker is dropped;
#   - client allow-list (a clients/ folder): a client without a key or with
#     an unlisted key gets nothing; copying its .pub admits it, no restart;
#   - the HTTP side: without a token /api, /metrics and /v1 answer 401,
#     /healthz and the dashboard's page (code, no data) 200; the /v1 gateway works in secure mode (it
#     reaches the CURVE port as loomd itself, even with a client
#     allow-list) and keeps tenants apart: bob cannot get, watch, cancel or
#     list alice's run (403 PERMISSION_DENIED), alice and an admin can.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 77; }
K="$TMP/keys"
"$BIN/loom" keygen --dir "$K" >/dev/null || fail "keygen --dir"
mkdir "$K/clients"
for n in wk c1 c2 other; do "$BIN/loom" keygen --dir "$TMP/$n" --name "$n" >/dev/null || fail "keygen $n"; done
cp "$TMP/c1/c1.pub" "$K/clients/"
tok() { "$BIN/loom" keygen --token --secret-file "$K/auth.secret" "$@"; }
ADMIN=$(tok --subject ops --role admin) && ALICE=$(tok --subject alice --tenant team-a) &&
  BOB=$(tok --subject bob --tenant team-b) || fail "minting tokens"
export LOOM_SERVER_KEY="$K/loomd.pub" LOOM_CLIENT_KEY="$TMP/c1/c1.key" LOOM_AUTH_TOKEN=$ADMIN
HP=$(free_port)
start_loomd --keys "$K" --heartbeat-ms 300 --http "127.0.0.1:$HP"

state_of() { # ID -> its state as loomd reports it ("" when unknown)
  "$BIN/loom" workers --all --json 2>/dev/null |
    python3 -c 'import json,sys; print(next((w["state"] for w in json.load(sys.stdin) if w["id"]==sys.argv[1]), ""))' "$1"
}
wait_state() { # ID STATE
  for _ in $(seq 300); do [ "$(state_of "$1")" = "$2" ] && return 0; sleep 0.1; done
  fail "worker $1 never became $2 (is: '$(state_of "$1")')"
}
wait_log() { # FILE PATTERN
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1"
}

# --- worker allow-list: admitted later, without restarting anything
(cd "$ROOT" && exec "$BIN/loom-worker-cpu" --endpoint "$WORKER_EP" --id wk --slots 2 \
  --server-key "$K/loomd.pub" --key "$TMP/wk/wk.key") >"$TMP/wk.log" 2>&1 &
PIDS+=($!)
wait_log "$TMP/loomd.log" 'CURVE key not admitted" domain=loom-workers'
[ "$(state_of wk)" = "" ] || fail "a worker with an unadmitted key registered"
cp "$TMP/wk/wk.pub" "$K/workers/"
wait_state wk ready
grep -q 'registration refused' "$TMP/wk.log" && fail "wk was refused after its key was admitted"

# --- HTTP: 401 without a token, /healthz open; /v1 through CURVE, tenants apart
code() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }
for p in /api/summary /metrics /v1/runs /v1/health /api/recent_runs; do
  [ "$(code "http://127.0.0.1:$HP$p")" = 401 ] || fail "HTTP $p answered without a token"
done
[ "$(code "http://127.0.0.1:$HP/healthz")" = 200 ] || fail "/healthz is not open"
# the dashboard's page and code are open (no data: the page asks for a token)
[ "$(code "http://127.0.0.1:$HP/")" = 200 ] && grep -q 'id="token-form"' "$TMP/body" || fail "dashboard page"
[ "$(code "http://127.0.0.1:$HP/static/app.js")" = 200 ] || fail "dashboard code"
V1="http://127.0.0.1:$HP/v1"
as() { local t=$1; shift; code -H "Authorization: Bearer $t" -H 'X-Loom-Timeout-Ms: 20000' "$@"; }
[ "$(as "$ADMIN" "$V1/health")" = 200 ] || fail "/v1/health in secure mode: $(cat "$TMP/body")"
python3 -c 'import json,sys; print(json.dumps({"workflow_yaml": open(sys.argv[1]).read(), "workflow_name": "slow.yaml"}))' \
  <(printf 'version: 1\nname: slow\nsteps:\n  nap: {op: sleep, ms: 60000}\n') >"$TMP/submit.json"
[ "$(as "$ALICE" -X POST -H 'Content-Type: application/json' --data-binary @"$TMP/submit.json" "$V1/runs")" = 200 ] ||
  fail "alice's submit over /v1: $(cat "$TMP/body")"
RUN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/body")
[ "$(as "$BOB" "$V1/runs/$RUN")" = 403 ] && grep -q PERMISSION_DENIED "$TMP/body" || fail "bob got alice's run: $(cat "$TMP/body")"
[ "$(as "$BOB" -N --max-time 20 "$V1/runs/$RUN/events")" = 403 ] || fail "bob watched alice's run: $(head -c 300 "$TMP/body")"
[ "$(as "$BOB" -X POST -H 'Content-Type: application/json' -d '{}' "$V1/runs/$RUN/cancel")" = 403 ] ||
  fail "bob cancelled alice's run: $(cat "$TMP/body")"
[ "$(as "$BOB" "$V1/runs")" = 200 ] || fail "bob's list: $(cat "$TMP/body")"
grep -q "$RUN" "$TMP/body" && fail "bob's list shows alice's run"
[ "$(as "$ALICE" "$V1/runs")" = 200 ] && grep -q "$RUN" "$TMP/body" || fail "alice's list lacks her run: $(cat "$TMP/body")"
[ "$(as "$ADMIN" "$V1/runs/$RUN")" = 200 ] && grep -q '"state":"RUN_RUNNING"' "$TMP/body" ||
  fail "admin's get (the run must still be running after bob's cancel): $(cat "$TMP/body")"
[ "$(as "$ALICE" -X POST -H 'Content-Type: application/json' -d '{}' "$V1/runs/$RUN/cancel")" = 200 ] ||
  fail "alice cannot cancel her run: $(cat "$TMP/body")"

# --- client allow-list: no key / an unlisted key get nothing; admitted later
LOOM_CLIENT_KEY= timeout 5 "$BIN/loom" workers --json >"$TMP/nokey.out" 2>&1
grep -q '"id"' "$TMP/nokey.out" && fail "a client without a key was answered"
LOOM_CLIENT_KEY="$TMP/c2/c2.key" timeout 5 "$BIN/loom" workers --json >"$TMP/c2.out" 2>&1
grep -q '"id"' "$TMP/c2.out" && fail "an unlisted client key was answered"
grep -q 'CURVE key not admitted" domain=loom-clients' "$TMP/loomd.log" || fail "client refusal not logged"
cp "$TMP/c2/c2.pub" "$K/clients/"
LOOM_CLIENT_KEY="$TMP/c2/c2.key" timeout 20 "$BIN/loom" workers --json >"$TMP/c2.out" 2>&1
grep -q '"id": "wk"' "$TMP/c2.out" || fail "c2 not admitted after its .pub was added: $(cat "$TMP/c2.out")"

# --- SIGHUP: wk.pub rewritten in place (the folder is unchanged) with
# another key; the reload drops wk
cat "$TMP/other/other.pub" >"$K/workers/wk.pub"
kill -HUP "$LOOMD_PID"
wait_state wk lost
grep -q 'worker key revoked' "$TMP/loomd.log" || fail "no revocation logged"
echo "PASS secure mode on loopback"
