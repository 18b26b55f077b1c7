"""Ways a process could slip past a backend: each is traced or named.

The scenario programs cover system calls made without libc (an inline
`syscall` instruction, `int $0x80`, io_uring set up that way: test_scenarios,
test_path_truth, test_io_uring).  Here: 32-bit programs under every backend,
children started after the environment was cleared, and a program that
takes SIGSYS for itself under preload (the signal its trip-wire for
system calls made without libc rides on, shims/linux/raw_syscalls.c).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import HERE, sandbox_for

BACKENDS = ["ebpf", "preload", "ptrace"]


@pytest.fixture(scope="module")
def bins32(tmp_path_factory):
    """tests/scenarios/scenario.c built with gcc -m32 (gcc-multilib)."""
    cc = shutil.which("gcc")
    out = tmp_path_factory.mktemp("bin32")
    bins = {}
    for kind, extra in (("dynamic", []), ("static", ["-static"])):
        exe = out / ("scenario32-%s" % kind)
        p = subprocess.run([cc or "gcc", "-m32", "-O1", "-o", str(exe),
                            str(HERE / "scenarios" / "scenario.c"), "-lpthread"] + extra,
                           capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip("no 32-bit toolchain (gcc-multilib): %s" % p.stderr[-200:])
        bins[kind] = str(exe)
    return bins


@pytest.mark.parametrize("linkage", ["dynamic", "static"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_32bit_program_is_named(backend, linkage, bins32, tmp_path):
    sb = sandbox_for(backend)
    tmp_path = type(tmp_path)(os.path.realpath(tmp_path))
    (tmp_path / "data.txt").write_text("data\n")
    r = sb.run([bins32[linkage], "rdwr_read"], cwd=str(tmp_path), capture_output=True,
               timeout=60)
    assert r.returncode == 0, r.stderr
    # the loader of a 32-bit program must not be asked to load 64-bit objects
    assert b"wrong ELF class" not in r.stderr, r.stderr
    assert not r.complete
    pid = str(r.execs[0].pid)
    named = [w for w in r.warnings if "32-bit" in w and pid in w]
    assert named, r.warnings
    # named as what it is, not as a stray system call number
    assert not any("syscall 1" in w for w in r.warnings), r.warnings


CLEARED = {
    "system": "os.environ.clear(); os.system('cat data.txt > /dev/null')",
    "popen": "os.environ.clear(); os.popen('cat data.txt').read()",
    "subprocess_env": "subprocess.run(['/bin/cat', 'data.txt'], env={}, "
                      "stdout=subprocess.DEVNULL)",
    "cleared_subprocess": "os.environ.clear(); subprocess.run(['/bin/cat', 'data.txt'], "
                          "stdout=subprocess.DEVNULL)",
    "execve_empty": "os.execve('/bin/cat', ['cat', 'data.txt'], {})",
    "posix_spawn": "os.environ.clear(); "
                   "os.waitpid(os.posix_spawn('/bin/cat', ['cat', 'data.txt'], {}), 0)",
}


@pytest.mark.parametrize("how", sorted(CLEARED))
@pytest.mark.parametrize("backend", BACKENDS)
def test_child_started_after_environment_cleared(backend, how, tmp_path):
    sb = sandbox_for(backend)
    tmp_path = type(tmp_path)(os.path.realpath(tmp_path))
    (tmp_path / "data.txt").write_text("data\n")
    code = "import os, subprocess\n" + CLEARED[how]
    r = sb.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True,
               timeout=60)
    assert r.returncode == 0, r.stderr
    assert str(tmp_path / "data.txt") in r.reads
    assert any(e.path == "/bin/cat" or e.path.endswith("/cat") for e in r.execs), r.execs
    assert r.complete, r.warnings


def test_program_taking_sigsys_is_flagged_under_preload(tmp_path):
    # a program with its own SIGSYS handler (seccomp sandboxes have one)
    # keeps it; the trip-wire steps aside and the Result says so
    sb = sandbox_for("preload")
    code = ("import signal\n"
            "seen = []\n"
            "signal.signal(signal.SIGSYS, lambda *a: seen.append(1))\n"
            "assert callable(signal.getsignal(signal.SIGSYS))\n")
    r = sb.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True,
               timeout=60)
    assert r.returncode == 0, r.stderr
    assert not r.complete
    assert any("installed its own SIGSYS handler" in w for w in r.warnings), r.warnings


def test_sigsys_reset_to_default_keeps_the_watch(tmp_path):
    # SIG_DFL / SIG_IGN asked for SIGSYS are what the program sees, and the
    # watch stays on: a later system call made without libc is still named
    sb = sandbox_for("preload")
    code = ("import signal, ctypes, os\n"
            "assert signal.getsignal(signal.SIGSYS) == signal.SIG_DFL\n"
            "signal.signal(signal.SIGSYS, signal.SIG_IGN)\n"
            "assert signal.getsignal(signal.SIGSYS) == signal.SIG_IGN\n"
            "signal.signal(signal.SIGSYS, signal.SIG_DFL)\n"
            # getppid by a syscall instruction on a page of its own, low in
            # the address space like an executable's code
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.mmap.restype = ctypes.c_void_p\n"
            "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,"
            " ctypes.c_int, ctypes.c_int, ctypes.c_long]\n"
            "page = libc.mmap(0x20000000, 4096, 7, 0x22, -1, 0)\n"
            "code = bytes([0xb8, 110, 0, 0, 0, 0x0f, 0x05, 0xc3])\n"
            "ctypes.memmove(page, code, len(code))\n"
            "f = ctypes.CFUNCTYPE(ctypes.c_long)(page)\n"
            "assert f() == os.getppid()\n")
    r = sb.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True,
               timeout=60)
    assert r.returncode == 0, r.stderr
    assert not r.complete
    assert any("made system call 110 without libc" in w for w in r.warnings), r.warnings
    assert not any("SIGSYS handler" in w for w in r.warnings), r.warnings


def test_nothing_flagged_for_ordinary_programs(tmp_path):
    # the trip-wire costs nothing in programs that only use libc
    sb = sandbox_for("preload")
    tmp_path = type(tmp_path)(os.path.realpath(tmp_path))
    (tmp_path / "data.txt").write_text("data\n")
    r = sb.run(["sh", "-c", "cat data.txt | wc -c; ls >/dev/null; %s -c 'import json'"
                % sys.executable], cwd=str(tmp_path), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.complete, r.warnings
    assert os.path.join(str(tmp_path), "data.txt") in r.reads


@pytest.mark.parametrize("stack", ["8192", "unlimited"])
def test_inline_syscall_named_in_either_memory_layout(stack, tmp_path):
    # `ulimit -s unlimited` maps libraries bottom-up, below the executable:
    # the watched span still excludes it, and ordinary programs stay complete
    sandbox_for("preload")
    tmp_path = type(tmp_path)(os.path.realpath(tmp_path))
    (tmp_path / "data.txt").write_text("data\n")
    exe = tmp_path / "scenario"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(HERE / "scenarios" / "scenario.c"),
                    "-lpthread"], check=True, capture_output=True)
    code = ("import json, sys, sandbox_py\n"
            "sb = sandbox_py.Sandbox('preload')\n"
            "a = sb.run([sys.argv[1], 'inline_syscall'], capture_output=True)\n"
            "b = sb.run(['cat', 'data.txt'], capture_output=True)\n"
            "print(json.dumps([a.returncode, list(a.warnings), b.complete, list(b.warnings)]))\n")
    out = subprocess.run(["sh", "-c", 'ulimit -s %s && exec "$@"' % stack, "sh",
                          sys.executable, "-c", code, str(exe)],
                         cwd=str(tmp_path), capture_output=True, text=True, check=True)
    rc, warned, complete, other = json.loads(out.stdout.strip().splitlines()[-1])
    assert rc == 0
    assert any("made system call openat (257) without libc" in w for w in warned), warned
    assert complete, other


def test_library_taking_sigsys_before_the_shim_keeps_it(tmp_path):
    # a library the program links installs a SIGSYS handler in its
    # constructor, which runs before the shim's: the handler stays the
    # program's, and the Result says system calls without libc are unwatched
    sb = sandbox_for("preload")
    tmp_path = type(tmp_path)(os.path.realpath(tmp_path))
    (tmp_path / "lib.c").write_text(
        "#include <signal.h>\n"
        "#include <string.h>\n"
        "volatile int got;\n"
        "static void h(int s) { (void)s; got = 1; }\n"
        "__attribute__((constructor)) static void take(void) {\n"
        "    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = h;\n"
        "    sigaction(SIGSYS, &sa, 0);\n"
        "}\n")
    (tmp_path / "main.c").write_text(
        "#include <signal.h>\n"
        "#include <stdio.h>\n"
        "#include <unistd.h>\n"
        "extern volatile int got;\n"
        "int main(void) {\n"
        "    struct sigaction sa; sigaction(SIGSYS, 0, &sa);\n"
        "    long r;\n"
        "    __asm__ volatile(\"syscall\" : \"=a\"(r) : \"a\"(110L)\n"
        "                     : \"rcx\", \"r11\", \"memory\");\n"
        "    raise(SIGSYS);\n"
        "    printf(\"%d %d\\n\", r == getppid(), got);\n"
        "    return 0;\n"
        "}\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "libtake.so"),
                    str(tmp_path / "lib.c")], check=True, capture_output=True)
    subprocess.run(["gcc", "-o", str(tmp_path / "main"), str(tmp_path / "main.c"),
                    "-L" + str(tmp_path), "-ltake", "-Wl,-rpath," + str(tmp_path)],
                   check=True, capture_output=True)
    r = sb.run([str(tmp_path / "main")], cwd=str(tmp_path), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"1", b"1"]     # the call ran, the handler is the program's
    assert not r.complete
    assert any("has its own SIGSYS handler" in w for w in r.warnings), r.warnings


def test_program_setting_up_syscall_user_dispatch_is_flagged(tmp_path):
    # Wine sets up Syscall User Dispatch for itself: that replaces the
    # shim's in the thread, which the Result says
    sb = sandbox_for("preload")
    code = ("import ctypes\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.prctl(59, 0, 0, 0, 0)\n")    # PR_SET_SYSCALL_USER_DISPATCH, OFF
    r = sb.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True,
               timeout=60)
    assert r.returncode == 0, r.stderr
    assert not r.complete
    assert any("set up Syscall User Dispatch itself" in w for w in r.warnings), r.warnings
