#!/usr/bin/env bash
# make soak — the long versions of the churn tests (tests/integration/churn.py):
#   100 runs under 12 worker kill -9s (each worker restarted with its --id)
#   60 runs under 2 loomd kill -9s with --db (workers left running)
#   loomd failover: 3 loomd on one database, the leader kill -9'd 8 times
#   under continuous submissions (SOAK_FAILOVER_KILLS)
# Each prints its figures; exits non-zero when either fails. SOAK_RUNS and
# SOAK_KILLS scale the worker churn.
set -u
BUILD=$(cd "${BUILD:-build}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export BUILD
rc=0
/usr/bin/python3 "$ROOT/tests/integration/churn.py" workers --runs "${SOAK_RUNS:-100}" \
  --kills "${SOAK_KILLS:-12}" || rc=1
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/loom-soak-pg.XXXXXX")
trap '"$ROOT/deploy/pg.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"' EXIT
if URL=$("$ROOT/deploy/pg.sh" start "$PGDIR"); then
  /usr/bin/python3 "$ROOT/tests/integration/churn.py" loomd --runs 60 --kills 2 --db "$URL" || rc=1
  /usr/bin/python3 "$ROOT/tests/integration/churn.py" failover --loomds 3 \
    --kills "${SOAK_FAILOVER_KILLS:-8}" --workers 3 --submitters 3 --db "$URL" || rc=1
else
  echo "soak: cannot start PostgreSQL; loomd churn not run"; rc=1
fi
exit $rc
