#!/usr/bin/env bash
# loomd's client API against rpc.proto from a client that has only the
# .proto files: pyzmq + stock protobuf (tests/protocol/conformance.py), a
# real loomd and loom-worker-cpu. Every RPC, status code and event field.
BUILD=$(cd "${BUILD:-build}" && pwd) exec /usr/bin/python3 \
  "$(dirname "$(readlink -f "$0")")/conformance.py"
