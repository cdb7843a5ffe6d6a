#!/usr/bin/env bash
# fuzz_smoke: builds the fuzz build quietly and runs every fuzzer ~5 s over
# its seed corpus; fails on any crash. Skipped (77) when LOOM_SKIP_FUZZ=1
# (make asan sets it: the fuzzers have their own sanitizer build) or when
# clang-19's libFuzzer is missing.
set -u
if [ "${LOOM_SKIP_FUZZ:-0}" = 1 ]; then
  echo "skip: LOOM_SKIP_FUZZ=1 (fuzzers run in their own build)"; exit 77
fi
command -v clang-19 >/dev/null || { echo "skip: clang-19 not installed"; exit 77; }
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
cd "$ROOT"
# Do not inherit the parent make's jobserver.
unset MAKEFLAGS MFLAGS MAKELEVEL
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! make -j2 --no-print-directory BUILD=build-fuzz CC=clang-19 OPT="-O1 -g" \
     SAN="-fsanitize=fuzzer-no-link,address,undefined" fuzz-build >"$log" 2>&1; then
  echo "fuzz build failed:"; tail -n 30 "$log"; exit 1
fi
FUZZ_BUILD=build-fuzz FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-5} ./tests/fuzz/run-fuzzers.sh
