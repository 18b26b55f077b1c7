"""`pip install .` and a built wheel, as an unprivileged user, on a machine
without clang or bpftool (simulated: a PATH holding every program of /usr/bin
and /bin except clang, llvm and bpftool).  The unprivileged backends must
work, the eBPF backend must say once why it is missing and how to get it.

Needs root (to act as the user ``sbxtest``) and a package index for the
build requirements (setuptools, wheel), as `pip install` itself does.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = os.environ.get("SBX_TEST_USER", "sbxtest")
PYTHON = os.environ.get("SBX_TEST_PYTHON", "/usr/bin/python3")
#: What a source distribution carries (MANIFEST.in), without built files.
SOURCES = ["setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "csrc", "bpf",
           "shims", "sandbox_py"]
HIDDEN = ("clang", "llc", "llvm", "bpftool")

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="acts as the user %s: run as root" % USER)


def as_user(argv, base, cwd=None, check=True):
    env = ["HOME=" + base, "PATH=" + os.path.join(base, "bin"), "LC_ALL=C.UTF-8"]
    proc = subprocess.run(["runuser", "-u", USER, "--", "env", "-i"] + env + argv,
                          cwd=cwd or base, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, (argv, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def installed():
    if subprocess.run(["id", "-u", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    base = tempfile.mkdtemp(prefix="sandbox_py-install.")
    src = os.path.join(base, "src")
    os.makedirs(src)
    built = shutil.ignore_patterns("__pycache__", "*.so", "_sbx_*", "_build_info.json",
                                   "build")
    for name in SOURCES:
        path = os.path.join(REPO, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(src, name), ignore=built)
        else:
            shutil.copy2(path, src)
    # The machine "without clang or bpftool".
    bindir = os.path.join(base, "bin")
    os.makedirs(bindir)
    for d in ("/usr/bin", "/bin"):
        for name in os.listdir(d):
            if not name.startswith(HIDDEN) and not os.path.lexists(os.path.join(bindir, name)):
                os.symlink(os.path.join(d, name), os.path.join(bindir, name))
    subprocess.run(["chown", "-R", USER, base], check=True)
    os.chmod(base, 0o755)
    as_user([PYTHON, "-m", "venv", os.path.join(base, "venv")], base)
    pip = [os.path.join(base, "venv", "bin", "python"), "-m", "pip"]
    proc = as_user(pip + ["install", "-q", "--no-cache-dir", src], base)
    yield base, proc
    shutil.rmtree(base, ignore_errors=True)


CHECK = """
import json, sandbox_py
from sandbox_py.result import json_schema
r = sandbox_py.Sandbox("preload").run(["cat", "/etc/hostname"], capture_output=True)
print(json.dumps({"backends": sandbox_py.backends(), "file": sandbox_py.__file__,
                  "reads": "/etc/hostname" in r.reads, "schema": json_schema()["title"]}))
"""


def test_pip_install_works_without_clang_or_bpftool(installed):
    base, _ = installed
    python = os.path.join(base, "venv", "bin", "python")
    found = json.loads(as_user([python, "-c", CHECK], base).stdout)
    assert found["file"].startswith(os.path.join(base, "venv"))
    backends = found["backends"]
    assert backends["preload"][0] and backends["ptrace"][0], backends
    assert found["reads"] and found["schema"] == "sandbox_py.result/1"
    ok, why = backends["ebpf"]
    assert not ok
    # Said clearly: what was missing at build time and how to get it.
    assert "left out when this copy of sandbox_py was built" in why, why
    assert "'clang' not found" in why and "apt-get install clang" in why, why
    doctor = as_user([os.path.join(base, "venv", "bin", "sandbox-py"), "doctor"], base)
    assert "preload  works" in doctor.stdout and "'clang' not found" in doctor.stdout
    # a user's pip install can enforce a policy too, and says how
    assert re.search(r"enforcement .*: (Landlock ABI \d+|UNAVAILABLE)", doctor.stdout), \
        doctor.stdout


def test_a_source_tree_that_shadows_the_install_is_named(installed):
    base, _ = installed
    src = os.path.join(base, "src")
    python = os.path.join(base, "venv", "bin", "python")
    proc = as_user([python, "-c", "import sandbox_py; print(sandbox_py.backends()['ptrace'])"],
                   base, cwd=src)
    assert "shadows the installed copy in %s" % os.path.join(base, "venv") in proc.stdout, \
        proc.stdout
    assert "run from another directory" in proc.stdout


def test_built_wheel_carries_the_backends_and_the_schema(installed):
    base, _ = installed
    pip = [os.path.join(base, "venv", "bin", "python"), "-m", "pip"]
    dist = os.path.join(base, "dist")
    as_user(pip + ["wheel", "-q", "--no-deps", "--no-cache-dir", "-w", dist,
                   os.path.join(base, "src")], base)
    wheel, = [os.path.join(dist, f) for f in os.listdir(dist) if f.endswith(".whl")]
    names = {n.split("/")[-1] for n in zipfile.ZipFile(wheel).namelist()}
    assert {"result.schema.json", "_sbx_preload.so", "_sbx_ptrace_exec",
            "_build_info.json"} <= names
    assert any(n.startswith("_unpriv.") for n in names)
    assert not any(n.startswith("_core.") for n in names)
