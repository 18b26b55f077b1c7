#!/usr/bin/env bash
# Set up everything sandbox_py needs on a fresh Debian 12 machine, as root:
# system packages, a virtualenv in .venv, and the package built from source.
# Idempotent: a second run only rebuilds the package.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential make git clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool
      linux-libc-dev libseccomp-dev liburing-dev python3 python3-venv python3-dev strace
      gcc-mingw-w64-x86-64 wine64 nginx-light gcc-multilib sccache
      libbpf-tools   # opensnoop, the eBPF peer in bench/ (bench/ebpf_bench.py)
      bear ccache    # the compilation-database peer and a compiler wrapper (tests/test_compdb.py)
      busybox-static)  # a statically linked shell (tests/test_process_tree.py, test_compdb.py)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
# Here every build tool is installed: a build without the eBPF backend is a
# mistake to stop at, not the graceful fallback a user's install gets.
SANDBOX_PY_REQUIRE_EBPF_BUILD=1 .venv/bin/python -m pip install -q -e '.[test]'

# BuildGrid: the REAPI v2 server that tests/test_memo_reapi.py runs the gRPC
# memo store against (and whose `bgd` reads the entries back). In its own
# virtualenv: its pins are its own, and the package does not need it.
if [ ! -x build/buildgrid-venv/bin/bgd ]; then
    python3 -m venv build/buildgrid-venv
    build/buildgrid-venv/bin/python -m pip install -q buildgrid==0.4.4
fi

# The third-party suites tests/test_third_party.py runs the pytest plugin
# over (sdists from PyPI; the versions are pinned there).
mkdir -p build/sdists
.venv/bin/python -m pip download -q --no-binary :all: --no-deps -d build/sdists \
    six==1.17.0 idna==3.20 toolz==1.2.0 || echo "setup.sh: could not fetch the third-party sdists;" \
    "tests/test_third_party.py will try again" >&2
