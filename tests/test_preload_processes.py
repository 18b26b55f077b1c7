"""Who did what under preload: the shim's records carry their process, and
the reader files every access under the right record of Result.processes
(docs/semantics.md, "Who did what").  What is particular to a shim: the
loader's search is reported before the new image's start record, a forked
child must be known before its first access, the cwd comes with the start
record."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import sandbox_for

pytestmark = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")

SCRIPT = r"""
cat "$D/a" >/dev/null
cat "$D/b" >/dev/null
cat "$D/c" >/dev/null
( ( cat "$D/g" >/dev/null ) & wait )
"$PY" -c 'import sys, threading
t = threading.Thread(target=lambda: open(sys.argv[1]).read())
t.start(); t.join()' "$D/t"
env X=1 sh -c 'exec cat "$1" >/dev/null' sh "$D/e"
env -i sh -c 'echo x > "$1"' sh "$D/w"
cd "$D/sub" && cat f >/dev/null
"""


def holders(r, path, category="reads"):
    return [(i, p) for i, p in enumerate(r.processes) if path in getattr(p, category)]


def test_scripted_tree_under_preload(tmp_path):
    """A shell with three children reading distinct files, a double-forked
    grandchild, a thread that reads, a process that execs twice, a child
    that writes after `env -i`, and one that reads after a cd."""
    d = os.path.realpath(tmp_path)
    for name in "abcgte":
        with open(os.path.join(d, name), "w") as f:
            f.write(name)
    os.mkdir(os.path.join(d, "sub"))
    with open(os.path.join(d, "sub", "f"), "w") as f:
        f.write("f")
    env = dict(os.environ, D=d, PY=sys.executable)
    r = sandbox_for("preload").run(["/bin/sh", "-c", SCRIPT], env=env, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.complete, r.warnings
    procs = r.processes
    root = procs[0]
    assert root.parent is None and root.pid == r.execs[0].pid
    assert root.cwd == os.getcwd()
    assert root.returncode == 0

    kids = []
    for n in "abc":
        hits = holders(r, os.path.join(d, n))
        assert len(hits) == 1, (n, hits)
        i, p = hits[0]
        kids.append(p.pid)
        assert os.path.basename(p.path) == "cat" and p.argv[1] == os.path.join(d, n)
        assert p.ppid == root.pid and procs[p.parent] is root and p.returncode == 0
        # the loader's work for cat is cat's: its own image and libc
        assert p.path in p.reads and any("libc.so" in x for x in p.reads), sorted(p.reads)
    assert len(set(kids)) == 3
    # the shell did not read what its children read
    assert not {os.path.join(d, n) for n in "abc"} & set(root.reads)

    # double-forked: under the subshell, which is under the root
    [(_, g)] = holders(r, os.path.join(d, "g"))
    sub = procs[g.parent]
    assert sub.pid != root.pid and procs[sub.parent] is root

    # the thread's read is its process's
    [(_, t)] = holders(r, os.path.join(d, "t"))
    assert t.argv[:2] == (sys.executable, "-c") and t.ppid == root.pid

    # env -> sh -> cat: three records of one pid, in order, one parent
    [(_, e)] = holders(r, os.path.join(d, "e"))
    same = [p for p in procs if p.pid == e.pid]
    assert [os.path.basename(p.path) for p in same] == ["env", "sh", "cat"]
    assert len({p.parent for p in same}) == 1

    # the write after env -i is the shell's that env became
    [(_, w)] = holders(r, os.path.join(d, "w"), "writes")
    assert os.path.basename(w.path) == "sh" and w.pid != root.pid

    # the cwd at exec, from the start record
    [(_, f)] = holders(r, os.path.join(d, "sub", "f"))
    assert f.cwd == os.path.join(d, "sub")

    union = {c: set().union(*(getattr(p, c) for p in procs))
             for c in ("reads", "writes", "probes", "enumerations")}
    assert set(r.writes) == union["writes"]
    assert set(r.reads) <= union["reads"]
    for p in procs:
        assert p.parent is None or 0 <= p.parent < procs.index(p)


FORKER = textwrap.dedent("""
    #include <fcntl.h>
    #include <unistd.h>
    #include <sys/wait.h>
    int main(int argc, char **argv) {
        pid_t p = fork();
        if (p == 0) {
            int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, 1);
            close(fd);
            execl("/bin/cat", "cat", argv[2], (char *)0);
            _exit(127);
        }
        int st;
        waitpid(p, &st, 0);
        return WEXITSTATUS(st);
    }
""")


def test_forked_child_before_exec_has_its_own_record(tmp_path):
    """fork(), then an open in the child, then exec: the open is the fork
    record's (the parent's image, the child's pid), the loader's search and
    cat's read are the exec's."""
    d = os.path.realpath(tmp_path)
    src = os.path.join(d, "forker.c")
    with open(src, "w") as f:
        f.write(FORKER)
    exe = os.path.join(d, "forker")
    subprocess.run(["cc", "-o", exe, src], check=True)
    inp, out = os.path.join(d, "in.txt"), os.path.join(d, "out.txt")
    with open(inp, "w") as f:
        f.write("x")
    r = sandbox_for("preload").run([exe, out, inp])
    assert r.returncode == 0 and r.complete, r.warnings
    # created by the fork's open, then written by cat through its stdout
    writers = holders(r, out, "writes")
    i, fork = writers[0]
    assert all(p.pid == fork.pid for _, p in writers)
    assert fork.path == exe and fork.pid != r.processes[0].pid and fork.parent == 0
    [(j, cat)] = holders(r, inp)
    assert cat.pid == fork.pid and os.path.basename(cat.path) == "cat"
    assert j > i and cat.parent == 0
    assert "/etc/ld.so.cache" in cat.reads and "/etc/ld.so.cache" not in fork.reads
    assert not any("libc.so" in x for x in fork.reads)


def test_exit_statuses(tmp_path):
    """The status each process gave exit() or _exit(); None when killed."""
    r = sandbox_for("preload").run(
        ["/bin/sh", "-c", "sh -c 'exit 3'; sh -c 'kill -9 $$'; "
         "\"$PY\" -c 'import os; os._exit(5)'; exit 0"], env=dict(os.environ, PY=sys.executable))
    assert r.returncode == 0
    by = {p.argv[2]: p.returncode for p in r.processes[1:] if len(p.argv) > 2}
    assert by["exit 3"] == 3
    assert by["kill -9 $$"] is None
    assert by["import os; os._exit(5)"] == 5
    assert r.processes[0].returncode == 0
