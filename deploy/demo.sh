#!/usr/bin/env bash
# `make demo`: validates the example workflows and prints their DAGs.
# The orchestrator issue turns this into a full run (loomd + workers).
set -euo pipefail
cd "$(dirname "$0")/.."
./build/bin/loom validate $(grep -l "^steps:" examples/*.yaml)  # workflows only (not catalog.yaml)
