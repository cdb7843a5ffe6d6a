#!/usr/bin/env bash
# Installs the npm packages Loom's tests and examples run (deploy/npm/
# package.json: real MCP servers, and node-llama-cpp with its prebuilt
# x86-64 CPU build of llama.cpp for deploy/npm/openai-server.mjs) into a
# project-local directory,
# var/npm by default (or $1). Idempotent: a stamp holding the hash of
# package.json skips the work when nothing changed. Needs node and npm
# (deploy/install-deps.sh installs them) and the npm registry.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
DIR=${1:-$ROOT/var/npm}
WANT=$(sha256sum "$ROOT/deploy/npm/package.json" | cut -d' ' -f1)
if [ -f "$DIR/.installed" ] && [ "$(cat "$DIR/.installed")" = "$WANT" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-npm: npm not found (run deploy/install-deps.sh)" >&2; exit 1; }
mkdir -p "$DIR"
cp "$ROOT/deploy/npm/package.json" "$DIR/package.json"
echo "install-npm: installing deploy/npm/package.json into $DIR" >&2
# --omit=optional: node-llama-cpp's optional prebuilt CUDA and Vulkan
# builds are hundreds of MB; the CPU build is a dependency of our own.
(cd "$DIR" && npm install --no-audit --no-fund --omit=optional --loglevel=error >&2)
echo "$WANT" >"$DIR/.installed"
echo "install-npm: done" >&2
