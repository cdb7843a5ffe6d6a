#!/usr/bin/env bash
# Python interop: a client generated from the .proto files alone
# (protoc --python_out, pyzmq) talks to loom-test-server.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
PY=/usr/bin/python3   # Debian's python3-zmq / python3-protobuf live here
if ! $PY -c 'import zmq, google.protobuf' 2>/dev/null; then
  echo "skip: python3-zmq or python3-protobuf not installed"; exit 77
fi
[ -f "$BUILD/gen/py/loom/v1/rpc_pb2.py" ] || { echo "missing $BUILD/gen/py (make builds it)"; exit 1; }
out=$(mktemp)
"$BUILD/tests/loom-test-server" >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q '^endpoint ' "$out" && break; sleep 0.05; done
ep=$(sed -n 's/^endpoint //p' "$out")
[ -n "$ep" ] || { echo "test server did not start"; exit 1; }
PYTHONPATH="$BUILD/gen/py" $PY "$HERE/python_client.py" "$ep"
