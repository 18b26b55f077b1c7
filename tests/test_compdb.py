"""Build steps and the compilation database on a real C project (this
project's own portable core, with a header directory and a Makefile),
against Debian's Bear (``bear -- make -j2``), on every Linux backend."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import sandbox_for
from sandbox_py import compdb

BACKENDS = ["ebpf", "preload", "ptrace"]
CORE = Path(__file__).resolve().parent.parent / "csrc" / "core"
SOURCES = ["pathset.c", "pathnorm.c", "result.c", "access.c", "ledger.c", "keyed_table.c"]

MAKEFILE = """\
CFLAGS = -O1 -Wall -std=gnu11 -Iinclude
OBJS = pathset.o pathnorm.o result.o access.o ledger.o keyed_table.o

libcore.a: $(OBJS)
\tar rcs $@ $^

%.o: %.c
\t$(CC) $(CFLAGS) -c $< -o $@
"""

#: what Bear cannot see: a compiler started by a statically linked shell
STATIC_RULE = """
extra: static.o envi.o
static.o: static.c
\t/bin/busybox sh -c 'cc -Iinclude -c static.c -o static.o'
envi.o: envi.c
\tenv -i /usr/bin/cc -Iinclude -c envi.c -o envi.o
"""


def project(root: Path) -> Path:
    (root / "include").mkdir(parents=True)
    for name in SOURCES:
        shutil.copy(CORE / name, root / name)
    for h in CORE.glob("*.h"):
        shutil.copy(h, root / "include" / h.name)
    (root / "static.c").write_text('#include "pathset.h"\nint s(void) { return 1; }\n')
    (root / "envi.c").write_text('#include "pathnorm.h"\nint e(void) { return 2; }\n')
    (root / "Makefile").write_text(MAKEFILE + STATIC_RULE)
    return root


def gcc_m(root: Path, source: str) -> set:
    """The headers gcc -M lists for a source, as real paths."""
    out = subprocess.run(["cc", "-O1", "-std=gnu11", "-Iinclude", "-M", source], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    names = out.replace("\\\n", " ").split(":", 1)[1].split()
    return {os.path.realpath(os.path.join(root, n)) for n in names}


def same_arguments(ours, bears) -> bool:
    """Bear puts the source last and argv[0] resolved: compare as run."""
    return (os.path.basename(ours[0]) == os.path.basename(bears[0])
            and sorted(ours[1:]) == sorted(bears[1:]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_step_per_compile_with_its_headers(backend, tmp_path):
    sb = sandbox_for(backend)
    root = project(tmp_path / "p")
    r = sb.run(["make", "-j2", "libcore.a"], cwd=root, capture_output=True)
    assert r.returncode == 0 and r.complete, (r.stderr, r.warnings)
    steps = r.steps("cc")
    assert sorted(s.argv[-3] for s in steps) == sorted(SOURCES)
    project_sources = {str(root / s) for s in SOURCES}
    for s in steps:
        src = str(root / s.argv[-3])
        obj = str(root / s.argv[-1])
        headers = gcc_m(root, s.argv[-3])
        assert headers <= set(s.reads) | {os.path.realpath(p) for p in s.reads}, (
            src, headers - set(s.reads))
        assert set(s.reads) & project_sources == {src}
        assert obj in s.writes
        # the step is the driver with cc1 and as below it
        assert {p.name for p in s.processes} >= {"cc", "cc1", "as"}
    (ar,) = r.steps("ar")
    assert {str(root / s.replace(".c", ".o")) for s in SOURCES} <= set(ar.reads)
    assert str(root / "libcore.a") in ar.writes


@pytest.mark.parametrize("backend", BACKENDS)
def test_compdb_matches_bear_and_sees_what_bear_misses(backend, tmp_path):
    sandbox_for(backend)
    if not shutil.which("bear"):
        pytest.fail("Debian's bear is needed (scripts/setup.sh installs it)")
    theirs_root = project(tmp_path / "bear")
    subprocess.run(["bear", "--", "make", "-j2", "libcore.a", "extra"], cwd=theirs_root,
                   check=True, capture_output=True)
    bears = json.loads((theirs_root / "compile_commands.json").read_text())

    root = project(tmp_path / "ours")
    out = tmp_path / "cc.json"
    deps = tmp_path / "deps.json"
    p = subprocess.run([sys.executable, "-m", "sandbox_py", "compdb", "--backend", backend,
                        "-o", str(out), "--deps", str(deps), "--",
                        "make", "-j2", "libcore.a", "extra"],
                       cwd=root, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    ours = json.loads(out.read_text())
    assert all(set(e) == {"directory", "file", "arguments", "output"} for e in ours)

    def key(e, base):
        return os.path.relpath(e["file"], base), os.path.relpath(e["output"], base)

    mine = {key(e, root): e for e in ours}
    theirs = {key(e, theirs_root): e for e in bears}
    # entry for entry where Bear sees the compiler
    for k, e in theirs.items():
        assert k in mine, k
        assert same_arguments(mine[k]["arguments"], e["arguments"]), (mine[k], e)
        assert mine[k]["directory"] == str(root)
    # and the compiler started by a static shell, which Bear misses
    assert ("static.c", "static.o") in mine and ("static.c", "static.o") not in theirs
    assert mine[("static.c", "static.o")]["arguments"] == [
        "cc", "-Iinclude", "-c", "static.c", "-o", "static.o"]
    assert ("envi.c", "envi.o") in mine
    assert len(mine) == len(SOURCES) + 2
    # arguments exactly as run: the source stays where make put it
    e = mine[("pathset.c", "pathset.o")]
    assert e["arguments"][-3:] == ["pathset.c", "-o", "pathset.o"]

    d = {x["output"]: x for x in json.loads(deps.read_text())["outputs"]}
    x = d[str(root / "pathset.o")]
    assert x["file"] == str(root / "pathset.c")
    assert gcc_m(root, "pathset.c") <= {os.path.realpath(p) for p in x["reads"]}
    assert not any(p.endswith((".so", ".s")) or "/locale/" in p for p in x["reads"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_compdb_through_ccache_is_the_real_compiler_once(backend, tmp_path):
    sb = sandbox_for(backend)
    if not shutil.which("ccache"):
        pytest.fail("ccache is needed (scripts/setup.sh installs it)")
    root = project(tmp_path / "p")
    env = dict(os.environ, CCACHE_DIR=str(tmp_path / "ccache"))
    argv = ["ccache", "cc", "-Iinclude", "-c", "pathset.c", "-o", "pathset.o"]
    miss = compdb.entries(sb.run(argv, cwd=root, env=env))
    assert [e["arguments"][0] for e in miss] == ["/usr/bin/cc"] or \
        [os.path.basename(e["arguments"][0]) for e in miss] == ["cc"], miss
    assert [e["file"] for e in miss] == [str(root / "pathset.c")]
    assert "-E" not in miss[0]["arguments"]
    os.unlink(root / "pathset.o")
    hit = compdb.entries(sb.run(argv, cwd=root, env=env))
    # a cache hit runs no compiler: the wrapper's own step is the entry
    assert [e["arguments"] for e in hit] == [argv]
    assert hit[0]["output"] == str(root / "pathset.o")
