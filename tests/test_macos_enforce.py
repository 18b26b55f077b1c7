"""Enforcement on a Mac (skipped elsewhere; run by .github/workflows/macos.yml):
``Sandbox("interpose").run(..., policy=Policy(...))`` puts the command in a
seatbelt sandbox generated from the policy (sandbox_py/_backends/seatbelt.py,
applied by the launcher, csrc/macos/seatbelt_apply.c) and keeps tracing it.

Checked as a user would: reads and writes inside the trees work and are
traced (the run is complete: the dylib is in the sandboxed program), a read
and a write outside them fail with EPERM, the protected files are unchanged,
Result.denied names them; "report" blocks nothing and lists the same; a
sandboxed program cannot rewrite the profile directory even when its
parent is writable.  On Linux, tests/test_macos_seatbelt.py checks the
profile itself and the launcher's build."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile

import pytest

import sandbox_py
from sandbox_py import Policy

pytestmark = pytest.mark.skipif(sys.platform != "darwin", reason="macOS only")

OPS = r"""
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* OP PATH [PATH2] ...: one line each, "OP ok" or "OP errno N" */
int main(int argc, char **argv)
{
    char buf[64];
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *op = argv[i], *p = argv[i + 1];
        int ok;
        if (!strcmp(op, "read")) {
            int fd = open(p, O_RDONLY);
            ok = fd >= 0 && read(fd, buf, sizeof buf) >= 0;
            if (fd >= 0) close(fd);
        } else if (!strcmp(op, "write")) {
            FILE *f = fopen(p, "w");
            ok = f && fputs("changed\n", f) >= 0;
            if (f) ok = fclose(f) == 0 && ok;
        } else if (!strcmp(op, "unlink")) {
            ok = unlink(p) == 0;
        } else if (!strcmp(op, "rename") && i + 2 < argc) {
            ok = rename(p, argv[i + 2]) == 0;
            i++;
        } else {
            ok = 0;
            errno = EINVAL;
        }
        if (ok)
            printf("%s ok\n", op);
        else
            printf("%s errno %d\n", op, errno);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    d = tmp_path_factory.mktemp("bin")
    (d / "ops.c").write_text(OPS)
    exe = os.path.realpath(str(d / "ops"))
    subprocess.run(["cc", "-O1", "-o", exe, str(d / "ops.c")], check=True)
    return exe


@pytest.fixture
def work(tmp_path):
    d = os.path.realpath(str(tmp_path))     # /var -> /private/var
    for sub in ("src", "out", "secret"):
        os.mkdir(os.path.join(d, sub))
    for name, text in (("src/in.txt", "input\n"), ("secret/s.txt", "secret\n"),
                       ("out/mv.txt", "movable\n")):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return d


def run(ops, work, args, on_violation="deny", write=None):
    policy = Policy(read=[os.path.join(work, "src"), os.path.dirname(ops)],
                    write=write or [os.path.join(work, "out")], on_violation=on_violation)
    r = sandbox_py.Sandbox("interpose").run([ops, *args], cwd=work, policy=policy,
                                            capture_output=True, text=True)
    assert r.returncode == 0, (r.stderr, r.warnings)
    return r, r.stdout.splitlines()


def test_deny_refuses_outside_and_keeps_tracing(ops, work):
    j = lambda n: os.path.join(work, n)  # noqa: E731
    r, lines = run(ops, work, ["read", j("src/in.txt"), "write", j("out/new.txt"),
                               "read", j("secret/s.txt"), "write", j("secret/s.txt"),
                               "write", j("src/in.txt"), "unlink", j("secret/s.txt"),
                               "rename", j("out/mv.txt"), j("secret/mv.txt")])
    eperm = "errno %d" % errno.EPERM
    assert lines == ["read ok", "write ok", "read " + eperm, "write " + eperm,
                     "write " + eperm, "unlink " + eperm, "rename " + eperm], lines
    assert open(j("secret/s.txt")).read() == "secret\n"
    assert open(j("src/in.txt")).read() == "input\n"
    assert open(j("out/mv.txt")).read() == "movable\n"
    assert open(j("out/new.txt")).read() == "changed\n"
    # still traced: the dylib is in the sandboxed program
    assert r.complete, r.warnings
    assert j("src/in.txt") in r.reads and j("out/new.txt") in r.writes
    # denied comes from tracing: a refused call is traced as a probe of its
    # name, with what it asked for kept (docs/enforcement.md), so the
    # refused write to src/in.txt, inside a read tree, is listed as a write
    denied = {(d.path, d.category) for d in r.denied}
    assert {(j("secret/s.txt"), "read"), (j("secret/s.txt"), "write"),
            (j("src/in.txt"), "write")} <= denied, r.denied
    assert j("secret/mv.txt") in {p for p, _ in denied}, r.denied
    assert j("out/new.txt") not in {p for p, _ in denied}


def test_report_blocks_nothing_and_lists_the_same(ops, work):
    j = lambda n: os.path.join(work, n)  # noqa: E731
    r, lines = run(ops, work, ["read", j("secret/s.txt"), "write", j("secret/s.txt")],
                   on_violation="report")
    assert lines == ["read ok", "write ok"]
    assert open(j("secret/s.txt")).read() == "changed\n"
    assert {(d.path, d.category) for d in r.denied} >= {(j("secret/s.txt"), "write")}


def test_profile_directory_cannot_be_written_from_inside(ops, work):
    """Even with $TMPDIR writable, the directory holding the profiles of
    other runs is not (seed 003: a profile the child can rewrite is no
    policy)."""
    from sandbox_py._backends import seatbelt
    pdir = seatbelt.profile_dir()
    tmp = os.path.realpath(tempfile.gettempdir())
    evil = os.path.join(pdir, "evil.sb")
    r, lines = run(ops, work, ["write", evil, "write", os.path.join(tmp, "sbx-ok.txt"),
                               "rename", pdir, pdir + ".moved"],
                   write=[tmp, os.path.join(work, "out")])
    assert lines[0] == "write errno %d" % errno.EPERM and lines[1] == "write ok", lines
    assert lines[2].startswith("rename errno"), lines
    assert not os.path.exists(evil) and os.path.isdir(pdir)
    os.unlink(os.path.join(tmp, "sbx-ok.txt"))


def test_program_outside_the_execute_trees_is_not_run(ops, work):
    policy = Policy(read=[os.path.join(work, "src")], execute=[os.path.join(work, "src")])
    r = sandbox_py.Sandbox("interpose").run([ops, "write", os.path.join(work, "out", "x")],
                                            cwd=work, policy=policy, capture_output=True)
    assert r.returncode != 0
    assert not os.path.exists(os.path.join(work, "out", "x"))
