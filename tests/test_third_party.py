"""The pytest plugin over real third-party test suites, every test checked.

The suites of three well-known pure-Python packages (six, idna, toolz -- whose
doctests make a debugger that reads its start-up files), taken from
their PyPI sdists, run with ``--sandbox`` (every test checked, nothing
declared) and bytecode writing on.  They touch nothing outside their own
imports, so any sandbox failure is a false positive of the plugin -- except
the one test planted here, which reads a data file, writes into the
project and runs a child that reads another project file, and must be
caught.

Run as the current user (root: eBPF) and, when root, once more as the
unprivileged user ``sbxtest`` (the session re-executed under the preload
shim: every test fully checked), from a world-readable copy of
the package like tests/unprivileged/run_as_user.sh does.

The sdists are fetched by scripts/setup.sh into build/sdists (or here, on
first use) with ``pip download --no-binary :all:`` from PyPI.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile

import pytest

import sandbox_py

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SDISTS = os.path.join(REPO, "build", "sdists")
#: Pinned so that the expected counts below stay true.
PACKAGES = {"six": "1.17.0", "idna": "3.20", "toolz": "1.2.0"}
#: Tests per suite that must have passed: proves the suite really ran.
MIN_PASSED = {"six": 150, "idna": 6000, "toolz": 180}
#: Suites' own optional dependencies this environment does not install.
IGNORE = {"idna": ["tests/test_idna_properties.py"]}
USER = os.environ.get("SBX_TEST_USER", "sbxtest")

PLANTED = '''

def test_planted_first_import():
    # Allowed: the first import of a project module inside a checked test
    # writes its bytecode cache (planted_helper.py is added next to six.py).
    import planted_helper
    assert planted_helper.VALUE == 42


def test_planted_violation():
    import os
    # Not one of six's tests: reads a project data file and writes into the
    # project tree, neither declared.
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "setup.cfg")) as f:
        f.read()
    with open(os.path.join(here, "planted.txt"), "w") as f:
        f.write("x")
    # And a child process reads another project file.
    import subprocess
    subprocess.run(["cat", os.path.join(here, "README.rst")], check=True,
                   stdout=subprocess.DEVNULL)
'''


def _sdist(name):
    version = PACKAGES[name]
    pattern = os.path.join(SDISTS, "%s-%s.tar.gz" % (name, version))
    found = glob.glob(pattern)
    if not found:
        os.makedirs(SDISTS, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:",
             "--no-deps", "-d", SDISTS,
             "%s==%s" % (name, version)], capture_output=True, text=True)
        found = glob.glob(pattern)
        if not found:
            pytest.skip("cannot fetch the %s sdist from PyPI (run scripts/setup.sh "
                        "online): %s" % (name, proc.stderr.strip()[-300:]))
    return found[0]


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    """{name: directory} of the unpacked sdists, six with the planted test,
    readable by every user."""
    base = tmp_path_factory.mktemp("third_party")
    out = {}
    for name in PACKAGES:
        with tarfile.open(_sdist(name)) as tar:
            # The "data" filter (refuse links out, absolute names) where
            # this Python has it (3.11.4+).
            tar.extractall(base, **({"filter": "data"} if hasattr(tarfile, "data_filter")
                                    else {}))
        out[name] = str(base / ("%s-%s" % (name, PACKAGES[name])))
    with open(os.path.join(out["six"], "test_six.py"), "a") as f:
        f.write(PLANTED)
    with open(os.path.join(out["six"], "planted_helper.py"), "w") as f:
        f.write("VALUE = 42\n")
    # An ini of our own: the sdists' configurations may ask for plugins
    # (coverage, hypothesis profiles) this environment does not have.
    with open(base / "pytest.ini", "w") as f:
        f.write("[pytest]\n")
    return out


def _args(name, directory):
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--sandbox",
            "-c", os.path.join(os.path.dirname(directory), "pytest.ini"),
            "--rootdir", directory]
    for path in IGNORE.get(name, ()):
        args += ["--ignore", path]
    return args


def _counts(output):
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    return {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|errors?)", tail)}


def check(name, proc, directory):
    output = proc.stdout + proc.stderr
    counts = _counts(proc.stdout)
    assert counts.get("passed", 0) >= MIN_PASSED[name], output[-3000:]
    failures = re.findall(r"^sandbox_py: (\S+) touched", output, re.M)
    if name == "six":
        # Exactly the planted test, with exactly what it did.
        assert failures == ["test_planted_violation"], output[-5000:]
        assert counts.get("failed") == 1 and "error" not in counts, output[-3000:]
        assert re.search(r"read\s+\S*/six-1\.17\.0/setup\.cfg", output), output[-3000:]
        assert re.search(r"write\s+\S*/six-1\.17\.0/planted\.txt", output), output[-3000:]
        assert re.search(r"read\s+\S*/six-1\.17\.0/README\.rst", output), output[-3000:]
        # The first import inside a checked test did write bytecode, and passed.
        assert glob.glob(os.path.join(directory, "__pycache__", "planted_helper.*.pyc"))
    else:
        assert failures == [], output[-5000:]
        assert proc.returncode == 0, output[-3000:]


def _env(pythonpath):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.path.expanduser("~"),
           "PYTHONPATH": pythonpath}
    # Bytecode writing stays on (PYTHONDONTWRITEBYTECODE unset): first
    # imports inside checked tests write __pycache__, as on a developer's box.
    return env


@pytest.mark.parametrize("name", list(PACKAGES))
def test_suite_as_current_user(suites, name):
    directory = suites[name]
    # Keep a PYTHONPATH this session runs with (a staged, unprivileged copy).
    path = os.pathsep.join(filter(None, [directory, os.environ.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable] + _args(name, directory), cwd=directory,
                          env=_env(path), capture_output=True, text=True, timeout=300)
    check(name, proc, directory)


# -- the same as an unprivileged user -----------------------------------------------

def _stage_for_user(base):
    """sandbox_py (built) and pytest copied where the user can read them."""
    import _pytest
    import iniconfig
    import pluggy
    import py       # pytest's own single-module shim (site-packages/py.py)
    import pytest as pytest_module
    site = os.path.join(base, "site")
    os.makedirs(site)
    for module in (sandbox_py, pytest_module, _pytest, pluggy, iniconfig, py):
        src = os.path.dirname(module.__file__) if module.__file__.endswith(
            "__init__.py") else module.__file__
        dst = os.path.join(site, os.path.basename(src))
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    try:
        import packaging
        shutil.copytree(os.path.dirname(packaging.__file__), os.path.join(site, "packaging"),
                        ignore=shutil.ignore_patterns("__pycache__"))
    except ImportError:
        pass
    return site


@pytest.fixture(scope="module")
def unprivileged(suites, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("already unprivileged: test_suite_as_current_user covers it")
    python = os.environ.get("SBX_TEST_PYTHON", "/usr/bin/python3")
    want = sysconfig.get_config_var("EXT_SUFFIX")
    have = subprocess.run([python, "-c", "import sysconfig; "
                           "print(sysconfig.get_config_var('EXT_SUFFIX'))"],
                          capture_output=True, text=True).stdout.strip()
    if have != want:
        pytest.skip("%s builds %s, the package was built for %s; set SBX_TEST_PYTHON"
                    % (python, have, want))
    if subprocess.run(["id", "-u", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    # Not under pytest's basetemp, which is private to root (0700).
    base = tempfile.mkdtemp(prefix="sandbox_py-third-party.")
    site = _stage_for_user(base)
    # A copy of the suites the user owns: the suites write their bytecode.
    tree = os.path.join(base, "suites")
    shutil.copytree(os.path.dirname(suites["six"]), tree,
                    ignore=shutil.ignore_patterns("__pycache__"))
    home = os.path.join(base, "home")
    os.makedirs(home)
    subprocess.run(["chown", "-R", USER, base], check=True)
    os.chmod(base, 0o755)
    yield python, site, tree, home
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("name", list(PACKAGES))
def test_suite_as_unprivileged_user(unprivileged, name):
    python, site, tree, home = unprivileged
    directory = os.path.join(tree, "%s-%s" % (name, PACKAGES[name]))
    env = _env(site + ":" + directory)
    env["HOME"] = home
    env["SANDBOX_PY_REQUIRE_EBPF"] = "0"
    argv = (["runuser", "-u", USER, "--", "env", "-i"]
            + ["%s=%s" % kv for kv in env.items()]
            + [python] + _args(name, directory) + ["-p", "sandbox_py.pytest_plugin"])
    proc = subprocess.run(argv, cwd=directory, capture_output=True, text=True, timeout=300)
    check(name, proc, directory)
    # C code in the test process seen too: every test fully checked, by the shim
    assert "traced with: preload (complete)" in proc.stdout or name != "six", \
        proc.stdout[-2000:]
    summary = re.search(r"^sandbox_py: (\d+) tests checked, (\d+) fully: (.*)$", proc.stdout,
                        re.M)
    assert summary and summary.group(1) == summary.group(2), proc.stdout[-2000:]
    assert summary.group(3) == "%s fully by preload shim in the test process" \
        % summary.group(1), summary.group(0)


def test_explicit_ebpf_as_unprivileged_user_is_one_usage_error(unprivileged):
    python, site, tree, home = unprivileged
    directory = os.path.join(tree, "six-%s" % PACKAGES["six"])
    argv = (["runuser", "-u", USER, "--", "env", "-i", "PATH=/usr/bin:/bin",
             "HOME=" + home, "PYTHONPATH=" + site + ":" + directory, python]
            + _args("six", directory) + ["-p", "sandbox_py.pytest_plugin",
                                         "--sandbox-backend=ebpf"])
    proc = subprocess.run(argv, cwd=directory, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4, proc.stdout + proc.stderr      # pytest's usage error
    assert proc.stderr.count("sandbox_backend=ebpf cannot run here") == 1, proc.stderr
    assert "CAP_BPF" in proc.stderr and "--sandbox-backend=auto" in proc.stderr
    assert "passed" not in proc.stdout and "Traceback" not in proc.stderr
