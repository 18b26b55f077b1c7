"""macOS enforcement, checked on any system: the seatbelt profile generated
from a Policy (sandbox_py/_backends/seatbelt.py), read back with a reader of
our own and evaluated against Policy.allows on a table of accesses; the
private files it is written to; and the launcher that applies it
(csrc/macos/seatbelt_apply.c), cross-built for both architectures, calling
libSystem's sandbox API.  That the kernel then refuses what the profile
denies is only shown on a Mac: .github/workflows/macos.yml runs the
enforcement scenarios of tests/test_macos.py there.
"""
from __future__ import annotations

import os
import re
import stat
import struct
import subprocess
import sys

import pytest

from sandbox_py import Policy
from sandbox_py._backends import seatbelt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- a reader of the profile, independent of the generator ------------------
def parse_sbpl(text: str) -> list:
    """The profile as nested lists of symbols and ("str", value) strings;
    comments dropped.  Strings follow the SBPL/Scheme escapes the generator
    relies on (backslash before '\\' and '"')."""
    pos, out, stack = 0, [], []
    cur = out
    while pos < len(text):
        c = text[pos]
        if c == ";":
            pos = text.index("\n", pos) if "\n" in text[pos:] else len(text)
        elif c.isspace():
            pos += 1
        elif c == "(":
            stack.append(cur)
            cur.append([])
            cur = cur[-1]
            pos += 1
        elif c == ")":
            assert stack, "unbalanced ) at %d" % pos
            cur = stack.pop()
            pos += 1
        elif c == '"':
            pos += 1
            s = []
            while text[pos] != '"':
                if text[pos] == "\\":
                    pos += 1
                    assert text[pos] in '\\"', "unexpected escape \\%s" % text[pos]
                s.append(text[pos])
                pos += 1
            pos += 1
            cur.append(("str", "".join(s)))
        else:
            m = re.compile(r'[^\s()";]+').match(text, pos)
            cur.append(m.group(0))
            pos = m.end()
    assert not stack, "unbalanced ("
    return out


# The operation each access needs, as seatbelt names it.
OPERATION = {"read": "file-read-data", "enumeration": "file-read-data",
             "probe": "file-read-metadata", "write": "file-write-data",
             "exec": "process-exec"}


def evaluate(forms: list, operation: str, path: str) -> bool:
    """Whether the profile allows `operation` on `path`: the last rule
    whose operation and filters match decides, (deny default) otherwise.
    Only the filters the generator writes are understood."""
    decision = None
    for form in forms:
        if not isinstance(form, list) or form[0] not in ("allow", "deny"):
            continue
        if form[0] == "deny" and form[1:] == ["default"]:
            decision = False if decision is None else decision
            continue
        ops = [x for x in form[1:] if isinstance(x, str)]
        filters = [x for x in form[1:] if isinstance(x, list)]
        if not any(op == operation or (op.endswith("*") and operation.startswith(op[:-1]))
                   for op in ops):
            continue
        if not filters:
            decision = form[0] == "allow"
            continue
        for f in filters:
            kind, (_, value) = f[0], f[1]
            hit = (path == value or path.startswith(value.rstrip("/") + "/")
                   if kind == "subpath" else path == value if kind == "literal" else None)
            assert hit is not None, "unknown filter %r" % (f,)
            if hit:
                decision = form[0] == "allow"
    return bool(decision)


def strings(forms) -> set:
    out = set()
    for f in forms:
        if isinstance(f, list):
            out |= strings(f)
        elif isinstance(f, tuple):
            out.add(f[1])
    return out


# ---- the profile says what Policy.allows says ------------------------------
ODD_NAMES = ['with "quotes"', "back\\slash", "ünïcödé-日本", "sp ace", "semi;colon",
             "paren(s)"]


@pytest.fixture
def trees(tmp_path):
    """src/ (read), out/ (write), tools/ (execute), a symlinked tree
    (link -> real, as /tmp -> /private/tmp on a Mac), awkward names."""
    for d in ("src", "out", "tools", "real", "secret", *ODD_NAMES):
        (tmp_path / d).mkdir()
    (tmp_path / "link").symlink_to("real")
    return tmp_path


def test_profile_states_the_policy(trees):
    t = os.path.realpath(trees)
    policy = Policy(read=["src", "link", *ODD_NAMES], write=["out"], execute=["tools"],
                    system=False).resolved(trees)
    text = seatbelt.profile(policy, log_path="/var/log-of-run", dylib="/opt/x/i.dylib",
                            profile_dir="/private/var/folders/T/sandbox_py-seatbelt-501")
    forms = parse_sbpl(text)
    assert forms[0] == ["version", "1"] and ["deny", "default"] in forms
    cases = [
        ("read", t + "/src/a.c"), ("write", t + "/src/a.c"), ("read", t + "/srcx"),
        ("write", t + "/out/a.o"), ("read", t + "/out/a.o"), ("write", t + "/outer"),
        ("exec", t + "/tools/cc"), ("exec", t + "/src/tool"), ("read", t + "/tools/cc"),
        ("probe", t), ("probe", "/"), ("enumeration", t), ("read", t + "/secret/key"),
        ("probe", t + "/secret"), ("read", t + "/real/f"),        # the symlink's target
        ("read", str(trees) + "/link/f"),                           # and as written
        ("enumeration", t + "/link"),
    ] + [("read", t + "/" + n + "/f") for n in ODD_NAMES] + [
        ("write", t + "/" + n + "/f") for n in ODD_NAMES]
    for category, path in cases:
        assert evaluate(forms, OPERATION[category], path) == policy.allows(category, path), \
            (category, path)
    # each tree's literal survived the escaping unchanged
    assert {t + "/" + n for n in ODD_NAMES} <= strings(forms)


def test_tracer_files_and_the_profile_directory(trees):
    policy = Policy(read=["src"], write=["/private/var/folders"], system=False).resolved(trees)
    pdir = "/private/var/folders/T/sandbox_py-seatbelt-501"
    forms = parse_sbpl(seatbelt.profile(policy, log_path="/private/var/folders/T/log",
                                        dylib="/opt/sbx/_sbx_interpose.dylib",
                                        profile_dir=pdir))
    # the dylib writes the run's log from every process; dyld maps the dylib
    assert evaluate(forms, "file-write-data", "/private/var/folders/T/log")
    assert evaluate(forms, "file-read-data", "/opt/sbx/_sbx_interpose.dylib")
    assert evaluate(forms, "file-map-executable", "/opt/sbx/_sbx_interpose.dylib")
    assert not evaluate(forms, "file-write-data", "/opt/sbx/_sbx_interpose.dylib")
    # a write tree holding the profile directory does not open it up, nor
    # may the directory or its parents be renamed or removed
    assert evaluate(forms, "file-write-data", "/private/var/folders/T/other")
    assert not evaluate(forms, "file-write-data", pdir + "/run-1.sb")
    assert not evaluate(forms, "file-write-create", pdir + "/evil.sb")
    for p in (pdir, "/private/var/folders/T", "/private/var/folders"):
        assert not evaluate(forms, "file-write-unlink", p), p
    # what every process needs to start is there
    assert ["allow", "process-fork"] in forms and ["allow", "sysctl-read"] in forms
    looked_up = strings([f for f in forms if isinstance(f, list) and "mach-lookup" in f])
    assert "com.apple.system.notification_center" in looked_up


def test_system_baseline_of_macos():
    p = Policy(read=["/Users/me/src"]).resolved("/", platform="darwin")
    forms = parse_sbpl(seatbelt.profile(p))
    for path in ("/usr/lib/libSystem.B.dylib", "/System/Library/dyld/dyld_shared_cache_arm64e",
                 "/private/etc/hosts"):
        assert evaluate(forms, "file-read-data", path), path
    assert evaluate(forms, "process-exec", "/usr/bin/cc")
    assert evaluate(forms, "file-write-data", "/dev/null")
    assert evaluate(forms, "file-write-data", "/dev/dtracehelper")     # dyld opens it
    assert not evaluate(forms, "file-write-data", "/usr/lib/x")
    assert not evaluate(forms, "file-read-data", "/Users/me/secret")
    assert evaluate(forms, "file-read-metadata", "/Users/me")          # on the way


def test_what_cannot_be_said_is_refused():
    with pytest.raises(ValueError, match="control character"):
        seatbelt.profile(Policy(read=["/tmp/a\nb"], system=False).resolved("/"))
    with pytest.raises(ValueError, match="absolute"):
        seatbelt.profile(Policy(read=["src"], system=False))      # not resolved


def test_profiles_are_private_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    d = seatbelt.profile_dir()
    assert d == os.path.realpath(d) and os.path.dirname(d) == os.path.realpath(tmp_path)
    assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700
    path = seatbelt.write_profile("(version 1)\n", d)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and os.path.dirname(path) == d
    assert open(path).read() == "(version 1)\n"
    os.chmod(d, 0o777)                  # someone else could now swap our profiles
    with pytest.raises(PermissionError, match="not a private directory"):
        seatbelt.profile_dir()
    os.chmod(d, 0o700)
    os.rename(d, d + ".real")
    os.symlink(d + ".real", d)          # nor through a symlink
    with pytest.raises(PermissionError):
        seatbelt.profile_dir()


def test_interpose_session_writes_the_profile_for_its_launcher(tmp_path, monkeypatch):
    """What Sandbox("interpose").run(policy=...) does before Popen (the
    session runs here too: its reader is the Linux preload reader): the
    session says it enforces, writes the run's profile privately, names it
    to the launcher, lets the log and the dylib through, and removes the
    file when the run ends.  "report" writes no profile."""
    from sandbox_py._backends import interpose
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    session = interpose.session(None)
    assert session.ENFORCES
    session.policy = Policy(read=["/usr/share"], write=[str(tmp_path / "out")]).resolved(
        "/", platform="darwin")
    env = session.popen_kwargs({"env": {"PATH": "/usr/bin"}})["env"]
    path = env["SBX_SEATBELT_PROFILE"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    forms = parse_sbpl(open(path, encoding="utf-8").read())
    log = os.path.realpath(env["SBX_PRELOAD_LOG"])
    assert evaluate(forms, "file-write-data", log)
    assert evaluate(forms, "file-map-executable", interpose.DYLIB)
    assert evaluate(forms, "file-write-data", str(tmp_path / "out" / "x"))
    assert not evaluate(forms, "file-write-data", path)
    session.finish()
    assert not os.path.exists(path)

    session = interpose.session(None)
    session.policy = Policy(read=["/usr"], on_violation="report").resolved("/")
    env = session.popen_kwargs({"env": {}})["env"]
    assert "SBX_SEATBELT_PROFILE" not in env
    session.finish()


# ---- the launcher, cross-built -----------------------------------------------
def test_launcher_imports_the_sandbox_api(tmp_path):
    """Both slices of the launcher bind sandbox_init_with_parameters (and
    sandbox_free_error) from libSystem, and call it before execvp."""
    pytest.importorskip("ziglang")
    sys.path.insert(0, os.path.join(ROOT, "shims", "macos"))
    import machobuild
    from test_macos_build import objdump, tool
    built = machobuild.build(str(tmp_path), archs=("arm64", "x86_64"))
    for arch in ("arm64", "x86_64"):
        exe = built["_sbx_interpose_exec.%s" % arch]
        binds = objdump("--bind", "--lazy-bind", exe)
        for sym in ("_sandbox_init_with_parameters", "_sandbox_free_error", "_execvp"):
            assert re.search(r"libSystem\s+%s\b" % sym, binds), (arch, sym, binds)
        # in main, the sandbox is applied (through our function) before the exec
        dis = subprocess.run([tool("llvm-objdump"), "--macho", "-d", exe], capture_output=True,
                             text=True, check=True).stdout
        main = dis[dis.index("_main:"):]
        calls = re.findall(r"_sbx_seatbelt_apply_from_env|_execvp", main)
        assert calls[:2] == ["_sbx_seatbelt_apply_from_env", "_execvp"], (arch, calls[:5])


# ---- the launcher's own code, emulated ---------------------------------------
class LauncherLibc:
    """libSystem as the launcher imports it, served on this machine, with a
    record of the calls that matter: the sandbox API and the exec."""

    def __init__(self, env: dict, init_result: int = 0):
        self.env = dict(env)
        self.init_result = init_result
        self.calls = []               # ("sandbox_init", text, flags) / ("execvp", file, argv)
        self.stderr = []

    def table(self, me) -> dict:
        def s(e, i):
            return os.fsdecode(e.read_cstr(e.arg(i)))

        def getenv(e):
            v = self.env.get(s(e, 0))
            return e.cstr(v) if v is not None else 0

        def unsetenv(e):
            self.env.pop(s(e, 0), None)
            return 0

        def snprintf(e):
            assert e.read_cstr(e.arg(2)) == b"%s"
            data = e.read_cstr(e.vararg(0, 3))[:e.arg(1) - 1] + b"\0"
            e.uc.mem_write(e.arg(0), data)
            return len(data) - 1

        def open_(e):
            flags = me.linux_flags(e.arg(1)) | (os.O_NOFOLLOW if e.arg(1) & 0x100 else 0)
            try:
                return os.open(s(e, 0), flags)
            except OSError as x:
                return e.set_errno(x.errno)

        def fstat(e):
            e.uc.mem_write(e.arg(1), me.darwin_stat(os.fstat(e.arg(0))))
            return 0

        def read(e):
            data = os.read(e.arg(0), e.arg(2))
            e.uc.mem_write(e.arg(1), data)
            return len(data)

        def sandbox_init(e):
            self.calls.append(("sandbox_init", s(e, 0), e.arg(1)))
            if self.init_result:
                e.uc.mem_write(e.arg(3), struct.pack("<Q", e.cstr("syntax error")))
            return self.init_result

        def execvp(e):
            argv, p = [], e.arg(1)
            while True:
                q = struct.unpack("<Q", e.uc.mem_read(p + 8 * len(argv), 8))[0]
                if not q:
                    break
                argv.append(os.fsdecode(e.read_cstr(q)))
            self.calls.append(("execvp", s(e, 0), argv))
            e.uc.emu_stop()                 # the image is replaced
            return 0

        def message(e):
            self.stderr.append(e.read_cstr(e.arg(1)).decode(errors="replace"))
            return 0

        fns = {"___error": lambda e: e.errno_addr, "_getenv": getenv, "_unsetenv": unsetenv,
               "_snprintf": snprintf, "_open": open_, "_fstat": fstat, "_fstat$INODE64": fstat,
               "_getuid": lambda e: os.getuid(), "_malloc": lambda e: e.alloc(e.arg(0) + 16),
               "_free": lambda e: 0, "_read": read, "_close": lambda e: os.close(e.arg(0)) or 0,
               "_sandbox_init_with_parameters": sandbox_init,
               "_sandbox_free_error": lambda e: self.calls.append(("free_error",)) or 0,
               "_execvp": execvp, "_fprintf": message, "_fwrite": lambda e: 0,
               "_strerror": lambda e: e.cstr("error")}
        return fns


@pytest.fixture(scope="module")
def launchers(tmp_path_factory):
    pytest.importorskip("ziglang")
    pytest.importorskip("unicorn")
    sys.path.insert(0, os.path.join(ROOT, "shims", "macos"))
    import machobuild
    return machobuild.build(str(tmp_path_factory.mktemp("launcher")), archs=("arm64", "x86_64"))


def run_launcher(launchers, arch, env, init_result=0):
    import macho_emulator as me
    from test_macos_build import tool
    image = me.MachO(launchers["_sbx_interpose_exec.%s" % arch], tool("llvm-objdump"),
                     tool("llvm-nm"))
    libc = LauncherLibc(env, init_result)
    emu = me.Emulator(image, libc.table(me))
    argv = ["tool", "a b"]
    argvp = emu._argv(argv)
    rc = emu.call("_main", len(argv), argvp)
    return rc, libc


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_launcher_applies_the_profile_then_execs(launchers, arch, tmp_path):
    """The launcher's own code (emulated, both architectures): it reads the
    profile file, hands its text unchanged to sandbox_init_with_parameters
    (flags 0: SBPL text), drops the variable, and only then execs."""
    text = seatbelt.profile(Policy(read=["/usr"], system=False).resolved("/"))
    os.chmod(tmp_path, 0o700)
    path = seatbelt.write_profile(text, str(tmp_path))
    rc, libc = run_launcher(launchers, arch, {"SBX_SEATBELT_PROFILE": path})
    assert libc.calls == [("sandbox_init", text, 0), ("execvp", "tool", ["tool", "a b"])]
    assert "SBX_SEATBELT_PROFILE" not in libc.env
    # without a profile: straight to the exec
    rc, libc = run_launcher(launchers, arch, {})
    assert libc.calls == [("execvp", "tool", ["tool", "a b"])]


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_launcher_never_runs_the_command_unconfined(launchers, arch, tmp_path):
    """A profile others could write, a symlink to one, a missing file, or
    a profile the kernel refuses: the launcher says why and exits 126
    without exec'ing."""
    text = "(version 1)\n(deny default)\n"
    good = seatbelt.write_profile(text, str(tmp_path))
    shared = str(tmp_path / "shared.sb")
    with open(shared, "w") as f:
        f.write(text)
    os.chmod(shared, 0o644)
    link = str(tmp_path / "link.sb")
    os.symlink(good, link)
    for path in (shared, link, str(tmp_path / "absent.sb")):
        rc, libc = run_launcher(launchers, arch, {"SBX_SEATBELT_PROFILE": path})
        assert rc == 126 and libc.calls == [], (path, libc.calls)
        assert any("cannot apply the seatbelt profile" in m for m in libc.stderr), libc.stderr
    rc, libc = run_launcher(launchers, arch, {"SBX_SEATBELT_PROFILE": good}, init_result=-1)
    assert rc == 126
    assert libc.calls == [("sandbox_init", text, 0), ("free_error",)]
    assert any("was refused" in m for m in libc.stderr)
