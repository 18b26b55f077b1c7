"""Build the macOS interpose dylib and launcher.

On a Mac, setup.py calls build() with the system clang (a universal
arm64+x86_64 dylib).  Anywhere else, build() cross-compiles one
architecture with zig (``pip install ziglang``: real macOS libc headers and
libSystem.tbd, no SDK), which is how the Mach-O checks in
tests/test_macos_build.py and .ci/run verify the dylib on Linux.

    python shims/macos/machobuild.py OUTDIR [arm64|x86_64 ...]
"""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DYLIB = "_sbx_interpose.dylib"
LAUNCHER = "_sbx_interpose_exec"
ARCHS = ("arm64", "x86_64")
# the oldest macOS the binaries load on; also what zig's headers select
MIN_MACOS = "11.0"

DYLIB_SOURCES = ["shims/core/shim_core.c", "shims/core/hooks_posix.c",
                 "shims/macos/shim_os_darwin.c", "shims/macos/hooks_darwin.c",
                 "shims/macos/interpose.c", "csrc/core/pathnorm.c", "csrc/core/access.c"]
LAUNCHER_SOURCES = ["csrc/macos/interpose_launcher.c", "csrc/macos/seatbelt_apply.c"]
# The reader of the shim log in the Python process: the same reader as
# Linux's preload backend, with the macOS process watching (kqueue).
# setup.py builds these into sandbox_py._unpriv on macOS.
READER_SOURCES = ["csrc/python/module_unpriv.c", "csrc/linux/preload/preload_reader.c",
                  "csrc/macos/reader_os_darwin.c", "csrc/python/pyresult.c",
                  "csrc/core/pathset.c", "csrc/core/pathnorm.c", "csrc/core/result.c",
                  "csrc/core/keyed_table.c", "csrc/core/access.c", "csrc/core/ledger.c"]
READER_INCLUDES = ["csrc/core", "csrc/python", "csrc/linux/preload", "shims/core"]
# deprecated entry points (readdir_r) are hooked on purpose: programs still call them
CFLAGS = ["-O2", "-Wall", "-Wno-unused-command-line-argument", "-Wno-deprecated-declarations",
          "-fvisibility=hidden",
          "-Ishims/core", "-Icsrc/core"]
# nothing beyond libSystem: the dylib enters every program of the run
DYLIB_FLAGS = ["-shared", "-fPIC", "-Wl,-install_name,@rpath/" + DYLIB]


def zig_cc(arch: str) -> list:
    """zig's clang for one macOS architecture."""
    zarch = {"arm64": "aarch64", "x86_64": "x86_64"}[arch]
    return [sys.executable, "-m", "ziglang", "cc", "-target", "%s-macos.%s" % (zarch, MIN_MACOS)]


def _lipo():
    """LLVM's lipo (Debian: llvm-lipo-NN), or None."""
    import shutil
    for name in ("llvm-lipo", "llvm-lipo-19", "llvm-lipo-16", "llvm-lipo-15", "llvm-lipo-14"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def run(cmd: list) -> None:
    print(" ".join(cmd), flush=True)
    subprocess.check_call(cmd, cwd=ROOT)


def build(outdir: str, archs=ARCHS, cc=None) -> dict:
    """Build the dylib and launcher into outdir; returns {name: path}.
    `cc` None: zig, one output per architecture (name.<arch>); else that
    compiler (Apple clang) with -arch for each, one universal output."""
    os.makedirs(outdir, exist_ok=True)
    out = {}
    if cc is None:
        for arch in archs:
            for name, extra, sources in ((DYLIB, DYLIB_FLAGS, DYLIB_SOURCES),
                                         (LAUNCHER, [], LAUNCHER_SOURCES)):
                path = os.path.join(outdir, "%s.%s" % (name, arch))
                run(zig_cc(arch) + CFLAGS + extra + ["-o", path] + sources)
                out["%s.%s" % (name, arch)] = path
        lipo = _lipo()
        if lipo and len(archs) > 1:
            # the universal files a Mac build ships, from the same slices
            for name in (DYLIB, LAUNCHER):
                path = os.path.join(outdir, name)
                run([lipo, "-create", "-output", path]
                    + [out["%s.%s" % (name, a)] for a in archs])
                out[name] = path
        return out
    arch_flags = []
    for arch in archs:
        arch_flags += ["-arch", arch]
    for name, extra, sources in ((DYLIB, DYLIB_FLAGS, DYLIB_SOURCES),
                                 (LAUNCHER, [], LAUNCHER_SOURCES)):
        path = os.path.join(outdir, name)
        run([cc] + arch_flags + ["-mmacosx-version-min=" + MIN_MACOS] + CFLAGS + extra
            + ["-o", path + ".tmp"] + sources)
        os.replace(path + ".tmp", path)
        out[name] = path
    return out


def cross_link_reader(outdir: str, arch: str, python_include: str) -> str:
    """The reader extension linked as a Mach-O bundle for `arch` with zig,
    the Python C API left to the interpreter (-undefined dynamic_lookup,
    as setuptools links extensions on macOS).  Only a check: the headers
    are this machine's Python's, so the bundle is not shipped."""
    path = os.path.join(outdir, "_unpriv.%s.so" % arch)
    run(zig_cc(arch) + ["-O2", "-Wall", "-Wno-missing-braces", "-std=gnu11", "-shared",
                        "-Wl,-undefined,dynamic_lookup", "-I" + python_include]
        + ["-I" + d for d in READER_INCLUDES] + ["-o", path] + READER_SOURCES)
    return path


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build(sys.argv[1], tuple(sys.argv[2:]) or ARCHS)
