"""Breakaway: a declared build daemon leaves the run at its exec.

Two daemons: tests/breakaway/sbx-test-daemon, a small server that
double-forks, detaches and keeps serving on a unix socket, writing a state
file of its own; and Debian's sccache (its compile server), when installed.
What a user checks: the build returns while the daemon lives, the daemon
outlives run() and its timeout, the next build reaches the same daemon, the
daemon's own files are not in the build's Result while the build's are, and
an undeclared daemon is still waited for and killed as before.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import HERE, own_bpf_maps, sandbox_for
from sandbox_py import SandboxUnavailableError, TimeoutExpired

BACKENDS = ["ebpf", "preload", "ptrace"]
DAEMON = str(HERE / "breakaway" / "sbx-test-daemon")
CLIENT = str(HERE / "breakaway" / "sbx-test-client")


@pytest.fixture(params=BACKENDS)
def sandbox(request):
    return sandbox_for(request.param)


class Daemon:
    """Where one sbx-test-daemon lives, and how to reach and stop it."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        # unix socket names are short: keep it out of a deep tmp_path
        self.sock = "/tmp/sbx-ba-%d-%d.sock" % (os.getpid(), time.monotonic_ns() % 10**9)
        self.state = str(tmp_path / "daemon-state")

    def build(self, then: str = "", spawn: bool = False) -> list:
        """A build that starts the daemon (if it is not running), asks it
        something, writes its own output and reads its own input.  spawn:
        the daemon is started with posix_spawn, not fork and exec."""
        inp = self.dir / "input.txt"
        inp.write_text("source\n")
        start = "{d} {s} {st}"
        if spawn:
            start = ("python3 -c 'import os, sys; a = sys.argv[1:]; "
                     "sys.exit(os.waitstatus_to_exitcode(os.waitpid("
                     "os.posix_spawn(a[0], a, os.environ), 0)[1]))' {d} {s} {st}")
        script = ("[ -S {s} ] || " + start + " || exit 1; {c} {s} build > {o}; "
                  "cat {i} >> {o}; {t}").format(d=DAEMON, c=CLIENT, s=self.sock, st=self.state,
                                               o=self.dir / "out.txt", i=inp, t=then)
        return ["sh", "-c", script]

    def ask(self, what="ping") -> tuple:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.sock)
        s.sendall(what.encode() + b"\n")
        pid, count = s.makefile().readline().split()
        s.close()
        return int(pid), int(count)

    def pid(self) -> int:
        return self.ask()[0]

    def stop(self):
        try:
            pid = self.ask("stop")[0]
        except OSError:
            return
        for _ in range(100):
            if not alive(pid):
                break
            time.sleep(0.05)
        if os.path.exists(self.sock):
            os.unlink(self.sock)


def tracer_of(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        return int(next(line for line in f if line.startswith("TracerPid:")).split()[1])


def alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    yield d
    d.stop()


def all_paths(r) -> set:
    return set(r.reads) | set(r.writes) | set(r.probes) | set(r.enumerations)


def unsupported(sandbox, fn):
    """Run fn(); on a backend that cannot honour breakaway, check that it
    says so (never a silent gap) and skip the rest."""
    try:
        return fn()
    except SandboxUnavailableError as e:
        assert "breakaway" in str(e)
        pytest.skip("%s: %s" % (sandbox.backend, e))


@pytest.mark.parametrize("spawn", [False, True], ids=["fork-exec", "posix_spawn"])
def test_declared_daemon_leaves_the_run(sandbox, daemon, spawn):
    start = time.monotonic()
    r = unsupported(sandbox, lambda: sandbox.run(daemon.build(spawn=spawn),
                                                 breakaway=["sbx-test-daemon"], timeout=60))
    took = time.monotonic() - start
    assert r.returncode == 0, r
    pid, count = daemon.ask()
    assert alive(pid) and count == 2            # the build's request, then ours
    assert took < 30                            # not held until a timeout
    # the Result names the process that left, and nothing it did itself
    assert [os.path.basename(b.path) for b in r.breakaways] == ["sbx-test-daemon"], r.breakaways
    assert not any("daemon-state" in p for p in all_paths(r)), sorted(all_paths(r))
    assert str(daemon.dir / "out.txt") in r.writes
    assert str(daemon.dir / "input.txt") in r.reads
    assert not any(e.path == DAEMON for e in r.execs)
    assert os.path.basename(CLIENT) in {os.path.basename(e.path) for e in r.execs}
    # what the daemon did is real: its own file exists
    assert "started %d" % pid in open(daemon.state).read()
    # the shim left it (preload): neither it nor its children are traced
    with open("/proc/%d/environ" % pid, "rb") as f:
        env = f.read().split(b"\0")
    assert not [e for e in env if e.startswith((b"SBX_", b"LD_AUDIT=", b"LD_PRELOAD="))]

    # nothing of this process traces it any more (ptrace: a keeper of its
    # own lets its filtered calls through, and goes with it)
    tracer = tracer_of(pid)
    assert tracer != os.getpid()
    if tracer:
        assert "sandbox_py-breakaway-keeper" in open("/proc/%d/cmdline" % tracer).read()

    # a second build reaches the same daemon
    r2 = sandbox.run(daemon.build(), breakaway=["sbx-test-daemon"], timeout=60)
    assert r2.returncode == 0 and not r2.breakaways
    assert daemon.ask() == (pid, 4)
    assert (daemon.dir / "out.txt").read_text().split()[0] == str(pid)


def test_daemon_outlives_the_tracing_process(sandbox, daemon):
    """The daemon keeps working after the Python process that traced the
    build has exited (ptrace: nothing of that process keeps it going)."""
    code = ("import sys; from sandbox_py import Sandbox; "
            "r = Sandbox(sys.argv[1]).run(sys.argv[2:], breakaway=['sbx-test-daemon'], "
            "timeout=60); sys.exit(r.returncode if r.breakaways else 99)")
    proc = subprocess.run([sys.executable, "-c", code, sandbox.backend] + daemon.build(),
                          capture_output=True, text=True, timeout=90)
    if proc.returncode and "SandboxUnavailableError" in proc.stderr:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    time.sleep(0.2)
    pid, count = daemon.ask()
    assert alive(pid) and count == 2
    assert "started %d" % pid in open(daemon.state).read()
    keeper = tracer_of(pid)
    daemon.stop()
    if keeper:          # the keeper went with the daemon
        for _ in range(100):
            if not alive(keeper):
                break
            time.sleep(0.05)
        assert not alive(keeper)


@pytest.fixture(scope="module")
def static_daemon(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    exe = tmp_path_factory.mktemp("bin") / "sbx-static-daemon"
    subprocess.run([cc, "-O1", "-static", "-o", str(exe), str(HERE / "breakaway" /
                    "static_daemon.c")], check=True, capture_output=True)
    return str(exe)


def test_static_daemon_leaves_the_run(sandbox, static_daemon, tmp_path):
    """A statically linked breakaway: under preload it is not handed to
    the ptrace launcher; nothing of this process traces it."""
    state = tmp_path / "static-state"
    start = time.monotonic()
    r = unsupported(sandbox, lambda: sandbox.run(
        ["sh", "-c", "%s %s 30 && echo done > %s" % (static_daemon, state, tmp_path / "out")],
        breakaway=["sbx-static-daemon"], timeout=60))
    assert r.returncode == 0 and time.monotonic() - start < 20
    for _ in range(100):
        if state.exists() and state.read_text().strip():
            break
        time.sleep(0.05)
    pid = int(state.read_text())
    try:
        assert alive(pid) and tracer_of(pid) != os.getpid()
        assert [os.path.basename(b.path) for b in r.breakaways] == ["sbx-static-daemon"]
        assert str(state) not in all_paths(r)
        assert str(tmp_path / "out") in r.writes
        assert not any("handed" in w or "not observed" in w for w in r.warnings), r.warnings
    finally:
        os.kill(pid, signal.SIGKILL)


def test_daemon_survives_the_runs_timeout(sandbox, daemon):
    with pytest.raises(TimeoutExpired) as ei:
        unsupported(sandbox, lambda: sandbox.run(daemon.build("sleep 60"),
                                                 breakaway=["sbx-test-daemon"], timeout=3))
    r = ei.value.result
    assert [os.path.basename(b.path) for b in r.breakaways] == ["sbx-test-daemon"]
    pid = daemon.pid()
    time.sleep(0.3)                         # a late kill would land by now
    assert alive(pid)
    assert daemon.ask() == (pid, 3)


def test_undeclared_daemon_is_waited_for_and_killed(sandbox, daemon):
    """Without the declaration nothing changes: run() waits for the whole
    tree, so the daemon holds it until the timeout, and dies with it."""
    start = time.monotonic()
    with pytest.raises(TimeoutExpired) as ei:
        sandbox.run(daemon.build(), timeout=4)
    assert time.monotonic() - start >= 4
    assert not ei.value.result.breakaways
    started = open(daemon.state).read().split()
    pid = int(started[1])
    for _ in range(100):
        if not alive(pid):
            break
        time.sleep(0.05)
    assert not alive(pid)
    os.unlink(daemon.sock)


def test_breakaway_matches_the_program_not_other_commands(sandbox, daemon, tmp_path):
    """A declaration naming another program changes nothing."""
    with pytest.raises(TimeoutExpired):
        unsupported(sandbox, lambda: sandbox.run(daemon.build(), breakaway=["not-this-one"],
                                                 timeout=3))


def test_callables_are_refused_where_the_exec_cannot_ask_python(sandbox):
    with pytest.raises(SandboxUnavailableError, match="breakaway"):
        sandbox.run(["true"], breakaway=[lambda path, argv: False])


@pytest.mark.skipif(not shutil.which("sccache"), reason="sccache is not installed")
def test_sccache_server_leaves_the_run(sandbox, tmp_path):
    """Debian's sccache: `sccache --start-server` spawns its compile server
    (the same program) and returns; the server must survive the run and
    serve the next one."""
    port = str(20000 + os.getpid() % 20000)
    env = dict(os.environ, SCCACHE_DIR=str(tmp_path / "cache"), SCCACHE_SERVER_PORT=port,
               SCCACHE_IDLE_TIMEOUT="60")
    start = time.monotonic()
    r = unsupported(sandbox, lambda: sandbox.run(["sccache", "--start-server"], env=env,
                                                 breakaway=["sccache"], timeout=60,
                                                 capture_output=True))
    try:
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - start < 30
        assert r.breakaways and os.path.basename(r.breakaways[0].path) == "sccache"
        # its cache directory is the server's own business
        assert not any(p.startswith(str(tmp_path / "cache")) for p in all_paths(r))
        # the next build (not declared: traced as usual) talks to that server,
        # which still knows its cache directory
        r2 = sandbox.run(["sccache", "--show-stats"], env=env, timeout=60, capture_output=True)
        assert r2.returncode == 0, r2.stderr
        assert b"Compile requests" in r2.stdout
        assert str(tmp_path / "cache").encode() in r2.stdout
    finally:
        subprocess.run(["sccache", "--stop-server"], env=env, capture_output=True, timeout=60)


@pytest.mark.parametrize("backend", ["ebpf", "audit"])
def test_in_process_trace_lets_a_declared_daemon_go(backend, daemon):
    """sandbox_py.trace(breakaway=...): the daemon started inside the block
    leaves it (eBPF: in the kernel; audit: the shim in the children)."""
    from sandbox_py import trace
    if backend == "ebpf":
        sandbox_for("ebpf")
    with trace(backend, breakaway=["sbx-test-daemon"], wait=20) as t:
        subprocess.run(daemon.build(), check=True, timeout=60)
    r = t.result
    assert r.backend == backend
    assert [os.path.basename(b.path) for b in r.breakaways] == ["sbx-test-daemon"]
    assert not any("daemon-state" in p for p in all_paths(r))
    assert str(daemon.dir / "out.txt") in r.writes
    pid, count = daemon.ask()
    assert alive(pid) and count == 2
    assert not any("still running" in w for w in r.warnings), r.warnings


def test_ebpf_declaration_is_forgotten_after_the_run(tmp_path):
    """The kernel's breakaway map (shared by every run of the process)
    holds nothing of a run that ended."""
    sb = sandbox_for("ebpf")
    r = sb.run(["true"], breakaway=["sbx-test-daemon", "/usr/bin/sccache"])
    assert r.returncode == 0 and not r.breakaways
    bpftool = shutil.which("bpftool") or shutil.which("bpftool", path="/usr/sbin:/sbin")
    counts = []
    for _, show in own_bpf_maps():
        if show.get("name") == "breakaway":
            dump = subprocess.run([bpftool, "-j", "map", "dump", "id", str(show["id"])],
                                  capture_output=True, text=True).stdout
            counts.append(len(json.loads(dump or "[]")))
    assert counts and set(counts) == {0}, counts


def test_cli_breakaway_option(daemon):
    """sandbox-py --breakaway NAME: the summary names the process that left."""
    backend = next((b for b in ("ebpf", "preload", "ptrace")
                    if __import__("sandbox_py").backends().get(b, (False,))[0]), None)
    if backend is None:
        pytest.skip("no Linux backend here")
    proc = subprocess.run([sys.executable, "-m", "sandbox_py", "--backend", backend,
                           "--breakaway", "sbx-test-daemon", "--"] + daemon.build(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pid = daemon.pid()
    assert "breakaway: pid" in proc.stderr and "sbx-test-daemon" in proc.stderr, proc.stderr
    assert alive(pid)
