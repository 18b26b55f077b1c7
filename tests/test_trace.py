"""sandbox_py.trace(): the in-process context manager, on each mechanism."""
import os
import subprocess
import threading

import pytest

import sandbox_py
from sandbox_py.inprocess import _ebpf_module


def ebpf_or_skip():
    module, why = _ebpf_module()
    if module is None:
        if os.environ.get("SANDBOX_PY_REQUIRE_EBPF") == "1":
            pytest.fail("eBPF in-process tracing required but unavailable: %s" % why)
        pytest.skip("eBPF in-process tracing unavailable: %s" % why)


def exercise(d):
    """File work a test body might do, in Python (in.txt exists before)."""
    with open(d / "in.txt") as f:
        f.read()
    with open(d / "out.txt", "w") as f:
        f.write("x")
    os.listdir(d)
    os.rename(d / "out.txt", d / "renamed.txt")
    os.mkdir(d / "sub")
    try:
        open(d / "absent.txt")
    except FileNotFoundError:
        pass


@pytest.mark.parametrize("backend", ["audit", "ebpf"])
def test_python_level_accesses(tmp_path, backend):
    if backend == "ebpf":
        ebpf_or_skip()
    (tmp_path / "in.txt").write_text("data")
    with sandbox_py.trace(backend) as t:
        exercise(tmp_path)
    r = t.result.filtered(under=tmp_path)
    assert t.result.backend == backend
    assert str(tmp_path / "in.txt") in r.reads
    assert {str(tmp_path / n) for n in ("out.txt", "renamed.txt", "sub")} <= r.writes
    assert str(tmp_path / "absent.txt") in r.probes
    assert str(tmp_path) in r.enumerations
    assert str(tmp_path / "renamed.txt") not in r.reads
    assert t.result.returncode == 0 and t.result.args == ()


def test_audit_fallback_states_its_limits(tmp_path):
    with sandbox_py.trace("audit") as t:
        os.stat(tmp_path)                              # no audit event exists
        subprocess.run(["cat", os.devnull], check=True)
    r = t.result
    assert not r.complete
    assert any("os.stat" in w and "child processes" in w for w in r.warnings)
    assert str(tmp_path) not in r.probes
    execs = [e for e in r.execs if e.path.endswith("/cat")]
    assert execs and execs[0].argv == ("cat", os.devnull)


def _read(path):
    with open(path) as f:
        f.read()


def test_ebpf_sees_stat_children_and_threads(tmp_path):
    ebpf_or_skip()
    (tmp_path / "child.txt").write_text("c")
    (tmp_path / "thread.txt").write_text("t")
    with sandbox_py.trace("ebpf") as t:
        os.path.exists(tmp_path / "nope")
        th = threading.Thread(target=_read, args=(tmp_path / "thread.txt",))
        th.start()
        th.join()
        subprocess.run(["cat", str(tmp_path / "child.txt")], check=True, capture_output=True)
    r = t.result
    assert r.complete, r.warnings
    assert str(tmp_path / "nope") in r.probes
    assert str(tmp_path / "child.txt") in r.reads
    assert str(tmp_path / "thread.txt") in r.reads
    assert any(e.path.endswith("/cat") and e.pid > 0 for e in r.execs)


def test_ebpf_sees_threads_started_after_a_child(tmp_path):
    ebpf_or_skip()
    (tmp_path / "thread.txt").write_text("t")
    with sandbox_py.trace("ebpf") as t:
        subprocess.run(["true"], check=True)
        th = threading.Thread(target=_read, args=(tmp_path / "thread.txt",))
        th.start()
        th.join()
    assert str(tmp_path / "thread.txt") in t.result.reads


def test_auto_picks_ebpf_or_says_why_not():
    with sandbox_py.trace() as t:
        pass
    module, why = _ebpf_module()
    if module is not None:
        assert t.result.backend == "ebpf"
    else:
        assert t.result.backend == "audit"
        assert any("eBPF in-process tracing unavailable" in w for w in t.result.warnings)


def test_result_only_after_the_block_and_exceptions_pass_through(tmp_path):
    t = sandbox_py.trace("audit")
    with pytest.raises(RuntimeError, match="has not finished"):
        t.result
    with pytest.raises(ZeroDivisionError):
        with t:
            open(tmp_path / "before-error.txt", "w").close()
            1 / 0
    assert t.result.returncode == 1
    assert str(tmp_path / "before-error.txt") in t.result.writes


def test_unknown_backend():
    with pytest.raises(ValueError, match="auto, ebpf, preload, audit"):
        sandbox_py.trace("strace")


def test_audit_hook_never_breaks_the_traced_code(tmp_path):
    # Odd arguments (fds, bytes, None) must be recorded or ignored, never raise.
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        with sandbox_py.trace("audit") as t:
            os.listdir(fd)
            open(os.fsencode(tmp_path / "b.txt"), "wb").close()
            os.open("rel.txt", os.O_CREAT | os.O_WRONLY, dir_fd=fd)
            os.listdir()
    finally:
        os.close(fd)
    assert str(tmp_path / "b.txt") in t.result.writes
    assert str(tmp_path) in t.result.enumerations


def test_ebpf_does_not_wait_long_for_threads_left_running(tmp_path):
    ebpf_or_skip()
    release = threading.Event()
    with sandbox_py.trace("ebpf", wait=0.2) as t:
        threading.Thread(target=release.wait, daemon=True).start()
    release.set()
    assert not t.result.complete
    assert any("still running" in w for w in t.result.warnings)


def test_audit_files_failed_calls_as_probes(tmp_path):
    # docs/semantics.md: any path-taking call that failed is a probe, also
    # one that meant to write.
    missing_dir = tmp_path / "no-such-dir" / "x"
    (tmp_path / "exists").mkdir()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with sandbox_py.trace("audit") as t:
            for attempt in (lambda: open(missing_dir, "w"),
                            lambda: os.mkdir(tmp_path / "exists"),
                            lambda: os.remove(tmp_path / "absent"),
                            lambda: os.rename(tmp_path / "absent", tmp_path / "b"),
                            lambda: open(locked / "f", "w")):
                try:
                    attempt().close()
                except OSError:
                    pass
    finally:
        locked.chmod(0o700)
    r = t.result
    failed = {str(missing_dir), str(tmp_path / "exists"), str(tmp_path / "absent")}
    if os.geteuid() != 0:       # root may write into a 0500 directory
        failed.add(str(locked / "f"))
    assert failed <= r.probes
    assert not (failed & r.writes), sorted(failed & r.writes)
    assert not os.path.exists(tmp_path / "b")


def test_audit_follows_child_processes_through_the_preload_shim(tmp_path):
    # The audit fallback cannot see children by itself; it starts them with
    # the preload shim for the duration of the block.
    if not sandbox_py.backends().get("preload", (False,))[0]:
        pytest.skip("the preload backend is not available here")
    (tmp_path / "in.txt").write_text("x")
    before = {k: os.environ.get(k) for k in ("LD_PRELOAD", "SBX_PRELOAD_LOG")}
    with sandbox_py.trace("audit") as t:
        subprocess.run(["sh", "-c", "cat in.txt > ../outside.txt"], cwd=tmp_path, check=True)
        subprocess.run(["cat", "in.txt"], cwd=tmp_path, env={"PATH": os.environ["PATH"]},
                       check=True, capture_output=True)
    r = t.result.filtered(under=tmp_path.parent)
    assert str(tmp_path / "in.txt") in r.reads
    assert str(tmp_path.parent / "outside.txt") in r.writes
    assert any(e.path.endswith("/sh") and e.pid > 0 for e in r.execs)
    # A child whose env= drops the shim is named as unseen.
    assert not r.complete
    assert any("env= without the preload shim" in w for w in r.warnings), r.warnings
    # The process's environment is as it was.
    assert {k: os.environ.get(k) for k in before} == before


def test_unavailable_ebpf_gives_one_remedy_that_fits_the_call():
    module, why = _ebpf_module()
    if module is not None:
        pytest.skip("eBPF works here (run this as a user without CAP_BPF)")
    with pytest.raises(sandbox_py.SandboxUnavailableError) as e:
        sandbox_py.trace("ebpf").start()
    msg = str(e.value)
    # trace() takes auto/ebpf/audit: it must not advise the Sandbox backends.
    assert "backend='audit'" in msg and "preload" not in msg, msg
    assert msg.count("run as root") == 1 and "sandbox-py doctor" in msg, msg
    with pytest.raises(sandbox_py.SandboxUnavailableError) as e:
        sandbox_py.Sandbox("ebpf")
    msg = str(e.value)
    assert msg.count("run as root") == 1 and "backend='preload' or 'ptrace'" in msg, msg
