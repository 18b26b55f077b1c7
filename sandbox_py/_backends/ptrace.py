"""The ptrace backend: seccomp-filtered ptrace, for every program.

Needs no privilege and sees static binaries and direct system calls, at the
cost of a stop per file system call.  ``subprocess.Popen`` starts the
launcher ``sandbox_py/_sbx_ptrace_exec`` in place of the command; it waits
until the tracer thread (csrc/ptrace_tracer.c) has seized it, installs the
seccomp filter and execs the command.
"""
from __future__ import annotations

import errno
import os
import struct
from typing import Optional

from .preload import RunSession

NAME = "ptrace"
REMEDY = ("allow ptrace (a container needs CAP_SYS_PTRACE or a seccomp profile "
          "permitting ptrace; kernel.yama.ptrace_scope must be below 3)")

LAUNCHER = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))),
                        "_sbx_ptrace_exec")


def _unpriv():
    from .. import _unpriv  # noqa: PLC0415 - the extension is optional at import
    return _unpriv


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


#: struct launch_error of csrc/linux/ptrace/ptrace_launcher.c
_ERROR_RECORD = struct.Struct("ii240s")


def _above_stdio(fd: int) -> int:
    """fd moved to 3 or above: with this process's stdin closed, a pipe
    would land on 0, where the child's own stdin then replaces it."""
    if fd >= 3:
        return fd
    import fcntl  # noqa: PLC0415 - POSIX only, like this backend
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


class Launcher:
    """Popen runs the launcher in place of the command (same argv); the
    launcher execs the command and reports an exec failure back through a
    pipe, so that run() raises what subprocess would (FileNotFoundError)."""

    def __init__(self, mode: dict):
        self.mode = mode            # environment that selects the launcher's mode
        self.err_r = self.err_w = None

    def popen_kwargs(self, kwargs: dict, pass_fds=()) -> dict:
        kwargs = dict(kwargs)
        env = dict(os.environ if kwargs.get("env") is None else kwargs["env"])
        self.err_r, self.err_w = (_above_stdio(fd) for fd in os.pipe())
        env.update(self.mode)
        env["SBX_PTRACE_NOTIFY"] = "1"      # this build's tracer takes seccomp listeners
        env["SBX_PTRACE_ERR"] = str(self.err_w)
        # Popen runs argv[0] itself unless executable= says otherwise; the
        # launcher takes its place and execs the real one with $PATH search.
        env["SBX_PTRACE_EXE"] = os.fsdecode(kwargs.pop("executable", None) or "")
        kwargs["env"] = env
        kwargs["executable"] = LAUNCHER
        kwargs["pass_fds"] = tuple(kwargs.get("pass_fds", ())) + tuple(pass_fds) + (self.err_w,)
        return kwargs

    def close_child_end(self):
        if self.err_w is not None:
            os.close(self.err_w)
            self.err_w = None

    def exec_error(self, proc) -> Optional[OSError]:
        """Wait for the command's exec; the error subprocess would raise."""
        self.close_child_end()
        data = os.read(self.err_r, _ERROR_RECORD.size)
        self.close()
        if len(data) != _ERROR_RECORD.size:
            return None             # the exec happened (the pipe closed with it)
        proc.wait()
        kind, code, what = _ERROR_RECORD.unpack(data)
        what = os.fsdecode(what.split(b"\0", 1)[0])
        if kind == 1:               # the launcher's own set-up failed
            return OSError(code, "sandbox_py's ptrace launcher failed before running the "
                                 "command: %s: %s" % (what, os.strerror(code)))
        argv0 = proc.args[0] if isinstance(proc.args, (list, tuple)) else proc.args
        cls = {errno.ENOENT: FileNotFoundError, errno.EACCES: PermissionError}.get(code, OSError)
        return cls(code, os.strerror(code), os.fsdecode(argv0))

    def close(self):
        for fd in (self.err_r, self.err_w):
            if fd is not None:
                os.close(fd)
        self.err_r = self.err_w = None


class PtraceSession(RunSession):
    def __init__(self):
        self.run = _unpriv().PtraceRun()
        self.launcher = Launcher({"SBX_PTRACE_GATE": str(self.run.gate_fd)})

    def popen_kwargs(self, kwargs):
        return self.launcher.popen_kwargs(kwargs, pass_fds=(self.run.gate_fd,))

    def started(self, proc):
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
