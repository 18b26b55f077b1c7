#!/usr/bin/env bash
# The unprivileged claim, proved: run the preload/ptrace suites (and the
# scenario corpus) as a non-root user, where loading BPF is impossible.
#
# Run as root after the package is built (scripts/test.sh does).  The
# checkout may sit under a directory the user cannot enter (/root), and the
# venv's interpreter may live under /root too, so the built package, the
# tests and pytest are staged into a world-readable temporary directory and
# run with the system python3 (same CPython version as the build).
set -euo pipefail
cd "$(dirname "$0")/../.."
USER_NAME=${SBX_TEST_USER:-sbxtest}
PY=${SBX_TEST_PYTHON:-/usr/bin/python3}

if [ "$(id -u)" != 0 ]; then
    echo "run_as_user.sh: run as root (it creates the test user)" >&2
    exit 2
fi
id -u "$USER_NAME" >/dev/null 2>&1 || useradd -m -s /bin/sh "$USER_NAME"

want=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
have=$("$PY" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
if [ "$want" != "$have" ]; then
    echo "run_as_user.sh: $PY builds $have, the package was built for $want;" \
         "set SBX_TEST_PYTHON to a matching interpreter outside /root" >&2
    exit 2
fi

stage=$(mktemp -d /tmp/sandbox_py-unpriv.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/repo" "$stage/site" "$stage/home"
cp -a sandbox_py tests pyproject.toml "$stage/repo/"
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
for pkg in pytest _pytest pluggy iniconfig packaging pygments py.py; do
    [ -e "$site/$pkg" ] && cp -a "$site/$pkg" "$stage/site/"
done
# their metadata too: a pytest run by pytester prints pluggy's version
for meta in "$site"/pytest-*.dist-info "$site"/pluggy-*.dist-info "$site"/iniconfig-*.dist-info \
            "$site"/packaging-*.dist-info "$site"/pygments-*.dist-info; do
    [ -e "$meta" ] && cp -a "$meta" "$stage/site/"
done
chown -R "$USER_NAME" "$stage"
chmod 755 "$stage"

cd "$stage/repo"
runuser -u "$USER_NAME" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$stage/home" \
    PYTHONPATH="$stage/repo:$stage/site" SANDBOX_PY_REQUIRE_EBPF=0 \
    "$PY" -m pytest -q -p no:cacheprovider -p no:sandbox_py \
    tests/test_auto.py tests/test_preload.py tests/test_ptrace.py tests/test_clone_untraced.py tests/test_process_tree.py tests/test_scenarios.py \
    tests/test_differential.py tests/test_syscall_rows.py tests/test_lifecycle.py \
    tests/test_path_truth.py tests/test_path_race.py tests/test_preload_hostile.py \
    tests/test_escapes.py tests/test_enforcement.py tests/test_breakaway.py tests/test_trace.py \
    tests/test_preload_fidelity.py tests/test_preload_processes.py tests/test_c_in_process.py "$@"
