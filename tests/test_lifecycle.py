"""The one run lifecycle, on every Linux backend: interrupted waits, a
caller without stdin, failures before the command runs, nothing left
behind after a run."""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from conftest import own_bpf_maps, sandbox_for

BACKENDS = ["ebpf", "preload", "ptrace"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    sandbox_for(request.param)          # skips (or fails, for eBPF as root) if unavailable
    return request.param


def python(code: str, **kw):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def alive(marker: str) -> bool:
    # anchored: the sleep itself, not the shell or the script naming it
    out = subprocess.run(["pgrep", "-f", "^" + marker], capture_output=True, text=True).stdout
    return bool(out.strip())


def test_ctrl_c_while_a_background_child_lingers(backend):
    """run() waits for the whole tree; Ctrl-C during that wait must raise
    KeyboardInterrupt at once and kill the tree, not wait it out."""
    marker = "31.%d" % (uuid.uuid4().int % 10**6)        # a unique sleep duration
    p = python("""
        import faulthandler, sys
        faulthandler.dump_traceback_later(12, exit=True)   # say where it hangs
        from sandbox_py import Sandbox
        print("go", flush=True)
        try:
            Sandbox(%r).run(["sh", "-c", "sleep %s & echo started"])
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
    """ % (backend, marker))
    assert p.stdout.readline().strip() == b"go"
    # give run() time to reach its wait for the background sleep
    for _ in range(100):
        if alive("sleep " + marker):
            break
        subprocess.run(["sleep", "0.05"])
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=30)      # the sleep alone would take 31 s
    except subprocess.TimeoutExpired:
        # a survivor holds the pipes open: end it to see what happened
        info = []
        for pid in subprocess.run(["pgrep", "-f", "sleep " + marker], capture_output=True,
                                  text=True).stdout.split():
            try:
                st = open("/proc/%s/status" % pid).read().splitlines()
                env = open("/proc/%s/environ" % pid, "rb").read().split(b"\0")
                info.append((pid, [x for x in st if x.startswith(("Name", "PPid", "State"))],
                             [e for e in env if e.startswith(b"SBX_PRELOAD_LOG")]))
            except OSError:
                pass
        subprocess.run(["pkill", "-f", "sleep " + marker])
        out, err = p.communicate(timeout=30)
        pytest.fail("the tree survived the interrupted run: rc=%s out=%r err=%s survivors=%s"
                    % (p.returncode, out, err.decode()[-3000:], info))
    assert p.returncode == 3, "run() did not react to Ctrl-C: %s" % err.decode()[-3000:]
    assert b"interrupted" in out
    assert not alive("sleep " + marker), "the interrupted run left its tree running"


def test_a_background_child_outliving_its_shell_is_waited_for(backend):
    """The shell exits at once; its background child, reparented to init
    while it execs, is still the run's: run() waits for it, every time."""
    sb = sandbox_for(backend)
    for i in range(8):
        t = time.monotonic()
        r = sb.run(["sh", "-c", "sleep 0.3%d & echo started" % i], capture_output=True)
        assert time.monotonic() - t >= 0.3, "run() returned before the background child"
        assert r.complete, r.warnings
        assert r.processes[0].name == "sh" and r.processes[-1].name == "sleep"


def test_caller_with_stdin_closed(backend):
    """A caller whose fd 0 is closed: pipes the run makes must not land on
    0, where the child's own stdin replaces them."""
    p = python("""
        from sandbox_py import Sandbox
        r = Sandbox(%r).run(["/bin/cat"], input=b"hi", capture_output=True, timeout=20)
        print(r.stdout.decode(), r.returncode)
    """ % backend, stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(0))
    try:
        out, err = p.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail("run() hung with the caller's stdin closed")
    assert p.returncode == 0, err
    assert out.split() == [b"hi", b"0"]


def test_launcher_failure_before_exec_is_an_error_not_exit_127(tmp_path):
    """The ptrace launcher's own set-up failing (here: its tracer never
    attaches) is reported through the error pipe, as CPython's
    _posixsubprocess reports a child's failure before exec."""
    sandbox_for("ptrace")
    from sandbox_py._backends import ptrace
    gate_r, gate_w = os.pipe()
    err_r, err_w = os.pipe()
    os.write(gate_w, b"x")               # not the tracer's go-ahead
    os.close(gate_w)
    env = dict(os.environ, SBX_PTRACE_GATE=str(gate_r), SBX_PTRACE_EXE="/bin/true",
               SBX_PTRACE_ERR=str(err_w))
    proc = subprocess.run([ptrace.LAUNCHER, "true"], env=env, pass_fds=(gate_r, err_w),
                          capture_output=True)
    os.close(gate_r)
    os.close(err_w)
    data = os.read(err_r, 4096)
    os.close(err_r)
    assert proc.returncode == 127
    kind, code, what = struct.unpack("ii240s", data)
    assert kind == 1 and code != 0
    assert b"tracer did not attach" in what


def test_ebpf_run_leaves_no_kernel_state(tmp_path):
    """After a run, the kernel's per-run deduplication caches hold nothing of
    it (they are shared by every run of the process)."""
    sb = sandbox_for("ebpf")
    map_entries()       # skips here when bpftool is missing
    for _ in range(20):
        sb.run(["cat", "/etc/hostname", str(tmp_path / "absent")], capture_output=True)
    sb.run(["tar", "-cf", "/dev/null", "-C", "/usr", "include/linux"], capture_output=True)
    # the reader thread forgets ended runs' entries shortly after run() returns
    for _ in range(50):
        seen = map_entries()
        if seen == {"fd_seen": 0, "dir_seen": 0, "probe_seen": 0}:
            break
        time.sleep(0.1)
    assert set(seen) == {"fd_seen", "dir_seen", "probe_seen"}, seen
    assert seen == {"fd_seen": 0, "dir_seen": 0, "probe_seen": 0}


def map_entries() -> dict:
    """Occupied slots in this process's per-run deduplication caches (mmapable
    arrays of 16-byte slots, a nonzero 64-bit tag marking one in use)."""
    import mmap
    seen = {}
    for fd, show in own_bpf_maps():
        if show.get("name") in ("fd_seen", "dir_seen", "probe_seen"):
            size = show["max_entries"] * show["bytes_value"]
            with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ) as mem:
                tags = struct.unpack_from("<%dQ" % (size // 8), mem)[0::2]
            seen[show["name"]] = sum(1 for t in tags if t)
    return seen
