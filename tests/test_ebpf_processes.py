"""Who did what under the eBPF backend: each access belongs to the process
that made it (Result.processes), for a scripted tree of shells, forks,
threads and execs.  The kernel half reports every new process at its fork
and every process's exit status; the reader files each access under the
thread-group id of the task that made it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import build_scenario, sandbox_for

SCRIPT = """
cat one.txt >/dev/null &
cat two.txt >/dev/null &
cat three.txt >/dev/null &
wait
sh -c '(cat grand.txt >/dev/null &)'
"$SCEN" thread
sh -c 'exec env cat twice.txt' >/dev/null
env -i /bin/sh -c 'echo x > envi.txt'
sh -c 'exit 3'
exit 0
"""


@pytest.fixture(scope="module")
def scen_bins(tmp_path_factory) -> dict:
    return build_scenario(tmp_path_factory, "scenario.c", ["-pthread"])


def by_argv(r, *argv):
    return [p for p in r.processes if p.argv == argv]


def chain(r, p):
    """The records from p up to the root, through `parent`."""
    out = [p]
    while out[-1].parent is not None:
        out.append(r.processes[out[-1].parent])
    return out


@pytest.mark.parametrize("linkage", ["dynamic", "static"])
def test_scripted_tree_gives_per_process_sets(linkage, scen_bins, tmp_path):
    sb = sandbox_for("ebpf")
    w = Path(os.path.realpath(tmp_path))
    for name in ("one", "two", "three", "grand", "twice", "data"):
        (w / (name + ".txt")).write_text(name)
    env = dict(os.environ, SCEN=scen_bins[linkage])
    r = sb.run(["sh", "-c", SCRIPT], cwd=str(w), env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.complete, r.warnings
    # the root is the first record; its search along $PATH is its own
    root = r.processes[0]
    assert root.argv[:2] == ("sh", "-c") and root.returncode == 0 and root.cwd == str(w)
    assert root.parent is None and root.path and os.path.basename(root.path) in ("sh", "dash")
    assert all(p.path for p in r.processes)
    top = 0

    # three children of the shell, each with its own file, nobody else's
    for name in ("one", "two", "three"):
        f = str(w / (name + ".txt"))
        (p,) = by_argv(r, "cat", name + ".txt")
        assert f in p.reads and p.returncode == 0 and p.cwd == str(w)
        assert p.ppid == root.pid and p.parent == top
        assert [q.pid for q, _ in r.who(f)] == [p.pid]

    # a double-forked grandchild: below the subshell's fork, below its sh
    (g,) = by_argv(r, "cat", "grand.txt")
    assert str(w / "grand.txt") in g.reads
    ups = chain(r, g)
    assert ups[-1] is root
    assert any(q.argv == ("sh", "-c", "(cat grand.txt >/dev/null &)") for q in ups[1:-1])
    assert len(ups) >= 4      # cat <- subshell fork <- sh -c <- root

    # a thread's read is its process's
    (t,) = by_argv(r, scen_bins[linkage], "thread")
    assert t.path == scen_bins[linkage] and str(w / "data.txt") in t.reads
    assert [q.pid for q, _ in r.who(str(w / "data.txt"))] == [t.pid]

    # one pid, three images: sh, env, cat, each hung where the pid was forked
    (cat2,) = by_argv(r, "cat", "twice.txt")
    same = [p for p in r.processes if p.pid == cat2.pid]
    assert [p.argv[0] for p in same] == ["sh", "env", "cat"]
    assert {p.parent for p in same} == {top}
    assert str(w / "twice.txt") in cat2.reads
    assert all(str(w / "twice.txt") not in p.reads for p in same[:2])
    assert same[0].returncode is None and cat2.returncode == 0
    assert same[1].path.endswith("/env") and same[1].cwd == str(w)

    # after env -i the child is still followed, and its write is its own
    (e,) = by_argv(r, "/bin/sh", "-c", "echo x > envi.txt")
    assert str(w / "envi.txt") in e.writes and e.parent is not None
    assert [q.pid for q, _ in r.who(str(w / "envi.txt"))] == [e.pid]
    before = r.processes[r.processes.index(e) - 1]
    assert before.pid == e.pid and before.argv[:2] == ("env", "-i") and e.parent == top

    # an exit status is the process's own
    (x,) = by_argv(r, "sh", "-c", "exit 3")
    assert x.returncode == 3

    # the run's sets are the union of the processes' sets
    for cat in ("reads", "writes", "probes", "enumerations"):
        union = set().union(*(getattr(p, cat) for p in r.processes))
        assert set(getattr(r, cat)) <= union, cat


def test_killed_process_has_negative_returncode(tmp_path):
    sb = sandbox_for("ebpf")
    r = sb.run(["sh", "-c", "sh -c 'kill -9 $$'; exit 0"], cwd=str(tmp_path),
               capture_output=True, timeout=60)
    assert r.returncode == 0
    (k,) = by_argv(r, "sh", "-c", "kill -9 $$")
    assert k.returncode == -9
