#!/usr/bin/env bash
# The HTTP/JSON gateway with a real HTTP client (curl) against a real loomd
# (--auth-token, --http) and a CPU worker: health with and without the
# token, the served OpenAPI document equals the checked-in one, submit a
# run and follow it as server-sent events to its end, get it, list with
# paging, resume events with Last-Event-ID, plan, workers, cancel a running
# run while watching it, retry it (a new run found by its retry_of label), several watchers at once, keep-alive, and errors
# (unknown run, bad JSON, unknown field, wrong method, unknown path).
. "$(dirname "$(readlink -f "$0")")/lib.sh"
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 77; }
export LOOM_AUTH_TOKEN=s3cret-token
HP=$(free_port)
start_loomd --auth-token "$LOOM_AUTH_TOKEN" --http "127.0.0.1:$HP"
start_worker w1
API="http://127.0.0.1:$HP/v1"
AUTH=(-H "Authorization: Bearer $LOOM_AUTH_TOKEN")
# call METHOD PATH [curl args...]: prints the body, sets CODE
call() {
  local m=$1 p=$2; shift 2
  CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -X "$m" "$API$p" "$@")
  cat "$TMP/body"
}
py() { /usr/bin/python3 -c "$@"; }
field() { py "import json,sys; d=json.load(open('$TMP/body')); print($1)"; }

# --- auth: the RPC's own ---
call GET /health >/dev/null
[ "$CODE" = 401 ] || fail "no token: want 401, got $CODE"
# refused at the HTTP door (http_admit's bearer check) or by the RPC behind it
grep -Eq 'UNAUTHENTICATED|bearer token' "$TMP/body" || fail "no token: $(cat "$TMP/body")"
call GET /health -H "Authorization: Bearer wrong" >/dev/null
[ "$CODE" = 401 ] || fail "wrong token: want 401, got $CODE"
call GET /health "${AUTH[@]}" >/dev/null
[ "$CODE" = 200 ] && [ "$(field 'd["status"]')" = SERVING ] || fail "health: $CODE $(cat "$TMP/body")"
[ "$(field 'd["workers"]')" = 1 ] || fail "health workers: $(cat "$TMP/body")"

# --- the OpenAPI document is served and equals the checked-in one ---
call GET /openapi.json "${AUTH[@]}" >/dev/null  # behind the HTTP bearer check like every route but /healthz
[ "$CODE" = 200 ] && cmp -s "$TMP/body" "$ROOT/protocol/openapi.json" || fail "openapi.json differs"

# --- submit, then follow the run as server-sent events ---
submit_body() { # WORKFLOW INPUTS_JSON
  py "import json,sys; print(json.dumps({'workflow_yaml': open(sys.argv[1]).read(), 'workflow_name': sys.argv[1].split('/')[-1], 'inputs_json': sys.argv[2], 'labels': [{'key': 'team', 'value': 'ops'}]}))" "$1" "$2"
}
submit_body "$ROOT/tests/integration/workflows/stitch.yaml" '{"who": "http"}' >"$TMP/submit.json"
call POST /runs "${AUTH[@]}" -H 'Content-Type: application/json' --data-binary @"$TMP/submit.json" >/dev/null
[ "$CODE" = 200 ] || fail "submit: $CODE $(cat "$TMP/body")"
run=$(field 'd["run_id"]')
[ -n "$run" ] || fail "no run id"
curl -sN --max-time 60 "${AUTH[@]}" "$API/runs/$run/events" >"$TMP/events.txt" || fail "events stream failed"
grep -q '^event: RUN_EVENT_QUEUED$' "$TMP/events.txt" || fail "no QUEUED event: $(head -c 600 "$TMP/events.txt")"
grep -q '^event: RUN_EVENT_RUN_FINISHED$' "$TMP/events.txt" || fail "no RUN_FINISHED event"
tail -n 3 "$TMP/events.txt" | grep -q '^data: {"code":0,"status":"OK"' || fail "stream end: $(tail -n 3 "$TMP/events.txt")"
# ids are the event seqs 1..N in order; every data line is JSON of a RunEvent
py "
import json, sys
ids, kinds = [], []
ev = None
for line in open('$TMP/events.txt').read().splitlines():
    if line.startswith('id: '): ids.append(int(line[4:]))
    if line.startswith('event: '): ev = line[7:]
    if line.startswith('data: ') and ev != 'end':
        d = json.loads(line[6:]); assert d['kind'] == ev and d['run_id'] == '$run', d
        kinds.append(d['kind'])
assert ids == list(range(1, len(ids) + 1)), ids
assert len(ids) == len(kinds) > 3, (ids, kinds)
" || fail "events malformed: $(head -c 800 "$TMP/events.txt")"
n_events=$(grep -c '^id: ' "$TMP/events.txt")

# --- get ---
call GET "/runs/$run" "${AUTH[@]}" >/dev/null
[ "$CODE" = 200 ] || fail "get: $CODE"
[ "$(field 'd["run"]["state"]')" = RUN_SUCCEEDED ] || fail "state: $(cat "$TMP/body")"
grep -q "n is 3" "$TMP/body" || fail "outputs: $(cat "$TMP/body")"

# --- resume with Last-Event-ID: only later events ---
curl -sN --max-time 30 "${AUTH[@]}" -H "Last-Event-ID: $((n_events - 2))" "$API/runs/$run/events" >"$TMP/resume.txt"
[ "$(grep -c '^id: ' "$TMP/resume.txt")" = 2 ] || fail "resume: $(cat "$TMP/resume.txt")"
grep -q "^id: $((n_events - 1))$" "$TMP/resume.txt" || fail "resume ids: $(grep '^id' "$TMP/resume.txt")"

# --- list with paging (a second run, then pages of one) ---
call POST /runs "${AUTH[@]}" --data-binary @"$TMP/submit.json" >/dev/null
run2=$(field 'd["run_id"]')
call GET "/runs?limit=1" "${AUTH[@]}" >/dev/null
[ "$CODE" = 200 ] && [ "$(field 'len(d["runs"])')" = 1 ] || fail "list page 1: $CODE $(cat "$TMP/body")"
tok=$(field 'd["next_page_token"]')
if [ -z "$tok" ]; then
  # loomd's List does not hand out page tokens yet (issue 11 adds them)
  echo "note: List returned no next_page_token; paging through the gateway not exercised"
else
  first=$(field 'd["runs"][0]["run_id"]')
  call GET "/runs?limit=1&page_token=$tok" "${AUTH[@]}" >/dev/null
  second=$(field 'd["runs"][0]["run_id"]')
  [ "$CODE" = 200 ] && [ "$first" != "$second" ] || fail "page 2 repeats page 1: $(cat "$TMP/body")"
  [ "$(printf '%s\n' "$first" "$second" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$run" "$run2" | sort | tr '\n' ' ')" ] \
    || fail "pages hold $first $second, not $run $run2"
fi
call GET "/runs?state=RUN_BOGUS" "${AUTH[@]}" >/dev/null
[ "$CODE" = 400 ] || fail "bad state filter: want 400, got $CODE"

# --- plan and workers ---
py "import json; print(json.dumps({'workflow_yaml': open('$ROOT/tests/integration/workflows/stitch.yaml').read()}))" >"$TMP/plan.json"
call POST /plan "${AUTH[@]}" --data-binary @"$TMP/plan.json" >/dev/null
[ "$CODE" = 200 ] && field 'd["plan"]["placements"][0]["step_id"]' >/dev/null || fail "plan: $CODE $(cat "$TMP/body")"
call GET "/workers?include_lost=true" "${AUTH[@]}" >/dev/null
[ "$CODE" = 200 ] && [ "$(field 'd["workers"][0]["worker_id"]')" = w1 ] || fail "workers: $(cat "$TMP/body")"

# --- cancel a running run while three clients watch it ---
submit_body "$ROOT/tests/integration/workflows/cancel.yaml" "{\"dir\": \"$TMP\"}" >"$TMP/cancel.json"
call POST /runs "${AUTH[@]}" --data-binary @"$TMP/cancel.json" >/dev/null
crun=$(field 'd["run_id"]')
watchers=()
for i in 1 2 3; do
  curl -sN --max-time 60 "${AUTH[@]}" "$API/runs/$crun/events" >"$TMP/cw$i.txt" &
  watchers+=($!)
done
for _ in $(seq 200); do [ -s "$TMP/long.pid" ] && break; sleep 0.05; done
[ -s "$TMP/long.pid" ] || fail "long step did not start"
call POST "/runs/$crun/cancel" "${AUTH[@]}" --data-binary '{"reason": "from curl"}' >/dev/null
[ "$CODE" = 200 ] && [ "$(field 'd["state"]')" = RUN_CANCELLED ] || fail "cancel: $CODE $(cat "$TMP/body")"
for i in 1 2 3; do
  wait "${watchers[$((i - 1))]}" || fail "watcher $i failed"
  grep -q '^event: RUN_EVENT_RUN_CANCELLED$' "$TMP/cw$i.txt" || fail "watcher $i saw no cancel: $(cat "$TMP/cw$i.txt")"
  grep -q '^event: end$' "$TMP/cw$i.txt" || fail "watcher $i: no end"
done

# --- retry the cancelled run: a new run, same workflow and inputs, labelled retry_of ---
call POST "/runs/$crun/retry" "${AUTH[@]}" >/dev/null
[ "$CODE" = 200 ] || fail "retry: $CODE $(cat "$TMP/body")"
rrun=$(field 'd["run_id"]')
[ -n "$rrun" ] && [ "$rrun" != "$crun" ] || fail "retry gave $rrun"
call POST "/runs/$rrun/retry" "${AUTH[@]}" >/dev/null
[ "$CODE" = 400 ] && grep -q 'still active' "$TMP/body" || fail "retry of an active run: $CODE $(cat "$TMP/body")"
call GET "/runs?labels=retry_of=$crun" "${AUTH[@]}" >/dev/null
[ "$(field '[r["run_id"] for r in d["runs"]]')" = "['$rrun']" ] || fail "label filter: $(cat "$TMP/body")"
call GET "/runs?labels=nokey" "${AUTH[@]}" >/dev/null
[ "$CODE" = 400 ] || fail "bad labels filter: want 400, got $CODE"
call POST "/runs/$rrun/cancel" "${AUTH[@]}" >/dev/null
[ "$(field 'd["state"]')" = RUN_CANCELLED ] || fail "cancel the retry: $(cat "$TMP/body")"

# --- errors ---
call GET /runs/r-nope "${AUTH[@]}" >/dev/null
[ "$CODE" = 404 ] && [ "$(field 'd["status"]')" = NOT_FOUND ] || fail "unknown run: $CODE $(cat "$TMP/body")"
call GET /runs/r-nope/events "${AUTH[@]}" >/dev/null
[ "$CODE" = 404 ] || fail "events of unknown run: $CODE $(cat "$TMP/body")"
call POST /runs "${AUTH[@]}" --data-binary '{"workflow_yaml": ' >/dev/null
[ "$CODE" = 400 ] && grep -q 'not a JSON object' "$TMP/body" || fail "bad JSON: $CODE $(cat "$TMP/body")"
call POST /runs "${AUTH[@]}" --data-binary '{"workflow_yml": "x"}' >/dev/null
[ "$CODE" = 400 ] && grep -q 'workflow_yml: unknown field' "$TMP/body" || fail "unknown field: $CODE $(cat "$TMP/body")"
call POST /runs "${AUTH[@]}" --data-binary '{"labels": [{"key": 1}]}' >/dev/null
[ "$CODE" = 400 ] && grep -q 'labels\[0\].key: expected a string' "$TMP/body" || fail "field path: $(cat "$TMP/body")"
call POST /runs "${AUTH[@]}" --data-binary '{"workflow_yaml": "version: 1\nsteps: {a: {op: nope}}"}' >/dev/null
[ "$CODE" = 400 ] || fail "invalid workflow: want 400, got $CODE $(cat "$TMP/body")"
call POST /health "${AUTH[@]}" >/dev/null
[ "$CODE" = 405 ] || fail "POST /health: want 405, got $CODE"
call GET /nope "${AUTH[@]}" >/dev/null
[ "$CODE" = 404 ] || fail "unknown path: want 404, got $CODE"
call GET "/runs/bad%20id" "${AUTH[@]}" >/dev/null
[ "$CODE" = 400 ] || fail "bad run id: want 400, got $CODE"
head -c 2000000 /dev/zero | tr '\0' ' ' >"$TMP/big.json"
call POST /runs "${AUTH[@]}" --data-binary @"$TMP/big.json" >/dev/null
[ "$CODE" = 413 ] || fail "2 MB body: want 413, got $CODE"

# --- keep-alive: one connection for several calls ---
curl -sv "${AUTH[@]}" "$API/health" "$API/workers" "$API/runs/$run" -o /dev/null -o /dev/null -o /dev/null \
  2>"$TMP/keepalive.txt"
grep -qi 're-using existing connection' "$TMP/keepalive.txt" || fail "no keep-alive: $(grep -i connect "$TMP/keepalive.txt")"
alive "$LOOMD_PID" || fail "loomd died"
echo ok
