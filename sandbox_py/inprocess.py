"""Tracing the *current* process for the duration of a block.

    with sandbox_py.trace() as t:
        do_something()
    t.result.reads, t.result.writes, ...

Two mechanisms, chosen by ``backend``:

``ebpf``
    The eBPF backend follows the calling process (all its threads) and every
    child it starts, at the syscall level: it sees ``os.stat``, C extensions,
    and everything children do.  Needs root (or CAP_BPF + CAP_PERFMON).

``preload``
    Without privilege, when this process runs under the preload shim: it
    was re-executed under it first thing (``sandbox_py.selfshim.reexec()``;
    the pytest plugin does so with ``--sandbox``), and reads its own event
    log for the block.  The shim sees every libc call of this process (C
    extensions, ctypes, sqlite3 included) and of the children started in
    the block; not system calls made without libc, nor io_uring (named in
    ``warnings`` when they happen).

``audit``
    The fallback: a Python audit hook (sandbox_py/audit.py says exactly what
    it sees).  It misses ``os.stat``/``os.access``/``os.path.exists`` and
    anything C code does directly; child processes are followed through the
    preload shim (put in ``os.environ`` from the first process started in
    the block to its end) when that backend is built.  Its results are
    always ``complete=False``.

``auto`` (the default) uses ``ebpf`` when it can run here, else ``preload``
when this process runs under the shim, else ``audit``, saying so in
``warnings`` -- and at the start of the block, with a
:class:`~sandbox_py.errors.SandboxIncompleteWarning` naming what it will not
see and how to see it.
"""
from __future__ import annotations

import time
import warnings as _warnings
from typing import Optional

from .errors import SandboxIncompleteWarning, SandboxUnavailableError
from .result import Result

BACKENDS = ("auto", "ebpf", "preload", "audit")

#: What the audit fallback will not see and how to see it, said when a block
#: starts with it.
AUDIT_UNSEEN = (
    "sandbox_py.trace() falls back to Python audit hooks here (%s): it will not see "
    "os.stat/os.access/os.path.exists probes nor anything C code in this process does "
    "(sqlite3, ctypes calling libc, C extensions); child processes are followed through "
    "the preload shim.  To see all of it: run as root (or with CAP_BPF + CAP_PERFMON) "
    "for eBPF, or call sandbox_py.selfshim.reexec() first thing in the program")


def _ebpf_module():
    """The eBPF backend module if it can trace this process, else the reason."""
    try:
        from ._backends import ebpf
    except ImportError as e:
        return None, "the eBPF backend is not built in this installation (%s)" % e
    if not hasattr(ebpf, "SelfTrace"):
        return None, "the eBPF backend here cannot trace the current process"
    ok, why = ebpf.availability()
    return (ebpf, why) if ok else (None, why)


class Trace:
    """Records what the current process and its children touch between
    :meth:`start` and :meth:`stop` (or inside a ``with`` block).

    ``result`` is a :class:`~sandbox_py.Result` once stopped; its ``args``
    are empty, its ``returncode`` is 0, or 1 when the block raised.
    """

    def __init__(self, backend: str = "auto", *, wait: Optional[float] = None,
                 breakaway=None):
        if backend not in BACKENDS:
            raise ValueError("backend must be one of %s, not %r" % (", ".join(BACKENDS), backend))
        from .breakaway import compile_rule
        #: Programs whose exec leaves the trace (sandbox_py/breakaway.py):
        #: matched in the kernel (ebpf) or by the shim in children (audit).
        self.breakaway = compile_rule(breakaway)
        if self.breakaway is not None:
            self.breakaway.check_decidable(backend)
        self.requested = backend
        #: Seconds stop() waits for threads and children started in the block
        #: that are still running (eBPF; None: the backend's default).
        self.wait = wait
        self.backend = ""
        self._notes: list = []
        self._impl = None
        self._start = 0.0
        self._result: Optional[Result] = None
        #: Warn at start() when the mechanism cannot see part of the block
        #: (the pytest plugin says it per test instead).
        self.announce = True

    def start(self) -> "Trace":
        if self._impl is not None:
            raise RuntimeError("this trace is already running")
        # sandbox_py's own one-time machinery (asking the dynamic loader for
        # its search subdirectories) must not run inside the window
        from ._backends.preload import loader_capdirs
        loader_capdirs()
        if self.requested == "preload":
            # nor loading the eBPF extension (the loader's search for its
            # libraries), which a trace inside this one would do
            _ebpf_module()
        impl = None
        if self.requested in ("auto", "ebpf"):
            ebpf, why = _ebpf_module()
            if ebpf is not None:
                impl = (ebpf.SelfTrace(breakaway=self.breakaway) if self.wait is None
                        else ebpf.SelfTrace(wait=self.wait, breakaway=self.breakaway))
                self.backend = "ebpf"
            elif self.requested == "ebpf":
                from ._backends.ebpf import PRIVILEGE
                raise SandboxUnavailableError(
                    "ebpf", why, "%s; or use sandbox_py.trace(backend='audit'), the "
                    "Python-level fallback" % PRIVILEGE)
        if impl is None and self.requested in ("auto", "preload"):
            from . import selfshim
            if selfshim.active() and not selfshim.ShimWindow.busy:
                impl = selfshim.ShimWindow(wait=10.0 if self.wait is None else self.wait,
                                           breakaway=self.breakaway)
                self.backend = "preload"
            elif selfshim.active():
                # one window at a time: a trace inside another (a test's own
                # trace() under the pytest plugin's) takes the audit hooks
                if self.requested == "preload":
                    raise SandboxUnavailableError(
                        "preload", "an enclosing trace holds this process's shim window",
                        "use sandbox_py.trace() (auto), which falls back to audit hooks")
                self._notes.append("the preload shim's window of this process is held by "
                                   "an enclosing trace")
            elif self.requested == "preload":
                raise SandboxUnavailableError(
                    "preload", "this process does not run under the preload shim",
                    "call sandbox_py.selfshim.reexec() first thing in the program (it "
                    "executes the program again under the shim); the pytest plugin does "
                    "so itself with --sandbox")
            else:
                self._notes.append("eBPF in-process tracing unavailable (%s)" % why)
        if impl is None:
            from .audit import AuditTrace
            impl = AuditTrace(wait=10.0 if self.wait is None else self.wait,
                              breakaway=self.breakaway)
            self.backend = "audit"
            if self.announce:
                _warnings.warn(SandboxIncompleteWarning(AUDIT_UNSEEN % (
                    "; ".join(self._notes) or "backend='audit' was asked for")), stacklevel=3)
        self._result = None
        self._start = time.monotonic()
        impl.start()
        self._impl = impl
        return self

    def stop(self, returncode: int = 0) -> Result:
        if self._impl is None:
            raise RuntimeError("this trace is not running")
        impl, self._impl = self._impl, None
        fields = impl.stop()
        self._result = Result.from_fields(
            fields, args=(), returncode=returncode, backend=self.backend,
            duration=time.monotonic() - self._start, warnings=self._notes)
        return self._result

    @property
    def result(self) -> Result:
        if self._result is None:
            raise RuntimeError("the trace has not finished: read .result after the "
                               "with block (or after stop())")
        return self._result

    def __enter__(self) -> "Trace":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.stop(0 if exc_type is None else 1)
        return False


def trace(backend: str = "auto", *, wait: Optional[float] = None, breakaway=None) -> Trace:
    """``with trace() as t: ...`` then ``t.result``: what the current process
    (all threads) and the children it starts touched inside the block.

    With eBPF, threads and child processes started in the block and still
    running when it ends are waited for up to ``wait`` seconds (default: the
    backend's), then the result is marked incomplete.

    ``breakaway``: programs (names, absolute paths) that leave the trace at
    their exec, like ``Sandbox.run(breakaway=...)``: not followed, not
    waited for, listed in ``result.breakaways``."""
    return Trace(backend, wait=wait, breakaway=breakaway)
