"""In-process tracing without privilege that sees C code: this process,
re-executed under the preload shim, reads its own event log in windows.

The audit-hook fallback (sandbox_py/audit.py) sees only what Python code
does through the functions that raise audit events; the C code of the
traced process itself (sqlite3, ctypes calling libc, any C extension)
goes unseen.  The preload shim sees every libc call, but it must be in the
process from its start: the dynamic loader puts ``LD_PRELOAD`` libraries in
at exec, never later.  So a program that wants it re-executes itself once,
early, under the shim (:func:`reexec`): same interpreter, same
``sys.orig_argv``, same environment (the shim's variables are taken out of
``os.environ`` again at :func:`attach`), same pid, stdin and exit status (an
exec replaces the image, nothing stands between the program and its
caller).  The log is created before the exec, *paused*: the shim records
nothing until a window opens (:class:`ShimWindow`), and in a window the
reader keeps what this process and the processes started in the window do
(csrc/linux/preload/preload_reader.c, ``sbx_preload_window_begin``).

The pytest plugin does this when ``--sandbox`` needs tracing and eBPF
cannot load (docs/pytest.md says why this mechanism).
"""
from __future__ import annotations

import atexit
import json
import os
import platform
import sys
import time
from typing import Optional

#: ``<pid>:<log path>``: set for the exec, read and removed by attach().
ENV_LOG = "SANDBOX_PY_SELF_LOG"
#: JSON ``{name: value or null}``: the values the exec changed, put back by attach().
ENV_SAVED = "SANDBOX_PY_SELF_ENV"

_run = None             # the attached PreloadRun
_owner = 0              # the pid that attached it: a forked child has no reader thread
_attach_error: Optional[str] = None


def availability():
    """(True, "") when this process can be re-executed under the shim."""
    if not sys.platform.startswith("linux"):
        return False, "re-executing under the preload shim is for Linux"
    from ._backends import availability as backend_availability
    ok, why = backend_availability("preload")
    if not ok:
        return False, why
    if not sys.executable or not getattr(sys, "orig_argv", None):
        return False, ("this interpreter does not say how it was started "
                       "(sys.executable, sys.orig_argv)")
    if ENV_LOG in os.environ:
        return False, "this process was re-executed already and could not attach (%s)" % (
            _attach_error or "unknown reason")
    return True, ""


def reexec() -> str:
    """Execute this program again, under the preload shim, unless it already
    runs so: returns "" in the re-executed process (attached), or the reason
    it cannot.  Call it first thing: the program runs again from its start
    (printed output is flushed before the exec).  ``sandbox_py.trace()``
    then sees C code in this process too."""
    if attach():
        return ""           # this is the re-executed process
    ok, why = availability()
    if not ok:
        return why
    from ._backends import preload
    try:
        log = preload.log_create()
    except OSError as e:
        return str(e)
    env = preload.child_env(None, log, preload.handoff_launcher())
    saved = {k: os.environ.get(k) for k in env if env[k] != os.environ.get(k)}
    env[ENV_LOG] = "%d:%s" % (os.getpid(), log)
    env[ENV_SAVED] = json.dumps(saved)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    try:
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError as e:
        os.unlink(log)
        return "cannot execute %s again: %s" % (sys.executable, e)
    raise AssertionError("unreachable")     # pragma: no cover


def attach() -> bool:
    """In the re-executed process: read the log made for it, and put the
    environment back as it was before the exec.  True when attached (now
    or before); False when this process was not re-executed for it (a
    child that inherited the variables has another pid: they are dropped)."""
    global _run, _attach_error, _owner
    if _run is not None:
        return os.getpid() == _owner
    mark = os.environ.get(ENV_LOG)
    if not mark:
        return False
    pid, _, log = mark.partition(":")
    saved = os.environ.get(ENV_SAVED)
    if pid != str(os.getpid()):
        # another process inherited them (the shim itself is in it by its own
        # variables, which name the log of the process that started it)
        os.environ.pop(ENV_LOG, None)
        os.environ.pop(ENV_SAVED, None)
        return False
    try:
        for k, v in json.loads(saved or "{}").items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    except ValueError:
        pass
    from ._backends import preload
    try:
        run = preload.new_run(attach=log)
    except (OSError, ImportError) as e:
        _attach_error = str(e)
        try:
            os.unlink(log)
        except OSError:
            pass
        return False        # the marker stays: never executed twice
    os.environ.pop(ENV_LOG, None)
    os.environ.pop(ENV_SAVED, None)
    handoff = preload.handoff_launcher()
    if handoff:
        run.set_handoff(handoff)
    _run, _owner = run, os.getpid()
    atexit.register(_finish)
    return True


def _finish() -> None:
    global _run
    run, _run = _run, None
    if run is not None and os.getpid() == _owner:
        try:
            run.finish()        # stops the reader, removes the log
        except (OSError, ValueError):
            pass


def active() -> bool:
    """This process runs under the shim and reads its own log (not a child
    forked from it: the reader thread stayed in the parent)."""
    return _run is not None and os.getpid() == _owner


def attach_error() -> Optional[str]:
    return _attach_error


def _threads(quiet: bool = False) -> set:
    """This process's threads, as the kernel lists them (``quiet``: inside a
    window, where listing them is sandbox_py's doing, not the program's)."""
    if quiet:
        from ._backends import preload
        preload.self_quiet(True)
    try:
        return set(os.listdir("/proc/self/task"))
    except OSError:
        return set()
    finally:
        if quiet:
            preload.self_quiet(False)


class ShimWindow:
    """The SelfTrace interface (start(), stop() -> fields) over a window of
    this process's own log.  One window at a time."""

    busy = False

    def __init__(self, wait: float = 10.0, breakaway=None):
        if not active():
            raise RuntimeError("this process does not read its own log under the preload shim")
        self.wait = wait
        self.breakaway = breakaway

    def start(self) -> "ShimWindow":
        if ShimWindow.busy:
            raise RuntimeError("another trace of this process is running")
        from ._backends import preload
        if self.breakaway is not None:
            # children's shims read it from the environment, this process's
            # own shim is told
            os.environ.update(self.breakaway.shim_env())
            preload.self_breakaway(self.breakaway.lines())
        ShimWindow.busy = True
        self._threads = _threads()
        self._began = time.monotonic()
        _run.window_begin()
        return self

    def stop(self) -> dict:
        from ._runner import core_fields
        if not active():
            # a child forked inside the block leaving it: the parent's
            # window holds what it did
            ShimWindow.busy = False
            return core_fields({"execs": [], "complete": False, "warnings": [
                "this process was forked inside the traced block: what it did is in the "
                "result of the process it was forked from"]})
        # threads started in the block (any, C ones too: the kernel's task
        # list) still running are waited for like children, then said
        deadline = time.monotonic() + self.wait
        left = _threads(quiet=True) - self._threads
        while left and time.monotonic() < deadline:
            time.sleep(0.005)
            left &= _threads(quiet=True)
        try:
            done, fields = _run.window_end(max(0.0, deadline - time.monotonic()))
        finally:
            ShimWindow.busy = False
            if self.breakaway is not None:
                from ._backends import preload
                os.environ.pop("SBX_PRELOAD_BREAKAWAY", None)
                preload.self_breakaway("")
        f = core_fields(fields)
        if platform.machine() not in ("x86_64", "amd64"):
            # the shim's dlsym hands over its hooks on x86_64 only
            f["complete"] = False
            f["warnings"] = list(f["warnings"]) + [
                "calls through a function looked up on libc's own handle "
                "(ctypes.CDLL('libc.so.6').fopen, dlsym(handle, ...)) are not seen on %s"
                % platform.machine()]
        if left:
            f["complete"] = False
            f["warnings"] = list(f["warnings"]) + [
                "%d thread(s) started in the traced block were still running %gs after it "
                "ended; their later accesses are missing" % (len(left), self.wait)]
        if not done:
            f["complete"] = False
            f["warnings"] = list(f["warnings"]) + [
                "child processes started in the traced block were still running %gs "
                "after it ended; their later accesses are missing" % self.wait]
        return f
