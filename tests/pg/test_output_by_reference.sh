#!/usr/bin/env bash
# Step outputs by reference (issue 15) on real loomd --db (PostgreSQL) and
# two CPU workers: wp runs tool.exec, wc runs echo.
#   1. make (wp) writes a 3 MB JSON object; its blob stays in wp's object
#      store, loomd and the tasks row keep {"$object": ...} with size and
#      digests; relay (echo on wc) gets it over the same-host path, its own
#      output goes by reference too; count (wp, network path: it may not
#      use the shared-memory file) hashes what arrived: the bytes are
#      exact. small reads make's small field through the reference form;
#      final is large but the run's outputs use it, so it stays inline.
#   2. `loom logs RUN make` fetches the bytes on demand; --refs shows the
#      reference.
#   3. wc is killed after relay: count cannot fetch relay's output, so loomd
#      runs relay again on another worker and then count; the run succeeds
#      and PostgreSQL has the re-run's reason.
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
PY=/usr/bin/python3
N=3000000
export LOOM_OBJECT_DIR="$TMP/objects" LOOM_OBJECT_TIMEOUT_MS=1500
start_loomd --db "$DB_URL"
LOOM_OBJECT_SAME_HOST=0 start_worker wp --ops tool.exec
start_worker wc --ops echo; pid_wc=$WORKER_PID
WF="$ROOT/tests/pg/workflows/bigout.yaml"

touch "$TMP/go"
"$BIN/loom" run "$WF" --input bytes="$N" --input dir="$TMP" --json >"$TMP/ok.json" 2>"$TMP/ok-run.log" ||
  fail "run failed: $(cat "$TMP/ok-run.log" "$TMP/ok.json")"
RUN=$(jget "$TMP/ok.json" 'd["run_id"]')
"$PY" - "$TMP/ok.json" "$N" <<'PY' || fail "unexpected run: $(head -c 3000 "$TMP/ok.json")"
import hashlib, json, sys
d, n = json.load(open(sys.argv[1])), int(sys.argv[2])
assert d["state"] == "succeeded", d.get("error")
o = d["outputs"]
assert o["count"] == {"len": n, "sha256": hashlib.sha256(b"ab" * (n // 2)).hexdigest()}, o["count"]
assert o["n"] == n, o["n"]
assert o["final"] == "x" * 100000, "final output not inline: %.200s" % o["final"]
s = {x["step"]: x for x in d["steps"]}
assert s["make"]["worker"] == "wp" and s["relay"]["worker"] == "wc", (s["make"]["worker"], s["relay"]["worker"])
for step, worker in (("make", "wp"), ("relay", "wc")):
    out = s[step]["output"]
    ref = out["blob"]["$object"]
    assert out["n"] == n, out
    assert ref["worker"] == worker and ref["media"] == "application/json", ref
    assert ref["size"] == n + 2 and len(ref["id"]) == 64 and len(ref["checksum"]) == 32, ref
    assert len(json.dumps(out)) < 2000, "loomd holds more than a reference"
print("ok: %d-byte blob went by reference; loomd kept %d bytes of make's output"
      % (n, len(json.dumps(s["make"]["output"]))))
PY
grep -q 'msg="inputs fetched by reference"' "$TMP/wc.log" || fail "wc fetched nothing by reference"
grep -q 'msg="inputs fetched by reference"' "$TMP/wp.log" || fail "wp fetched nothing by reference"

# PostgreSQL keeps the references, not the bytes; the run's outputs in full.
wait_for 20 "SELECT state FROM runs WHERE id = '$RUN'" succeeded
for step in make relay; do
  len=$(q "SELECT length(output) FROM tasks WHERE run_id = '$RUN' AND step_id = '$step'")
  [ -n "$len" ] && [ "$len" -lt 2000 ] || fail "tasks row of $step holds $len bytes"
  q "SELECT output FROM tasks WHERE run_id = '$RUN' AND step_id = '$step'" | grep -q '"\$object"' ||
    fail "tasks row of $step holds no reference"
done
len=$(q "SELECT length(output) FROM tasks WHERE run_id = '$RUN' AND step_id = 'final'")
[ "$len" -ge 100000 ] || fail "final's tasks row holds $len bytes, not its inline output"

# 2. on demand: loom logs fetches the bytes; --refs shows what loomd keeps.
"$BIN/loom" logs "$RUN" make --json >"$TMP/logs.json" || fail "loom logs failed"
"$PY" -c '
import json, sys
o = json.load(open(sys.argv[1]))["output"]
assert o["blob"] == "ab" * (int(sys.argv[2]) // 2) and o["n"] == int(sys.argv[2]), str(o)[:200]' "$TMP/logs.json" "$N" ||
  fail "loom logs did not fetch the output"
"$BIN/loom" logs "$RUN" make --json --refs | grep -q '"\$object"' || fail "loom logs --refs shows no reference"

# 3. the holder of relay's output dies before count fetches it: count
# cannot fetch it (wp may not read wc's file), so loomd runs relay again on
# another echo worker (wc2), then count; the run succeeds, and the re-run's
# reason is an event in PostgreSQL.
rm -f "$TMP/go"
"$BIN/loom" run "$WF" --input bytes="$N" --input dir="$TMP" --json >"$TMP/dead.json" 2>"$TMP/dead-run.log" &
runner=$!
for _ in $(seq 1200); do
  id=$("$BIN/loom" runs --json 2>/dev/null | "$PY" -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["state"] == "running"]; print(r[0]["run_id"] if r else "")')
  [ -n "$id" ] && "$BIN/loom" status "$id" --json 2>/dev/null | "$PY" -c '
import json, sys
sys.exit(0 if any(s["step"] == "relay" and s["state"] == "succeeded" for s in json.load(sys.stdin)["steps"]) else 1)' && break
  sleep 0.1
done
kill -9 "$pid_wc"
start_worker wc2 --ops echo
touch "$TMP/go"
wait $runner || fail "the run did not survive the death of relay's holder: $(head -c 3000 "$TMP/dead.json")"
DEAD=$(jget "$TMP/dead.json" 'd["run_id"]')
"$PY" - "$TMP/dead.json" "$N" <<'PY' || fail "unexpected run: $(head -c 3000 "$TMP/dead.json")"
import hashlib, json, sys
d, n = json.load(open(sys.argv[1])), int(sys.argv[2])
assert d["state"] == "succeeded", d.get("error")
assert d["outputs"]["count"] == {"len": n, "sha256": hashlib.sha256(b"ab" * (n // 2)).hexdigest()}, d["outputs"]["count"]
s = {x["step"]: x for x in d["steps"]}   # the last record of each step
assert s["relay"]["worker"] == "wc2" and s["relay"]["state"] == "succeeded", s["relay"]
assert s["relay"]["output"]["blob"]["$object"]["worker"] == "wc2", s["relay"]["output"]
assert s["count"]["state"] == "succeeded", s["count"]
print("ok: relay ran again on wc2 after wc died; count hashed the same bytes")
PY
wait_for 20 "SELECT state FROM runs WHERE id = '$DEAD'" succeeded
q "SELECT detail FROM events WHERE run_id = '$DEAD'" >"$TMP/dead-events.txt"
grep -q "re-run (1 of at most 2): cannot fetch an upstream output by reference from worker wc" "$TMP/dead-events.txt" ||
  fail "PostgreSQL lacks relay's re-run and its reason: $(cat "$TMP/dead-events.txt")"
grep -q "waits for step 'relay' to run again" "$TMP/dead-events.txt" || fail "PostgreSQL lacks count's wait"
echo ok
