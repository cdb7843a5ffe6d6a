#!/usr/bin/env bash
# Secrets, tenants and tool policy against a real loomd --db (PostgreSQL):
#   - a secret input (inputs: {secret: true}) and a worker-side secret
#     (secrets: [token], ${secrets.token}, the worker's --secret
#     token=FILE) are echoed by tools: the outputs say "***", the worker
#     really used the value (its digest matches), and neither value is in
#     PostgreSQL (runs, tasks, events), `loom status`, or any log; an
#     error message carrying a secret is redacted too; `${secrets.token}`
#     that reaches a step as data (a run input, an upstream step's output)
#     stays text: only the references the workflow itself writes are
#     replaced (loomd tags them per task, workers/common/secrets.h);
#   - runs carry the token's tenant in PostgreSQL and v_recent_runs; the
#     dashboard's /api shows a user only its tenant's runs (fleet-wide
#     views need the admin role);
#   - the worker's --allow-exec / --allow-hosts refuse a step at once with
#     an error naming the policy; loomd --tenant-ops refuses a workflow
#     using an op the tenant may not run (PERMISSION_DENIED, naming it).
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
"$BIN/loom" keygen --dir "$TMP/keys" >/dev/null || fail "keygen"
tok() { "$BIN/loom" keygen --token --secret-file "$TMP/keys/auth.secret" "$@"; }
ADMIN=$(tok --subject ops --role admin); ALICE=$(tok --subject alice --tenant team-a)
CAROL=$(tok --subject carol --tenant team-c)
printf 'team-c: echo, noop\n' >"$TMP/tenant-ops"
export LOOM_AUTH_TOKEN=$ADMIN
HTTP_PORT=$(free_port)
start_loomd --db "$DB_URL" --auth-secret "$TMP/keys/auth.secret" --tenant-ops "$TMP/tenant-ops" \
  --http 127.0.0.1:$HTTP_PORT
TOKEN_VALUE="tok-$(head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
KEY_VALUE="key-$(head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$TOKEN_VALUE" >"$TMP/token.secret"
start_worker w1 --secret token="$TMP/token.secret" --allow-exec sh,false --allow-hosts 127.0.0.1

LOOM_AUTH_TOKEN=$ALICE "$BIN/loom" run "$ROOT/tests/pg/workflows/secrets.yaml" --input api_key="$KEY_VALUE" \
  --input note='${secrets.token}' --json >"$TMP/run.json" 2>"$TMP/run.err" || fail "run: $(cat "$TMP/run.err")"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/run.json")
want=$(printf %s "$TOKEN_VALUE" | sha256sum | cut -c1-16)
literal=$(printf %s '${secrets.token}' | sha256sum | cut -c1-16)
literal_x=$(printf %s 'x ${secrets.token}' | sha256sum | cut -c1-16)
python3 - "$TMP/run.json" "$want" "$literal" "$literal_x" <<'PY' || fail "outputs: $(cat "$TMP/run.json")"
import json, sys
o = json.load(open(sys.argv[1]))["outputs"]
assert o["input"] == "key=*** note=${secrets.token}", o
assert o["secret"] == "tok=Bearer ***", o
assert o["digest"].strip() == sys.argv[2], o        # the worker substituted the real value
# ${secrets.token} that reached the step as data (a run input; an upstream
# output that wrote it as $${...}) was passed on as text, not the value
assert o["forged_input"].strip() == sys.argv[3], o
assert o["forged_output"].strip() == sys.argv[4], o
PY
# a failing step whose error carries the secret input
printf 'version: 1\nname: leaky\ninputs:\n  k: {type: string, secret: true}\nsteps:\n  f:\n    op: tool.exec\n    argv: [sh, -c, '"'"'echo "bad $1" >&2; exit 3'"'"', sh, "${inputs.k}"]\n' >"$TMP/leaky.yaml"
LOOM_AUTH_TOKEN=$ALICE "$BIN/loom" run "$TMP/leaky.yaml" --input k="$KEY_VALUE" --json >"$TMP/leaky.json" 2>&1
grep -q 'bad \*\*\*' "$TMP/leaky.json" || fail "the failing step's error: $(cat "$TMP/leaky.json")"
"$BIN/loom" status "$id" --json >"$TMP/status.json" || fail "status"
wait_for 20 "SELECT state FROM runs WHERE id = '$id'" succeeded
sleep 0.5 # let the writer commit the last events of the failed run too (no assertion depends on it passing)
for v in "$KEY_VALUE" "$TOKEN_VALUE"; do
  n=$(q "SELECT (SELECT count(*) FROM runs WHERE inputs::text LIKE '%$v%' OR outputs::text LIKE '%$v%' OR error LIKE '%$v%')
        + (SELECT count(*) FROM tasks WHERE output::text LIKE '%$v%' OR error LIKE '%$v%')
        + (SELECT count(*) FROM events WHERE detail::text LIKE '%$v%')")
  [ "$n" = 0 ] || fail "a secret value is in PostgreSQL ($n rows)"
  grep -rqF "$v" "$TMP"/*.log "$TMP"/*.json && fail "a secret value is in a log or the CLI's output: $(grep -rlF "$v" "$TMP")"
done
[ "$(q "SELECT inputs::jsonb->>'api_key' FROM runs WHERE id = '$id'")" = '***' ] || fail "stored input not redacted"
[ "$(q "SELECT tenant FROM runs WHERE id = '$id'")" = team-a ] || fail "runs.tenant"
[ "$(q "SELECT tenant FROM v_recent_runs WHERE id = '$id'")" = team-a ] || fail "v_recent_runs.tenant"

# the dashboard's views: a user sees its tenant's runs only, fleet-wide views need admin
BOB=$(tok --subject bob --tenant team-b)
api() { curl -s -H "Authorization: Bearer $1" "http://127.0.0.1:$HTTP_PORT/api/$2"; }
api "$ALICE" recent_runs | grep -q "\"$id\"" || fail "alice does not see her run in /api/recent_runs"
api "$BOB" recent_runs | grep -q "\"$id\"" && fail "bob sees alice's run in /api/recent_runs"
api "$BOB" "run_steps?run=$id" | grep -q echo_input && fail "bob reads the steps of alice's run"
api "$ADMIN" recent_runs | grep -q "\"$id\"" || fail "admin does not see every tenant"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BOB" "http://127.0.0.1:$HTTP_PORT/api/fleet")" = 403 ] ||
  fail "a user read a fleet-wide view"

# tool policy on the worker: refused at once (attempt 1 of 3), naming the flag
printf 'version: 1\nname: pol\nsteps:\n  rm:\n    op: tool.exec\n    argv: [rm, -rf, /nonexistent]\n    retries: 2\n' >"$TMP/exec.yaml"
"$BIN/loom" run "$TMP/exec.yaml" --json >"$TMP/exec.json" 2>&1 && fail "a refused program ran"
grep -q "refused by this worker's policy --allow-exec" "$TMP/exec.json" || fail "exec policy: $(cat "$TMP/exec.json")"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["steps"][0]; assert s["attempt"]==1, s' "$TMP/exec.json" ||
  fail "a policy refusal was retried"
printf 'version: 1\nname: polh\nsteps:\n  get:\n    op: tool.http\n    url: http://example.invalid/x\n' >"$TMP/http.yaml"
"$BIN/loom" run "$TMP/http.yaml" --json >"$TMP/http.json" 2>&1 && fail "a refused host was fetched"
grep -q "host 'example.invalid' is refused by this worker's policy --allow-hosts" "$TMP/http.json" ||
  fail "host policy: $(cat "$TMP/http.json")"

# per-tenant ops on loomd
LOOM_AUTH_TOKEN=$CAROL "$BIN/loom" run "$TMP/exec.yaml" >"$TMP/carol.out" 2>&1 && fail "team-c ran tool.exec"
grep -q "PERMISSION_DENIED.*tenant 'team-c' may not run op 'tool.exec' (loomd --tenant-ops allows: echo, noop)" "$TMP/carol.out" ||
  fail "tenant-ops refusal: $(cat "$TMP/carol.out")"
printf 'version: 1\nname: ok\nsteps:\n  e: {op: echo, value: 1}\n' >"$TMP/echo.yaml"
LOOM_AUTH_TOKEN=$CAROL "$BIN/loom" run "$TMP/echo.yaml" --quiet >/dev/null 2>&1 || fail "team-c cannot run echo"
echo ok
