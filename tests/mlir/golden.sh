#!/usr/bin/env bash
# golden.sh — the loom dialect after each pass, for example workflows and
# plans, compared with checked-in text (tests/mlir/golden/<case>.<pass>.mlir),
# through the real CLI: `loom plan FILE --emit mlir --after PASS`.
# Every other example workflow must lower through all passes; a kernel that
# does not verify must fail with MLIR's diagnostic at file:line:col.
# Regenerate after an intended change: LOOM_UPDATE_GOLDEN=1 build/tests/mlir_golden
set -u
BUILD=$(cd "${BUILD:-build}" && pwd)
cd "$(dirname "$(readlink -f "$0")")/../.."
LOOM="$BUILD/bin/loom"
GOLD=tests/mlir/golden
PASSES="emit decompose-llm annotate-targets partition-devices control-regions verify"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# case name | loom plan arguments
cases=(
  "support-rag|examples/support-rag.yaml"
  "react-agent|examples/react-agent.yaml"
  "research-fanout|examples/research-fanout.yaml"
  "paper|examples/paper/workflow.yaml --fleet examples/paper/fleet.yaml --profile examples/paper/profile.yaml"
)
for c in "${cases[@]}"; do
  name=${c%%|*}; args=${c#*|}
  for p in $PASSES; do
    out="$tmp/$name.$p.mlir"
    # shellcheck disable=SC2086
    if ! "$LOOM" plan $args --emit mlir --after "$p" >"$out" 2>"$tmp/err"; then
      echo "FAIL $name after $p: loom plan failed"; cat "$tmp/err"; fail=1; continue
    fi
    want="$GOLD/$name.$p.mlir"
    if [ "${LOOM_UPDATE_GOLDEN:-0}" = 1 ]; then
      cp "$out" "$want"; echo "updated $want"; continue
    fi
    if [ ! -f "$want" ]; then
      echo "FAIL $name after $p: no golden file $want"; fail=1
    elif ! diff -u "$want" "$out"; then
      echo "FAIL $name after $p differs from $want (intended? LOOM_UPDATE_GOLDEN=1 $0)"; fail=1
    else
      echo "ok   $name after $p"
    fi
  done
done

# The same plan lowers to the same text twice (deterministic output).
"$LOOM" plan examples/support-rag.yaml --emit mlir >"$tmp/a" 2>/dev/null
"$LOOM" plan examples/support-rag.yaml --emit mlir >"$tmp/b" 2>/dev/null
cmp -s "$tmp/a" "$tmp/b" && echo "ok   deterministic" || { echo "FAIL output differs between runs"; fail=1; }

# Every example workflow lowers through all passes.
for wf in examples/*.yaml; do
  case "$wf" in examples/catalog.yaml) continue ;; esac
  grep -q '^steps:' "$wf" || continue
  if "$LOOM" plan "$wf" --emit mlir >"$tmp/x" 2>"$tmp/err"; then
    echo "ok   $wf lowers ($(grep -c 'func.func' "$tmp/x") device functions)"
  else
    echo "FAIL $wf does not lower:"; cat "$tmp/err"; fail=1
  fi
done

# Bad command lines and a bad pass name are usage errors.
"$LOOM" plan examples/support-rag.yaml --emit mlir --after nonsense >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "unknown pass" "$tmp/err" && echo "ok   unknown pass rejected" || { echo "FAIL --after nonsense"; fail=1; }

# User kernels: a good one compiles for every target; a bad one is located.
for t in "cpu" "gpu --arch sm_90" "npu"; do
  # shellcheck disable=SC2086
  if "$LOOM" kernel tests/mlir/kernels/axpy.mlir --target $t >"$tmp/k" 2>&1; then
    echo "ok   axpy.mlir for $t"
  else
    echo "FAIL axpy.mlir for $t"; cat "$tmp/k"; fail=1
  fi
done
"$LOOM" kernel tests/mlir/kernels/bad_types.mlir >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "tests/mlir/kernels/bad_types.mlir:6:19:" "$tmp/err"; then
  echo "ok   bad kernel: $(head -1 "$tmp/err")"
else
  echo "FAIL bad kernel: exit $rc"; cat "$tmp/err"; fail=1
fi
# A workflow whose compute kernel does not verify fails to lower, located
# in the kernel file; the good one lowers.
"$LOOM" plan tests/mlir/workflows/bad-kernel.yaml --emit mlir >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "bad_types.mlir:6:19: steps.crunch.kernel:" "$tmp/err"; then
  echo "ok   plan with a bad kernel: $(head -1 "$tmp/err")"
else
  echo "FAIL plan with a bad kernel: exit $rc"; cat "$tmp/err"; fail=1
fi
# `loom validate` compiles the kernels too: the same located error, exit 1;
# the good workflow validates.
"$LOOM" validate tests/mlir/workflows/bad-kernel.yaml >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "bad_types.mlir:6:19: steps.crunch.kernel:" "$tmp/err"; then
  echo "ok   validate with a bad kernel: $(head -1 "$tmp/err")"
else
  echo "FAIL validate with a bad kernel: exit $rc"; cat "$tmp/err"; fail=1
fi
if "$LOOM" validate --quiet tests/mlir/workflows/compute.yaml 2>"$tmp/err"; then
  echo "ok   validate with good .mlir kernels"
else
  echo "FAIL validate compute.yaml"; cat "$tmp/err"; fail=1
fi
if "$LOOM" plan tests/mlir/workflows/compute.yaml --emit mlir >"$tmp/x" 2>"$tmp/err"; then
  echo "ok   plan with a good .mlir kernel lowers"
else
  echo "FAIL compute.yaml does not lower"; cat "$tmp/err"; fail=1
fi
exit $fail
