#!/usr/bin/env bash
# Runs every fuzzer in $FUZZ_BUILD/fuzz for $FUZZ_SECONDS seconds over its
# seed corpus tests/fuzz/corpus/<name>/ (read-only) plus a scratch corpus
# in $FUZZ_BUILD/corpus/<name>/. Exit status 1 when any fuzzer finds a crash;
# the reproducer is in $FUZZ_BUILD/crashes/<name>/.
set -u
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
cd "$ROOT"
shopt -s nullglob
fuzzers=("$FUZZ_BUILD"/fuzz/*)
[ ${#fuzzers[@]} -gt 0 ] || { echo "no fuzzers in $FUZZ_BUILD/fuzz"; exit 1; }
failed=()
for f in "${fuzzers[@]}"; do
  name=$(basename "$f")
  seeds="tests/fuzz/corpus/$name"
  scratch="$FUZZ_BUILD/corpus/$name"
  crashes="$FUZZ_BUILD/crashes/$name"
  mkdir -p "$scratch" "$crashes" "$FUZZ_BUILD/fuzz-logs"
  log="$FUZZ_BUILD/fuzz-logs/$name.log"
  dicts=(); [ -f "tests/fuzz/$name.dict" ] && dicts=(-dict="tests/fuzz/$name.dict")
  args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536
        -print_final_stats=1 -artifact_prefix="$crashes/" "${dicts[@]}" "$scratch")
  [ -d "$seeds" ] && args+=("$seeds")
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       "$f" "${args[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    printf 'fuzz %-24s ok   %ss, %s executions\n' "$name" "$FUZZ_SECONDS" "${runs:-?}"
  else
    failed+=("$name")
    printf 'fuzz %-24s FAIL (log %s)\n' "$name" "$log"
    grep -m3 -E 'ERROR|SUMMARY|runtime error' "$log" | sed 's/^/    | /'
    ls "$crashes" | sed 's/^/    | reproducer: /'
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzzers with crashes: ${failed[*]}"; exit 1; }
