"""The preload backend against a traced program that works against it, and
under tight resource limits: nothing a record says reaches outside the
run, the shim starts under an address-space limit, no log is left behind
by an owner that was killed."""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import sandbox_for

# A traced program that writes a forged FORK record into the run's shared
# log (the format of shims/core/sbx_log.h) naming an unrelated process, then
# sleeps so that run() times out and kills "the tree".
FORGER = textwrap.dedent("""
    import mmap, os, struct, sys, time
    victim = int(sys.argv[1])
    fd = os.open(os.environ["SBX_PRELOAD_LOG"], os.O_RDWR)
    m = mmap.mmap(fd, 4096 + (1 << 20))
    magic, cap, head = struct.unpack_from("QQQ", m, 0)
    size = 24 + 8                                  # record + one empty string
    size = (size + 7) & ~7
    off = head
    struct.pack_into("Q", m, 16, head + size)      # reserve (no one else writes now)
    base = 4096 + off
    struct.pack_into("HHiiQ", m, base + 4, 7, 0, os.getpid(), victim, 0)   # SBX_REC_FORK
    struct.pack_into("I", m, base, 0xA5000000 | size)                     # publish
    time.sleep(30)
""")


def test_forged_record_cannot_make_run_kill_an_unrelated_process(tmp_path):
    sb = sandbox_for("preload")
    victim = subprocess.Popen(["sleep", "60"])
    # older than the run by more than the kernel's start-time tick (10 ms):
    # a process started in the run's own tick counts as the run's
    time.sleep(0.2)
    try:
        script = tmp_path / "forger.py"
        script.write_text(FORGER)
        t0 = time.monotonic()
        with pytest.raises(Exception) as ei:         # TimeoutExpired subclass
            sb.run([sys.executable, str(script), str(victim.pid)], timeout=3)
        assert time.monotonic() - t0 < 30, "run() waited for the unrelated process"
        result = getattr(ei.value, "result", None)
        assert result is not None
        assert victim.poll() is None, "the unrelated process was killed"
        assert any("not part of the run" in w for w in result.warnings), result.warnings
    finally:
        victim.kill()
        victim.wait()


# A traced program that waits for the pid of a process the user starts
# while the run goes on (a parallel job), then forges FORK records naming
# it: as its own child, and as the child of its real parent.
FORGER_DURING = textwrap.dedent("""
    import mmap, os, struct, sys, time
    pidfile = sys.argv[1]
    while not os.path.exists(pidfile):
        time.sleep(0.01)
    victim, parent = map(int, open(pidfile).read().split())
    fd = os.open(os.environ["SBX_PRELOAD_LOG"], os.O_RDWR)
    m = mmap.mmap(fd, 4096 + (1 << 20))
    for claimed_parent in (os.getpid(), parent):
        head = struct.unpack_from("Q", m, 16)[0]
        size = 24
        struct.pack_into("Q", m, 16, head + size)
        base = 4096 + head
        struct.pack_into("HHiiQ", m, base + 4, 7, 0, claimed_parent, victim, 0)  # FORK
        struct.pack_into("I", m, base, 0xA5000000 | size)
""")


@pytest.mark.parametrize("victim_kind", ["child", "orphan"])
def test_forged_fork_of_a_process_started_during_the_run(tmp_path, victim_kind):
    """The user starts `sleep 60` while the run goes on (after the run's
    root: a start time cannot tell it apart); a traced program forges fork
    records naming it.  run() neither waits for it nor kills it, and says a
    record named a process outside the run.  The victim is a child of this
    process, or an orphan (its parent gone, re-parented like a daemon)."""
    import threading
    sb = sandbox_for("preload")
    script = tmp_path / "forger.py"
    script.write_text(FORGER_DURING)
    pidfile = tmp_path / "victim.pid"
    out = {}

    def run():
        try:
            out["result"] = sb.run([sys.executable, str(script), str(pidfile)], timeout=20)
        except Exception as e:          # noqa: BLE001 - reported below
            out["error"] = e

    t = threading.Thread(target=run)
    t0 = time.monotonic()
    t.start()
    time.sleep(0.5)                      # the run's root is well under way
    victim = None
    try:
        if victim_kind == "child":
            v = subprocess.Popen(["sleep", "60"])
            victim, parent = v.pid, os.getpid()
        else:
            sh = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"],
                                capture_output=True, text=True, check=True)
            victim = int(sh.stdout.split()[0])
            with open("/proc/%d/stat" % victim) as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        (tmp_path / "victim.tmp").write_text("%d %d" % (victim, parent))
        os.rename(tmp_path / "victim.tmp", pidfile)
        t.join(30)
        assert not t.is_alive()
        assert "error" not in out, out.get("error")
        assert time.monotonic() - t0 < 15, "run() waited for the unrelated process"
        r = out["result"]
        assert r.returncode == 0
        os.kill(victim, 0)               # still alive: never signalled
        assert any("not part of the run" in w for w in r.warnings), r.warnings
        assert victim not in {p.pid for p in r.processes if p.path}
    finally:
        if victim:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if victim_kind == "child" and victim:
            v.wait()


def test_shim_starts_under_an_address_space_limit(tmp_path):
    """ulimit -v 400000: the shim maps less of the log instead of not
    starting (and the Result does not blame static linking)."""
    sb = sandbox_for("preload")
    data = tmp_path / "data.txt"
    data.write_text("x")
    r = sb.run(["sh", "-c", "ulimit -v 400000; cat %s" % data], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert str(data) in r.reads
    assert not any("statically linked" in w or "not observed" in w for w in r.warnings), \
        r.warnings


def log_files(pid):
    """Files a preload run of process `pid` could leave behind."""
    dirs = {"/dev/shm", os.environ.get("TMPDIR") or "/tmp", "/tmp"}
    return [f for d in dirs for f in glob.glob("%s/sandbox_py-preload-%d-*" % (d, pid))]


@pytest.mark.parametrize("enforced", [False, True])
@pytest.mark.parametrize("first", ["owner", "traced"])
def test_no_log_is_left_behind_whoever_is_killed(tmp_path, first, enforced):
    """SIGKILL of the Python process in the middle of a run (after or
    before its traced process): no log file is left anywhere, without
    waiting for a later run to sweep it.  The log has no name in any
    directory: the traced processes reach it through the owner's /proc
    entry while the run lasts.  Under an enforced policy (Landlock: no
    such access across its domain) the log is a file, removed by a keeper
    outside the run when its owner dies."""
    sandbox_for("preload")
    if enforced:
        from sandbox_py._landlock import abi
        if not abi()[0]:
            pytest.skip(abi()[1])
    info = tmp_path / "info"
    policy = ("policy=Policy(read=['/'], write=[%r])" % str(tmp_path)) if enforced else ""
    code = textwrap.dedent("""
        import sys
        from sandbox_py import Sandbox, Policy
        Sandbox("preload").run(["sh", "-c",
            'echo $$ "$SBX_PRELOAD_LOG" > %s.tmp; mv %s.tmp %s; exec sleep 30'], %s)
    """ % (info, info, info, policy))
    p = subprocess.Popen([sys.executable, "-c", code])
    sleeper = None
    try:
        deadline = time.monotonic() + 30
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid, log = info.read_text().split(None, 1)
        sleeper = int(pid)
        log = log.strip()
        assert log, "the traced process had no log"
        if enforced:
            assert log_files(p.pid) == [log]
        else:
            assert not log_files(p.pid), log_files(p.pid)
        if first == "traced":
            os.kill(sleeper, signal.SIGKILL)
        p.send_signal(signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 10
        while log_files(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)          # the keeper sees its pipe end
        assert not log_files(p.pid)
        assert not os.path.exists(log), log
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if sleeper:
            try:
                os.kill(sleeper, signal.SIGKILL)
            except ProcessLookupError:
                pass


# A traced program that writes records whose names are not paths: they are
# malformed records (a warning), never entries in the Result.
JUNK = textwrap.dedent("""
    import mmap, os, struct
    fd = os.open(os.environ["SBX_PRELOAD_LOG"], os.O_RDWR)
    m = mmap.mmap(fd, 4096 + (1 << 20))
    for name in (b"0", b"relative/x", b"/a/../b", b"/a//b", b"/x/"):
        head = struct.unpack_from("Q", m, 16)[0]
        size = (24 + len(name) + 1 + 7) & ~7
        struct.pack_into("Q", m, 16, head + size)
        base = 4096 + head
        struct.pack_into("HHiiQ", m, base + 4, 1, 1, os.getpid(), 0, 0)    # SBX_REC_PATH, read
        m[base + 24:base + 24 + len(name) + 1] = name + b"\\0"
        struct.pack_into("I", m, base, 0xA5000000 | size)
""")


def test_junk_records_are_never_paths(tmp_path):
    sb = sandbox_for("preload")
    script = tmp_path / "junk.py"
    script.write_text(JUNK)
    r = sb.run([sys.executable, str(script)], capture_output=True)
    assert r.returncode == 0, r.stderr
    for p in r.reads | r.writes | r.probes | r.enumerations:
        assert p.startswith("/") and os.path.normpath(p) == p, p
    assert not r.complete
    assert any("malformed record" in w for w in r.warnings), r.warnings


def test_system_after_the_environment_was_cleared_is_traced(tmp_path):
    """glibc's system() spawns the shell with its own internal posix_spawn:
    after os.environ.clear() the shell would run untraced and unflagged."""
    sb = sandbox_for("preload")
    data = tmp_path / "data.txt"
    data.write_text("x")
    code = ("import os\nos.environ.clear()\n"
            "print(os.system('cat %s > /dev/null; exit 3') >> 8)\n" % data)
    r = sb.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"3"]           # system()'s status, as without tracing
    assert str(data) in r.reads
    assert any(e.argv[:2] == ("sh", "-c") for e in r.execs), r.execs
