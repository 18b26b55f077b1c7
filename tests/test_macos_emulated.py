"""The Darwin build's own code, run on Linux: the x86_64 interpose dylib's
constructor and hooks execute under unicorn (tests/macho_emulator.py) over
a fake libc backed by this file system, and write into a real log that the
Linux reader (sandbox_py._unpriv.PreloadRun, the reader the macOS backend
uses too) turns into a Result.  What this proves: hook bodies, the access
model, path resolution, the record writer and the hello record, as
compiled for macOS, produce the sets the reader is meant to report.  What
it cannot: dyld applying the interpose table (tests/test_macos.py, on a
Mac)."""
from __future__ import annotations

import ctypes
import os
import shutil
import struct
import sys

import pytest

from test_macos_build import built, machobuild, tool  # noqa: F401 - fixture

pytest.importorskip("unicorn")
pytest.importorskip("ziglang")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the reader under test is the Linux build's")

import macho_emulator as me  # noqa: E402


SPAWNED_PID = 4194000      # the child a fake posix_spawn reports
# Darwin's FILE (struct __sFILE, 64-bit): the fields the dylib reads, at the
# offsets test_file_layout_is_darwins checks against the real headers
FILE_P, FILE_FLAGS, FILE_FILE, FILE_BF_BASE, FILE_SIZE = 0, 16, 18, 24, 152
S_RD, S_WR = 0x4, 0x8      # __SRD, __SWR
SETEXEC = 0x40             # POSIX_SPAWN_SETEXEC (sys/spawn.h)


def fake_libc(work: str, env: dict, exe: str, execs: list = None) -> dict:
    """libSystem as the dylib imports it, each call done on this machine.
    execve of an existing file "succeeds": the emulation stops there (the
    image is replaced) and (path, argv, envp) goes to `execs`."""

    def path(e, i):
        return os.fsdecode(e.read_cstr(e.arg(i)))

    def at(e, dirfd, p):
        d = ctypes.c_int32(dirfd).value
        if p.startswith("/"):
            return p
        base = work if d == me.D_AT_FDCWD else os.readlink("/proc/self/fd/%d" % d)
        return os.path.join(base, p)

    def sys_(fn):
        def call(e):
            try:
                r = fn(e)
                return 0 if r is None else r
            except OSError as x:       # errno numbers used here agree on both systems
                return e.set_errno(x.errno)
        return call

    def put(e, addr, data):
        e.uc.mem_write(addr, data)
        return len(data)

    def fcntl(e):
        fd, cmd = ctypes.c_int32(e.arg(0)).value, e.arg(1)
        if cmd == me.D_F_GETFL:
            return os.O_ACCMODE & __import__("fcntl").fcntl(fd, __import__("fcntl").F_GETFL)
        if cmd == me.D_F_GETPATH:
            put(e, e.vararg(0, 2), os.fsencode(os.readlink("/proc/self/fd/%d" % fd)) + b"\0")
            return 0
        raise OSError(22, "fcntl %d" % cmd)

    def getenv(e):
        v = env.get(path(e, 0))
        return e.cstr(v) if v is not None else 0

    def stat_into(e, st, i):
        put(e, e.arg(i), me.darwin_stat(st))

    def mem(e, a, n):
        return bytes(e.uc.mem_read(a, n))

    def strcmp(e, n=None):
        a, b = e.read_cstr(e.arg(0)), e.read_cstr(e.arg(1))
        if n is not None:
            a, b = a[:n], b[:n]
        return (a > b) - (a < b)

    def strchr(e):
        s, c = e.read_cstr(e.arg(0)), e.arg(1) & 0xFF
        i = (s + b"\0").find(bytes([c]))
        return e.arg(0) + i if i >= 0 else 0

    def strcspn(e):
        s, reject = e.read_cstr(e.arg(0)), e.read_cstr(e.arg(1))
        return next((i for i, c in enumerate(s) if c in reject), len(s))

    def strstr(e):
        i = e.read_cstr(e.arg(0)).find(e.read_cstr(e.arg(1)))
        return e.arg(0) + i if i >= 0 else 0

    def copy(e):
        put(e, e.arg(0), mem(e, e.arg(1), e.arg(2)))
        return e.arg(0)

    def vector(e, p):
        out = []
        while p:
            q = struct.unpack("<Q", e.uc.mem_read(p + 8 * len(out), 8))[0]
            if not q:
                return out
            out.append(os.fsdecode(e.read_cstr(q)))
        return out

    def execve(e):
        target = at(e, me.D_AT_FDCWD, path(e, 0))
        if not os.path.isfile(target):
            return e.set_errno(2)
        if execs is not None:
            execs.append((target, vector(e, e.arg(1)), vector(e, e.arg(2))))
        e.uc.emu_stop()                    # the process image is gone
        return 0

    dirs = {}

    def opendir(e):
        fd = os.open(at(e, me.D_AT_FDCWD, path(e, 0)), os.O_RDONLY | os.O_DIRECTORY)
        d = e.alloc(16)
        dirs[d] = fd
        return d

    def closedir(e):
        os.close(dirs.pop(e.arg(0)))
        return 0

    def posix_spawn(e):
        target = at(e, me.D_AT_FDCWD, path(e, 1))
        if not os.path.isfile(target):
            return 2                       # an error number, not -1
        if execs is not None:
            execs.append((target, vector(e, e.arg(4)), vector(e, e.arg(5))))
        if e.arg(3) and struct.unpack("<h", e.uc.mem_read(e.arg(3), 2))[0] & SETEXEC:
            e.uc.emu_stop()                # POSIX_SPAWN_SETEXEC: the image is gone
            return 0
        if e.arg(0):
            e.uc.mem_write(e.arg(0), struct.pack("<i", SPAWNED_PID))
        return 0

    def getflags(e):                       # the fake attr object holds the flags
        e.uc.mem_write(e.arg(1), bytes(e.uc.mem_read(e.arg(0), 2)))
        return 0

    streams = {}

    def fopen(e):
        mode = e.read_cstr(e.arg(1)).decode()
        flags = {"r": os.O_RDONLY, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND}[mode[0]]
        if "+" in mode:
            flags = (flags & ~os.O_ACCMODE) | os.O_RDWR
        fd = os.open(at(e, me.D_AT_FDCWD, path(e, 0)), flags, 0o666)
        f = e.alloc(FILE_SIZE)
        buf = e.alloc(4096)
        e.uc.mem_write(f + FILE_P, struct.pack("<Q", buf))
        e.uc.mem_write(f + FILE_FLAGS, struct.pack("<hh", S_WR if mode[0] in "wa" else S_RD, fd))
        e.uc.mem_write(f + FILE_BF_BASE, struct.pack("<Q", buf))
        streams[f] = fd
        return f

    def file_field(e, f, off, fmt):
        return struct.unpack(fmt, e.uc.mem_read(f + off, struct.calcsize(fmt)))[0]

    def fputs(e):                          # buffered, as stdio does: no write(2) yet
        data = e.read_cstr(e.arg(0))
        f = e.arg(1)
        p = file_field(e, f, FILE_P, "<Q")
        e.uc.mem_write(p, data)
        e.uc.mem_write(f + FILE_P, struct.pack("<Q", p + len(data)))
        return len(data)

    def fgets(e):                          # stdio's own read, not through a hook
        data = os.read(streams[e.arg(2)], e.arg(1) - 1)
        if not data:
            return 0
        e.uc.mem_write(e.arg(0), data + b"\0")
        return e.arg(0)

    def fclose(e):
        f = e.arg(0)
        base, p = file_field(e, f, FILE_BF_BASE, "<Q"), file_field(e, f, FILE_P, "<Q")
        fd = streams.pop(f)
        if p > base:
            os.write(fd, mem(e, base, p - base))
        os.close(fd)
        return 0

    environ = [None]

    def ns_get_environ(e):
        if environ[0] is None:
            strings = ["%s=%s" % kv for kv in env.items()]
            vec = e.alloc(8 * (len(strings) + 1))
            for i, t in enumerate(strings):
                e.uc.mem_write(vec + 8 * i, struct.pack("<Q", e.cstr(t)))
            e.uc.mem_write(vec + 8 * len(strings), b"\0" * 8)
            environ[0] = e.alloc(8)
            e.uc.mem_write(environ[0], struct.pack("<Q", vec))
        return environ[0]

    return {
        "___error": lambda e: e.errno_addr,
        "_execve": execve,
        "_fopen": sys_(fopen),
        "_fputs": fputs,
        "_fgets": fgets,
        "_fclose": fclose,
        "_fileno": lambda e: file_field(e, e.arg(0), FILE_FILE, "<h"),
        "_fflush": lambda e: 0,            # fclose and exit write the buffers here
        "_posix_spawn": posix_spawn,
        "_posix_spawnattr_getflags": getflags,
        "_opendir$INODE64": sys_(opendir), "_opendir": sys_(opendir),
        "_readdir$INODE64": lambda e: 0, "_readdir": lambda e: 0,    # the end at once
        "_closedir": sys_(closedir),
        "_dirfd": lambda e: dirs[e.arg(0)],
        "__NSGetEnviron": ns_get_environ,
        "_getenv": getenv,
        "_getpid": lambda e: os.getpid(),
        "_getppid": lambda e: os.getppid(),
        "_pthread_atfork": lambda e: 0,
        "___cxa_atexit": lambda e: e.atexit.append((e.arg(0), e.arg(1))) or 0,
        "__NSGetExecutablePath": lambda e: put(e, e.arg(0), os.fsencode(exe) + b"\0") and 0,
        "_proc_pidpath": lambda e: put(e, e.arg(1), os.fsencode(exe) + b"\0") - 1,
        "__dyld_image_count": lambda e: 1,
        "__dyld_get_image_name": lambda e: 0,
        "_strlen": lambda e: len(e.read_cstr(e.arg(0))),
        "_strnlen": lambda e: min(len(e.read_cstr(e.arg(0))), e.arg(1)),
        "_strcmp": strcmp,
        "_strncmp": lambda e: strcmp(e, e.arg(2)),
        "_strchr": strchr,
        "_strstr": strstr,
        "_strcspn": strcspn,
        "_memcmp": lambda e: (lambda a, b: (a > b) - (a < b))(mem(e, e.arg(0), e.arg(2)),
                                                             mem(e, e.arg(1), e.arg(2))),
        "_memcpy": copy,
        "___memcpy_chk": copy,
        "_open": sys_(lambda e: os.open(at(e, me.D_AT_FDCWD, path(e, 0)),
                                        me.linux_flags(e.arg(1)),
                                        e.vararg(0, 2) & 0o7777)),
        "_close": sys_(lambda e: os.close(e.arg(0))),
        "_read": sys_(lambda e: put(e, e.arg(1), os.read(e.arg(0), e.arg(2)))),
        "_write": sys_(lambda e: os.write(e.arg(0), mem(e, e.arg(1), e.arg(2)))),
        "_pread": sys_(lambda e: put(e, e.arg(1), os.pread(e.arg(0), e.arg(2), e.arg(3)))),
        "_lseek": sys_(lambda e: os.lseek(e.arg(0), ctypes.c_int64(e.arg(1)).value, e.arg(2))),
        "_fcntl": sys_(fcntl),
        "_fstat$INODE64": sys_(lambda e: stat_into(e, os.fstat(e.arg(0)), 1)),
        "_stat$INODE64": sys_(lambda e: stat_into(e, os.stat(at(e, -2, path(e, 0))), 1)),
        "_faccessat": sys_(lambda e: None if os.path.exists(at(e, e.arg(0), path(e, 1)))
                           else e.set_errno(2)),
        # arm64 binds the plain names (64-bit inodes are the only kind there)
        "_fstat": sys_(lambda e: stat_into(e, os.fstat(e.arg(0)), 1)),
        "_stat": sys_(lambda e: stat_into(e, os.stat(at(e, -2, path(e, 0))), 1)),
        "_mmap": lambda e: e.map_host_file(ctypes.c_int32(e.arg(4)).value, e.arg(1)),
        "_munmap": lambda e: 0,
        "_access": sys_(lambda e: None if os.path.exists(at(e, -2, path(e, 0)))
                        else e.set_errno(2)),
        "_copyfile": sys_(lambda e: shutil.copyfile(at(e, -2, path(e, 0)),
                                                    at(e, -2, path(e, 1))) and 0),
        "_rename": sys_(lambda e: os.rename(at(e, -2, path(e, 0)), at(e, -2, path(e, 1)))),
        "_mkdir": sys_(lambda e: os.mkdir(at(e, -2, path(e, 0)), e.arg(1) & 0o7777)),
        "_unlink": sys_(lambda e: os.unlink(at(e, -2, path(e, 0)))),
        "_getattrlist": sys_(lambda e: os.stat(at(e, -2, path(e, 0))) and 0),
        "_clonefile": sys_(lambda e: shutil.copyfile(at(e, -2, path(e, 0)),
                                                     at(e, -2, path(e, 1))) and 0),
    }


@pytest.fixture(params=machobuild.ARCHS)
def arch(request):
    return request.param


@pytest.fixture
def emulated(built, tmp_path, arch):  # noqa: F811 - the fixture from test_macos_build
    from sandbox_py import _unpriv
    work = os.path.realpath(str(tmp_path))
    with open(os.path.join(work, "in.txt"), "w") as f:
        f.write("data\n")
    exe = os.path.join(work, "prog")
    open(exe, "w").close()
    run = _unpriv.PreloadRun()
    env = {"SBX_PRELOAD_LOG": run.log_path, "SBX_PRELOAD_SHIM": "/opt/sbx/_sbx_interpose.dylib"}
    image = me.MachO(built[machobuild.DYLIB + "." + arch], tool("llvm-objdump"), tool("llvm-nm"))
    emu = me.Emulator(image, fake_libc(work, env, exe))
    yield emu, run, work, exe
    try:
        run.finish()
    except ValueError:
        pass


def test_darwin_hooks_and_writer_feed_the_reader(emulated):
    emu, run, work, exe = emulated
    w = lambda name: os.path.join(work, name)  # noqa: E731
    emu.run_constructors([exe, "--flag"])                     # the hello record
    buf = emu.alloc(256)
    fd = emu.call("_sbx_hook_open", emu.cstr("in.txt"), 0)
    assert fd >= 0
    assert emu.call("_sbx_hook_read", fd, buf, 64, wide=True) == 5
    assert emu.call("_sbx_hook_close", fd) == 0
    assert emu.call("_sbx_hook_stat", emu.cstr("absent.txt"), emu.alloc(144)) == -1
    fd = emu.call("_sbx_hook_open", emu.cstr("out.txt"), 0x1 | me.D_O_CREAT | me.D_O_TRUNC,
                  0o644, nfixed=2)
    assert emu.call("_sbx_hook_write", fd, emu.cstr("x"), 1, wide=True) == 1
    emu.call("_sbx_hook_close", fd)
    fd = emu.call("_sbx_hook_open", emu.cstr("in.txt"), 0x2)  # O_RDWR, only read
    emu.call("_sbx_hook_read", fd, buf, 8)
    emu.call("_sbx_hook_close", fd)
    assert emu.call("_sbx_hook_getattrlist", emu.cstr("absent2.txt"), 0, 0, 0, 0) == -1
    assert emu.call("_sbx_hook_clonefile", emu.cstr("in.txt"), emu.cstr("clone.txt"), 0) == 0
    assert emu.call("_sbx_hook_rename", emu.cstr("out.txt"), emu.cstr("moved.txt")) == 0
    assert emu.call("_sbx_hook_mkdir", emu.cstr("newdir"), 0o755) == 0
    assert struct.unpack("<i", emu.uc.mem_read(emu.errno_addr, 4))[0] in (0, 2)
    res = run.finish()
    reads, writes, probes = set(res["reads"]), set(res["writes"]), set(res["probes"])
    assert w("in.txt") in reads and w("in.txt") not in writes
    assert exe in reads                                           # from the hello record
    assert [(e[2], list(e[3])) for e in res["execs"]] == [(exe, [exe, "--flag"])]
    assert "/usr/lib/dyld" in reads                               # the hello's interpreter
    assert {w("out.txt"), w("moved.txt"), w("clone.txt"), w("newdir")} <= writes
    assert w("out.txt") not in reads
    assert {w("absent.txt"), w("absent2.txt")} <= probes
    assert not res["warnings"], res["warnings"]


def test_relative_names_resolve_against_the_cwd(emulated):
    """The Darwin AT_FDCWD (-2, not Linux's -100) reaches the resolver:
    a by-name probe of a relative path is reported absolute."""
    emu, run, work, exe = emulated
    emu.call("_sbx_hook_stat", emu.cstr("sub/../absent3.txt"), emu.alloc(144))
    res = run.finish()
    assert os.path.join(work, "absent3.txt") in res["probes"], res


def argv_of(emu, *args):
    vec = emu.alloc(8 * (len(args) + 1))
    for i, a in enumerate(args):
        emu.uc.mem_write(vec + 8 * i, struct.pack("<Q", emu.cstr(a)))
    emu.uc.mem_write(vec + 8 * len(args), b"\0" * 8)
    return vec


@pytest.fixture
def exec_setup(built, tmp_path, arch):  # noqa: F811
    """A work dir with bin/tool, the env a run gives its root, and the
    execs the emulated process makes."""
    from sandbox_py import _unpriv
    work = os.path.realpath(str(tmp_path))
    os.mkdir(os.path.join(work, "bin"))
    tool_path = os.path.join(work, "bin", "tool")
    with open(tool_path, "wb") as f:
        f.write(b"\xcf\xfa\xed\xfe")         # a Mach-O magic: not a #! script
    run = _unpriv.PreloadRun()
    launcher = os.path.join(work, "_sbx_interpose_exec")
    open(launcher, "w").close()
    dylib = "/opt/sbx/_sbx_interpose.dylib"
    env = {"SBX_PRELOAD_LOG": run.log_path, "SBX_PRELOAD_SHIM": dylib,
           "SBX_PRELOAD_HANDOFF": launcher, "DYLD_INSERT_LIBRARIES": dylib,
           "PATH": os.path.join(work, "nowhere") + ":" + os.path.join(work, "bin")}
    image = me.MachO(built[machobuild.DYLIB + "." + arch], tool("llvm-objdump"), tool("llvm-nm"))
    yield image, run, work, env, launcher, tool_path
    try:
        run.finish()
    except ValueError:
        pass


def test_scrubbed_environment_gets_dyld_insert_libraries_back(exec_setup):
    """execve with an empty environment (env -i): the child still gets the
    dylib, in dyld's variable, with the run's log."""
    image, run, work, env, launcher, tool_path = exec_setup
    execs = []
    emu = me.Emulator(image, fake_libc(work, env, os.path.join(work, "prog"), execs))
    emu.run_constructors([os.path.join(work, "prog")])
    emu.call("_sbx_hook_execve", emu.cstr(tool_path), argv_of(emu, "tool", "-x"), argv_of(emu))
    assert len(execs) == 1
    path, argv, envp = execs[0]
    assert (path, argv) == (tool_path, ["tool", "-x"])
    assert "DYLD_INSERT_LIBRARIES=/opt/sbx/_sbx_interpose.dylib" in envp
    assert "SBX_PRELOAD_LOG=%s" % run.log_path in envp
    assert "SBX_PRELOAD_SHIM=/opt/sbx/_sbx_interpose.dylib" in envp
    assert not any(e.startswith("LD_PRELOAD=") for e in envp)


def test_breakaway_exec_runs_without_the_dylib(exec_setup):
    """A declared breakaway (run(breakaway=["tool"])): the Darwin build's
    execve hook execs it with DYLD_INSERT_LIBRARIES and every SBX_ variable
    left out (the program's own variables kept), and the reader lists it in
    breakaways, not execs."""
    image, run, work, env, launcher, tool_path = exec_setup
    env = dict(env, SBX_PRELOAD_BREAKAWAY="other\ntool")
    execs = []
    emu = me.Emulator(image, fake_libc(work, env, os.path.join(work, "prog"), execs))
    emu.run_constructors([os.path.join(work, "prog")])
    child_env = ["KEEP=1", "DYLD_INSERT_LIBRARIES=/opt/sbx/_sbx_interpose.dylib:/opt/own.dylib",
                 "SBX_PRELOAD_LOG=" + run.log_path, "SBX_PRELOAD_BREAKAWAY=other\ntool"]
    emu.call("_sbx_hook_execve", emu.cstr(tool_path), argv_of(emu, "tool", "-x"),
             argv_of(emu, *child_env))
    assert len(execs) == 1
    path, argv, envp = execs[0]
    assert (path, argv) == (tool_path, ["tool", "-x"])
    assert sorted(envp) == ["DYLD_INSERT_LIBRARIES=/opt/own.dylib", "KEEP=1"]
    res = run.finish()
    assert [(e[2], list(e[3])) for e in res["breakaways"]] == [(tool_path, ["tool", "-x"])]
    assert tool_path not in [e[2] for e in res["execs"]]      # only the emulated program


def test_program_that_never_says_hello_is_named(exec_setup):
    """The SIP path, with the Darwin code: the launcher (quiet) execs the
    command through $PATH; the command never writes its hello record (dyld
    stripped DYLD_*); the reader reports the exec, the candidate it
    probed, and a warning naming the program; the Result is incomplete."""
    image, run, work, env, launcher, tool_path = exec_setup
    execs = []
    emu = me.Emulator(image, fake_libc(work, env, launcher, execs))
    run.set_root(os.getpid(), "tool")
    emu.run_constructors([launcher])                 # quiet: this is the launcher
    emu.call("_sbx_hook_execvp", emu.cstr("tool"), argv_of(emu, "tool"))
    assert [e[0] for e in execs] == [tool_path]
    res = run.finish()
    assert [(e[2], list(e[3])) for e in res["execs"]] == [(tool_path, ["tool"])]
    assert os.path.join(work, "nowhere", "tool") in res["probes"]   # the $PATH search
    assert launcher not in res["reads"]              # the launcher is machinery
    assert res["complete"] is False
    assert any("was not observed" in w and tool_path in w for w in res["warnings"]), \
        res["warnings"]


def test_listing_is_an_enumeration(emulated):
    emu, run, work, exe = emulated
    os.mkdir(os.path.join(work, "dir"))
    d = emu.call("_sbx_hook_opendir", emu.cstr("dir"), wide=True)
    assert d
    emu.call("_sbx_hook_readdir", d, wide=True)
    assert emu.call("_sbx_hook_closedir", d) == 0
    res = run.finish()
    assert os.path.join(work, "dir") in res["enumerations"]
    assert os.path.join(work, "dir") not in res["reads"]


def test_posix_spawn_child_keeps_the_dylib_and_is_accounted(exec_setup):
    """posix_spawn with an empty environment: libSystem gets one with
    DYLD_INSERT_LIBRARIES back; the parent records the spawned exec; a
    child that then never says hello is named."""
    image, run, work, env, launcher, tool_path = exec_setup
    execs = []
    prog = os.path.join(work, "prog")
    emu = me.Emulator(image, fake_libc(work, env, prog, execs))
    emu.run_constructors([prog])
    pid = emu.alloc(8)
    r = emu.call("_sbx_hook_posix_spawn", pid, emu.cstr(tool_path), 0, 0,
                 argv_of(emu, "tool", "a"), argv_of(emu))
    assert r == 0
    assert struct.unpack("<i", emu.uc.mem_read(pid, 4))[0] == SPAWNED_PID
    (path, argv, envp), = execs
    assert (path, argv) == (tool_path, ["tool", "a"])
    assert "DYLD_INSERT_LIBRARIES=/opt/sbx/_sbx_interpose.dylib" in envp
    res = run.finish()
    spawned = [e for e in res["execs"] if e[0] == SPAWNED_PID]
    assert [(e[2], list(e[3])) for e in spawned] == [(tool_path, ["tool", "a"])]
    assert spawned[0][1] == os.getpid()                 # its parent: the emulated process
    assert any("%d" % SPAWNED_PID in w and tool_path in w for w in res["warnings"])
    assert res["complete"] is False


def test_posix_spawn_setexec_is_an_exec_of_this_process(exec_setup):
    """POSIX_SPAWN_SETEXEC replaces the calling image: recorded as this
    process's exec (its pid), and named when the new image stays silent."""
    image, run, work, env, launcher, tool_path = exec_setup
    execs = []
    prog = os.path.join(work, "prog")
    emu = me.Emulator(image, fake_libc(work, env, prog, execs))
    emu.run_constructors([prog])
    attr = emu.alloc(8)
    emu.uc.mem_write(attr, struct.pack("<h", SETEXEC))
    emu.call("_sbx_hook_posix_spawn", 0, emu.cstr(tool_path), 0, attr,
             argv_of(emu, "tool"), argv_of(emu))
    assert [x[0] for x in execs] == [tool_path]
    res = run.finish()
    assert [(e[0], e[2]) for e in res["execs"]] == [(os.getpid(), prog),
                                                     (os.getpid(), tool_path)]
    assert any(tool_path in w and "not observed" in w for w in res["warnings"])


# The Mac scenario corpus (tests/test_macos.py), the program compiled for
# macOS and run here with the dylib interposed the way dyld does it: each
# case and what a user checks in its Result (w: a name in the work dir).
SCENARIOS = {
    "fopen-read": lambda r, w: w("in.txt") in r["reads"] and w("in.txt") not in r["writes"],
    "write": lambda r, w: w("out.txt") in r["writes"] and w("out.txt") not in r["reads"],
    "read": lambda r, w: w("in.txt") in r["reads"] and w("in.txt") not in r["writes"],
    "rdwr-only-read": lambda r, w: w("in.txt") in r["reads"] and w("in.txt") not in r["writes"],
    "probe-absent": lambda r, w: {w("absent.txt"), w("absent2.txt")} <= set(r["probes"]),
    "list": lambda r, w: w("dir") in r["enumerations"] and w("dir") not in r["reads"],
    "rename": lambda r, w: {w("in.txt"), w("moved.txt")} <= set(r["writes"]),
    "unlink-mkdir": lambda r, w: {w("in.txt"), w("newdir")} <= set(r["writes"]),
    "clonefile": lambda r, w: w("in.txt") in r["reads"] and w("clone.txt") in r["writes"],
    "copyfile": lambda r, w: w("in.txt") in r["reads"] and w("copy.txt") in r["writes"],
    "getattrlist": lambda r, w: w("absent3.txt") in r["probes"],
}


@pytest.fixture(scope="module")
def scenario_programs(tmp_path_factory):
    import test_macos
    d = tmp_path_factory.mktemp("macscenario")
    src = d / "scenario.c"
    src.write_text(test_macos.SCENARIO)
    out = {}
    for arch in machobuild.ARCHS:
        out[arch] = str(d / ("scenario." + arch))
        import subprocess
        subprocess.run(machobuild.zig_cc(arch) + ["-O1", "-o", out[arch], str(src)], check=True,
                       cwd=machobuild.ROOT)
    return out


@pytest.mark.parametrize("what", sorted(SCENARIOS))
def test_mac_scenario_program_with_the_dylib_interposed(built, scenario_programs, arch, what,  # noqa: F811
                                                        tmp_path):
    """A real macOS program (not a direct call of a hook): its calls reach
    the hooks only through the interpose table, applied from the dylib's
    own section; the Result must be what tests/test_macos.py expects on a
    Mac."""
    from sandbox_py import _unpriv
    work = os.path.realpath(str(tmp_path))
    with open(os.path.join(work, "in.txt"), "w") as f:
        f.write("data\n")
    os.mkdir(os.path.join(work, "dir"))
    open(os.path.join(work, "dir", "a"), "w").close()
    prog = scenario_programs[arch]
    run = _unpriv.PreloadRun()
    env = {"SBX_PRELOAD_LOG": run.log_path, "SBX_PRELOAD_SHIM": "/opt/sbx/_sbx_interpose.dylib"}
    objdump, nm = tool("llvm-objdump"), tool("llvm-nm")
    emu = me.Emulator(me.MachO(built[machobuild.DYLIB + "." + arch], objdump, nm),
                      fake_libc(work, env, prog), program=me.MachO(prog, objdump, nm))
    assert "_open" in emu.interposed and "_strcmp" not in emu.interposed
    emu.run_constructors([prog, what])
    assert emu.run_main([prog, what]) == 0
    emu.run_exit()                          # the dylib's destructor, as exit() runs it
    res = run.finish()
    assert SCENARIOS[what](res, lambda n: os.path.join(work, n)), res
    assert [(e[2], list(e[3])) for e in res["execs"]] == [(prog, [prog, what])]
    assert res["complete"], res["warnings"]


@pytest.mark.parametrize("arch_name", machobuild.ARCHS)
def test_file_layout_is_darwins(arch_name, tmp_path):
    """The fake stdio above lays FILE out as the real macOS headers do."""
    import subprocess
    src = tmp_path / "file.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n" + "".join(
        '_Static_assert(%s == %d, "%s");\n' % (e, v, e) for e, v in (
            ("offsetof(FILE, _p)", FILE_P), ("offsetof(FILE, _flags)", FILE_FLAGS),
            ("offsetof(FILE, _file)", FILE_FILE), ("offsetof(FILE, _bf._base)", FILE_BF_BASE),
            ("sizeof(FILE)", FILE_SIZE), ("__SRD", S_RD), ("__SWR", S_WR))))
    subprocess.run(machobuild.zig_cc(arch_name) + ["-c", "-o", str(tmp_path / "file.o"),
                                                   str(src)], check=True, cwd=machobuild.ROOT)


PORTABLE = ["read", "fopen-read", "write", "rdwr-only-read", "probe-absent", "list", "rename",
            "unlink-mkdir"]


@pytest.mark.parametrize("what", PORTABLE)
def test_same_sets_as_the_linux_build_under_preload(built, scenario_programs, what,  # noqa: F811
                                                    tmp_path):
    """One truth, two systems: the same scenario source built for Linux
    and run under the preload backend, and built for macOS and run
    emulated with the interpose dylib, report the same four path sets for
    the files it touches."""
    import subprocess
    import test_macos
    import sandbox_py
    ok, why = sandbox_py.backends()["preload"]
    if not ok:
        pytest.skip(why)
    results = {}
    for system in ("linux", "darwin"):
        work = os.path.realpath(str(tmp_path / system))
        os.mkdir(work)
        with open(os.path.join(work, "in.txt"), "w") as f:
            f.write("data\n")
        os.mkdir(os.path.join(work, "dir"))
        open(os.path.join(work, "dir", "a"), "w").close()
        if system == "linux":
            src = tmp_path / "scenario.c"
            src.write_text(test_macos.SCENARIO)
            exe = str(tmp_path / "scenario-linux")
            subprocess.run(["cc", "-O1", "-o", exe, str(src)], check=True)
            r = sandbox_py.Sandbox("preload").run([exe, what], cwd=work)
            assert r.returncode == 0
            sets = {k: set(getattr(r, k)) for k in ("reads", "writes", "probes", "enumerations")}
        else:
            from sandbox_py import _unpriv
            prog = scenario_programs["x86_64"]
            run = _unpriv.PreloadRun()
            env = {"SBX_PRELOAD_LOG": run.log_path, "SBX_PRELOAD_SHIM": "/opt/sbx/x.dylib"}
            objdump, nm = tool("llvm-objdump"), tool("llvm-nm")
            emu = me.Emulator(me.MachO(built[machobuild.DYLIB + ".x86_64"], objdump, nm),
                              fake_libc(work, env, prog), program=me.MachO(prog, objdump, nm))
            emu.run_constructors([prog, what])
            assert emu.run_main([prog, what]) == 0
            emu.run_exit()
            res = run.finish()
            sets = {k: set(res[k]) for k in ("reads", "writes", "probes", "enumerations")}
        results[system] = {k: sorted(os.path.relpath(p, work) for p in v
                                     if p == work or p.startswith(work + "/"))
                           for k, v in sets.items()}
    assert any(results["linux"].values()), results     # the case touched something
    assert results["darwin"] == results["linux"]
