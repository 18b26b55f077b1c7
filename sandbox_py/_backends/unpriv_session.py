"""What the two unprivileged Linux backends (and macOS's interpose) share:
the session around one C run object of sandbox_py._unpriv, and the
launcher that runs in place of the command (it reports an exec failure,
or its own, back through a pipe, as subprocess does).  A module of its own
so that preload and ptrace depend on it, not on each other."""
from __future__ import annotations

import errno
import os
import struct
from typing import Optional

from .._runner import TraceSession, core_fields

LAUNCHER = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))),
                        "_sbx_ptrace_exec")


class RunSession(TraceSession):
    """A session around one C run object of sandbox_py._unpriv (PreloadRun,
    PtraceRun): they share wait/kill/finish."""

    run = None
    launcher = None
    fields = None

    def wait_tree(self, timeout):
        return self.run.wait(-1.0 if timeout is None else timeout)

    def kill_tree(self):
        if self.fields is None and self.run is not None:
            self.run.kill()

    def finish(self):
        if self.fields is None:
            self.fields = core_fields(self.run.finish()) if self.run is not None else {}
        return self.fields

    def abort(self):
        # Popen was interrupted: a child may have started all the same
        self.kill_tree()
        if self.launcher:
            self.launcher.close()
        self.finish()


def _error_record() -> struct.Struct:
    """struct sbx_launch_error (csrc/linux/ptrace/launch_error.h), as the
    extension describes it."""
    from .. import _unpriv  # noqa: PLC0415 - the extension is optional at import
    return struct.Struct(_unpriv.LAUNCH_ERROR_FORMAT)


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
        record = _error_record()
        data = os.read(self.err_r, record.size)
        self.close()
        if len(data) != record.size:
            return None             # the exec happened (the pipe closed with it)
        proc.wait()
        kind, code, what = record.unpack(data)
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
