#!/usr/bin/env bash
# --config FILE for loomd and the workers: the documented example configs
# (deploy/config/) are accepted as shipped; keys set in a file take effect
# (loomd binds the configured endpoints, a worker registers under the
# configured id with the configured slots); comments, quotes and '_' for '-'
# work; every bad line is reported as FILE:LINE: KEY: why with exit 2 and
# nothing started; garbage and unreadable files fail cleanly.
. "$(dirname "$(readlink -f "$0")")/../integration/lib.sh"
for k in cpu gpu npu; do
  [ -x "$BIN/loom-worker-$k" ] || { echo "loom-worker-$k not built (gpu: no CUDA toolkit)"; continue; }
  "$BIN/loom-worker-$k" --config "$ROOT/deploy/config/worker-$k.conf" --help >/dev/null 2>"$TMP/err" ||
    fail "deploy/config/worker-$k.conf rejected: $(cat "$TMP/err")"
done
"$BIN/loomd" --config "$ROOT/deploy/config/loomd.conf" --help >/dev/null 2>"$TMP/err" ||
  fail "deploy/config/loomd.conf rejected: $(cat "$TMP/err")"
"$BIN/loomd" --version | grep -q '^loomd [0-9]' || fail "loomd --version"
"$BIN/loom-worker-cpu" --version | grep -q '^loom-worker-cpu [0-9]' || fail "worker --version"

# Keys take effect.
cp=$(free_port); wp=$(free_port)
cat >"$TMP/loomd.conf" <<CONF
# loomd for this test
client: "tcp://127.0.0.1:$cp"     # quoted, then a comment
workers = tcp://127.0.0.1:$wp
ready_file: $TMP/ready
heartbeat-ms: 500
CONF
"$BIN/loomd" --config "$TMP/loomd.conf" >"$TMP/loomd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [ -f "$TMP/ready" ] && break; sleep 0.05; done
grep -qx "client=tcp://127.0.0.1:$cp" "$TMP/ready" && grep -qx "workers=tcp://127.0.0.1:$wp" "$TMP/ready" ||
  fail "loomd did not bind the configured endpoints: $(cat "$TMP/ready" 2>/dev/null)"
export LOOM_ENDPOINT="tcp://127.0.0.1:$cp"
printf 'endpoint: tcp://127.0.0.1:%s\nid: "conf#1"\nslots: 3\nlog_level: warn\n' "$wp" >"$TMP/worker.conf"
"$BIN/loom-worker-cpu" --config "$TMP/worker.conf" >"$TMP/worker.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do "$BIN/loom" workers --json 2>/dev/null | grep -q '"conf#1"' && break; sleep 0.05; done
"$BIN/loom" workers --json >"$TMP/workers.json" 2>&1
python3 - "$TMP/workers.json" <<'PY' || fail "worker did not apply its config: $(cat "$TMP/workers.json")"
import json, sys
d = json.load(open(sys.argv[1]))
ws = d["workers"] if isinstance(d, dict) else d
w = [w for w in ws if w["id"] == "conf#1"]
assert w and w[0]["slots"] == 3, ws
PY

# Bad files: every error named by file, line and key; exit 2; no daemon.
cat >"$TMP/bad.conf" <<'CONF'
# line 1 is fine
client: tcp://127.0.0.1:1
depth: lots
no separator here
colour: blue
max_runs: -5
auth-token: "unterminated
CONF
"$BIN/loomd" --config "$TMP/bad.conf" >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] || fail "bad loomd config: exit $rc, want 2"
for want in "bad.conf:3: depth: expected a positive integer" "bad.conf:4: expected 'key: value'" \
            "bad.conf:5: colour: unknown option" "bad.conf:6: max-runs: expected a positive integer" \
            "bad.conf:7: auth-token: unterminated quote"; do
  grep -qF "$want" "$TMP/err" || fail "missing error '$want' in: $(cat "$TMP/err")"
done
grep -q "bad.conf:2" "$TMP/err" && fail "a good line was reported: $(cat "$TMP/err")"
printf 'endpoint: tcp://127.0.0.1:1\nslots: 0\nprice: cheap\ndepth: 4\n' >"$TMP/badw.conf"
"$BIN/loom-worker-cpu" --config "$TMP/badw.conf" >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] || fail "bad worker config: exit $rc, want 2"
for want in "badw.conf:2: slots:" "badw.conf:3: price:" "badw.conf:4: depth: unknown option"; do
  grep -qF "$want" "$TMP/err" || fail "missing error '$want' in: $(cat "$TMP/err")"
done
# Garbage: random bytes, a 10 KB line, a missing file, a directory.
head -c 4096 /dev/urandom >"$TMP/garbage.conf"
{ printf 'client: '; head -c 10000 /dev/zero | tr '\0' x; printf '\nworkers: tcp://127.0.0.1:2\n'; } >"$TMP/long.conf"
for f in "$TMP/garbage.conf" "$TMP/long.conf" "$TMP/missing.conf" "$TMP"; do
  timeout 10 "$BIN/loomd" --config "$f" >"$TMP/out" 2>"$TMP/err"; rc=$?
  [ $rc -eq 2 ] || fail "loomd --config $f: exit $rc, want 2 ($(head -c 300 "$TMP/err"))"
  timeout 10 "$BIN/loom-worker-cpu" --config "$f" >"$TMP/out" 2>"$TMP/err"; rc=$?
  [ $rc -eq 2 ] || fail "worker --config $f: exit $rc, want 2 ($(head -c 300 "$TMP/err"))"
done
grep -q "long.conf:1: line longer than" <("$BIN/loomd" --config "$TMP/long.conf" 2>&1) || fail "long line not named"
echo "ok: example configs accepted, keys applied, bad files reported by file:line:key"
