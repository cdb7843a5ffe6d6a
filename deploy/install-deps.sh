#!/usr/bin/env bash
# Installs every Debian package Loom builds, tests and demos with
# (LOOM_DEPS=build: only what `make all` needs).
# Idempotent and fast when everything is present (one dpkg query).
# MLIR is pinned to 19: the C API differs between releases.
set -euo pipefail

PKGS=(
  build-essential pkg-config git
  libzmq3-dev libyaml-dev libssl-dev libpq-dev libcurl4-openssl-dev
  zlib1g-dev                             # stored plans (orchestrator/plan_codec.c)
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libmicrohttpd-dev                      # HTTP endpoint
  libglpk-dev glpk-utils libcmocka-dev libjansson-dev
  libsystemd-dev                         # sd_notify (Type=notify units)
  libxxhash-dev                          # XXH3 transfer checksums (worker object store)
  libmlir-19-dev mlir-19-tools llvm-19-dev
  python3 python3-zmq python3-protobuf
)
# Needed by the tests, the demo and the benchmarks only; LOOM_DEPS=build
# (e.g. a container image build, deploy/Containerfile) leaves them out.
TEST_PKGS=(
  clang-19 libclang-rt-19-dev            # libFuzzer + sanitizers
  wrk                                    # make bench-http
  curl                                   # tests fetch /healthz, dashboards, local HTTP
  libopenblas-dev                        # bench-mlir peer (single-threaded sgemm)
  postgresql-15 postgresql-client-15
  python3-numpy python3-distributed
  python3-jsonschema                     # schema checks of constrained LLM output (tests/llm)
  python3-kubernetes python3-yaml        # Kubernetes manifest validation (deploy/k8s/validate.py)
  systemd                                # systemd-analyze verify (tests/deploy/test_units.sh)
  python3-pip python3-setuptools python3-venv   # the Python SDK (clients/python) and its test
  chromium python3-websocket             # dashboard test (headless, DevTools protocol)
  prometheus                             # promtool checks /metrics and the alert rules
  jq                                     # JSON checks in tests/planner/test_cli.sh
  iproute2                               # ip netns: the multi-host test's network namespaces
)
[ "${LOOM_DEPS:-all}" = build ] || PKGS+=("${TEST_PKGS[@]}")

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node + npm run the real MCP servers the tests use (deploy/install-npm.sh);
# a node from elsewhere (NodeSource ships its own npm) is fine too.
[ "${LOOM_DEPS:-all}" = build ] || command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
