#!/usr/bin/env bash
# loomd --db against rpc.proto from a client that has only the .proto files
# (tests/protocol/conformance.py --db): the status codes that need a
# database -- a run the database refuses (UNAVAILABLE), the database down
# (UNAVAILABLE for reads only it can answer, RESOURCE_EXHAUSTED once
# --db-queue writes wait), and what waited answered once it is back.
. "$(dirname "$(readlink -f "$0")")/../pg/pglib.sh"
CONF_DB_URL="$DB_URL" CONF_PGDIR="$PGDIR" BUILD=$(cd "$BUILD" && pwd) /usr/bin/python3 \
  "$ROOT/tests/protocol/conformance.py" --db || exit 1
