"""The interpose backend (macOS): a DYLD_INSERT_LIBRARIES dylib whose
``__DATA,__interpose`` table replaces libSystem's file, directory and exec
entry points in every process of the run.  No root, no entitlement;
children inherit it through the environment, which the dylib puts back
when a program scrubs it.

The dylib is built from the same shim core as Linux's preload shim
(shims/core + shims/macos) and writes the same records (shims/core/sbx_log.h).

SIP and the hardened runtime: dyld strips every ``DYLD_*`` variable from
programs under /bin, /sbin, /usr/bin, /usr/sbin, /usr/libexec and /System
(and hardened-runtime binaries without the allow-dyld-environment-variables
entitlement), and so from all their children.  Such a process never says
hello (the dylib's constructor writes a START record first); the reader
names every exec'd process that stayed silent, and the Result is
incomplete.  The way around is documented in docs/macos.md: run a copy of
the tool from outside the protected folders (e.g. Homebrew's), or give the
command through a non-protected shell.

The reader in this process is Linux's preload reader
(csrc/linux/preload/preload_reader.c, as ``sandbox_py._unpriv.PreloadRun``)
with macOS process watching (csrc/macos/reader_os_darwin.c: kqueue
EVFILT_PROC).  What is verified where: docs/macos.md.

A Policy with ``on_violation="deny"`` is enforced by the kernel: a seatbelt
profile generated from it (seatbelt.py) that the launcher applies to itself
before it execs the command (csrc/macos/seatbelt_apply.c).
"""
from __future__ import annotations

import errno
import os
import shutil
import sys
from typing import Optional

NAME = "interpose"
# Off macOS the reason ("macOS only") is the whole story: no fix to offer.
REMEDY = ("reinstall sandbox_py with Xcode's command line tools (pip install -e .)"
          if sys.platform == "darwin" else "")

_HERE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
DYLIB = os.path.join(_HERE, "_sbx_interpose.dylib")
LAUNCHER = os.path.join(_HERE, "_sbx_interpose_exec")

def _reader():
    from .. import _unpriv  # noqa: PLC0415 - the extension is optional at import
    return _unpriv


def availability():
    if sys.platform != "darwin":
        return False, "macOS only (this is %s)" % sys.platform
    if not os.path.exists(DYLIB):
        from . import shadow_hint
        return False, "the interpose dylib %s is not built%s" % (DYLIB, shadow_hint())
    if not os.path.exists(LAUNCHER):
        from . import shadow_hint
        return False, "the interpose launcher %s is not built%s" % (LAUNCHER, shadow_hint())
    try:
        _reader()
    except ImportError as e:
        from . import not_built
        return False, not_built(e, "the C extension sandbox_py._unpriv")
    return True, ("DYLD interpose dylib: sees programs outside SIP-protected folders; "
                  "the others are named in warnings")


def _exec_error(program: str, path: Optional[str], cwd: Optional[str]) -> int:
    """The errno execvp will fail `program` with (as the launcher runs it),
    or 0: subprocess raises these before the child runs, and so do we."""
    if "/" in program:
        full = program if os.path.isabs(program) else os.path.join(cwd or os.getcwd(), program)
        if not os.path.exists(full):
            return errno.ENOENT
        return 0 if os.access(full, os.X_OK) and not os.path.isdir(full) else errno.EACCES
    found = shutil.which(program, path=path if path is not None else os.defpath)
    return 0 if found else errno.ENOENT


def child_env(env: Optional[dict], log_path: str, breakaway=None) -> dict:
    """The child's environment: the caller's (or ours) plus the dylib.  The
    launcher is named so that the dylib treats it as machinery."""
    env = dict(os.environ if env is None else env)
    env.pop("SBX_PRELOAD_BREAKAWAY", None)
    if breakaway:
        env.update(breakaway.shim_env())
    old = env.get("DYLD_INSERT_LIBRARIES", "")
    if DYLIB not in old.split(":"):
        env["DYLD_INSERT_LIBRARIES"] = DYLIB + (":" + old if old else "")
    env["SBX_PRELOAD_LOG"] = log_path
    env["SBX_PRELOAD_SHIM"] = DYLIB
    env["SBX_PRELOAD_HANDOFF"] = LAUNCHER
    return env


def session(sandbox):
    from .unpriv_session import RunSession  # noqa: PLC0415

    class InterposeSession(RunSession):
        #: breakaway: the shared shim core runs a declared program without
        #: DYLD_INSERT_LIBRARIES (shims/core/shim_core.c: sbx_breakaway)
        BREAKAWAY = True
        #: seatbelt, applied by the launcher (seatbelt.py)
        ENFORCES = True
        profile_path = None

        def __init__(self):
            self.run = _reader().PreloadRun()

        def _seatbelt(self, env: dict) -> None:
            """The run's profile, written privately and named to the launcher."""
            from . import seatbelt  # noqa: PLC0415
            directory = seatbelt.profile_dir()
            text = seatbelt.profile(self.policy, log_path=os.path.realpath(self.run.log_path),
                                    dylib=DYLIB, profile_dir=directory)
            self.profile_path = seatbelt.write_profile(text, directory)
            env["SBX_SEATBELT_PROFILE"] = self.profile_path

        def finish(self):
            try:
                return super().finish()
            finally:
                if self.profile_path:
                    try:
                        os.unlink(self.profile_path)
                    except OSError:
                        pass
                    self.profile_path = None

        def popen_kwargs(self, kwargs):
            kwargs = dict(kwargs)
            kwargs["env"] = child_env(kwargs.get("env"), self.run.log_path,
                                      breakaway=self.breakaway)
            # The launcher (never SIP-protected) runs in the command's place
            # and records its exec, so a protected command is named, not lost.
            self.program = kwargs.pop("executable", None)
            self.search = (kwargs["env"].get("PATH"), kwargs.get("cwd"))
            kwargs["env"]["SBX_INTERPOSE_EXE"] = os.fsdecode(self.program or "")
            kwargs["executable"] = LAUNCHER
            if self.policy is not None and self.policy.on_violation == "deny":
                self._seatbelt(kwargs["env"])
            return kwargs

        def started(self, proc):
            argv0 = proc.args[0] if isinstance(proc.args, (list, tuple)) else proc.args
            # subprocess raises FileNotFoundError for a missing program; the
            # launcher would only exit 127, so ask the same question here
            err = _exec_error(os.fsdecode(self.program or argv0), *self.search)
            if err:
                self.finish()
                raise (FileNotFoundError if err == errno.ENOENT else PermissionError)(
                    err, os.strerror(err), argv0)
            self.run.set_root(proc.pid, os.fsdecode(argv0))

    return InterposeSession()
