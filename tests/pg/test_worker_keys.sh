#!/usr/bin/env bash
# Worker id -> CURVE key bindings survive a loomd restart (loomd --keys
# --db, table worker_keys, migration 005):
#   - w1 registers with key A: the binding is stored;
#   - loomd restarts; another admitted key B claims w1 first: refused
#     ("bound to another key"), although no worker holds w1 at that moment;
#   - key A comes back: w1 is accepted;
#   - the operator removes A.pub: B takes w1 over (re-keying a host), the
#     stored binding follows.
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
K="$TMP/keys"
"$BIN/loom" keygen --dir "$K" >/dev/null || fail "keygen"
for n in a b; do "$BIN/loom" keygen --dir "$TMP/$n" --name "$n" >/dev/null || fail "keygen $n"; done
cp "$TMP/a/a.pub" "$TMP/b/b.pub" "$K/workers/"
export LOOM_SERVER_KEY="$K/loomd.pub"
export LOOM_AUTH_TOKEN=$("$BIN/loom" keygen --token --subject ops --role admin --secret-file "$K/auth.secret")
start_loomd --keys "$K" --db "$DB_URL" --heartbeat-ms 300
# worker_as KEY LOG — loom-worker-cpu --id w1 with that key (background)
worker_as() {
  (cd "$ROOT" && exec "$BIN/loom-worker-cpu" --endpoint "$WORKER_EP" --id w1 --slots 1 \
    --server-key "$K/loomd.pub" --key "$TMP/$1/$1.key") >>"$TMP/$2" 2>&1 &
  WORKER_PID=$!; PIDS+=("$WORKER_PID")
}
state_of_w1() {
  "$BIN/loom" workers --all --json 2>/dev/null |
    python3 -c 'import json,sys; print(next((w["state"] for w in json.load(sys.stdin) if w["id"]=="w1"), ""))'
}
wait_w1() { # STATE
  for _ in $(seq 300); do [ "$(state_of_w1)" = "$1" ] && return 0; sleep 0.1; done
  fail "w1 never became $1 (is: '$(state_of_w1)')"
}
wait_log() { # FILE PATTERN
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1"
}
A_PUB=$(sed -n 's/^public: //p' "$TMP/a/a.key"); B_PUB=$(sed -n 's/^public: //p' "$TMP/b/b.key")

worker_as a a1.log
A_PID=$WORKER_PID
wait_w1 ready
wait_for 20 "SELECT curve_key FROM worker_keys WHERE worker_id = 'w1'" "$A_PUB"

# restart loomd with A gone: B asks for w1 first and is refused
kill -9 "$A_PID"
kill -TERM "$LOOMD_PID"; wait "$LOOMD_PID" 2>/dev/null
restart_loomd --keys "$K" --db "$DB_URL" --heartbeat-ms 300
grep -q 'worker key bindings loaded.*bindings=1' "$TMP/loomd.log" || fail "bindings not loaded at start"
worker_as b b1.log
B_PID=$WORKER_PID
wait_log "$TMP/b1.log" 'registration refused'
grep -q 'bound to another key' "$TMP/b1.log" || fail "B was refused for another reason: $(tail -2 "$TMP/b1.log")"
[ "$(state_of_w1)" = "" ] || fail "B registered as w1 after the restart"

# A comes back: w1 is A's again (B keeps being refused)
worker_as a a2.log
wait_w1 ready
wait_log "$TMP/a2.log" 'msg="registered"'

# re-keying: A's key leaves the allow-list; B takes the id over
kill -9 "$WORKER_PID"
rm "$K/workers/a.pub"
wait_log "$TMP/loomd.log" 'worker id rebound'
wait_log "$TMP/b1.log" 'msg="registered"'
wait_for 20 "SELECT curve_key FROM worker_keys WHERE worker_id = 'w1'" "$B_PUB"
kill -9 "$B_PID"
echo "PASS worker key bindings survive a restart"
