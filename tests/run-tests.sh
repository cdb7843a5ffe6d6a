#!/usr/bin/env bash
# Runs each test executable, logs its output under $BUILD/test-logs/, and
# prints one line per test plus the closing summary line
# "N passed, N failed, N skipped". Exit status 77 means skipped: the test
# prints why (e.g. "no CUDA device visible"). A failing test's log tail is shown.
set -u
BUILD=${BUILD:-build}
LOGDIR="$BUILD/test-logs"
mkdir -p "$LOGDIR"
TIMEOUT=${LOOM_TEST_TIMEOUT:-300}
# Tests and the tools they run call `python3`: make it Debian's (numpy, zmq,
# protobuf), not a version manager's shim earlier on PATH, which here took
# ~5 s to start under load and pushed tool steps past their timeouts.
export PATH="/usr/bin:$PATH"
pass=0; fail=0; skip=0; failed=()
for t in "$@"; do
  name=$(basename "$t")
  log="$LOGDIR/$name.log"
  start=$(date +%s.%N)
  # workers' tool.exec spool (workers/common/spool.h): one per test, removed
  # after it (workers killed by a test leave theirs behind)
  spool=$(mktemp -d "${TMPDIR:-/tmp}/loom-test-spool.XXXXXX")
  BUILD="$BUILD" LOOM_SPOOL_DIR="$spool" timeout -k 5 "$TIMEOUT" "$t" >"$log" 2>&1
  rc=$?
  rm -rf "$spool"
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" "BEGIN{printf \"%.2f\", e-s}")
  if [ $rc -eq 0 ]; then
    pass=$((pass+1)); printf 'PASS  %-40s %6ss\n' "$name" "$secs"
  elif [ $rc -eq 77 ]; then
    skip=$((skip+1)); printf 'SKIP  %-40s %s\n' "$name" "$(grep -m1 -i 'skip' "$log" | cut -c1-100)"
  else
    fail=$((fail+1)); failed+=("$name")
    [ $rc -eq 124 ] && echo "(timed out after ${TIMEOUT}s)" >>"$log"
    printf 'FAIL  %-40s %6ss (exit %d)\n' "$name" "$secs" "$rc"
    tail -n 25 "$log" | sed 's/^/    | /'
  fi
done
echo
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
