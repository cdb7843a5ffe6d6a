#!/usr/bin/env bash
# The lifetime of objects by reference on a real worker (issue 15, item 5):
# loomd + one CPU worker whose object store has a 5 MB memory tier and a
# 20 MB spill tier (tests/integration/workflows/objlife.yaml).
#   1. three 3 MB outputs, all still needed (their consumer waits): the
#      memory tier overflows and the needed objects go to the spill
#      directory, none is dropped; the consumer reads exact bytes.
#   2. once the consumer finished, and while the run still runs, loomd
#      releases them (HeartbeatReply): the worker holds no needed object.
#   3. after the run, `loom logs` still fetches the bytes (retained); after
#      --object-retention-ms the worker forgets them: both tiers empty.
#   4. three 8 MB outputs with the spill tier full of needed objects: the
#      step fails with a clear error naming the object and the run.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
PY=/usr/bin/python3
WF="$ROOT/tests/integration/workflows/objlife.yaml"
export LOOM_OBJECT_DIR="$TMP/objects" LOOM_OBJECT_SPILL_DIR="$TMP/spill"
export LOOM_OBJECT_CACHE_BYTES=5000000 LOOM_OBJECT_SPILL_BYTES=20000000
start_loomd --object-retention-ms 4000 --heartbeat-ms 200
start_worker wp --ops tool.exec --slots 4
N=3000000

step_state() { # RUN STEP -> its state
  "$BIN/loom" status "$1" --json 2>/dev/null | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(next((s["state"] for s in d["steps"] if s["step"] == sys.argv[1]), "none"))' "$2"
}
wait_step() { # RUN STEP STATE
  for _ in $(seq 600); do [ "$(step_state "$1" "$2")" = "$3" ] && return 0; sleep 0.1; done
  fail "step $2 of $1 never reached $3 (now $(step_state "$1" "$2"))"
}
files() { find "$1" -type f 2>/dev/null | wc -l; }

# 1. needed objects spill instead of being dropped
rm -f "$TMP/go" "$TMP/go2"
RUN=$("$BIN/loom" run "$WF" --input bytes="$N" --input dir="$TMP" --no-wait) || fail "submit"
wait_step "$RUN" make succeeded
spilled=$(grep -c 'msg="spilled"' "$TMP/wp.log")
[ "$spilled" -ge 2 ] || fail "expected at least 2 objects spilled, log says $spilled"
grep -q 'msg="evicted"' "$TMP/wp.log" && fail "a needed object was evicted"
[ "$(files "$TMP/spill")" -ge 2 ] || fail "spill directory holds $(files "$TMP/spill") files"
echo "ok: $spilled needed objects spilled to disk, none dropped"

# 2. released when the consumer finished, before the run ends
touch "$TMP/go"
wait_step "$RUN" count succeeded
for _ in $(seq 200); do
  grep "msg=\"objects released\".*first_run=$RUN " "$TMP/wp.log" | grep -q ' pinned=0 ' && break
  sleep 0.1
done
grep "msg=\"objects released\".*first_run=$RUN " "$TMP/wp.log" | grep -q ' pinned=0 ' ||
  fail "the worker still holds needed objects after their consumer finished"
[ "$(step_state "$RUN" tail)" = running ] || fail "the run was not running any more when the objects were released"
echo "ok: released once their consumer finished, while the run still ran"
touch "$TMP/go2"
"$BIN/loom" watch "$RUN" >/dev/null 2>&1
"$BIN/loom" status "$RUN" --json >"$TMP/run1.json" || fail "status"
"$PY" - "$TMP/run1.json" "$N" <<'PY' || fail "unexpected run: $(head -c 2000 "$TMP/run1.json")"
import hashlib, json, sys
d, n = json.load(open(sys.argv[1])), int(sys.argv[2])
assert d["state"] == "succeeded", d.get("error")
got = d["outputs"]["count"]
want = [{"part": p, "len": n * 1, "sha256": hashlib.sha256((str(p) * n).encode()).hexdigest()} for p in (1, 2, 3)]
assert got == want, got
PY

# 3. retained for loom logs, then forgotten
"$BIN/loom" logs "$RUN" make --json >"$TMP/logs.json" || fail "loom logs failed"
"$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
o = (d[0] if isinstance(d, list) else d)["output"]
n = int(sys.argv[2])
assert [x["blob"] == str(x["part"]) * n for x in o] == [True] * 3, str(o)[:200]' "$TMP/logs.json" "$N" ||
  fail "loom logs did not fetch the retained outputs"
echo "ok: loom logs fetched the retained outputs"
for _ in $(seq 300); do
  [ "$(files "$TMP/spill")" = 0 ] && [ "$(files "$TMP/objects")" = 0 ] && break
  sleep 0.1
done
[ "$(files "$TMP/spill")" = 0 ] && [ "$(files "$TMP/objects")" = 0 ] ||
  fail "objects left after the retention: $(find "$TMP/spill" "$TMP/objects" -type f)"
grep -q "msg=\"objects released\".*first_run=$RUN forget=1" "$TMP/wp.log" || fail "no forget from loomd"
echo "ok: forgotten after --object-retention-ms"

# 4. even the spill tier is full of needed objects: a clear error
RUN2=$("$BIN/loom" run "$WF" --input bytes=8000000 --input dir="$TMP" --no-wait) || fail "submit 2"
"$BIN/loom" watch "$RUN2" >/dev/null 2>&1
"$BIN/loom" status "$RUN2" --json >"$TMP/run2.json"
"$PY" - "$TMP/run2.json" "$RUN2" <<'PY' || fail "unexpected run 2: $(head -c 3000 "$TMP/run2.json")"
import json, sys
d, run = json.load(open(sys.argv[1])), sys.argv[2]
assert d["state"] == "failed", d["state"]
err = json.dumps(d.get("error"))
assert "object store full" in err and run in err and "spill tier" in err, err
print("ok: spill full:", err[:400])
PY
echo ok
