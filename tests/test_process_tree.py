"""Who did what, on every Linux backend: one scripted process tree, run
with a dynamically linked shell (dash) and a statically linked one
(busybox), gives the documented Result.processes (docs/semantics.md).

The tree: a shell with three children reading distinct files, a
double-forked grandchild, a thread that reads, a process that execs twice
(env -> sh -> cat, one pid), and a child that writes after ``env -i``."""
from __future__ import annotations

import os
import sys

import pytest

from conftest import sandbox_for

BACKENDS = ["ebpf", "preload", "ptrace"]
SHELLS = {"dynamic": ["/bin/sh"], "static": ["/bin/busybox", "sh"]}
# an interpreter binary itself (a `python3` found on PATH may be a wrapper
# script, pyenv's, that execs the real one: its reads are then that exec's)
PYTHON = sys.executable

SCRIPT = r"""
/bin/cat "$D/a" >/dev/null
/bin/cat "$D/b" >/dev/null
/bin/cat "$D/c" >/dev/null
( ( /bin/cat "$D/g" >/dev/null ) & wait )
"$PY" -c 'import sys, threading
t = threading.Thread(target=lambda: open(sys.argv[1]).read())
t.start(); t.join()' "$D/t"
/usr/bin/env X=1 /bin/sh -c 'exec /bin/cat "$1" >/dev/null' sh "$D/e"
/usr/bin/env -i /bin/sh -c 'echo x > "$1"' sh "$D/w"
"""


def only_record(r, path, category="reads"):
    """The one record whose `category` holds `path` (and its index)."""
    hits = [(i, p) for i, p in enumerate(r.processes) if path in getattr(p, category)]
    assert len(hits) == 1, "%s in %s of %s" % (path, category, [
        (p.pid, p.argv) for _, p in hits])
    return hits[0]


@pytest.mark.parametrize("shell", sorted(SHELLS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_scripted_tree(backend, shell, tmp_path):
    if shell == "static" and not os.path.exists("/bin/busybox"):
        pytest.fail("busybox-static is needed (scripts/setup.sh installs it)")
    sb = sandbox_for(backend)
    d = tmp_path
    for name in "abcgte":
        (d / name).write_text(name)
    env = dict(os.environ, D=str(d), PY=PYTHON)
    r = sb.run(SHELLS[shell] + ["-c", SCRIPT], env=env, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.complete, r.warnings
    procs = r.processes
    assert procs and procs[0].parent is None and procs[0].pid == r.execs[0].pid
    root = procs[0]

    # three children reading distinct files, each hanging under the shell
    kids = [only_record(r, str(d / n)) for n in "abc"]
    assert len({p.pid for _, p in kids}) == 3
    for (i, p), n in zip(kids, "abc"):
        assert p.argv == ("/bin/cat", str(d / n)) and os.path.basename(p.path) == "cat"
        assert p.ppid == root.pid and procs[p.parent].pid == root.pid
        assert p.returncode in (0, None)
        # nobody else read it
        assert all(str(d / n) not in q.reads for j, q in enumerate(procs) if j != i)

    # the double-forked grandchild hangs under the subshell it was forked from
    _, g = only_record(r, str(d / "g"))
    sub = procs[g.parent]
    assert sub.pid == g.ppid and sub.pid != root.pid
    assert procs[sub.parent].pid == root.pid

    # a thread's read is its process's
    _, t = only_record(r, str(d / "t"))
    assert t.argv[:2] == (PYTHON, "-c") and t.ppid == root.pid

    # a process that execs twice: three records of one pid, in order
    _, cat_e = only_record(r, str(d / "e"))
    same = [p for p in procs if p.pid == cat_e.pid]
    assert [os.path.basename(p.argv[0]) for p in same] == ["env", "sh", "cat"]
    assert [os.path.basename(p.path) for p in same] == ["env", "sh", "cat"]
    assert len({p.parent for p in same}) == 1

    # the write after env -i is the shell's that env became
    _, w = only_record(r, str(d / "w"), "writes")
    assert w.argv[:2] == ("/bin/sh", "-c") and w.pid != root.pid

    # the run-level sets are the union after the precision rules
    union = {c: set().union(*(getattr(p, c) for p in procs))
             for c in ("reads", "writes", "probes", "enumerations")}
    assert set(r.writes) == union["writes"]
    assert set(r.enumerations) == union["enumerations"]
    assert set(r.reads) <= union["reads"]
    assert set(r.probes) <= union["probes"] | union["reads"] | union["writes"]
    # parents come first
    for p in procs:
        assert p.parent is None or 0 <= p.parent < procs.index(p)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forked_child_before_exec_is_a_record_of_its_own(backend, tmp_path):
    """A subshell (a fork of the shell) writes a file and then execs cat:
    that write belongs to a record with the shell's image and the child's
    pid.  (Not `cat > out`: dash opens a redirection target in the shell
    itself, before its vfork.)"""
    sb = sandbox_for(backend)
    src = tmp_path / "in.txt"
    src.write_text("x")
    out = tmp_path / "out.txt"
    r = sb.run(["/bin/sh", "-c", '( echo x > "$1"; exec /bin/cat "$0" >/dev/null ); true',
                str(src), str(out)])
    assert r.returncode == 0
    writers = [(i, p) for i, p in enumerate(r.processes) if str(out) in p.writes]
    i, fork = writers[0]
    assert fork.path == r.processes[0].path and fork.pid != r.processes[0].pid
    assert fork.argv == r.processes[0].argv and fork.parent == 0
    _, cat = only_record(r, str(src))
    assert cat.pid == fork.pid and cat.argv[0] == "/bin/cat"
    assert r.processes.index(cat) > i
    # the open that created the file is the fork's; cat wrote through the fd
    assert all(p.pid == fork.pid for _, p in writers)
