"""Every backend names the file the kernel opened, or says it could not.

Each case of tests/scenarios/path_truth.c, built dynamically and
statically, under every Linux backend: the right path in the right
category, never a name the kernel did not use; only where a backend
truly cannot know (another mount namespace, 32-bit system calls) may it
answer with complete=False and a warning naming what it did not see.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import build_scenario, sandbox_for

HERE = Path(__file__).resolve().parent
IS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="session")
def truth_bins(tmp_path_factory) -> dict:
    return build_scenario(tmp_path_factory, "path_truth.c")


def prepare(w: Path) -> None:
    (w / "real" / "sub").mkdir(parents=True)
    (w / "real" / "x").write_text("x")
    os.symlink("real/sub", w / "lnk")
    (w / "f.txt").write_text("f")
    (w / "a.txt").write_text("a")
    (w / "other.txt").write_text("o")
    os.symlink("a.txt", w / "ln")
    os.symlink("ln", w / "ln2")
    (w / "root").mkdir()
    (w / "root" / "f.txt").write_text("r")
    (w / "src").mkdir()
    (w / "src" / "f.txt").write_text("s")
    (w / "mnt").mkdir()


def no_invented(r):
    for p in r.reads | r.writes | r.probes | r.enumerations:
        assert "#" not in os.path.basename(p) and "(deleted)" not in p, p
        assert not p.startswith("/dev/fd/") and "/fd/" not in p.replace("/proc/", "", 1) \
            or not p.startswith("/proc/"), p


# case -> (check(work, result), root only)
def c_dotdot(w, r):
    assert str(w / "real" / "x") in r.reads
    assert str(w / "x") not in r.reads | r.probes


def c_relink(w, r):
    assert {str(w / "ln"), str(w / "a.txt")} <= r.reads
    assert str(w / "other.txt") not in r.reads


def c_link_gone(w, r):
    # the link as read and the target as it was at the access, though all
    # three names are gone when the run ends
    assert {str(w / "ln2"), str(w / "a.txt")} <= r.reads
    assert {str(w / "ln2"), str(w / "ln"), str(w / "a.txt")} <= r.writes


def c_behind_fd(w, r):
    assert str(w / "f.txt") in r.reads


def c_longpath(w, r):
    # the run created deep.txt, so its read is no input: it is a write
    deep = [p for p in r.writes if p.endswith("/deep.txt")]
    if r.complete:
        assert deep and len(deep[0]) > 4096 and deep[0].startswith(str(w) + "/")
    else:
        assert any("longer" in x or "4096" in x for x in r.warnings), r.warnings


def c_tmpfile(w, r):
    assert str(w / "named.txt") in r.writes


def c_tmpfile_emptypath(w, r):
    # the only name the file ever had is the one linkat gave it: a write
    assert str(w / "named2.txt") in r.writes
    assert not any(p.startswith(str(w) + "/#") for p in r.reads | r.writes | r.probes)


def c_deleted(w, r):
    assert str(w / "f.txt") in r.reads


def c_chroot(w, r):
    assert str(w / "root" / "f.txt") in r.reads
    assert "/f.txt" not in r.reads | r.probes


def c_mntns(w, r):
    if r.backend == "ebpf":
        # the kernel follows the namespace's bind mount: the host's name
        assert r.complete, r.warnings
    if r.complete:
        assert str(w / "src" / "f.txt") in r.reads
        assert str(w / "mnt" / "f.txt") not in r.reads | r.probes
    else:
        assert any("mount namespace" in x for x in r.warnings), r.warnings


def c_int80(w, r):
    if r.complete:
        assert str(w / "f.txt") in r.reads
    else:
        assert any("32-bit" in x for x in r.warnings), r.warnings


CASES = {
    "dotdot": (c_dotdot, False), "dotdot_dirfd": (c_dotdot, False),
    "relink": (c_relink, False), "link_gone": (c_link_gone, False),
    "devfd": (c_behind_fd, False),
    "procfd": (c_behind_fd, False), "scm_rights": (c_behind_fd, False),
    "longpath": (c_longpath, False), "tmpfile": (c_tmpfile, False),
    "tmpfile_emptypath": (c_tmpfile_emptypath, False),
    "deleted": (c_deleted, False), "chroot": (c_chroot, True), "mntns": (c_mntns, True),
    "int80": (c_int80, False),
}

# Known gaps, each a bug being fixed: the test fails loudly when one is
# fixed (strict), so this list only ever shrinks.
KNOWN: dict = {}


@pytest.mark.parametrize("linkage", ["dynamic", "static"])
@pytest.mark.parametrize("backend", ["ebpf", "preload", "ptrace"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_path_truth(case, backend, linkage, truth_bins, tmp_path, request):
    check, root_only = CASES[case]
    if root_only and not IS_ROOT:
        pytest.skip("needs root (chroot, mount)")
    why = KNOWN.get((case, backend, linkage)) or KNOWN.get((case, backend, "*"))
    if why:
        request.applymarker(pytest.mark.xfail(reason=why, strict=True))
    sb = sandbox_for(backend)
    w = Path(os.path.realpath(tmp_path)) / "work"
    prepare(w)
    r = sb.run([truth_bins[linkage], case], cwd=str(w), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    no_invented(r)
    check(w, r)
    if case not in ("longpath", "mntns", "int80"):
        assert r.complete, r.warnings
