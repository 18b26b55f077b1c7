#!/usr/bin/env bash
# Set everything up, then trace a real build (this project's own C core,
# compiled with make -j2) and print what it read, wrote and probed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/trace_build.py "$@"
