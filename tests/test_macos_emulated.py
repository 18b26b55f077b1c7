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
D_F_DUPFD = 0              # F_DUPFD (sys/fcntl.h)
# O_RDONLY | O_NONBLOCK | O_DIRECTORY | O_CLOEXEC: how __opendir2 opens
OPENDIR_FLAGS = 0x4 | me.D_O_DIRECTORY | me.D_O_CLOEXEC
COPYFILE_RECURSIVE = 1 << 15   # copyfile.h
REMOVEFILE_RECURSIVE = 1 << 0  # removefile.h


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
        if cmd == D_F_DUPFD:
            return __import__("fcntl").fcntl(fd, __import__("fcntl").F_DUPFD, e.vararg(0, 2))
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

    # libsystem_c's opendir (__opendir2) opens and closedir closes the
    # directory through libsystem_kernel's non-cancellable symbols, which
    # the dylib interposes: the stand-in does the same, through the table
    def opendir(e):
        fd = e.call_nested(e.interposed_by("_open$NOCANCEL"), e.cstr(path(e, 0)),
                           OPENDIR_FLAGS)
        if fd < 0:
            return 0
        d = e.alloc(16)
        dirs[d] = fd
        return d

    def closedir(e):
        return e.call_nested(e.interposed_by("_close$NOCANCEL"), dirs.pop(e.arg(0)))

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
        # libsystem_c's fopen opens through the interposed open$NOCANCEL
        dflags = {"r": 0, "w": 0x1 | me.D_O_CREAT | me.D_O_TRUNC,
                  "a": 0x1 | me.D_O_CREAT | me.D_O_APPEND}[mode[0]]
        if "+" in mode:
            dflags = (dflags & ~me.D_O_ACCMODE) | 0x2
        fd = e.call_nested(e.interposed_by("_open$NOCANCEL"), e.cstr(path(e, 0)), dflags,
                           0o666, nfixed=2)
        if fd < 0:
            return 0
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
        "_closedir": closedir,
        "_dirfd": lambda e: dirs[e.arg(0)],
        "__NSGetEnviron": ns_get_environ,
        "_getenv": getenv,
        "_getpid": lambda e: os.getpid(),
        "_getppid": lambda e: os.getppid(),
        "_pthread_atfork": lambda e: 0,
        "_pthread_self": lambda e: 0x7000DEAD,     # one thread
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
        "_rename": sys_(lambda e: os.rename(at(e, -2, path(e, 0)), at(e, -2, path(e, 1)))),
        "_mkdir": sys_(lambda e: os.mkdir(at(e, -2, path(e, 0)), e.arg(1) & 0o7777)),
        "_unlink": sys_(lambda e: os.unlink(at(e, -2, path(e, 0)))),
        "_getattrlist": sys_(lambda e: os.stat(at(e, -2, path(e, 0))) and 0),
        "_clonefile": sys_(lambda e: shutil.copyfile(at(e, -2, path(e, 0)),
                                                     at(e, -2, path(e, 1))) and 0),
        **more_libc(e_path=path, at=at, sys_=sys_, put=put, mem=mem, stat_into=stat_into,
                    dirs=dirs, fcntl=fcntl, fopen=fopen, opendir=opendir, work=work),
    }


def inode_path(root: str, objno: int):
    """The name under `root` of the file whose inode number is `objno`
    (what the kernel's catalog knows and openbyid_np/fsgetpath use)."""
    for d, subdirs, files in os.walk(root):
        for n in subdirs + files:
            p = os.path.join(d, n)
            if os.lstat(p).st_ino & 0xFFFFFFFF == objno:
                return p
    raise OSError(2, "no such object id")


def more_libc(e_path, at, sys_, put, mem, stat_into, dirs, fcntl, fopen, opendir, work):
    """The libSystem calls behind the hooks issue 27 added: the other
    symbols of the shared entry points ($NOCANCEL, $DARWIN_EXTSN, the plain
    realpath, x86_64's 32-bit-inode names) and the macOS-only file calls.
    The copy and removal calls recurse the way their libraries do, each
    inner call made through the symbol libSystem's library binds, which
    the dylib interposes (Emulator.interposed_by)."""
    path = e_path
    i32 = lambda v: ctypes.c_int32(v).value  # noqa: E731

    def iov(e, vec, n):
        return [struct.unpack("<QQ", e.uc.mem_read(vec + 16 * i, 16)) for i in range(n)]

    def readv(e, off=None):
        total = 0
        for base, ln in iov(e, e.arg(1), e.arg(2)):
            data = (os.read(e.arg(0), ln) if off is None
                    else os.pread(e.arg(0), ln, off + total))
            put(e, base, data)
            total += len(data)
            if len(data) < ln:
                break
        return total

    def writev(e, off=None):
        data = b"".join(mem(e, b, ln) for b, ln in iov(e, e.arg(1), e.arg(2)))
        return os.write(e.arg(0), data) if off is None else os.pwrite(e.arg(0), data, off)

    def open_at(e, dirfd, pi, fli, mode):
        return os.open(at(e, dirfd, path(e, pi)), me.linux_flags(e.arg(fli)), mode & 0o7777)

    def realpath(e):
        p = at(e, me.D_AT_FDCWD, path(e, 0))
        if not os.path.exists(p):
            return e.set_errno(2) and 0
        out = e.arg(1) or e.alloc(4096)
        put(e, out, os.fsencode(os.path.realpath(p)) + b"\0")
        return out

    def fdopendir(e):
        d = e.alloc(16)
        dirs[d] = os.dup(i32(e.arg(0)))
        return d

    def readdir_r(e):
        e.uc.mem_write(e.arg(2), b"\0" * 8)           # *result = NULL: the end
        return 0

    def scandir(e):
        return len(os.listdir(at(e, me.D_AT_FDCWD, path(e, 0))))

    def attrs_exist(e, dirfd, pi):
        os.stat(at(e, dirfd, path(e, pi)))

    def objid(e, i):
        return struct.unpack("<I", e.uc.mem_read(e.arg(i), 4))[0]

    def fsgetpath(e):
        name = os.fsencode(inode_path(work, e.arg(3) & 0xFFFFFFFF)) + b"\0"
        put(e, e.arg(0), name)
        return len(name)

    def searchfs(e):
        os.stat(at(e, me.D_AT_FDCWD, path(e, 0)))
        e.uc.mem_write(e.arg(2), struct.pack("<Q", 2))  # two matches
        return 0

    def exchangedata(e):
        a, b = at(e, -2, path(e, 0)), at(e, -2, path(e, 1))
        with open(a, "rb") as f:
            da = f.read()
        with open(b, "rb") as f:
            db = f.read()
        with open(a, "wb") as f:
            f.write(db)
        with open(b, "wb") as f:
            f.write(da)

    def fcopyfile(e):
        src, dst = i32(e.arg(0)), i32(e.arg(1))
        os.lseek(src, 0, 0)
        os.write(dst, os.read(src, 1 << 20))

    # -- libremovefile and libcopyfile, recursing through interposed calls
    def lib_call(e, symbol, *args):
        return e.call_nested(e.interposed_by(symbol), *args)

    def list_dir(e, d):
        """How libsystem_c's fts lists a directory on recent macOS: open it,
        getattrlistbulk, close."""
        fd = lib_call(e, "_openat$NOCANCEL", me.D_AT_FDCWD, e.cstr(d),
                      me.D_O_DIRECTORY | me.D_O_CLOEXEC)
        assert fd >= 0, d
        assert lib_call(e, "_getattrlistbulk", fd, 0, e.alloc(64), 64, 0) >= 0
        lib_call(e, "_close$NOCANCEL", fd)
        return sorted(os.listdir(d))

    def remove_tree(e, p):
        if os.path.isdir(p) and not os.path.islink(p):
            for n in list_dir(e, p):
                remove_tree(e, os.path.join(p, n))
            r = lib_call(e, "_rmdir", e.cstr(p))
        else:
            r = lib_call(e, "_unlink", e.cstr(p))
        if r != 0:
            raise OSError(13, p)

    def removefile(e, dirfd=None):
        p = at(e, me.D_AT_FDCWD if dirfd is None else i32(e.arg(0)),
               path(e, 0 if dirfd is None else 1))
        flags = e.arg(2 if dirfd is None else 3)
        if os.path.isdir(p) and not flags & REMOVEFILE_RECURSIVE:
            raise OSError(66, p)                         # ENOTEMPTY
        remove_tree(e, p)

    def copy_tree(e, src, dst):
        if os.path.isdir(src):
            names = list_dir(e, src)
            assert lib_call(e, "_mkdir", e.cstr(dst), 0o755) == 0
            for n in names:
                copy_tree(e, os.path.join(src, n), os.path.join(dst, n))
            return
        i = lib_call(e, "_open$NOCANCEL", e.cstr(src), 0)
        o = lib_call(e, "_open$NOCANCEL", e.cstr(dst), 0x1 | me.D_O_CREAT | me.D_O_TRUNC, 0o644)
        buf = e.alloc(4096)
        n = e.call_nested(e.interposed_by("_read$NOCANCEL"), i, buf, 4096, wide=True)
        e.call_nested(e.interposed_by("_write$NOCANCEL"), o, buf, n, wide=True)
        lib_call(e, "_close$NOCANCEL", i)
        lib_call(e, "_close$NOCANCEL", o)

    def copyfile(e):
        src, dst = at(e, -2, path(e, 0)), at(e, -2, path(e, 1))
        if e.arg(3) & COPYFILE_RECURSIVE and os.path.isdir(src):
            copy_tree(e, src, dst)
        else:
            shutil.copyfile(src, dst)

    def nftw(e):
        """libsystem_c's nftw (over fts): each directory opened, listed with
        getattrlistbulk and closed, each entry stat'ed, all through the
        interposed kernel symbols; the program's callback called for each
        (pre-order, FTW_PHYS), with a struct stat and a struct FTW."""
        root, callback = path(e, 0), e.arg(1)
        stat_sym = "_fstatat$INODE64" if e.image.cpu == "X86_64" else "_fstatat"
        sb, ftw = e.alloc(144), e.alloc(8)

        def visit(p, level):
            if lib_call(e, stat_sym, me.D_AT_FDCWD, e.cstr(p), sb, 0x20) != 0:
                return -1
            isdir = os.path.isdir(at(e, me.D_AT_FDCWD, p))
            e.uc.mem_write(ftw, struct.pack("<ii", len(p) - len(os.path.basename(p)), level))
            r = e.call_nested(callback, e.cstr(p), sb, 1 if isdir else 0, ftw)   # FTW_D, FTW_F
            if r or not isdir:
                return r
            for n in list_dir(e, at(e, me.D_AT_FDCWD, p)):
                r = visit(os.path.join(p, n), level + 1)
                if r:
                    return r
            return 0
        return visit(root, 0)

    return {
        "_nftw": nftw,
        "_nftw$INODE64": nftw,
        "_open$NOCANCEL": sys_(lambda e: open_at(e, me.D_AT_FDCWD, 0, 1, e.vararg(0, 2))),
        "_openat$NOCANCEL": sys_(lambda e: open_at(e, i32(e.arg(0)), 1, 2, e.vararg(0, 3))),
        "_creat$NOCANCEL": sys_(lambda e: os.open(at(e, -2, path(e, 0)),
                                                  os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                                  e.arg(1) & 0o7777)),
        "_read$NOCANCEL": sys_(lambda e: put(e, e.arg(1), os.read(e.arg(0), e.arg(2)))),
        "_pread$NOCANCEL": sys_(lambda e: put(e, e.arg(1), os.pread(e.arg(0), e.arg(2),
                                                                    e.arg(3)))),
        "_readv$NOCANCEL": sys_(readv),
        "_preadv$NOCANCEL": sys_(lambda e: readv(e, e.arg(3))),
        "_write$NOCANCEL": sys_(lambda e: os.write(e.arg(0), mem(e, e.arg(1), e.arg(2)))),
        "_pwrite$NOCANCEL": sys_(lambda e: os.pwrite(e.arg(0), mem(e, e.arg(1), e.arg(2)),
                                                     e.arg(3))),
        "_writev$NOCANCEL": sys_(writev),
        "_pwritev$NOCANCEL": sys_(lambda e: writev(e, e.arg(3))),
        "_close$NOCANCEL": sys_(lambda e: os.close(e.arg(0))),
        "_fcntl$NOCANCEL": sys_(fcntl),
        "_fopen$DARWIN_EXTSN": sys_(fopen),
        # the system call stubs: register arguments only
        "___open_nocancel": sys_(lambda e: open_at(e, me.D_AT_FDCWD, 0, 1, e.arg(2))),
        "___openat_nocancel": sys_(lambda e: open_at(e, i32(e.arg(0)), 1, 2, e.arg(3))),
        "___read_nocancel": sys_(lambda e: put(e, e.arg(1), os.read(e.arg(0), e.arg(2)))),
        "___pread_nocancel": sys_(lambda e: put(e, e.arg(1), os.pread(e.arg(0), e.arg(2),
                                                                      e.arg(3)))),
        "___readv_nocancel": sys_(readv),
        "___preadv_nocancel": sys_(lambda e: readv(e, e.arg(3))),
        "___write_nocancel": sys_(lambda e: os.write(e.arg(0), mem(e, e.arg(1), e.arg(2)))),
        "___pwrite_nocancel": sys_(lambda e: os.pwrite(e.arg(0), mem(e, e.arg(1), e.arg(2)),
                                                       e.arg(3))),
        "___writev_nocancel": sys_(writev),
        "___pwritev_nocancel": sys_(lambda e: writev(e, e.arg(3))),
        "___close_nocancel": sys_(lambda e: os.close(e.arg(0))),
        "___fcntl_nocancel": sys_(lambda e: __import__("fcntl").fcntl(
            i32(e.arg(0)), __import__("fcntl").F_DUPFD, e.arg(2)) if e.arg(1) == D_F_DUPFD
            else fcntl(e)),
        "_realpath": realpath,
        "_getdirentries": sys_(lambda e: os.fstat(e.arg(0)) and 0),     # the end at once
        # x86_64's 32-bit-inode names (the buffers are not looked at)
        "_lstat": sys_(lambda e: stat_into(e, os.lstat(at(e, -2, path(e, 0))), 1)),
        "_fstatat": sys_(lambda e: stat_into(e, os.stat(at(e, i32(e.arg(0)), path(e, 1))), 2)),
        "_fstatat$INODE64": sys_(lambda e: stat_into(e, os.stat(at(e, i32(e.arg(0)),
                                                                   path(e, 1))), 2)),
        "_statfs": sys_(lambda e: os.statvfs(at(e, -2, path(e, 0))) and 0),
        "_fdopendir": sys_(fdopendir),
        "_readdir_r": readdir_r,
        "_scandir": sys_(scandir),
        # attribute lists, opens only macOS has, ids, copies, removals
        "_getattrlistbulk": sys_(lambda e: os.fstat(e.arg(0)) and 0),  # no more entries
        "_getdirentriesattr": sys_(lambda e: os.fstat(e.arg(0)) and 0),
        "_fsetattrlist": sys_(lambda e: os.fstat(e.arg(0)) and 0),
        "_setattrlistat": sys_(lambda e: attrs_exist(e, i32(e.arg(0)), 1)),
        "_openx_np": sys_(lambda e: open_at(e, me.D_AT_FDCWD, 0, 1, 0o644)),
        "_open_dprotected_np": sys_(lambda e: open_at(e, me.D_AT_FDCWD, 0, 1, e.vararg(0, 4))),
        "_openat_dprotected_np": sys_(lambda e: open_at(e, i32(e.arg(0)), 1, 2,
                                                        e.vararg(0, 5))),
        "_openat_authenticated_np": sys_(lambda e: open_at(e, i32(e.arg(0)), 1, 2, 0)),
        "_openbyid_np": sys_(lambda e: os.open(inode_path(work, objid(e, 1)),
                                               me.linux_flags(e.arg(2)))),
        "_fsgetpath": sys_(fsgetpath),
        "_searchfs": sys_(searchfs),
        "_exchangedata": sys_(exchangedata),
        "_fcopyfile": sys_(fcopyfile),
        "_copyfile": sys_(copyfile),
        "_removefile": sys_(removefile),
        "_removefileat": sys_(lambda e: removefile(e, dirfd=True)),
        "_posix_spawn_file_actions_addchdir_np": lambda e: 0,
        "_posix_spawn_file_actions_addchdir": lambda e: 0,
        "_rmdir": sys_(lambda e: os.rmdir(at(e, -2, path(e, 0)))),
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
    # libsystem_c's own open of it (open$NOCANCEL, interposed) and the
    # opendir hook name one open: the directory is not also a probe
    assert os.path.join(work, "dir") not in res["probes"], res


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
    "getattrlistbulk": lambda r, w: w("dir") in r["enumerations"] and w("dir") not in r["reads"],
}


def _walker_case(name):
    """A tree walker (docs/macos.md, What the walkers report), judged by
    the same rule tests/test_macos.py applies on a Mac."""
    def check(r, w):
        import test_macos
        return test_macos.WALKERS[name](test_macos.tree_results(r, os.path.dirname(w("x"))))
    return check


for _walker in ("removefile-tree", "copyfile-tree", "nftw-tree"):
    SCENARIOS[_walker] = _walker_case(_walker)


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
    import test_macos
    test_macos.make_tree(work)
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


# ---- issue 27: one case per entry added so that every libSystem symbol
# naming a file is interposed (tests/test_macos_symbols.py).  Each calls
# the hook (the Darwin build's code) over the fake libc and checks the
# Result a user would read.  w(name): the name in the work dir.
O_WRONLY_CREAT = 0x1 | me.D_O_CREAT | me.D_O_TRUNC


def _open_in(emu, name, flags=0):
    fd = emu.call("_sbx_hook_open", emu.cstr(name), flags, 0o644, nfixed=2)
    assert fd >= 0, name
    return fd


def _iovec(emu, buf, n):
    v = emu.alloc(16)
    emu.uc.mem_write(v, struct.pack("<QQ", buf, n))
    return v


def _fd_case(hook, kind, args=lambda emu, buf: (), wide=True):
    """read-like (kind "r") or write-like ("w") hook on an fd of in.txt
    (opened O_RDWR, as only the call under test may decide)."""
    def run(emu, work):
        fd = _open_in(emu, "in.txt", 0x2)
        buf = emu.alloc(64)
        if kind == "w":
            emu.uc.mem_write(buf, b"x")
        r = emu.call(hook, fd, *args(emu, buf), wide=wide)
        assert r >= 0, (hook, r)
        emu.call("_sbx_hook_close", fd)
        return lambda res, w: ((w("in.txt") in res["reads"]) == (kind == "r")
                               and (w("in.txt") in res["writes"]) == (kind == "w"))
    return run


def _case_open_like(hook, args):
    """An open family hook creating new.txt for writing, and opening in.txt
    for reading (read through the plain read hook)."""
    def run(emu, work):
        fd = emu.call(hook, *args(emu, "new.txt", O_WRONLY_CREAT))
        assert fd >= 0, hook
        emu.call("_sbx_hook_write", fd, emu.cstr("x"), 1, wide=True)
        emu.call("_sbx_hook_close", fd)
        fd = emu.call(hook, *args(emu, "in.txt", 0))
        assert fd >= 0
        emu.call("_sbx_hook_read", fd, emu.alloc(16), 16, wide=True)
        emu.call("_sbx_hook_close", fd)
        return lambda res, w: (w("new.txt") in res["writes"] and w("new.txt") not in res["reads"]
                               and w("in.txt") in res["reads"]
                               and w("in.txt") not in res["writes"])
    return run


def _case_probe(hook, args, name="absent.txt"):
    def run(emu, work):
        emu.call(hook, *args(emu, emu.cstr(name)))
        return lambda res, w: w(name) in res["probes"] and w(name) not in res["reads"]
    return run


def _case_listing(hook, args):
    """A listing call on an fd of dir/ opened O_RDONLY (no O_DIRECTORY):
    an enumeration, not a read."""
    def run(emu, work):
        fd = _open_in(emu, "dir")
        assert emu.call(hook, fd, *args(emu)) >= 0, hook
        emu.call("_sbx_hook_close", fd)
        return lambda res, w: w("dir") in res["enumerations"] and w("dir") not in res["reads"]
    return run


def _case_openbyid(emu, work):
    ino = os.stat(os.path.join(work, "in.txt")).st_ino & 0xFFFFFFFF
    obj = emu.alloc(8)
    emu.uc.mem_write(obj, struct.pack("<II", ino, 0))
    fd = emu.call("_sbx_hook_openbyid_np", emu.alloc(8), obj, 0)
    assert fd >= 0
    emu.call("_sbx_hook_read", fd, emu.alloc(16), 16, wide=True)
    emu.call("_sbx_hook_close", fd)
    return lambda res, w: w("in.txt") in res["reads"] and w("in.txt") not in res["writes"]


def _case_fsgetpath(emu, work):
    ino = os.stat(os.path.join(work, "in.txt")).st_ino & 0xFFFFFFFF
    assert emu.call("_sbx_hook_fsgetpath", emu.alloc(1024), 1024, emu.alloc(8), ino,
                    wide=True) > 0
    return lambda res, w: w("in.txt") in res["probes"] and w("in.txt") not in res["reads"]


def _case_searchfs(emu, work):
    n = emu.alloc(8)
    assert emu.call("_sbx_hook_searchfs", emu.cstr("dir"), emu.alloc(64), n, 0, 0,
                    emu.alloc(64)) == 0
    return lambda res, w: (w("dir") in res["probes"] and res["complete"] is False
                           and any("searchfs" in x and w("dir") in x for x in res["warnings"]))


def _case_exchangedata(emu, work):
    with open(os.path.join(work, "other.txt"), "w") as f:
        f.write("other\n")
    assert emu.call("_sbx_hook_exchangedata", emu.cstr("in.txt"), emu.cstr("other.txt"), 0) == 0
    assert open(os.path.join(work, "in.txt")).read() == "other\n"
    return lambda res, w: {w("in.txt"), w("other.txt")} <= set(res["writes"])


def _case_fcopyfile(emu, work):
    i = _open_in(emu, "in.txt")
    o = _open_in(emu, "copy.txt", O_WRONLY_CREAT)
    assert emu.call("_sbx_hook_fcopyfile", i, o, 0, 0) == 0
    emu.call("_sbx_hook_close", i)
    emu.call("_sbx_hook_close", o)
    return lambda res, w: (w("in.txt") in res["reads"] and w("copy.txt") in res["writes"]
                           and w("in.txt") not in res["writes"])


def _case_removefile(hook, dirfd):
    def run(emu, work):
        args = (me.D_AT_FDCWD,) if dirfd else ()
        assert emu.call(hook, *args, emu.cstr("in.txt"), 0, 0) == 0
        assert not os.path.exists(os.path.join(work, "in.txt"))
        return lambda res, w: w("in.txt") in res["writes"]
    return run


def _case_fdopendir_ino32(emu, work):
    fd = _open_in(emu, "dir")
    d = emu.call("_sbx_hook_fdopendir_ino32", fd, wide=True)
    assert d
    emu.call("_sbx_hook_readdir_ino32", d, wide=True)
    emu.call("_sbx_hook_closedir", d)
    return lambda res, w: w("dir") in res["enumerations"] and w("dir") not in res["reads"]


def _case_opendir_ino32(reader):
    def run(emu, work):
        d = emu.call("_sbx_hook_opendir_ino32", emu.cstr("dir"), wide=True)
        assert d
        if reader == "readdir_r":
            emu.call("_sbx_hook_readdir_r_ino32", d, emu.alloc(1048), emu.alloc(8))
        else:
            emu.call("_sbx_hook_readdir_ino32", d, wide=True)
        emu.call("_sbx_hook_closedir", d)
        return lambda res, w: w("dir") in res["enumerations"] and w("dir") not in res["reads"]
    return run


def _case_fcntl_nocancel(emu, work):
    fd = _open_in(emu, "in.txt", 0x2)
    dup = emu.call("_sbx_hook_fcntl_nocancel", fd, D_F_DUPFD, 20, nfixed=2)
    assert dup >= 20
    emu.call("_sbx_hook_close", fd)
    emu.call("_sbx_hook_read", dup, emu.alloc(16), 16, wide=True)   # through the copy
    emu.call("_sbx_hook_close", dup)
    return lambda res, w: w("in.txt") in res["reads"] and w("in.txt") not in res["writes"]


def _case_close_nocancel(emu, work):
    fd = _open_in(emu, "in.txt")             # opened, never used, closed: a probe
    assert emu.call("_sbx_hook_close_nocancel", fd) == 0
    return lambda res, w: w("in.txt") in res["probes"] and w("in.txt") not in res["reads"]


def _case_close_nocancel_stub(emu, work):
    fd = _open_in(emu, "in.txt")
    assert emu.call("_sbx_hook___close_nocancel", fd) == 0
    return lambda res, w: w("in.txt") in res["probes"] and w("in.txt") not in res["reads"]


def _case_fcntl_nocancel_stub(emu, work):
    fd = _open_in(emu, "in.txt", 0x2)
    dup = emu.call("_sbx_hook___fcntl_nocancel", fd, D_F_DUPFD, 20)   # no variadic part
    assert dup >= 20
    emu.call("_sbx_hook_close", fd)
    emu.call("_sbx_hook_read", dup, emu.alloc(16), 16, wide=True)
    emu.call("_sbx_hook_close", dup)
    return lambda res, w: w("in.txt") in res["reads"] and w("in.txt") not in res["writes"]


def _case_fopen_extsn(emu, work):
    f = emu.call("_sbx_hook_fopen_extsn", emu.cstr("new.txt"), emu.cstr("w"), wide=True)
    assert f
    return lambda res, w: w("new.txt") in res["writes"] and w("new.txt") not in res["reads"]


def _case_addchdir(hook):
    def run(emu, work):
        assert emu.call(hook, emu.alloc(8), emu.cstr("dir")) == 0
        return lambda res, w: w("dir") in res["probes"] and w("dir") not in res["reads"]
    return run


NEW_ENTRY_CASES = {
    "open_nocancel": _case_open_like(
        "_sbx_hook_open_nocancel", lambda e, n, f: (e.cstr(n), f, 0o644)),
    "openat_nocancel": _case_open_like(
        "_sbx_hook_openat_nocancel", lambda e, n, f: (me.D_AT_FDCWD, e.cstr(n), f, 0o644)),
    "openx_np": _case_open_like("_sbx_hook_openx_np", lambda e, n, f: (e.cstr(n), f, 0)),
    "open_dprotected_np": _case_open_like(
        "_sbx_hook_open_dprotected_np", lambda e, n, f: (e.cstr(n), f, 0, 0, 0o644)),
    "openat_dprotected_np": _case_open_like(
        "_sbx_hook_openat_dprotected_np",
        lambda e, n, f: (me.D_AT_FDCWD, e.cstr(n), f, 0, 0, 0o644)),
    "openat_authenticated_np": _case_open_like(
        "_sbx_hook_openat_authenticated_np", lambda e, n, f: (me.D_AT_FDCWD, e.cstr(n), f, -1)),
    "creat_nocancel": lambda emu, work: (
        emu.call("_sbx_hook_creat_nocancel", emu.cstr("new.txt"), 0o644) >= 0
        and (lambda res, w: w("new.txt") in res["writes"])),
    "read_nocancel": _fd_case("_sbx_hook_read_nocancel", "r", lambda e, b: (b, 16)),
    "pread_nocancel": _fd_case("_sbx_hook_pread_nocancel", "r", lambda e, b: (b, 16, 0)),
    "readv_nocancel": _fd_case("_sbx_hook_readv_nocancel", "r",
                               lambda e, b: (_iovec(e, b, 16), 1)),
    "preadv_nocancel": _fd_case("_sbx_hook_preadv_nocancel", "r",
                                lambda e, b: (_iovec(e, b, 16), 1, 0)),
    "write_nocancel": _fd_case("_sbx_hook_write_nocancel", "w", lambda e, b: (b, 1)),
    "pwrite_nocancel": _fd_case("_sbx_hook_pwrite_nocancel", "w", lambda e, b: (b, 1, 0)),
    "writev_nocancel": _fd_case("_sbx_hook_writev_nocancel", "w",
                                lambda e, b: (_iovec(e, b, 1), 1)),
    "pwritev_nocancel": _fd_case("_sbx_hook_pwritev_nocancel", "w",
                                 lambda e, b: (_iovec(e, b, 1), 1, 0)),
    "fsetattrlist": _fd_case("_sbx_hook_fsetattrlist", "w",
                             lambda e, b: (e.alloc(24), b, 0, 0), wide=False),
    "close_nocancel": _case_close_nocancel,
    "__open_nocancel": _case_open_like(
        "_sbx_hook___open_nocancel", lambda e, n, f: (e.cstr(n), f, 0o644)),
    "__openat_nocancel": _case_open_like(
        "_sbx_hook___openat_nocancel", lambda e, n, f: (me.D_AT_FDCWD, e.cstr(n), f, 0o644)),
    "__read_nocancel": _fd_case("_sbx_hook___read_nocancel", "r", lambda e, b: (b, 16)),
    "__pread_nocancel": _fd_case("_sbx_hook___pread_nocancel", "r", lambda e, b: (b, 16, 0)),
    "__readv_nocancel": _fd_case("_sbx_hook___readv_nocancel", "r",
                                 lambda e, b: (_iovec(e, b, 16), 1)),
    "__preadv_nocancel": _fd_case("_sbx_hook___preadv_nocancel", "r",
                                  lambda e, b: (_iovec(e, b, 16), 1, 0)),
    "__write_nocancel": _fd_case("_sbx_hook___write_nocancel", "w", lambda e, b: (b, 1)),
    "__pwrite_nocancel": _fd_case("_sbx_hook___pwrite_nocancel", "w", lambda e, b: (b, 1, 0)),
    "__writev_nocancel": _fd_case("_sbx_hook___writev_nocancel", "w",
                                  lambda e, b: (_iovec(e, b, 1), 1)),
    "__pwritev_nocancel": _fd_case("_sbx_hook___pwritev_nocancel", "w",
                                   lambda e, b: (_iovec(e, b, 1), 1, 0)),
    "__close_nocancel": _case_close_nocancel_stub,
    "__fcntl_nocancel": _case_fcntl_nocancel_stub,
    "fcntl_nocancel": _case_fcntl_nocancel,
    "fopen_extsn": _case_fopen_extsn,
    "realpath_compat": _case_probe("_sbx_hook_realpath_compat",
                                   lambda e, p: (p, e.alloc(1024))),
    "setattrlistat": _case_probe("_sbx_hook_setattrlistat",
                                 lambda e, p: (me.D_AT_FDCWD, p, e.alloc(24), 0, 0, 0)),
    "getdirentries_ino32": _case_listing("_sbx_hook_getdirentries_ino32",
                                         lambda e: (e.alloc(512), 512, e.alloc(8))),
    "getattrlistbulk": _case_listing("_sbx_hook_getattrlistbulk",
                                     lambda e: (e.alloc(24), e.alloc(512), 512, 0)),
    "getdirentriesattr": _case_listing(
        "_sbx_hook_getdirentriesattr",
        lambda e: (e.alloc(24), e.alloc(512), 512, e.alloc(4), e.alloc(4), e.alloc(4), 0)),
    "openbyid_np": _case_openbyid,
    "fsgetpath": _case_fsgetpath,
    "searchfs": _case_searchfs,
    "exchangedata": _case_exchangedata,
    "fcopyfile": _case_fcopyfile,
    "removefile": _case_removefile("_sbx_hook_removefile", False),
    "removefileat": _case_removefile("_sbx_hook_removefileat", True),
    "posix_spawn_file_actions_addchdir_np": _case_addchdir(
        "_sbx_hook_posix_spawn_file_actions_addchdir_np"),
    "posix_spawn_file_actions_addchdir": _case_addchdir(
        "_sbx_hook_posix_spawn_file_actions_addchdir"),
    # x86_64 only: pre-10.6 binaries' 32-bit-inode names
    "stat_ino32": _case_probe("_sbx_hook_stat_ino32", lambda e, p: (p, e.alloc(144))),
    "lstat_ino32": _case_probe("_sbx_hook_lstat_ino32", lambda e, p: (p, e.alloc(144))),
    "fstatat_ino32": _case_probe("_sbx_hook_fstatat_ino32",
                                 lambda e, p: (me.D_AT_FDCWD, p, e.alloc(144), 0)),
    "statfs_ino32": _case_probe("_sbx_hook_statfs_ino32", lambda e, p: (p, e.alloc(4096))),
    "opendir_ino32": _case_opendir_ino32("readdir"),
    "readdir_ino32": _case_opendir_ino32("readdir"),
    "readdir_r_ino32": _case_opendir_ino32("readdir_r"),
    "fdopendir_ino32": _case_fdopendir_ino32,
    "scandir_ino32": lambda emu, work: (
        emu.call("_sbx_hook_scandir_ino32", emu.cstr("dir"), emu.alloc(8), 0, 0) >= 0
        and (lambda res, w: w("dir") in res["enumerations"] and w("dir") not in res["reads"])),
}
# the DARWIN entries older than issue 27 (their cases are above)
EARLIER_DARWIN = {"__getdirentries64", "getxattr", "setxattr", "listxattr", "removexattr",
                  "fsetxattr", "fremovexattr", "getattrlist", "setattrlist", "getattrlistat",
                  "clonefile", "clonefileat", "fclonefileat", "copyfile", "renamex_np",
                  "renameatx_np"}


def test_every_new_darwin_entry_has_a_case():
    from test_shim_hooks import hook_list
    darwin = {n for n, w in hook_list() if w in ("DARWIN", "DARWIN_X86_64")}
    assert darwin - EARLIER_DARWIN == set(NEW_ENTRY_CASES)


def _x86_only(name):
    from test_shim_hooks import hook_list
    return (name, "DARWIN_X86_64") in hook_list()


@pytest.mark.parametrize("entry", sorted(NEW_ENTRY_CASES))
def test_new_entry_reports_what_it_does(emulated, entry):
    emu, run, work, exe = emulated
    if _x86_only(entry) and not emu.image.cpu == "X86_64":
        pytest.skip("x86_64 only: %s" % entry)
    os.mkdir(os.path.join(work, "dir"))
    open(os.path.join(work, "dir", "a"), "w").close()
    check = NEW_ENTRY_CASES[entry](emu, work)
    assert callable(check), entry
    res = run.finish()
    assert check(res, lambda n: os.path.join(work, n)), res


# ---- the walkers: removefile, copyfile with COPYFILE_RECURSIVE, fts/nftw.
# libremovefile, libcopyfile and libsystem_c walk trees with their own
# code and reach each file through libsystem_kernel symbols, which dyld
# rebinds to the dylib's replacements.  The fake libc stands in for those
# libraries: it makes the calls through the dylib's own __interpose table
# (Emulator.interposed_by), listing each directory the way recent
# libsystem_c's fts does (open, getattrlistbulk, close).  Which calls the
# real libraries make is only shown on a Mac (docs/macos.md).
def _tree(work):
    os.makedirs(os.path.join(work, "tree", "sub"))
    for n in ("tree/a.txt", "tree/sub/b.txt"):
        with open(os.path.join(work, n), "w") as f:
            f.write(n)
    return ["tree", "tree/sub"], ["tree/a.txt", "tree/sub/b.txt"]


def test_removefile_recursive_reports_every_name_removed_and_each_listing(emulated):
    emu, run, work, exe = emulated
    dirs, files = _tree(work)
    assert emu.call("_sbx_hook_removefile", emu.cstr("tree"), 0, REMOVEFILE_RECURSIVE) == 0
    assert not os.path.exists(os.path.join(work, "tree"))
    res = run.finish()
    w = lambda n: os.path.join(work, n)  # noqa: E731
    assert {w(n) for n in dirs + files} <= set(res["writes"]), res
    assert {w(n) for n in dirs} <= set(res["enumerations"])
    assert not {w(n) for n in dirs + files} & set(res["reads"])
    assert res["complete"], res["warnings"]


def test_copyfile_recursive_reads_the_source_tree_and_writes_the_copy(emulated):
    emu, run, work, exe = emulated
    dirs, files = _tree(work)
    assert emu.call("_sbx_hook_copyfile", emu.cstr("tree"), emu.cstr("copy"), 0,
                    COPYFILE_RECURSIVE) == 0
    assert open(os.path.join(work, "copy", "sub", "b.txt")).read() == "tree/sub/b.txt"
    res = run.finish()
    w = lambda n: os.path.join(work, n)  # noqa: E731
    copies = [n.replace("tree", "copy", 1) for n in dirs + files]
    assert {w(n) for n in files} <= set(res["reads"]), res
    assert {w(n) for n in dirs} <= set(res["enumerations"])
    assert not {w(n) for n in dirs} & set(res["reads"])          # a listing, not a read
    assert not {w(n) for n in dirs + files} & set(res["writes"])
    assert {w(n) for n in copies} <= set(res["writes"])
    assert not {w(n) for n in copies} & set(res["reads"])


@pytest.mark.parametrize("stat_entries", [True, False], ids=["nftw", "fts-nostat"])
def test_tree_walk_through_getattrlistbulk(emulated, stat_entries):
    """What nftw (and fts without FTS_NOSTAT) does through libsystem_kernel:
    each directory opened, listed with getattrlistbulk, closed, and each
    entry stat'ed; fts with FTS_NOSTAT skips the stats.  The directories
    are enumerations, the entries probes (or covered by their directory's
    listing), nothing is a read."""
    emu, run, work, exe = emulated
    dirs, files = _tree(work)
    kernel = lambda sym, *a, **k: emu.call_addr(emu.interposed_by(sym), *a, **k)  # noqa: E731
    stat = "_fstatat$INODE64" if emu.image.cpu == "X86_64" else "_fstatat"
    for d in dirs:
        fd = kernel("_openat$NOCANCEL", me.D_AT_FDCWD, emu.cstr(d),
                    me.D_O_DIRECTORY | me.D_O_CLOEXEC, nfixed=3)
        assert fd >= 0
        assert kernel("_getattrlistbulk", fd, emu.alloc(24), emu.alloc(512), 512, 0) >= 0
        if stat_entries:
            for n in sorted(os.listdir(os.path.join(work, d))):
                assert kernel(stat, fd, emu.cstr(n), emu.alloc(144), 0x20) == 0
        kernel("_close$NOCANCEL", fd)
    res = run.finish()
    w = lambda n: os.path.join(work, n)  # noqa: E731
    assert {w(n) for n in dirs} <= set(res["enumerations"]), res
    assert not {w(n) for n in dirs + files} & (set(res["reads"]) | set(res["writes"]))
    if stat_entries:
        assert {w(n) for n in files} <= set(res["probes"])
    else:
        assert not {w(n) for n in files} & set(res["probes"])


def test_an_open_reported_inside_another_is_one_record(emulated):
    """open$NOCANCEL's body reaching __open_nocancel through the interpose
    table (were dyld to rebind it) reports the open once: a directory
    opened and listed is an enumeration, not also a probe of a second,
    unused open record."""
    emu, run, work, exe = emulated
    os.mkdir(os.path.join(work, "dir"))
    libc = emu.libc
    real = libc["_open$NOCANCEL"]

    def through_the_stub(e):              # libsystem_kernel's wrapper -> stub
        return e.call_nested(e.interposed_by("___open_nocancel"), e.arg(0), e.arg(1),
                             e.vararg(0, 2))
    libc["_open$NOCANCEL"] = through_the_stub
    try:
        fd = emu.call("_sbx_hook_open_nocancel", emu.cstr("dir"), OPENDIR_FLAGS, 0, nfixed=2)
    finally:
        libc["_open$NOCANCEL"] = real
    assert fd >= 0
    assert emu.call("_sbx_hook_getattrlistbulk", fd, emu.alloc(24), emu.alloc(64), 64, 0) == 0
    emu.call("_sbx_hook_close", fd)
    res = run.finish()
    d = os.path.join(work, "dir")
    assert d in res["enumerations"] and d not in res["probes"] and d not in res["reads"], res
