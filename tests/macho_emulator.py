"""Run functions of a Mach-O dylib (x86_64 or arm64) on Linux, without dyld.

The macOS interpose dylib cannot be loaded here, but its code can run: the
segments are mapped into a unicorn CPU (the engine qiling is built on),
rebased, and every libSystem import is bound to a `ret` stub whose
behaviour a Python function supplies (a fake libc, backed by this machine's
file system with Darwin's flag values and struct layouts).  The code that
runs is the Darwin build's own: the hooks, the access model, the record
writer, the interpose glue.  Calls follow each architecture's Apple ABI
(on arm64 the variadic arguments go on the stack).

Only what the tests call is served; an import without a Python body stops
the emulation with its name (never a silent 0).
"""
from __future__ import annotations

import ctypes
import mmap
import os
import re
import struct
import subprocess

from unicorn import (UC_ARCH_ARM64, UC_ARCH_X86, UC_HOOK_CODE, UC_MODE_64, UC_MODE_ARM,
                     UC_PROT_ALL, Uc)
from unicorn import arm64_const as a64
from unicorn import x86_const as x86

BASE = 0x10000000          # where the image is loaded (its slide)
STUBS = 0x20000000         # one `ret` per import
STACK = 0x30000000
RET = 0x38000000           # return address of a call from Python: emulation stops there
HEAP = 0x40000000          # strings and buffers handed to the code
LOGMAP = 0x7000000000      # the shared log, mapped from the host file
PROGRAM_SLIDE = 0          # a program keeps its link address (0x100000000 up)
PAGE = 0x1000
# per architecture: unicorn's CPU, the argument registers, the result, the
# stack pointer, the `ret` instruction
ARCH = {
    "X86_64": dict(uc=(UC_ARCH_X86, UC_MODE_64),
                   args=(x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI, x86.UC_X86_REG_RDX,
                         x86.UC_X86_REG_RCX, x86.UC_X86_REG_R8, x86.UC_X86_REG_R9),
                   ret=x86.UC_X86_REG_RAX, sp=x86.UC_X86_REG_RSP, insn=b"\xc3"),
    "ARM64": dict(uc=(UC_ARCH_ARM64, UC_MODE_ARM),
                  args=tuple(getattr(a64, "UC_ARM64_REG_X%d" % i) for i in range(8)),
                  ret=a64.UC_ARM64_REG_X0, sp=a64.UC_ARM64_REG_SP,
                  insn=struct.pack("<I", 0xD65F03C0)),
}

# Darwin's values (sys/fcntl.h, sys/errno.h)
D_O_ACCMODE, D_O_APPEND, D_O_CREAT, D_O_TRUNC, D_O_EXCL = 0x3, 0x8, 0x200, 0x400, 0x800
D_O_DIRECTORY, D_O_CLOEXEC = 0x100000, 0x1000000
D_AT_FDCWD = -2
D_F_GETFL, D_F_GETPATH = 3, 50


def _page_up(n):
    return (n + PAGE - 1) & ~(PAGE - 1)


def linux_flags(dflags: int) -> int:
    fl = dflags & D_O_ACCMODE
    for d, lx in ((D_O_APPEND, os.O_APPEND), (D_O_CREAT, os.O_CREAT), (D_O_TRUNC, os.O_TRUNC),
                  (D_O_EXCL, os.O_EXCL), (D_O_DIRECTORY, os.O_DIRECTORY),
                  (D_O_CLOEXEC, os.O_CLOEXEC)):
        if dflags & d:
            fl |= lx
    return fl


def darwin_stat(st: os.stat_result) -> bytes:
    """struct stat with 64-bit inodes (x86_64 $INODE64), 144 bytes."""
    b = bytearray(144)
    struct.pack_into("<iHHQIIi", b, 0, st.st_dev & 0x7FFFFFFF, st.st_mode & 0xFFFF,
                     min(st.st_nlink, 0xFFFF), st.st_ino, st.st_uid, st.st_gid, 0)
    struct.pack_into("<q", b, 96, st.st_size)
    return bytes(b)


class MachO:
    """The load commands, symbols, rebases and binds of a Mach-O file, as
    llvm-objdump and llvm-nm print them."""

    def __init__(self, path: str, objdump: str, nm: str):
        self.path = path
        heads = subprocess.run([objdump, "--macho", "--private-headers", path],
                               capture_output=True, text=True, check=True).stdout
        self.cpu = re.search(r"MH_MAGIC_64\s+(\S+)", heads).group(1)
        self.segments = [(m.group(1), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4)),
                          int(m.group(5)))
                         for m in re.finditer(r"segname (\S+)\s+vmaddr (0x[0-9a-f]+)\s+vmsize "
                                              r"(0x[0-9a-f]+)\s+fileoff (\d+)\s+filesize (\d+)",
                                              heads)]
        self.sections = {m.group(1): (int(m.group(2), 16), int(m.group(3), 16))
                         for m in re.finditer(r"sectname (\S+)\s+segname \S+\s+addr "
                                              r"(0x[0-9a-f]+)\s+size (0x[0-9a-f]+)", heads)}
        self.init_funcs = [(int(m.group(1), 16), int(m.group(2), 16)) for m in re.finditer(
            r"sectname __mod_init_func\s+segname \S+\s+addr (0x[0-9a-f]+)\s+size (0x[0-9a-f]+)",
            heads)]
        self.symbols = {}
        out = subprocess.run([nm, path], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3:
                self.symbols[f[2]] = int(f[0], 16)
        self.rebases = []
        out = subprocess.run([objdump, "--macho", "--rebase", path], capture_output=True,
                             text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 4 and f[3] == "pointer":
                self.rebases.append(int(f[2], 16))
        self.binds = {}
        for kind in ("--bind", "--lazy-bind"):
            out = subprocess.run([objdump, "--macho", kind, path], capture_output=True,
                                 text=True, check=True).stdout
            for line in out.splitlines():
                f = [t for t in line.split() if t != "(weak_import)"]
                if len(f) >= 5 and f[0].startswith("__") and f[2].startswith("0x"):
                    self.binds[int(f[2], 16)] = f[-1]


class Emulator:
    """One process: the dylib (and optionally a program) loaded, their
    functions callable, their imports served.

    With a `program`, this plays dyld's part in interposition: each of the
    program's imports that the dylib's __DATA,__interpose table replaces is
    bound to the dylib's replacement, read from the table itself; the
    dylib's own imports go to libSystem (here: the fake libc), as dyld never
    rebinds the interposing image."""

    def __init__(self, image: MachO, libc: dict, program: MachO = None):
        self.image = image
        self.program = program
        self.libc = libc
        self.arch = ARCH[image.cpu]
        self.arm64 = image.cpu == "ARM64"
        self.uc = uc = Uc(*self.arch["uc"])
        if self.arm64:
            # code built for Apple silicon uses ARMv8.3+ instructions (LDAPR)
            # and the SIMD registers
            uc.ctl_set_cpu_model(a64.UC_CPU_ARM64_MAX)
            uc.reg_write(a64.UC_ARM64_REG_CPACR_EL1, 0x300000)
        self._map(image, BASE)
        if program:
            self._map(program, PROGRAM_SLIDE)
        names = set(image.binds.values())
        self.interposed = self._interpose_table() if program else {}
        if program:
            names |= {n for n in program.binds.values() if n not in self.interposed}
        self.imports = sorted(names)
        uc.mem_map(STUBS, _page_up(16 * len(self.imports) + 16), UC_PROT_ALL)
        for i in range(len(self.imports)):
            uc.mem_write(STUBS + 16 * i, self.arch["insn"])
        slot = {name: STUBS + 16 * i for i, name in enumerate(self.imports)}
        for addr, name in image.binds.items():
            uc.mem_write(BASE + addr, struct.pack("<Q", slot[name]))
        if program:
            for addr, name in program.binds.items():
                target = self.interposed.get(name, slot.get(name))
                uc.mem_write(PROGRAM_SLIDE + addr, struct.pack("<Q", target))
        uc.mem_map(STACK, 0x100000, UC_PROT_ALL)
        uc.mem_map(RET, PAGE, UC_PROT_ALL)
        uc.mem_map(HEAP, 0x1000000, UC_PROT_ALL)
        self.heap = HEAP
        self.errno_addr = self.alloc(8)
        self.missing = None
        self.maps = []
        self.atexit = []           # (function, argument) as __cxa_atexit got them
        uc.hook_add(UC_HOOK_CODE, self._import, begin=STUBS,
                    end=STUBS + 16 * len(self.imports))

    def _map(self, image: MachO, slide: int) -> None:
        uc = self.uc
        with open(image.path, "rb") as f:
            data = f.read()
        for name, vmaddr, vmsize, fileoff, filesize in image.segments:
            if name in ("__PAGEZERO", "__LINKEDIT") or not vmsize:
                continue
            uc.mem_map(slide + vmaddr, _page_up(vmsize), UC_PROT_ALL)
            uc.mem_write(slide + vmaddr, data[fileoff:fileoff + filesize])
        for addr in image.rebases:
            v = struct.unpack("<Q", uc.mem_read(slide + addr, 8))[0]
            uc.mem_write(slide + addr, struct.pack("<Q", v + slide))

    def _interpose_table(self) -> dict:
        """{replacee symbol: replacement address} from the dylib's
        __DATA,__interpose section (after rebasing), as dyld reads it."""
        img = self.image
        sect = img.sections.get("__interpose")
        assert sect, "the dylib has no __interpose section"
        addr, size = sect
        table = {}
        for i in range(size // 16):
            repl = struct.unpack("<Q", self.uc.mem_read(BASE + addr + 16 * i, 8))[0]
            table[img.binds[addr + 16 * i + 8]] = repl
        return table

    # ---- memory ------------------------------------------------------------
    def alloc(self, n: int) -> int:
        p = self.heap
        self.heap += (n + 15) & ~15
        return p

    def cstr(self, s) -> int:
        b = os.fsencode(s) + b"\0"
        p = self.alloc(len(b))
        self.uc.mem_write(p, b)
        return p

    def read_cstr(self, p: int) -> bytes:
        out = bytearray()
        while True:
            chunk = bytes(self.uc.mem_read(p + len(out), 64))
            i = chunk.find(b"\0")
            if i >= 0:
                return bytes(out + chunk[:i])
            out += chunk

    def arg(self, i: int) -> int:
        return self.uc.reg_read(self.arch["args"][i])

    def vararg(self, i: int, nfixed: int) -> int:
        """The i-th variadic argument of an import with nfixed named ones:
        in the next register on x86_64, on the stack on Apple arm64."""
        if not self.arm64:
            return self.arg(nfixed + i)
        sp = self.uc.reg_read(self.arch["sp"])
        return struct.unpack("<Q", self.uc.mem_read(sp + 8 * i, 8))[0]

    def set_errno(self, e: int) -> int:
        self.uc.mem_write(self.errno_addr, struct.pack("<i", e))
        return -1

    def map_host_file(self, fd: int, length: int) -> int:
        """mmap(MAP_SHARED) of a host file: the code's stores land in it."""
        m = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.maps.append(m)
        host = ctypes.addressof(ctypes.c_char.from_buffer(m))
        at = LOGMAP + 0x100000000 * (len(self.maps) - 1)
        self.uc.mem_map_ptr(at, _page_up(length), UC_PROT_ALL, host)
        return at

    # ---- calls ---------------------------------------------------------------
    def _import(self, uc, address, size, user):
        name = self.imports[(address - STUBS) // 16]
        body = self.libc.get(name)
        if body is None:
            self.missing = name
            uc.emu_stop()
            return
        r = body(self)
        uc.reg_write(self.arch["ret"], (r or 0) & 0xFFFFFFFFFFFFFFFF)

    def call_addr(self, addr: int, *args, wide: bool = False, nfixed: int = None) -> int:
        """Call the function at addr; its result as a C int, or as a 64-bit
        value (ssize_t, pointers) when `wide`.  With `nfixed`, the
        arguments after the first nfixed are variadic."""
        uc = self.uc
        regs = self.arch["args"]
        named = args if nfixed is None or not self.arm64 else args[:nfixed]
        stacked = [] if nfixed is None or not self.arm64 else list(args[nfixed:])
        for reg, a in zip(regs, named):
            uc.reg_write(reg, a & 0xFFFFFFFFFFFFFFFF)
        sp = STACK + 0x100000 - 0x1000
        if self.arm64:
            for i, a in enumerate(stacked):
                uc.mem_write(sp + 8 * i, struct.pack("<Q", a & 0xFFFFFFFFFFFFFFFF))
            uc.reg_write(a64.UC_ARM64_REG_LR, RET)
        else:
            sp -= 8
            uc.mem_write(sp, struct.pack("<Q", RET))
            uc.reg_write(x86.UC_X86_REG_RAX, 0)  # no vector registers in a variadic call
        uc.reg_write(self.arch["sp"], sp)
        self.missing = None
        uc.emu_start(addr, RET)
        if self.missing:
            raise NotImplementedError("the fake libc has no %s" % self.missing)
        r = uc.reg_read(self.arch["ret"])
        return ctypes.c_int64(r).value if wide else ctypes.c_int32(r & 0xFFFFFFFF).value

    def call_nested(self, addr: int, *args, wide: bool = False, nfixed: int = None) -> int:
        """Call code of the image from inside a fake libc function: what
        libSystem does when one of its libraries calls a symbol the dylib
        interposes (libremovefile's unlink, libcopyfile's open ...), which
        dyld rebinds to the replacement.  Runs below the caller's stack;
        the caller's stack pointer (and link register) are put back."""
        uc = self.uc
        keep = [self.arch["sp"]] + ([a64.UC_ARM64_REG_LR] if self.arm64 else [])
        saved = [(r, uc.reg_read(r)) for r in keep]
        sp = (uc.reg_read(self.arch["sp"]) - 0x800) & ~0xF
        named = args if nfixed is None or not self.arm64 else args[:nfixed]
        for reg, a in zip(self.arch["args"], named):
            uc.reg_write(reg, a & 0xFFFFFFFFFFFFFFFF)
        if self.arm64:
            for i, a in enumerate(args[len(named):]):     # Apple arm64: variadic on the stack
                uc.mem_write(sp + 8 * i, struct.pack("<Q", a & 0xFFFFFFFFFFFFFFFF))
            uc.reg_write(a64.UC_ARM64_REG_LR, RET)
        else:
            sp -= 8
            uc.mem_write(sp, struct.pack("<Q", RET))
            uc.reg_write(x86.UC_X86_REG_RAX, 0)
        uc.reg_write(self.arch["sp"], sp)
        uc.emu_start(addr, RET)
        if self.missing:
            raise NotImplementedError("the fake libc has no %s" % self.missing)
        r = uc.reg_read(self.arch["ret"])
        for reg, v in saved:
            uc.reg_write(reg, v)
        return ctypes.c_int64(r).value if wide else ctypes.c_int32(r & 0xFFFFFFFF).value

    def interposed_by(self, symbol: str) -> int:
        """The dylib's replacement for a libSystem symbol, from its own
        __DATA,__interpose section: where dyld sends every other image's
        call of `symbol` (libSystem's libraries included)."""
        return self._interpose_table()[symbol]

    def call(self, symbol: str, *args, wide: bool = False, nfixed: int = None) -> int:
        return self.call_addr(BASE + self.image.symbols[symbol], *args, wide=wide,
                              nfixed=nfixed)

    def run_main(self, argv: list) -> int:
        """The program's main(argc, argv) (its own constructors: none)."""
        argvp = self._argv(argv)
        return self.call_addr(PROGRAM_SLIDE + self.program.symbols["_main"], len(argv), argvp)

    def _argv(self, argv: list) -> int:
        argvp = self.alloc(8 * (len(argv) + 1))
        for i, a in enumerate(argv):
            self.uc.mem_write(argvp + 8 * i, struct.pack("<Q", self.cstr(a)))
        self.uc.mem_write(argvp + 8 * len(argv), b"\0" * 8)
        return argvp

    def run_exit(self) -> None:
        """What exit() does before the process goes: the handlers
        registered with __cxa_atexit (the dylib's destructor), last first."""
        while self.atexit:
            fn, arg = self.atexit.pop()
            self.call_addr(fn, arg)

    def run_constructors(self, argv: list) -> None:
        argvp = self._argv(argv)
        for addr, size in self.image.init_funcs:
            for i in range(size // 8):
                fn = struct.unpack("<Q", self.uc.mem_read(BASE + addr + 8 * i, 8))[0]
                self.call_addr(fn, len(argv), argvp, 0)
