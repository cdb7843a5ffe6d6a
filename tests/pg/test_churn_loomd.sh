#!/usr/bin/env bash
# loomd churn (short; `make soak` runs 60 runs): 30 acknowledged runs of a
# two-step tool.exec chain, loomd --db killed with -9 twice while the three
# workers keep running their tasks; each restarted loomd recovers the runs
# from PostgreSQL and adopts what the workers still run or finished
# meanwhile. Every run succeeds and no step runs twice (tests/integration/churn.py).
. "$(dirname "$(readlink -f "$0")")/pglib.sh"
BUILD=$(cd "$BUILD" && pwd) /usr/bin/python3 "$ROOT/tests/integration/churn.py" loomd \
  --runs 30 --kills 2 --db "$DB_URL" || fail "loomd churn"
