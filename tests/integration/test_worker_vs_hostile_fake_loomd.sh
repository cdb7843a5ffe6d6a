#!/usr/bin/env bash
# A real loom-worker-cpu against a FAKE, hostile loomd (fake_loomd_hostile.py:
# garbage headers, wrong version, undecodable payloads, too many frames,
# oversized frames, a decompression bomb). The worker decodes through the
# protocol library (protocol/envelope.h): it must stay up, keep answering
# well-formed requests and log a clear error for each kind of bad frame.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
PY=/usr/bin/python3
$PY -c 'import zmq, google.protobuf' 2>/dev/null || { echo "skip: python3-zmq/protobuf missing"; exit 77; }
export PYTHONPATH="$BUILD/gen/py"
HERE=$(dirname "$(readlink -f "$0")")
$PY "$HERE/fake_loomd_hostile.py" "$BIN/loom-worker-cpu" "$TMP/worker.log" >"$TMP/fake.txt" 2>&1 ||
  fail "$(cat "$TMP/fake.txt") -- worker log: $(tail -20 "$TMP/worker.log")"
for want in "status=INVALID_ARGUMENT" "status=FAILED_PRECONDITION" "status=RESOURCE_EXHAUSTED" \
            "undecodable payload from loomd ignored" "no reply from loomd; reconnecting"; do
  grep -q "$want" "$TMP/worker.log" || fail "worker log lacks '$want': $(cat "$TMP/worker.log")"
done
echo ok
