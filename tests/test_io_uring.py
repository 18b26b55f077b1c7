"""io_uring: file operations submitted through a ring are reported under
eBPF exactly like the system calls they stand for; what cannot be reported
is flagged; the backends that cannot see rings at all say so.

tests/scenarios/io_uring_ops.c does each scenario twice: through io_uring
(liburing, or the bare system calls for ``raw_*``) and through the
equivalent system calls.  Both runs happen in directories of the same
shape; their five sets, with the directory replaced by a marker, must be
equal, and must hold what the scenario names (so that equality is never
two empty sets agreeing).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import sandbox_for

HERE = Path(__file__).resolve().parent
CATS = ("reads", "writes", "probes", "enumerations")
F = "f.txt"

# scenario -> what it must put where (names relative to its directory)
BASE = {
    "open_read": {"reads": [F]},
    "openat2_read": {"reads": [F]},
    "open_missing": {"probes": ["missing.txt"]},
    "open_unused": {"probes": [F]},                  # opened, never read
    "dirfd_read": {"reads": ["sub/g.txt"]},
    "write": {"writes": ["out.txt"]},
    "statx": {"probes": [F, "missing.txt"]},
    "renameat": {"reads": [F], "writes": [F, "new.txt"]},
    "unlinkat": {"writes": [F]},
    "rmdir": {"writes": ["empty"]},
    "mkdirat": {"writes": ["newdir"]},
    "symlinkat": {"writes": ["new.lnk"]},
    "linkat": {"reads": [F], "writes": ["hard.txt"]},
    "fixed_file": {"reads": [F]},                    # registered file, IOSQE_FIXED_FILE
    "direct_open": {"reads": [F, "sub/g.txt"]},      # opened into a fixed slot
    "fixed_fd_install": {"reads": [F]},              # then given an fd, read(2)
    "async": {"reads": [F], "writes": ["out.txt"], "probes": [F]},   # IOSQE_ASYNC
    "raw_open_read_write": {"reads": [F], "writes": ["out.txt"]},
    "xattr": {"writes": [F], "probes": ["sub/g.txt"]},   # SETXATTR, GETXATTR by name
    "fd_writes": {"writes": [F]},                    # FALLOCATE, FTRUNCATE, FSETXATTR
}
# the same requests submitted by the SQPOLL thread, and completed as task
# work in the submitter (DEFER_TASKRUN)
RINGS = {"sqpoll_" + n: BASE[n] for n in ("open_read", "write", "statx", "direct_open",
                                         "renameat")}
RINGS.update({"defer_" + n: BASE[n] for n in ("open_read", "write", "direct_open")})
EXACT = {**BASE, **RINGS}
NOT_IN = {"open_unused": {"reads": [F]}, "write": {"reads": ["out.txt"]},
          "fd_writes": {"reads": [F]}, "xattr": {"reads": [F, "sub/g.txt"]},
          "direct_open": {"probes": [F, "sub/g.txt"]}, "fixed_fd_install": {"probes": [F]}}


@pytest.fixture(scope="session")
def uring_bins(tmp_path_factory) -> dict:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.fail("a C compiler is needed to build the io_uring scenarios")
    if not os.path.exists("/usr/include/liburing.h"):
        pytest.fail("liburing-dev is needed (scripts/setup.sh installs it)")
    out = tmp_path_factory.mktemp("uring")
    bins = {}
    for kind, extra in (("dynamic", []), ("static", ["-static"])):
        exe = out / ("io_uring_ops-" + kind)
        subprocess.run([cc, "-O1", "-o", str(exe), str(HERE / "scenarios" / "io_uring_ops.c"),
                        "-luring"] + extra, check=True, capture_output=True)
        bins[kind] = str(exe)
    return bins


def prepare(work: Path) -> None:
    (work / "sub").mkdir(parents=True)
    (work / "sub" / "g.txt").write_text("g")
    (work / "empty").mkdir()
    (work / F).write_text("data\n")


def run(sb, exe, mode, scenario, base: Path):
    work = base / mode / "work"
    prepare(work)
    r = sb.run([exe, mode, scenario], cwd=str(work), capture_output=True, timeout=60)
    if r.returncode == 3:
        pytest.skip("io_uring is disabled on this kernel: %s" % r.stderr.decode().strip())
    if r.returncode == 4:
        pytest.skip(r.stderr.decode().strip())
    assert r.returncode == 0, (mode, r.stderr)
    return r, str(work)


def relative(r, work: str) -> dict:
    """The four path sets with the run's directory as 'W'."""
    return {c: sorted("W" + p[len(work):] if p == work or p.startswith(work + "/") else p
                      for p in getattr(r, c)) for c in CATS}


@pytest.mark.parametrize("linkage", ["dynamic", "static"])
@pytest.mark.parametrize("scenario", sorted(EXACT))
def test_ebpf_reports_io_uring_like_the_system_calls(scenario, linkage, uring_bins, tmp_path):
    sb = sandbox_for("ebpf")
    exe = uring_bins[linkage]
    ru, wu = run(sb, exe, "uring", scenario, tmp_path)
    rs, ws = run(sb, exe, "sys", scenario, tmp_path)
    assert ru.complete and not ru.warnings, ru.warnings
    assert rs.complete, rs.warnings
    # the fifth set: the same program ran, once (argv differs by the mode)
    assert [e.path for e in ru.execs] == [e.path for e in rs.execs] == [exe]
    got, want = relative(ru, wu), relative(rs, ws)
    for cat in CATS:
        assert got[cat] == want[cat], (cat, "io_uring only:", set(got[cat]) - set(want[cat]),
                                       "system calls only:", set(want[cat]) - set(got[cat]))
    for cat, names in EXACT[scenario].items():
        missing = {"W/" + n for n in names} - set(got[cat])
        assert not missing, (cat, missing, got[cat])
    for cat, names in NOT_IN.get(scenario.removeprefix("sqpoll_").removeprefix("defer_"),
                                 {}).items():
        wrong = {"W/" + n for n in names} & set(got[cat])
        assert not wrong, (cat, wrong)


# blind spot -> a word its warning must contain
BLIND = {
    "unseen_splice": "SPLICE",                       # an opcode not decoded
    "unseen_skip": "IOSQE_CQE_SKIP_SUCCESS",         # success posts no completion
    "unseen_prep_failed": "rejected before copying",  # prep failed: no names
    "unseen_overflow": "overflowed",                 # completions without requests
}


@pytest.mark.parametrize("scenario", sorted(BLIND))
def test_ebpf_flags_what_it_cannot_report(scenario, uring_bins, tmp_path):
    sb = sandbox_for("ebpf")
    r, work = run(sb, uring_bins["dynamic"], "uring", scenario, tmp_path)
    assert not r.complete
    pid = str(r.execs[0].pid)
    assert any(BLIND[scenario] in w and pid in w for w in r.warnings), r.warnings
    if scenario == "unseen_skip":
        # what can be seen still is: the open, and the read taken at submit
        assert os.path.join(work, F) in r.reads
    if scenario == "unseen_overflow":
        # opens whose completion was lost: named, and their names probes
        assert any("completion was not seen" in w for w in r.warnings), r.warnings
        assert os.path.join(work, F) in r.probes


@pytest.mark.parametrize("linkage", ["dynamic", "static"])
@pytest.mark.parametrize("backend", ["preload", "ptrace"])
@pytest.mark.parametrize("scenario", ["open_read", "raw_open_read_write", "sqpoll_open_read",
                                      "inline_open_read_write"])
def test_other_backends_flag_io_uring(scenario, backend, linkage, uring_bins, tmp_path):
    sb = sandbox_for(backend)
    r, _ = run(sb, uring_bins[linkage], "uring", scenario, tmp_path)
    assert not r.complete
    pid = str(r.execs[0].pid)
    assert any("io_uring" in w and pid in w for w in r.warnings), r.warnings


def test_ebpf_without_its_io_uring_programs_flags_io_uring(uring_bins, tmp_path):
    # What a kernel that refuses the io_uring programs gets: the backend,
    # with io_uring use flagged.  Programs load once per process: a child.
    sandbox_for("ebpf")
    work = tmp_path / "work"
    prepare(work)
    code = ("import json, sys, sandbox_py\n"
            "r = sandbox_py.Sandbox('ebpf').run(sys.argv[1:], cwd=%r)\n"
            "print(json.dumps([r.returncode, r.complete, list(r.warnings), r.execs[0].pid]))\n"
            % str(work))
    out = subprocess.run([sys.executable, "-c", code, uring_bins["dynamic"], "uring", "open_read"],
                         env={**os.environ, "SANDBOX_PY_NO_IO_URING": "1"},
                         capture_output=True, text=True, check=True)
    rc, complete, warnings, pid = json.loads(out.stdout.strip().splitlines()[-1])
    if rc == 3:
        pytest.skip("io_uring is disabled on this kernel")
    assert rc == 0 and not complete
    assert any("io_uring_setup" in w and str(pid) in w for w in warnings), warnings
