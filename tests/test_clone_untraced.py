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
    # the two processes are the program's children, each with its own read
    procs = getattr(r, "processes", None)
    if procs is not None:
        exe = os.path.realpath(bins[kind])
        main = [i for i, p in enumerate(procs) if p.path == exe]
        assert len(main) == 1, procs
        kids = [p for p in procs if p.parent == main[0] and p.pid != procs[main[0]].pid]
        assert sorted(set().union(*(p.reads for p in kids)) & {str(tmp_path / n) for n in names}) \
            == sorted(str(tmp_path / n) for n in names[:2]), kids
        threads = {str(tmp_path / n) for n in names[2:]}
        assert threads <= set(procs[main[0]].reads), procs[main[0]]
