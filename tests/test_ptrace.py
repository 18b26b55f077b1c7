"""The ptrace backend's own cases: static binaries, direct system calls,
io_uring honesty, subprocess semantics through the launcher."""
from __future__ import annotations

import os
import shutil
import sys

import pytest

import sandbox_py
from conftest import sandbox_for
from test_preload import build, work, write  # noqa: F401 - work is a fixture

pytestmark = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")


@pytest.fixture
def sb():
    return sandbox_for("ptrace")


def test_static_binary_with_direct_syscalls(sb, work):
    write(os.path.join(work, "data.txt"))
    exe = build(work, "static_raw", r"""
        char b[16];
        int fd = (int)syscall(SYS_openat, AT_FDCWD, "data.txt", O_RDONLY);
        syscall(SYS_read, fd, b, sizeof b);
        syscall(SYS_close, fd);
        mkdir("made", 0755);
    """, "-static", top="#include <sys/syscall.h>")
    r = sb.run([exe], cwd=work)
    assert r.returncode == 0 and r.complete, r.warnings
    assert os.path.join(work, "data.txt") in r.reads
    assert os.path.join(work, "made") in r.writes
    assert [e.path for e in r.execs] == [exe]


def test_io_uring_makes_the_result_incomplete(sb, work):
    exe = build(work, "uring", r"""
        unsigned char params[120] = {0};
        long fd = syscall(SYS_io_uring_setup, 4, params);
        return fd < 0 ? 3 : 0;     /* 3: io_uring disabled here */
    """, top="#include <sys/syscall.h>")
    r = sb.run([exe], cwd=work)
    if r.returncode == 3:
        pytest.skip("io_uring is disabled on this kernel")
    assert not r.complete
    assert any("io_uring" in w and str(r.execs[0].pid) in w for w in r.warnings), r.warnings


def test_fork_exec_chain_and_exit_status(sb, work):
    write(os.path.join(work, "in.txt"))
    r = sb.run(["/bin/sh", "-c", "cat in.txt > out.txt && ls >/dev/null; exit 5"], cwd=work)
    assert r.returncode == 5
    assert os.path.join(work, "in.txt") in r.reads
    assert os.path.join(work, "out.txt") in r.writes
    assert work in r.enumerations
    sh = [e for e in r.execs if e.argv[:1] == ("/bin/sh",)]
    cat = [e for e in r.execs if e.argv[:1] == ("cat",)]
    assert sh and cat and cat[0].ppid == sh[0].pid


def test_missing_program_raises_like_subprocess(sb, work):
    with pytest.raises(FileNotFoundError):
        sb.run(["definitely-not-a-program-here"], cwd=work)


def test_executable_keyword_is_honoured(sb, work):
    r = sb.run(["whatever-name", "-c", "exit 4"], executable="/bin/sh", cwd=work)
    assert r.returncode == 4
    assert r.execs and r.execs[0].path == "/bin/sh"


def test_timeout_kills_the_whole_tree(sb, work):
    with pytest.raises(sandbox_py.TimeoutExpired) as ei:
        sb.run(["/bin/sh", "-c", "sleep 30 & sleep 30; wait"], cwd=work, timeout=1)
    assert not ei.value.result.complete


def test_stopped_and_continued_child(sb, work):
    """Job-control stops pass through the tracer (group-stop, not a hang)."""
    r = sb.run(["/bin/sh", "-c", "sleep 5 & p=$!; kill -STOP $p; kill -CONT $p; kill $p; wait"],
               cwd=work, timeout=20)
    assert r.returncode in (0, 143)


def test_redirected_stdin_read_by_the_child_is_a_read(sb, work):
    write(os.path.join(work, "in.txt"))
    r = sb.run(["/bin/sh", "-c", "tr a-z A-Z < in.txt > out.txt"], cwd=work)
    assert r.returncode == 0 and r.complete, r.warnings
    assert os.path.join(work, "in.txt") in r.reads
    assert os.path.join(work, "out.txt") in r.writes


def test_a_script_moved_to_another_fd_is_read_not_probed(sb, work):
    """dash opens a script, moves the fd to 10 and closes the first one
    unused: the open lives on in the copy, which is read (eBPF and preload
    report a read only)."""
    script = os.path.join(work, "s.sh")
    with open(script, "w") as f:
        f.write("exit 0\n")
    r = sb.run(["/bin/sh", script], cwd=work)
    assert r.returncode == 0 and r.complete, r.warnings
    assert script in r.reads and script not in r.probes
    assert [p for p in r.processes if script in p.probes] == []


REUSE = r"""
import os, sys
def child(path):
    pid = os.fork()
    if pid == 0:
        open(path).read()
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
for attempt in range(20):
    first = child(sys.argv[1])
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(first - 1))
    if child(sys.argv[2]) == first:
        print(first)
        break
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="choosing the next pid needs CAP_SYS_ADMIN")
def test_a_reused_pid_is_a_new_process(sb, work):
    """A pid freed and given again in the run (pid_max is 32768 on many
    machines: a large build wraps) is a new process with a record of its
    own, not more of the dead one."""
    a, b = os.path.join(work, "a.txt"), os.path.join(work, "b.txt")
    write(a)
    write(b)
    r = sb.run([sys.executable, "-c", REUSE, a, b], cwd=work, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if not r.stdout.strip():
        pytest.skip("another process took the chosen pid every time")
    pid = int(r.stdout)
    owners = {p: [q for q in r.processes if p in q.reads] for p in (a, b)}
    assert len(owners[a]) == 1 and len(owners[b]) == 1, r.processes
    assert owners[a][0].pid == owners[b][0].pid == pid
    assert owners[a][0] is not owners[b][0]
    # both hang under the script, which forked them
    assert r.processes[owners[b][0].parent].pid == r.processes[0].pid != pid
    assert r.processes[owners[a][0].parent].pid == r.processes[0].pid


def test_the_path_search_before_the_first_exec_is_the_commands(sb, work):
    """The launcher's $PATH search (as subprocess's) happens in the
    command's process before its exec: one record, the command's, holds
    the names it tried; no record without an image."""
    write(os.path.join(work, "a.txt"))
    empty = os.path.join(work, "nothing-here")
    os.mkdir(empty)
    env = dict(os.environ, PATH=empty + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"))
    r = sb.run(["cat", "a.txt"], cwd=work, env=env, capture_output=True)
    assert r.returncode == 0 and r.complete, r.warnings
    assert len(r.processes) == 1, r.processes
    cat = r.processes[0]
    assert os.path.basename(cat.path) == "cat" and cat.argv == ("cat", "a.txt")
    assert cat.parent is None and cat.returncode == 0 and cat.cwd == work
    assert os.path.join(empty, "cat") in cat.probes and os.path.join(work, "a.txt") in cat.reads
