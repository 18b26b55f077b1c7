"""Enforcement on Linux: a hostile child under Policy(on_violation="deny")
tries every known way out (tests/scenarios/escape.c) under every Linux
backend, as root and -- through tests/unprivileged/run_as_user.sh -- as an
unprivileged user.  Every attempt must be refused, nothing outside the
policy may change on disk, and what the run touched outside the policy is
in Result.denied -- a refusal under the file the kernel refused, wherever
the name led (a symlink, /proc/self/root, /proc/self/fd/N); where Landlock
cannot refuse (an fd opened before the policy existed), the access is
reported instead (docs/enforcement.md).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import build_scenario, sandbox_for
from sandbox_py import Denied, Policy, Sandbox, SandboxUnavailableError
from sandbox_py import _landlock

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Landlock is Linux's"),
    pytest.mark.skipif(sys.platform.startswith("linux") and not _landlock.abi()[0],
                       reason="no Landlock here: %s" % (_landlock.abi()[1],)),
]

BACKENDS = ["ebpf", "ptrace", "preload"]
ATTEMPTS = ["plain", "dotdot", "symlink", "hardlink", "rename", "exchange", "procfd",
            "procroot", "static", "io_uring"]
#: What Result.denied must list for an attempt, under every backend: each
#: refusal under the name of the file the kernel refused -- the target of a
#: symlink planted in the writable tree, what /proc/self/root or a
#: descriptor's /proc/self/fd alias led to -- with what was asked for.
#: (A refused call is also traced under the name the program gave.)
MUST_LIST = {
    "plain": {("secret/s.txt", "read"), ("ro/victim.txt", "write"),
              ("secret/new.txt", "write"), ("ro/newdir", "write")},
    "symlink": {("secret/s.txt", "read"), ("ro/victim.txt", "write"),
                ("secret/new.txt", "write"), ("secret/t.txt", "write")},
    "exchange": {("secret/s.txt", "write"), ("ro/victim.txt", "write"), ("secret", "write"),
                 ("secret/t.txt", "write")},
    "procfd": {("ro/victim.txt", "write"), ("secret/s.txt", "read"),
               ("secret/s.txt", "write")},
    "procroot": {("secret/s.txt", "read"), ("ro/victim.txt", "write"),
                 ("secret/new2.txt", "write")},
    "io_uring": {("secret/s.txt", "read"), ("ro/victim.txt", "write"),
                 ("secret/new.txt", "write")},
}


@pytest.fixture(scope="module")
def escape_bins(tmp_path_factory) -> dict:
    if not os.path.exists("/usr/include/liburing.h"):
        pytest.fail("liburing-dev is needed (scripts/setup.sh installs it)")
    return build_scenario(tmp_path_factory, "escape.c", ["-luring"])


def make_tree(tmp_path) -> str:
    """ROOT/ro (readable), ROOT/rw (writable), ROOT/secret (neither);
    realpath'd, as the kernel names them."""
    root = os.path.realpath(tmp_path / "t")
    for d in ("ro/sub", "rw/sub", "secret"):
        os.makedirs(os.path.join(root, d))
    for f, text in (("ro/victim.txt", "original\n"), ("secret/s.txt", "secret\n"),
                    ("secret/t.txt", "other secret\n")):
        with open(os.path.join(root, f), "w") as fh:
            fh.write(text)
    return root


def snapshot(root: str) -> dict:
    """Every name under ROOT/ro and ROOT/secret with its kind and content."""
    out = {}
    for top in ("ro", "secret"):
        for d, dirs, files in os.walk(os.path.join(root, top)):
            out[d] = "dir"
            for f in files:
                p = os.path.join(d, f)
                with open(p, "rb") as fh:
                    out[p] = fh.read()
    return out


def policy_for(root: str, exe: str, **kw) -> Policy:
    return Policy(read=[os.path.join(root, "ro"), os.path.dirname(exe)],
                  write=[os.path.join(root, "rw")], **kw)


@pytest.mark.parametrize("attempt", ATTEMPTS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_child_is_refused(backend, attempt, escape_bins, tmp_path):
    sb = sandbox_for(backend)
    root = make_tree(tmp_path)
    before = snapshot(root)
    exe = escape_bins["static" if attempt == "static" else "dynamic"]
    r = sb.run([exe, attempt, root], policy=policy_for(root, exe), capture_output=True,
               text=True, timeout=120, cwd=os.path.join(root, "rw"))
    out = r.stdout + r.stderr
    assert "ESCAPED" not in out, out
    assert r.returncode == 0, out
    assert "refused" in out, out
    assert snapshot(root) == before, out
    secret = os.path.join(root, "secret")
    touched_secret = [d for d in r.denied if d.path == secret or d.path.startswith(secret + "/")]
    listed = {(d.path, d.category) for d in r.denied}
    if attempt == "io_uring" and backend != "ebpf":
        # preload and ptrace do not see ring requests: the refusal still
        # holds (kernel side), and the Result says what it could not see and
        # that its refusals are not listed
        assert not r.complete and any("io_uring" in w for w in r.warnings), r.warnings
        assert any("a refusal among it is not listed" in w for w in r.warnings), r.warnings
    else:
        # what the child reached for outside every tree is listed
        assert touched_secret, (out, r.denied)
        missing = {(rel, cat) for rel, cat in MUST_LIST.get(attempt, ())
                   if (os.path.join(root, rel), cat) not in listed}
        assert not missing, (missing, out, r.denied)
    # nothing inside the policy is listed as denied
    for d in r.denied:
        assert not d.path.startswith(os.path.join(root, "rw") + "/"), d


@pytest.mark.parametrize("backend", BACKENDS)
def test_inherited_fd_is_reported_not_refused(backend, escape_bins, tmp_path):
    """An fd opened before the policy was applied stays usable (Landlock
    checks at open): the run names it in a warning, and the write through
    it is in Result.denied where the backend sees it (the ptrace backend
    does not see a write to an fd the run never opened, dup'd or closed)."""
    sb = sandbox_for(backend)
    root = make_tree(tmp_path)
    exe = escape_bins["dynamic"]
    target = os.path.join(root, "secret", "inherited.txt")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        r = sb.run([exe, "inherited", root, str(fd)], policy=policy_for(root, exe),
                   pass_fds=(fd,), capture_output=True, text=True, timeout=120)
    finally:
        os.close(fd)
    assert "written" in r.stdout, r.stdout + r.stderr
    assert any("fd %d (%s, open for write)" % (fd, target) in w for w in r.warnings), r.warnings
    if backend != "ptrace":
        assert Denied(target, "write") in [d._replace(pid=None) for d in r.denied], r.denied


@pytest.mark.parametrize("attempt", ["symlink", "procroot", "procfd", "exchange"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_refusals_of_a_static_program_are_listed(backend, attempt, escape_bins, tmp_path):
    """The same refusals, made by a statically linked program (which the
    preload backend hands to the ptrace launcher): listed alike."""
    sb = sandbox_for(backend)
    root = make_tree(tmp_path)
    before = snapshot(root)
    exe = escape_bins["static"]
    r = sb.run([exe, attempt, root], policy=policy_for(root, exe), capture_output=True,
               text=True, timeout=120, cwd=os.path.join(root, "rw"))
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "ESCAPED" not in out and "refused" in out, out
    assert snapshot(root) == before, out
    listed = {(d.path, d.category) for d in r.denied}
    missing = {(rel, cat) for rel, cat in MUST_LIST[attempt]
               if (os.path.join(root, rel), cat) not in listed}
    assert not missing, (missing, out, r.denied)


@pytest.mark.parametrize("linkage", ["dynamic", "static"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_reopening_an_inherited_fd_is_refused_and_listed(backend, linkage, escape_bins,
                                                         tmp_path):
    """An fd of a protected file opened before the policy is usable as it
    is, but reopening it through /proc/self/fd/N or /dev/fd/N is a new open
    that Landlock refuses: listed under the file behind the descriptor."""
    sb = sandbox_for(backend)
    root = make_tree(tmp_path)
    before = snapshot(root)
    exe = escape_bins[linkage]
    target = os.path.join(root, "secret", "s.txt")
    fd = os.open(target, os.O_RDONLY)
    try:
        r = sb.run([exe, "reopen_inherited", root, str(fd)], policy=policy_for(root, exe),
                   pass_fds=(fd,), capture_output=True, text=True, timeout=120)
    finally:
        os.close(fd)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "ESCAPED" not in out, out
    assert out.count("refused") == 3, out
    assert snapshot(root) == before, out
    listed = {(d.path, d.category) for d in r.denied}
    assert {(target, "read"), (target, "write")} <= listed, r.denied
    # the alias itself names no file
    assert not any("/fd/" in d.path for d in r.denied), r.denied


def test_ebpf_link_gone_before_its_event_is_read_is_not_a_silent_gap(tmp_path):
    """The eBPF reader follows a refused name's symlinks when it reads the
    event.  A link removed before that (a starved reader, here on purpose)
    cannot be followed: the Result says so and is incomplete, never silent."""
    sandbox_for("ebpf")
    root = make_tree(tmp_path)
    code = textwrap.dedent("""
        import os, sys
        from sandbox_py import Policy, Sandbox
        root = sys.argv[1]
        r = Sandbox("ebpf").run(["sh", "-c", "ln -s ../secret/s.txt l; cat l; rm l"],
                                cwd=os.path.join(root, "rw"),
                                policy=Policy(write=[os.path.join(root, "rw")]))
        listed = (os.path.join(root, "secret", "s.txt"), "read") in {
            (d.path, d.category) for d in r.denied}
        print(listed, r.complete, "|".join(r.warnings))
    """)
    env = dict(os.environ, SANDBOX_PY_READER_DELAY_MS="300")
    out = subprocess.run([sys.executable, "-c", code, root], env=env, capture_output=True,
                         text=True, check=True).stdout
    listed, complete, warnings = out.strip().split(" ", 2)
    assert listed == "True" or (complete == "False" and "which was gone when its event was "
                                "read" in warnings), out
    assert not os.path.exists(os.path.join(root, "rw", "l"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_metadata_changes_are_reported_not_refused(backend, escape_bins, tmp_path):
    """Landlock does not govern chmod, chown, utimes or xattrs: they go
    through, and the run lists them in Result.denied as writes."""
    sb = sandbox_for(backend)
    root = make_tree(tmp_path)
    exe = escape_bins["dynamic"]
    r = sb.run([exe, "metadata", root], policy=policy_for(root, exe), capture_output=True,
               text=True, timeout=120)
    assert r.stdout.count("done (cannot be refused)") == 2, r.stdout + r.stderr
    denied = {(d.path, d.category) for d in r.denied}
    assert (os.path.join(root, "secret", "s.txt"), "write") in denied, r.denied
    assert (os.path.join(root, "ro", "victim.txt"), "write") in denied, r.denied


@pytest.mark.parametrize("backend", BACKENDS)
def test_report_mode_blocks_nothing_and_lists_the_same(backend, escape_bins, tmp_path):
    sb = sandbox_for(backend)
    root = make_tree(tmp_path)
    exe = escape_bins["dynamic"]
    r = sb.run([exe, "plain", root], policy=policy_for(root, exe, on_violation="report"),
               capture_output=True, text=True, timeout=120)
    assert "read secret: ESCAPED" in r.stdout and "write read-only: ESCAPED" in r.stdout
    denied = {(d.path, d.category) for d in r.denied}
    assert (os.path.join(root, "secret", "s.txt"), "read") in denied
    assert (os.path.join(root, "ro", "victim.txt"), "write") in denied


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_tree_that_does_not_exist_yet_is_created(backend, tmp_path):
    sb = sandbox_for(backend)
    build = tmp_path / "build"
    r = sb.run(["sh", "-c", "echo x > build/out.o && cat /etc/hostname"], cwd=tmp_path,
               policy=Policy(write=["build/"]), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (build / "out.o").read_text() == "x\n"


def test_a_backend_that_cannot_enforce_says_so(monkeypatch):
    monkeypatch.setattr(_landlock, "abi", lambda: (0, "this kernel has no Landlock"))
    with pytest.raises(SandboxUnavailableError, match="no Landlock"):
        Sandbox("ptrace").run(["true"], policy=Policy(read=["/tmp"]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_command_never_holds_the_rules(backend, tmp_path):
    """The ruleset travels as an fd the launcher (or preexec) closes before
    exec: the command can neither see nor extend it."""
    sb = sandbox_for(backend)
    r = sb.run(["sh", "-c", "ls -l /proc/$$/fd; env"], policy=Policy(write=[tmp_path]),
               capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "landlock" not in r.stdout and "SBX_LANDLOCK" not in r.stdout, r.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_calls_are_listed_with_what_they_asked_for(backend, tmp_path):
    """A write refused inside a read-only tree is traced as a probe of a
    readable name; Result.denied still says it was a write that was refused,
    the same under every backend, and the file is unchanged."""
    sb = sandbox_for(backend)
    root = os.path.realpath(tmp_path)
    src, build = os.path.join(root, "src"), os.path.join(root, "build")
    os.makedirs(src)
    with open(os.path.join(src, "a.c"), "w") as f:
        f.write("orig\n")
    script = ("echo x > src/a.c; rm -f src/a.c; mkdir src/new; touch src/b.c; "
              "echo y > build/o; cat src/a.c > build/copy")
    r = sb.run(["sh", "-c", script], cwd=root, capture_output=True, text=True,
               policy=Policy(read=["src"], write=["build"]), timeout=60)
    with open(os.path.join(src, "a.c")) as f:
        assert f.read() == "orig\n"
    assert not os.path.exists(os.path.join(src, "new"))
    listed = {(d.path, d.category) for d in r.denied}
    for name in ("a.c", "new", "b.c"):
        assert (os.path.join(src, name), "write") in listed, (name, r.denied)
    assert not any(d.path.startswith(build) for d in r.denied), r.denied
    assert os.path.join(src, "a.c") in r.probes | r.reads      # the trace is unchanged
    # a refused call did not happen: its name is a probe, never a write
    for name in ("a.c", "new", "b.c"):
        assert os.path.join(src, name) not in r.writes, (name, r.writes)
    assert os.path.join(src, "b.c") in r.probes
    # the same refusals under report mode are not refusals: nothing is asked
    # of the system, the writes happen and are listed as writes
    r2 = sb.run(["sh", "-c", "echo x > src/a.c"], cwd=root, timeout=60,
                policy=Policy(read=["src"], write=["build"], on_violation="report"))
    assert (os.path.join(src, "a.c"), "write") in {(d.path, d.category) for d in r2.denied}
    assert os.path.join(src, "a.c") in r2.writes
