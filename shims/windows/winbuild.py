"""Build the Windows backend with mingw-w64: sbx_hook.dll and sbx-trace.exe.

    python shims/windows/winbuild.py [OUTDIR]      (default: build/windows)

The hook DLL and the launcher share csrc/win/inject.c and winpath.c and the
access model (csrc/core/access.c, ledger.c: what each call counts as, the
open-file ledger's rule); the launcher also links the rest of the portable
core (pathset, result, result_json).  A
target is rebuilt only when one of its sources or headers is newer, so the
test session can call build() every time at no cost.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The cross compiler on Linux; on Windows (MSYS2/mingw64, as on the CI
# runners) the native mingw-w64 gcc is plain "gcc".  SBX_MINGW_CC overrides.
CC = os.environ.get("SBX_MINGW_CC") or (
    "x86_64-w64-mingw32-gcc" if shutil.which("x86_64-w64-mingw32-gcc") or sys.platform != "win32"
    else "gcc")
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
          "-Wno-cast-function-type", "-Wno-array-bounds", "-static-libgcc"]

SHIM = os.path.join(ROOT, "shims", "windows")
CSRC = os.path.join(ROOT, "csrc")

DLL_SOURCES = [os.path.join(SHIM, f) for f in (
    "dll_main.c", "pipe_client.c", "handle_table.c", "nt_hooks.c", "win32_hooks.c",
    "process_hooks.c", "enforce.c", "hook_engine.c", "x64_decode.c")] + [
    os.path.join(CSRC, "win", "inject.c"), os.path.join(CSRC, "win", "winpath.c"),
    os.path.join(CSRC, "win", "winpolicy.c"),
    os.path.join(CSRC, "core", "access.c"), os.path.join(CSRC, "core", "ledger.c")]

EXE_SOURCES = [os.path.join(CSRC, f) for f in (
    os.path.join("win", "trace_cli.c"), os.path.join("core", "result_json.c"),
    os.path.join("core", "result.c"), os.path.join("core", "pathset.c"),
    os.path.join("core", "access.c"), os.path.join("core", "ledger.c"),
    os.path.join("win", "launcher.c"), os.path.join("win", "inject.c"),
    os.path.join("win", "cmdline.c"),
    os.path.join("win", "winpath.c"), os.path.join("win", "winpolicy.c"))]

HEADERS = (glob.glob(os.path.join(SHIM, "*.h")) + glob.glob(os.path.join(CSRC, "core", "*.h")) +
           glob.glob(os.path.join(CSRC, "win", "*.h")))


def compiler() -> str | None:
    return shutil.which(CC)


def _stale(target: str, sources) -> bool:
    if not os.path.exists(target):
        return True
    t = os.path.getmtime(target)
    return any(os.path.getmtime(s) > t for s in list(sources) + HEADERS)


def _cc(args):
    proc = subprocess.run([CC] + args, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError("%s failed:\n%s" % (" ".join([CC] + args), proc.stderr))


def build(outdir: str | None = None) -> dict:
    """Build (if stale) and return {"dll": path, "exe": path}."""
    if not compiler():
        raise RuntimeError("%s not found: install gcc-mingw-w64-x86-64 (Linux) or mingw-w64 "
                           "(Windows), or name it in SBX_MINGW_CC" % CC)
    outdir = outdir or os.path.join(ROOT, "build", "windows")
    os.makedirs(outdir, exist_ok=True)
    dll = os.path.join(outdir, "sbx_hook.dll")
    exe = os.path.join(outdir, "sbx-trace.exe")
    if _stale(dll, DLL_SOURCES):
        _cc(CFLAGS + ["-shared", "-o", dll + ".tmp"] + DLL_SOURCES)
        os.replace(dll + ".tmp", dll)
    if _stale(exe, EXE_SOURCES):
        _cc(CFLAGS + ["-municode", "-I", os.path.join(CSRC, "core"), "-o", exe + ".tmp.exe"]
            + EXE_SOURCES)
        os.replace(exe + ".tmp.exe", exe)
    return {"dll": dll, "exe": exe}


if __name__ == "__main__":
    out = build(sys.argv[1] if len(sys.argv) > 1 else None)
    print(out["exe"])
    print(out["dll"])
