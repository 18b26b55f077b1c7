"""No task of a ptrace run starts untraced.

tests/scenarios/clone_untraced.c starts a process with a raw
clone(CLONE_UNTRACED), one with clone3(CLONE_UNTRACED), a thread with
clone(CLONE_THREAD | CLONE_UNTRACED) and one with pthread_create, and each
reads a file of its own.  Under the ptrace backend every read is in the
Result and the run is complete: the filter stops the clone so the tracer
can take the flag off, and clone3 (whose flags a filter cannot read) fails
with ENOSYS, so the program, like libc, falls back to clone.
"""
from __future__ import annotations

import os

import pytest

from conftest import build_scenario, sandbox_for
from test_preload import build


@pytest.fixture(scope="module")
def bins(tmp_path_factory) -> dict:
    return build_scenario(tmp_path_factory, "clone_untraced.c", libs=["-lpthread"])


@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_untraced_children_are_followed(bins, kind, tmp_path):
    sb = sandbox_for("ptrace")
    names = ["by_clone.txt", "by_clone3.txt", "by_thread.txt", "by_pthread.txt"]
    for n in names:
        (tmp_path / n).write_text(n)
    r = sb.run([bins[kind]] + names, cwd=str(tmp_path), capture_output=True, text=True,
               timeout=60)
    assert r.returncode == 0, r.stdout
    # clone3 is refused with ENOSYS, and the fallback to clone is taken
    assert "clone3: ENOSYS" in r.stdout, r.stdout
    assert r.complete, r.warnings
    for n in names:
        assert str(tmp_path / n) in r.reads, (n, sorted(r.reads))
    # the two processes are the program's children, each with its read;
    # the threads' reads are the program's own
    main = r.processes[0]
    assert main.path == os.path.realpath(bins[kind]) and main.returncode == 0
    kids = [p for p in r.processes if p.parent == 0 and p.pid != main.pid]
    assert len({p.pid for p in kids}) == 2, r.processes
    for n in names[:2]:
        owners = [p for p in r.processes if str(tmp_path / n) in p.reads]
        assert len(owners) == 1 and owners[0] in kids, (n, r.processes)
        assert owners[0].returncode == 0
    for n in names[2:]:
        owners = [p for p in r.processes if str(tmp_path / n) in p.reads]
        assert owners == [main], (n, r.processes)


def test_a_breakaway_keeps_following_its_untraced_children(tmp_path):
    """A process that left the run (breakaway) is followed by a keeper,
    which must also take CLONE_UNTRACED off: a child it lost would find
    every stopping call of the run's filter failing (ENOSYS)."""
    sb = sandbox_for("ptrace")
    exe = build(str(tmp_path), "sbx-untraced-daemon", r"""
        long pid = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0)
            _exit(open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644) < 0);
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            return 2;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
    """, top="#include <sched.h>\n#include <sys/syscall.h>\n"
             "#ifndef CLONE_UNTRACED\n#define CLONE_UNTRACED 0x00800000\n#endif\n")
    made = tmp_path / "made.txt"
    r = sb.run(["/bin/sh", "-c", '"$0" "$1"', exe, str(made)],
               breakaway=["sbx-untraced-daemon"], timeout=60)
    assert r.returncode == 0 and made.exists()
    assert [b.path for b in r.breakaways] == [exe]
    assert str(made) not in r.writes      # the breakaway's doing is its own
