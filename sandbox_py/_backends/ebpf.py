"""The eBPF backend: BPF programs on tracepoints, loaded once per process.

Children are traced through a *spawn window*: while ``subprocess.Popen``
forks, the calling thread is registered in the kernel as a spawner, so the
child is traced from its first instruction, before exec.  Everything
``subprocess`` offers (pipes, input, env, cwd, start_new_session ...) then
works unchanged.
"""
from __future__ import annotations

import contextlib

import threading
from typing import Optional

from .._landlock import LandlockSession
from .._runner import TraceSession, core_fields

NAME = "ebpf"
#: How to get the privilege, for every entry point (Sandbox, trace, pytest).
PRIVILEGE = ("run as root, or give CAP_BPF and CAP_PERFMON to a dedicated copy of "
             "the interpreter: `sandbox-py doctor` prints the commands")
REMEDY = PRIVILEGE + ", or use backend='preload' or 'ptrace', which need no privilege"


_lock = threading.Lock()
_state: dict = {}


def _core():
    from .. import _core  # noqa: PLC0415 - the extension is optional at import
    return _core


def _load() -> Optional[str]:
    """Load once per process; returns None or the reason it cannot load."""
    with _lock:
        if "error" not in _state:
            try:
                _core().ebpf_load()
                _state["error"] = None
            except ImportError as e:
                from . import left_out, not_built
                _state["error"] = left_out(NAME) or not_built(e)
            except OSError as e:
                _state["error"] = e.strerror or str(e)
        return _state["error"]


def availability():
    err = _load()
    if err:
        return False, err
    return True, "BPF programs loaded (tracepoints sched_process_* and sys_exit)"


class EbpfSession(LandlockSession, TraceSession):
    #: breakaway: the declared names and paths are matched in the kernel at
    #: sched_process_exec, which untracks the process there (docs/backends.md)
    BREAKAWAY = True

    def __init__(self):
        self.core = _core()
        self.run_id = self.core.ebpf_run_begin()
        self.fields = None

    def popen_kwargs(self, kwargs):
        # The child restricts itself between fork and exec: inside the spawn
        # window, before its first exec, so that is not reported.
        return self.preexec_kwargs(kwargs)

    def started(self, proc):
        self.close_ruleset()

    @contextlib.contextmanager
    def spawning(self):
        if self.breakaway:
            try:
                self.core.ebpf_run_breakaway(self.run_id, self.breakaway.entries())
            except ValueError as e:
                from ..errors import SandboxUnavailableError
                self.finish()
                raise SandboxUnavailableError(NAME, str(e), "declare the program by its "
                                              "name") from None
        self.core.ebpf_spawner_set(self.run_id)
        try:
            yield
        finally:
            self.core.ebpf_spawner_clear()

    def wait_tree(self, timeout):
        return self.core.ebpf_run_wait(self.run_id, -1.0 if timeout is None else timeout)

    def kill_tree(self):
        self.core.ebpf_run_kill(self.run_id)

    def finish(self):
        if self.fields is None:
            self.fields = core_fields(self.core.ebpf_run_end(self.run_id))
        return self.fields

    def abort(self):
        self.close_ruleset()
        self.core.ebpf_run_kill(self.run_id)
        self.core.ebpf_run_wait(self.run_id, 5.0)
        self.finish()


def session(sandbox) -> EbpfSession:
    return EbpfSession()


class SelfTrace:
    """Trace the calling process (every thread) and every child it starts,
    from start() to stop().  Children still running at stop() are waited
    for up to ``wait`` seconds, then reported as they are (with a warning).
    """

    def __init__(self, wait: float = 10.0, breakaway=None):
        err = _load()
        if err:
            from ..errors import SandboxUnavailableError
            raise SandboxUnavailableError(NAME, err, REMEDY)
        self.core = _core()
        self.wait = wait
        self.breakaway = breakaway      # a BreakawayRule: matched in the kernel at exec
        self.run_id = None
        self.tids = []

    def start(self) -> "SelfTrace":
        self.run_id = self.core.ebpf_run_begin()
        if self.breakaway:
            self.core.ebpf_run_breakaway(self.run_id, self.breakaway.entries())
        self.tids = self.core.ebpf_track_self(self.run_id)
        return self

    def stop(self) -> dict:
        self.core.ebpf_untrack(self.tids)
        # Threads started inside the block are counted as tasks of the run;
        # children (and such threads) that outlive the block are waited for.
        done = self.core.ebpf_run_wait(self.run_id, self.wait)
        f = core_fields(self.core.ebpf_run_end(self.run_id))
        if not done:
            f["complete"] = False
            f["warnings"] = list(f["warnings"]) + [
                "threads or child processes started in the traced block were still "
                "running %gs after it ended; their later accesses are missing" % self.wait]
        return f


# Keep the names a reader looks for.
__all__ = ["NAME", "REMEDY", "availability", "session", "SelfTrace"]

