"""backend="auto" and sandbox_py.backends() on Linux: the most complete
backend that works here, and one honest line per backend."""
from __future__ import annotations

import os
import sys

import pytest

import sandbox_py

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux backends")


def test_every_linux_backend_explains_itself_in_one_line():
    info = sandbox_py.backends()
    assert list(info)[:3] == ["ebpf", "preload", "ptrace"]
    for name, (ok, why) in info.items():
        assert isinstance(ok, bool)
        assert why and "\n" not in why, (name, why)


def test_auto_picks_the_first_available_in_order():
    info = sandbox_py.backends()
    expected = next(n for n, (ok, _) in info.items() if ok)
    r = sandbox_py.Sandbox().run(["true"])
    assert r.backend == expected
    assert r.returncode == 0 and r.complete, r.warnings


@pytest.mark.skipif(os.geteuid() == 0, reason="the unprivileged claim is checked as non-root")
def test_without_privilege_auto_is_preload_and_ebpf_says_why():
    info = sandbox_py.backends()
    assert info["ebpf"][0] is False, "BPF must not load without privilege"
    assert info["preload"][0] and info["ptrace"][0], info
    assert sandbox_py.Sandbox().backend == "preload"
    with pytest.raises(sandbox_py.SandboxUnavailableError) as ei:
        sandbox_py.Sandbox("ebpf")
    assert "ebpf" in str(ei.value)


@pytest.mark.parametrize("name", ["preload", "ptrace"])
def test_unprivileged_backends_run_here(name, tmp_path):
    ok, why = sandbox_py.backends()[name]
    assert ok, why
    p = os.path.realpath(tmp_path / "f.txt")
    r = sandbox_py.Sandbox(name).run(["/bin/sh", "-c", "echo x > f.txt; cat f.txt >/dev/null"],
                                     cwd=str(tmp_path))
    assert r.backend == name and r.returncode == 0 and r.complete, r.warnings
    assert p in r.writes and p not in r.reads


@pytest.mark.parametrize("name", ["preload", "ptrace"])
def test_concurrent_runs_do_not_see_each_other(name, tmp_path):
    """Threads (pytest-xdist, build drivers) run several commands at once."""
    import threading
    ok, why = sandbox_py.backends()[name]
    assert ok, why
    sb = sandbox_py.Sandbox(name)
    results = {}

    def one(i):
        d = tmp_path / str(i)
        d.mkdir()
        results[i] = sb.run(["/bin/sh", "-c", "echo %d > mine.txt; cat mine.txt" % i],
                            cwd=str(d), capture_output=True)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in results.items():
        mine = os.path.realpath(tmp_path / str(i) / "mine.txt")
        others = {os.path.realpath(tmp_path / str(j) / "mine.txt") for j in results if j != i}
        assert r.returncode == 0 and r.complete, r.warnings
        assert mine in r.writes and not (others & (r.reads | r.writes)), (i, r.writes)
