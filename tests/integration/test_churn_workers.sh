#!/usr/bin/env bash
# Worker churn (short; `make soak` runs 100 runs x 12 kills): 30 runs of a
# two-step tool.exec chain on three workers while 4 random workers are
# killed with -9 and restarted with the same --id. Every run succeeds, every
# step's effect happens once (the tool keys it by LOOM_TASK_KEY), and tasks
# a dead worker had only queued cost no attempt (tests/integration/churn.py).
. "$(dirname "$(readlink -f "$0")")/lib.sh"
BUILD=$(cd "$BUILD" && pwd) /usr/bin/python3 "$ROOT/tests/integration/churn.py" workers \
  --runs 30 --kills 4 || fail "worker churn"
