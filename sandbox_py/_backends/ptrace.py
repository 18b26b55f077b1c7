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

from .._runner import TraceSession
from .preload import exec_fields

NAME = "ptrace"
REMEDY = ("allow ptrace (a container needs CAP_SYS_PTRACE or a seccomp profile "
          "permitting ptrace; kernel.yama.ptrace_scope must be below 3)")

LAUNCHER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "_sbx_ptrace_exec")


def _unpriv():
    from .. import _unpriv  # noqa: PLC0415 - the extension is optional at import
    return _unpriv


def availability():
    try:
        mod = _unpriv()
    except ImportError as e:
        return False, "the C extension sandbox_py._unpriv is not built (%s)" % e
    if not os.access(LAUNCHER, os.X_OK):
        return False, "the ptrace launcher %s is not built" % LAUNCHER
    return mod.ptrace_available()


class PtraceSession(TraceSession):
    def __init__(self):
        self.run = _unpriv().PtraceRun()
        self.fields = None
        self.err_r = self.err_w = None

    def popen_kwargs(self, kwargs):
        kwargs = dict(kwargs)
        env = dict(os.environ if kwargs.get("env") is None else kwargs["env"])
        self.err_r, self.err_w = os.pipe()
        gate = self.run.gate_fd
        env["SBX_PTRACE_GATE"] = str(gate)
        env["SBX_PTRACE_ERR"] = str(self.err_w)
        # Popen runs argv[0] itself unless executable= says otherwise; the
        # launcher takes its place and execs the real one with $PATH search.
        env["SBX_PTRACE_EXE"] = os.fsdecode(kwargs.pop("executable", None) or "")
        kwargs["env"] = env
        kwargs["executable"] = LAUNCHER
        kwargs["pass_fds"] = tuple(kwargs.get("pass_fds", ())) + (gate, self.err_w)
        return kwargs

    def started(self, proc):
        os.close(self.err_w)
        self.err_w = None
        argv0 = proc.args[0] if isinstance(proc.args, (list, tuple)) else proc.args
        try:
            self.run.attach(proc.pid, os.fsdecode(argv0))
        except OSError:
            proc.wait()
            self._close()
            raise
        # The launcher's exec either succeeds (the pipe closes) or reports
        # errno, which becomes the exception subprocess would have raised.
        data = os.read(self.err_r, 4)
        self._close()
        if len(data) == 4:
            proc.wait()
            self.finish()
            code = struct.unpack("i", data)[0]
            name = os.fsdecode(argv0)
            if code == errno.ENOENT:
                raise FileNotFoundError(code, os.strerror(code), name)
            if code == errno.EACCES:
                raise PermissionError(code, os.strerror(code), name)
            raise OSError(code, os.strerror(code), name)

    def _close(self):
        for fd in (self.err_r, self.err_w):
            if fd is not None:
                os.close(fd)
        self.err_r = self.err_w = None

    def wait_tree(self, timeout):
        return self.run.wait(-1.0 if timeout is None else timeout)

    def kill_tree(self):
        if self.fields is None:
            self.run.kill()

    def finish(self):
        if self.fields is None:
            self.fields = exec_fields(self.run.finish())
        return self.fields

    def abort(self):
        self._close()
        if self.fields is None:
            self.fields = exec_fields(self.run.finish())


def session(sandbox) -> PtraceSession:
    return PtraceSession()
