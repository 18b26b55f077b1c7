#!/usr/bin/env bash
# Set up everything sandbox_py needs on a fresh Debian 12 machine, as root:
# system packages, a virtualenv in .venv, and the package built from source.
# Idempotent: a second run only rebuilds the package.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential make git clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool
      linux-libc-dev libseccomp-dev python3 python3-venv python3-dev strace
      gcc-mingw-w64-x86-64 wine64 nginx-light)
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
.venv/bin/python -m pip install -q -e '.[test]'
