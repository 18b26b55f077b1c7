#!/usr/bin/env bash
# Set everything up, then run the whole test suite.  As root the eBPF backend
# is required: its tests fail (they are not skipped) when it cannot load.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The macOS interpose dylib and launcher, cross-built for both architectures
# with zig (the ziglang test dependency): a build failure stops here, named.
.venv/bin/python shims/macos/machobuild.py build/macho arm64 x86_64
export SANDBOX_PY_REQUIRE_EBPF=${SANDBOX_PY_REQUIRE_EBPF:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}
# the Python tree is kept clean under the project's ruff configuration
.venv/bin/ruff check .
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" tests
# --- unprivileged backends: the same suites as a non-root user,
# where BPF cannot load (preload, ptrace, auto, scenario corpus).
if [ "$(id -u)" = 0 ]; then
    bash tests/unprivileged/run_as_user.sh
fi
