"""One truth across backends: real tools that nobody here wrote, each run
under every Linux backend available (as root: ebpf, ptrace, preload; as an
unprivileged user: preload, ptrace) from a fresh copy of the same inputs, at
the same paths.  All five sets must be equal, and so must the per-process
records (Result.processes, docs/semantics.md "Who did what"): the same
records, matched in start order by (executed file's name, argv), each with
the same four sets, in the same tree.

Two kinds of difference are tolerated, and only these:

* names a program makes up at random (mkstemp and friends: the compiler's
  /tmp/ccXXXXXX.s, sed's sedXXXXXX, git's tmp_obj_XXXXXX) and a process's
  own /proc/<pid> entry differ from run to run whatever the backend; they
  are compared after replacing the random part, so their number and
  categories still have to agree;
* the documented blind spots of a backend (ALLOWED below, also listed in
  docs/backends.md), and each only when that backend's Result carries the
  warning that names it: a difference the Result does not own is a bug.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

import sandbox_py

BACKENDS = [b for b in ("ebpf", "ptrace", "preload")
            if sandbox_py.backends().get(b, (False, ""))[0]]
CATEGORIES = ("reads", "writes", "probes", "enumerations")

# (backend, path pattern, the warning its Result must carry)
ALLOWED = [
    # read() does not stop under ptrace and a device has no offset that
    # would tell afterwards: the open is recorded as a probe, with a warning.
    ("ptrace", re.compile(r"^/dev/"), "character device"),
    # nor for an empty file: no offset tells whether read() ran (cat reads
    # it, git add only opens it); a probe, with a warning naming the file
    ("ptrace", re.compile(r"^/"), "whether the empty file {path} was read"),
]

# The random part of names made by mkstemp-like functions.
RANDOM_NAMES = [
    (re.compile(r"/cc[A-Za-z0-9]{6}(\.[A-Za-z0-9.]+)$"), r"/cc<random>\1"),
    (re.compile(r"/tmp_obj_[A-Za-z0-9]{6}$"), "/tmp_obj_<random>"),
    (re.compile(r"/\.git/t[A-Za-z0-9]{6}$"), "/.git/t<random>"),
    (re.compile(r"/sed[A-Za-z0-9]{6}$"), "/sed<random>"),
    # a process's own /proc entry (glibc reads /proc/<pid>/maps for a
    # thread's stack): the pid differs from run to run
    (re.compile(r"^/proc/[0-9]+/"), "/proc/<pid>/"),
]

TOOLS = {
    "cp -r": ["cp", "-r", "src", "out"],
    "cp -a": ["cp", "-a", "src", "out"],
    "rm -rf": ["rm", "-rf", "src"],
    "tar": ["tar", "-cf", "a.tar", "src"],
    "make": ["make", "-s"],
    "make -j2": ["make", "-s", "-j2"],
    "gcc": ["gcc", "-c", "util.c", "-o", "util.o"],
    "gcc compile and link": ["gcc", "-o", "app", "main.c", "util.c"],
    # the child searches $PATH and opens its file actions inside libc, before
    # its exec: a record of its own under every backend
    "posix_spawnp": [sys.executable, "-c", "import os; pid = os.posix_spawnp("
                     "'cat', ['cat', 'conf.txt'], os.environ); os.waitpid(pid, 0)"],
    "posix_spawn file action": [sys.executable, "-c", """
import os
out = (os.POSIX_SPAWN_OPEN, 1, "spawned.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
pid = os.posix_spawn("/bin/cat", ["cat", "conf.txt"], os.environ, file_actions=[out])
os.waitpid(pid, 0)
"""],
    "sh pipelines": ["sh", "-c", "cat src/f1.txt | wc -c > count.txt; "
                                 "sort conf.txt | head -n 1 >> count.txt; "
                                 "(cd src && ls) | grep -c txt"],
    "python imports": [sys.executable, "-c", "import json, csv, email.parser, zlib"],
    "git": ["sh", "-c", "git init -q . && git add -A && git commit -qm x"],
    "sed -i": ["sed", "-i", "s/a=1/a=2/", "conf.txt"],
    "find": ["find", "src", "-name", "*.txt"],
    "ls -la": ["ls", "-la", "src"],
    "mv over, then read": ["sh", "-c", "mv src/f0.txt src/f2.txt && cat src/f2.txt"],
    "ln, readlink": ["sh", "-c", "ln src/f1.txt hard.txt && ln -s src/f2.txt soft.txt "
                                 "&& readlink soft.txt && readlink src/link.txt"],
    "touch, chmod": ["sh", "-c", "touch new.txt conf.txt && chmod 600 conf.txt"],
    "install": ["install", "-m", "644", "conf.txt", "inst.txt"],
    "du": ["du", "-s", "src"],
    "file ops": [sys.executable, "-c", """
import os
fd = os.open("conf.txt", os.O_RDONLY); r, w = os.pipe(); os.splice(fd, w, 4, offset_src=0)
g = os.open("alloc.bin", os.O_WRONLY | os.O_CREAT, 0o644); os.posix_fallocate(g, 0, 4096)
try:
    os.setxattr("util.c", "user.k", b"v"); os.getxattr("util.c", "user.k")
    os.removexattr("util.c", "user.k")
except OSError:
    pass                        # a file system without user xattrs: still the same calls
os.statvfs("src")
"""],
}


def make_inputs(root: Path) -> None:
    (root / "src" / "sub").mkdir(parents=True)
    for i in range(3):
        (root / "src" / ("f%d.txt" % i)).write_text("x" * i)
    (root / "src" / "sub" / "deep.txt").write_text("deep")
    os.symlink("f1.txt", root / "src" / "link.txt")
    os.symlink("sub", root / "src" / "sublink")
    (root / "main.c").write_text('#include <stdio.h>\n#include "util.h"\n'
                                 'int main(void){printf("%d\\n", util());return 0;}\n')
    (root / "util.h").write_text("int util(void);\n")
    (root / "util.c").write_text('#include "util.h"\nint util(void){return 7;}\n')
    (root / "Makefile").write_text("app: main.o util.o\n\tcc -o app main.o util.o\n"
                                   "%.o: %.c util.h\n\tcc -c $< -o $@\n")
    (root / "conf.txt").write_text("a=1\nb=2\n")
    # older than anything a run writes: git re-reads a file whose time is
    # the index's own ("racily clean"), which would make what `git commit`
    # reads depend on how fast the run went
    for d, dirs, files in os.walk(root):
        for n in files + dirs:
            os.utime(os.path.join(d, n), (946684800, 946684800), follow_symlinks=False)


def normalize(path: str) -> str:
    for pattern, repl in RANDOM_NAMES:
        path = pattern.sub(repl, path)
    return path


def sets_of(result) -> dict:
    out = {c: Counter(normalize(p) for p in getattr(result, c)) for c in CATEGORIES}
    out["execs"] = Counter((normalize(e.path), tuple(normalize(a) for a in e.argv))
                           for e in result.execs)
    return out


def allowed(backend: str, path, warnings) -> bool:
    return isinstance(path, str) and any(
        b == backend and pat.search(path) and any(w.format(path=path) in x for x in warnings)
        for b, pat, w in ALLOWED)


def process_key(p) -> tuple:
    """What names a record across backends: pids differ from run to run."""
    return (os.path.basename(p.path or ""), tuple(normalize(a) for a in p.argv))


def matched(processes) -> list:
    """Each record's name: its key and its rank among the records of that
    key, in start order (the k-th `cc1 ... util.c` of one run is the k-th of
    another, whichever parallel job started first)."""
    seen: Counter = Counter()
    out = []
    for p in processes:
        k = process_key(p)
        out.append((k, seen[k]))
        seen[k] += 1
    return out


def process_problems(results) -> list:
    """Per-process truth is one truth: the same records in the same tree,
    each with the same four sets; a path differs only where the file's
    ALLOWED rule (with its warning) says so."""
    problems = []
    names = {b: matched(r.processes) for b, r in results.items()}
    index = {b: {n: i for i, n in enumerate(names[b])} for b in results}
    for name in sorted(set().union(*names.values()), key=repr):
        (exe, argv), rank = name
        what = "process %s #%d (%s)" % (exe, rank, " ".join(argv)[:80])
        has = {b: index[b].get(name) for b in results}
        if None in has.values():
            problems.append("%s: only under %s" % (
                what, sorted(b for b, i in has.items() if i is not None)))
            continue
        procs = {b: results[b].processes[i] for b, i in has.items()}
        parents = {b: None if p.parent is None else names[b][p.parent]
                   for b, p in procs.items()}
        if len(set(parents.values())) > 1:
            problems.append("%s: parent %s" % (what, {
                b: n and "%s #%d (%s)" % (n[0][0], n[1], " ".join(n[0][1])[:40])
                for b, n in parents.items()}))
        for cat in CATEGORIES:
            sets = {b: Counter(normalize(x) for x in getattr(p, cat))
                    for b, p in procs.items()}
            for path in sorted(set().union(*sets.values())):
                counts = {b: sets[b].get(path, 0) for b in sets}
                if len(set(counts.values())) == 1:
                    continue
                rest = [b for b in sets if not allowed(b, path, results[b].warnings)]
                if len({counts[b] for b in rest}) <= 1 and len(rest) < len(sets):
                    continue
                problems.append("%s %s %s: %s" % (what, cat, path, counts))
    return problems


@pytest.mark.skipif(len(BACKENDS) < 2, reason="fewer than two Linux backends work here")
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_real_tool_gives_the_same_sets_on_every_backend(tool, tmp_path):
    argv = TOOLS[tool]
    if not shutil.which(argv[0]):
        pytest.skip("%s is not installed" % argv[0])
    pristine, work, home, tmp = (tmp_path / n for n in ("pristine", "work", "home", "tmp"))
    make_inputs(pristine)
    home.mkdir()
    env = dict(os.environ, HOME=str(home), TMPDIR=str(tmp), LC_ALL="C.UTF-8",
               PYTHONDONTWRITEBYTECODE="1", GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@b", GIT_COMMITTER_NAME="a",
               GIT_COMMITTER_EMAIL="a@b", GIT_AUTHOR_DATE="2000-01-01T00:00:00Z",
               GIT_COMMITTER_DATE="2000-01-01T00:00:00Z")
    results = {}
    for backend in BACKENDS:
        for d in (work, tmp):
            shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(pristine, work, symlinks=True)
        tmp.mkdir()
        r = sandbox_py.Sandbox(backend).run(argv, cwd=str(work), env=env, capture_output=True,
                                            timeout=120)
        assert r.returncode == 0, (backend, r.stderr)
        for c in CATEGORIES:
            for p in getattr(r, c):
                assert p.startswith("/") and os.path.normpath(p) == p and "//" not in p, \
                    (backend, c, p)
        results[backend] = r

    problems = []
    sets = {b: sets_of(r) for b, r in results.items()}
    for cat in CATEGORIES + ("execs",):
        names = set().union(*(sets[b][cat] for b in BACKENDS))
        for name in sorted(names, key=str):
            counts = {b: sets[b][cat].get(name, 0) for b in BACKENDS}
            if len(set(counts.values())) == 1:
                continue
            # a backend whose Result owns this blind spot is left out; the
            # others must still agree
            rest = [b for b in BACKENDS if not allowed(b, name, results[b].warnings)]
            if len({counts[b] for b in rest}) <= 1 and len(rest) < len(BACKENDS):
                continue
            problems.append("%s %s: %s" % (cat, name, counts))
    problems += process_problems(results)
    assert not problems, "backends disagree on %r:\n  %s\nwarnings: %s" % (
        tool, "\n  ".join(problems), {b: r.warnings for b, r in results.items()})
    # a Result is incomplete only for a reason the allowed list names
    for b, r in results.items():
        for w in r.warnings:
            assert any(w2.split("{path}")[0] in w for bb, _, w2 in ALLOWED if bb == b), (b, w)
