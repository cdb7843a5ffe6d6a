#!/usr/bin/env bash
# Builds llama.cpp's llama-bench as the peer `make bench-llm` measures Loom's
# LLM engine against (bench-only: nothing of it enters Loom's build).
#
# The source is the llama.cpp tree shipped inside the npm package
# node-llama-cpp (pinned, integrity-checked): its llama/gitRelease.bundle is
# a git bundle of the llama.cpp release that package builds. CPU only,
# -march=native (GGML_NATIVE), static, Release; ccache when present.
#
# usage: bench/llama_cpp_peer.sh [DIR]     (default build/peer)
# Prints the path of llama-bench on its last line; idempotent (reruns only
# what is missing). JOBS (default 2) bounds the compile jobs.
set -euo pipefail

VERSION=3.21.1
INTEGRITY='sha512-E3N0Ev2Va0wzydvXYFwM9Hvyo07PoWjt8T/9GMc43Cvt8YkV/NU/tYUgEMC1grTPv2o9PRjQi0G3Wb5P/awiMg=='
DIR=${1:-build/peer}
JOBS=${JOBS:-2}

case "${1:-}" in -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; --version) echo "llama_cpp_peer node-llama-cpp@$VERSION"; exit 0 ;; esac
for tool in npm git cmake c++; do
  command -v "$tool" >/dev/null || { echo "llama_cpp_peer: '$tool' is not installed (apt-get install npm git cmake g++)" >&2; exit 1; }
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
TGZ="$DIR/node-llama-cpp-$VERSION.tgz"

if [ ! -f "$TGZ" ]; then
  echo "llama_cpp_peer: fetching node-llama-cpp@$VERSION" >&2
  (cd "$DIR" && npm pack --silent "node-llama-cpp@$VERSION" >/dev/null)
fi
got=$(echo "sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 -w0)")
[ "$got" = "$INTEGRITY" ] || { echo "llama_cpp_peer: $TGZ: integrity $got, expected $INTEGRITY" >&2; exit 1; }

SRC="$DIR/llama.cpp"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  rm -rf "$DIR/package" "$SRC"
  tar -xzf "$TGZ" -C "$DIR" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  git clone -q "$DIR/package/llama/gitRelease.bundle" "$SRC"
  echo "llama_cpp_peer: llama.cpp $(git -C "$SRC" rev-parse --short HEAD) ($(tr -d '\n ' < "$DIR/package/llama/llama.cpp.info.json"))" >&2
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$DIR/build/CMakeCache.txt" ]; then
  cmake -S "$SRC" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF \
    -DGGML_METAL=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF "${launcher[@]}" >&2
fi
cmake --build "$DIR/build" --target llama-bench -j "$JOBS" >&2
echo "$DIR/build/bin/llama-bench"
