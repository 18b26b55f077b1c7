"""Corner cases where the preload shim must report what the kernel-side
backends report (issue 24): a shell popen()ed after clearenv(), a relative
open in a directory nested deeper than PATH_MAX, an openat() through a
dirfd whose directory was renamed, the loader's search along a RUNPATH
that does not exist, a failed dlopen() of a name with a slash.

Every program runs dynamically linked (the shim) and statically linked
(preload hands it to ptrace); the ptrace backend is the reference where
both are compared."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import build_scenario, sandbox_for

pytestmark = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")

KINDS = ("dynamic", "static")


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return build_scenario(tmp_path_factory, "preload_cases.c")


@pytest.fixture
def work(tmp_path):
    return os.path.realpath(tmp_path)


def write(path, text="data\n"):
    with open(path, "w") as f:
        f.write(text)


def run(backend, argv, **kw):
    r = sandbox_for(backend).run(argv, capture_output=True, **kw)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr, r.warnings)
    return r


@pytest.mark.parametrize("kind", KINDS)
def test_popen_after_clearenv_is_traced(cases, work, kind):
    """clearenv() then popen("cat FILE"): the shell and cat are traced (as
    after clearenv() then system()), and pclose() still gives their status."""
    data = os.path.join(work, "popen-input.txt")
    write(data)
    r = run("preload", [cases[kind], "popen-after-clearenv", data])
    assert data in r.reads, sorted(r.reads)
    assert r.complete, r.warnings
    assert any(tuple(e.argv[:2]) == ("sh", "-c") for e in r.execs), r.execs
    assert r.stdout.split()[1] == b"0"             # pclose: cat's exit status


@pytest.mark.parametrize("kind", KINDS)
def test_popen_for_writing_after_clearenv_is_traced(cases, work, kind):
    out = os.path.join(work, "popen-output.txt")
    r = run("preload", [cases[kind], "popen-write-after-clearenv", out])
    assert out in r.writes, sorted(r.writes)
    assert r.complete, r.warnings
    with open(out) as f:
        assert f.read() == "piped\n"


def deep_tree(base, depth):
    """base/NAME/NAME/.../f.txt, `depth` levels of a 200-byte name: deeper
    than PATH_MAX (built through dirfds: no name that long is ever used)."""
    name = "d" * 200
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    wfd = os.open("f.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(wfd, b"deep\n")
    os.close(wfd)
    os.close(fd)
    return name, base + ("/" + name) * depth + "/f.txt"


@pytest.mark.parametrize("kind", KINDS)
def test_relative_open_deeper_than_path_max(cases, work, kind):
    """chdir/fchdir by turns 25 levels down (5000 bytes of name), then
    open("f.txt"): the shim reports the read under its full name and the
    Result stays complete.  A static program is ptrace's (handed off): there
    the read is reported, or the Result says it is incomplete."""
    depth = 25
    name, target = deep_tree(work, depth)
    assert len(target) > 4096
    r = run("preload", [cases[kind], "deep-cwd", work, name, str(depth)])
    if kind == "dynamic":
        assert target in r.reads, [p[-60:] for p in r.reads if len(p) > 4096]
        assert r.complete, r.warnings
        # every level's directory was looked at under its full name
        for level in range(1, depth + 1):
            assert work + ("/" + name) * level in r.probes
    else:
        assert target in r.reads or (not r.complete and r.warnings), r.warnings


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("renamer", ["self", "mv"])
def test_openat_through_a_renamed_directory(cases, work, kind, renamer):
    """A dirfd to out/dirA; dirA renamed to dirB (by the program, or by a
    `mv` it runs); openat(dirfd, "f2") read out/dirB/f2, never out/dirA/f2."""
    out = os.path.join(work, "out")
    os.makedirs(os.path.join(out, "dirA"))
    write(os.path.join(out, "dirA", "f1"))
    write(os.path.join(out, "dirA", "f2"))
    r = run("preload", [cases[kind], "renamed-dirfd", out, renamer])
    assert os.path.join(out, "dirB", "f2") in r.reads, sorted(r.reads)
    assert os.path.join(out, "dirA", "f2") not in r.reads | r.probes
    assert os.path.join(out, "dirA", "f1") in r.reads
    assert r.complete, r.warnings


@pytest.mark.parametrize("kind", KINDS)
def test_failed_dlopen_of_an_absolute_name_is_a_probe(cases, work, kind):
    missing = os.path.join(work, "lib", "missing.so")
    r = run("preload", [cases[kind], "dlopen-missing", missing])
    assert missing in r.probes, sorted(r.probes)
    assert r.complete, r.warnings


def test_ctypes_dlopen_of_a_missing_absolute_name_is_a_probe(work):
    missing = os.path.join(work, "missing.so")
    code = "import ctypes\ntry:\n    ctypes.CDLL(%r)\nexcept OSError:\n    pass\n" % missing
    for backend in ("preload", "ptrace"):
        r = run(backend, [sys.executable, "-c", code])
        assert missing in r.probes, (backend, sorted(p for p in r.probes if work in p))


def cc(*args):
    subprocess.run(["cc"] + list(args), check=True, capture_output=True)


def test_loader_search_along_a_missing_runpath_matches_ptrace(work):
    """A program dlopen()s plugin/libplug.so, whose RUNPATH names
    $ORIGIN/../missing (absent) before $ORIGIN/../lib (where its dependency
    is): the loader tries the capability subdirectories of both one name at
    a time.  Preload reports the names the loader tried, as ptrace sees
    them, and none it did not (no doubled glibc-hwcaps directory)."""
    lib, plugin = os.path.join(work, "lib"), os.path.join(work, "plugin")
    os.makedirs(lib)
    os.makedirs(plugin)
    write(os.path.join(work, "dep.c"), "int dep(void) { return 7; }\n")
    write(os.path.join(work, "plug.c"), "int dep(void);\nint plug(void) { return dep(); }\n")
    write(os.path.join(work, "main.c"), (
        "#include <dlfcn.h>\n#include <stdio.h>\n"
        "int main(int c, char **v) { void *h = dlopen(v[1], RTLD_NOW);\n"
        "  if (!h) { puts(dlerror()); return 1; }\n"
        "  int (*f)(void) = (int (*)(void))dlsym(h, \"plug\"); return f() == 7 ? 0 : 2; }\n"))
    cc("-shared", "-fPIC", "-o", os.path.join(lib, "libdep.so"), os.path.join(work, "dep.c"))
    cc("-shared", "-fPIC", "-o", os.path.join(plugin, "libplug.so"),
       os.path.join(work, "plug.c"), "-L" + lib, "-ldep",
       "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../missing:$ORIGIN/../lib")
    exe = os.path.join(work, "main")
    cc("-o", exe, os.path.join(work, "main.c"))
    argv = [exe, os.path.join(plugin, "libplug.so")]
    r, ref = run("preload", argv), run("ptrace", argv)
    mine = {p for p in r.probes if p.startswith(work)}
    theirs = {p for p in ref.probes if p.startswith(work)}
    assert not [p for p in r.probes if p.count("glibc-hwcaps") > 1], sorted(mine)
    assert os.path.join(work, "missing", "libdep.so") in mine
    assert mine == theirs, (sorted(mine - theirs), sorted(theirs - mine))
    assert os.path.join(lib, "libdep.so") in r.reads
    assert r.complete, r.warnings


@pytest.mark.skipif(not shutil.which("ar"), reason="needs binutils")
def test_ar_probes_match_ptrace(work):
    """`ar rcs x.a x.o`: binutils loads its linker plugins (LLVMgold, whose
    RUNPATH does not exist, where LLVM is installed); preload's probes are
    ptrace's (mkstemp names aside)."""
    write(os.path.join(work, "x.c"), "int x;\n")
    cc("-c", "-o", os.path.join(work, "x.o"), os.path.join(work, "x.c"))

    def probes(backend):
        r = run(backend, ["ar", "rcs", "x.a", "x.o"], cwd=work)
        return {p for p in r.probes if os.path.dirname(p) != work}

    mine, theirs = probes("preload"), probes("ptrace")
    assert mine == theirs, (sorted(mine - theirs), sorted(theirs - mine))
