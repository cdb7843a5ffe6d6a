#!/usr/bin/env bash
# GELU (tanh), layer norm (examples/kernels/*.mlir) and the built-in softmax,
# compiled and run by `loom kernel --run` on the CPU and NPU targets (the
# same runner a worker's compute op uses), match NumPy in float64 within
# 1e-5 (relative, 1e-6 absolute near zero) on random inputs.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BUILD=${BUILD:-build}
LOOM=$(cd "$BUILD/bin" && pwd)/loom
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
cd "$ROOT"
for target in cpu npu; do
  /usr/bin/python3 - "$LOOM" "$target" "$TMP" <<'PY'
import json, subprocess, sys
import numpy as np
loom, target, tmp = sys.argv[1:]
rng = np.random.default_rng(7)

def run(kernel, args):
    path = f"{tmp}/args.json"
    with open(path, "w") as f:
        json.dump(args, f)
    out = subprocess.run([loom, "kernel", kernel, "--target", target, "--run", path],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{kernel} on {target}: loom kernel exited {out.returncode}: {out.stderr}")
    return json.loads(out.stdout)

def check(name, got, want):
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape:
        sys.exit(f"{name} on {target}: shape {got.shape}, want {want.shape}")
    err = np.abs(got - want) - (1e-5 * np.abs(want) + 1e-6)
    if (err > 0).any():
        i = np.unravel_index(np.argmax(err), err.shape)
        sys.exit(f"{name} on {target}: at {i} got {got[i]!r}, NumPy {want[i]!r}")
    print(f"ok {name} on {target}: {got.size} values, max |diff| {np.abs(got - want).max():.2e}")

x = rng.uniform(-4, 4, 256)
t = np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))
check("gelu_tanh", run("examples/kernels/gelu_tanh.mlir", {"arg0": x.tolist()})["arg1"],
      0.5 * x * (1 + t))

x = rng.normal(3.0, 2.0, (4, 64)); w = rng.uniform(0.5, 1.5, 64); b = rng.uniform(-1, 1, 64)
mean = x.mean(axis=1, keepdims=True); var = x.var(axis=1, keepdims=True)
check("layernorm", run("examples/kernels/layernorm.mlir",
                       {"arg0": x.tolist(), "arg1": w.tolist(), "arg2": b.tolist()})["arg3"],
      (x - mean) / np.sqrt(var + 1e-5) * w + b)

x = rng.uniform(-8, 8, (5, 100))
e = np.exp(x - x.max(axis=1, keepdims=True))
check("softmax", run("softmax", {"x": x.tolist()})["y"], e / e.sum(axis=1, keepdims=True))
PY
done
