"""The ptrace backend: seccomp-filtered ptrace, for every program.

Needs no privilege and sees static binaries and direct system calls, at the
cost of a stop per file system call.  ``subprocess.Popen`` starts the
launcher ``sandbox_py/_sbx_ptrace_exec`` in place of the command; it waits
until the tracer thread (csrc/linux/ptrace/ptrace_tracer.c) has seized it, installs the
seccomp filter and execs the command.
"""
from __future__ import annotations

import os

# LAUNCHER and Launcher are also this backend's public names (preload and
# the tests use them through here)
from .._landlock import LandlockSession
from .unpriv_session import LAUNCHER, Launcher, RunSession  # noqa: F401

NAME = "ptrace"
REMEDY = ("allow ptrace (a container needs CAP_SYS_PTRACE or a seccomp profile "
          "permitting ptrace; kernel.yama.ptrace_scope must be below 3)")


def _unpriv():
    from .. import _unpriv  # noqa: PLC0415 - the extension is optional at import
    return _unpriv


def own_files() -> list:
    """[(path, "read" | "execute")]: the files of sandbox_py a traced
    process needs (a policy must let it reach them)."""
    return [(LAUNCHER, "execute")]


def availability():
    try:
        mod = _unpriv()
    except ImportError as e:
        from . import not_built
        return False, not_built(e, "the C extension sandbox_py._unpriv")
    if not os.access(LAUNCHER, os.X_OK):
        from . import shadow_hint
        return False, "the ptrace launcher %s is not built%s" % (LAUNCHER, shadow_hint())
    return mod.ptrace_available()


class PtraceSession(LandlockSession, RunSession):
    #: breakaway: the tracer detaches a matching process at its exec and a
    #: keeper outside the run lets its seccomp-filtered calls through
    #: (csrc/linux/ptrace/ptrace_launcher.c: keep())
    BREAKAWAY = True

    def __init__(self):
        self.run = _unpriv().PtraceRun()
        self.launcher = Launcher({"SBX_PTRACE_GATE": str(self.run.gate_fd)})

    def popen_kwargs(self, kwargs):
        if self.breakaway:
            self.run.set_breakaway(self.breakaway.lines(), LAUNCHER)
        return self.launcher_kwargs(
            self.launcher.popen_kwargs(kwargs, pass_fds=(self.run.gate_fd,)))

    def started(self, proc):
        self.close_ruleset()
        self.launcher.close_child_end()
        argv0 = proc.args[0] if isinstance(proc.args, (list, tuple)) else proc.args
        try:
            self.run.attach(proc.pid, os.fsdecode(argv0))
        except OSError:
            proc.wait()
            self.launcher.close()
            raise
        err = self.launcher.exec_error(proc)
        if err:
            self.finish()
            raise err


def session(sandbox) -> PtraceSession:
    return PtraceSession()
