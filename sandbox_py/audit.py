"""The in-process fallback: a Python audit hook (PEP 578).

It sees the file events CPython raises -- ``open`` (builtins, ``os.open``,
imports), ``os.listdir`` and ``os.scandir``, ``os.rename``/``os.replace``,
``os.remove``, ``os.mkdir``/``os.rmdir``, ``os.chmod``/``os.chown``/
``os.utime``, ``os.truncate``, links, xattrs, ``subprocess.Popen``/
``os.exec*``/``os.posix_spawn``/``os.system`` -- and nothing else: no
``os.stat``/``os.access``/``os.path.exists`` (CPython raises no event for
them) and nothing C code does without going through those functions.
Child processes are followed through the preload backend's shim (see
_Children); without it only their exec is recorded, with pid 0 since the
event fires before the fork.  Events fire *before* the call, so success is
predicted from the file system at that moment (a call that will fail is a
probe).  A trace by this mechanism is always ``complete=False`` with these
limits in ``warnings``.
"""
from __future__ import annotations

import os
import shutil
import sys
import threading
from typing import Optional

from .result import Exec

LIMITS = ("traced with Python audit hooks: os.stat/os.access/os.path.exists "
          "probes, accesses made by C code and everything child processes "
          "do are not seen")
#: The same, when child processes are followed through the preload shim.
LIMITS_WITH_CHILDREN = (
    "traced with Python audit hooks: os.stat/os.access/os.path.exists probes "
    "and accesses made by C code in this process are not seen; child processes "
    "are followed through the LD_PRELOAD shim (not statically linked ones, nor "
    "ones started with an env= that drops LD_PRELOAD)")
def _fd_path(fd: int) -> Optional[str]:
    try:
        return os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        return None


def _absolute(path, dir_fd=None) -> Optional[str]:
    """``path`` made absolute and lexically clean, like the kernel would
    resolve it right now (relative to the cwd or to ``dir_fd``)."""
    if path is None:
        path = "."
    if isinstance(path, int):
        return _fd_path(path)
    try:
        path = os.fsdecode(path)
    except TypeError:
        return None
    if not os.path.isabs(path):
        # The C layer passes AT_FDCWD (negative) when no dir_fd was given.
        use_fd = isinstance(dir_fd, int) and dir_fd >= 0
        base = _fd_path(dir_fd) if use_fd else os.getcwd()
        if base is None:
            return None
        path = os.path.join(base, path)
    path = os.path.normpath(path)
    # POSIX lets normpath keep a leading "//"; the kernel treats it as "/".
    return "/" + path.lstrip("/")


def _access(path: str, mode: int) -> bool:
    try:
        return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)
    except OSError:
        return False


def _can_create(p: str) -> bool:
    """A new name can be made at ``p``: its directory exists and is writable."""
    parent = os.path.dirname(p) or "/"
    return os.path.isdir(parent) and _access(parent, os.W_OK | os.X_OK)


def _open_event(args):
    path, mode, flags = (tuple(args) + (None, None, None))[:3]
    p = _absolute(path)
    if p is None:
        return ()
    if isinstance(mode, str):
        writes = any(c in mode for c in "wax+")
        reads = "r" in mode or "+" in mode
        creates = any(c in mode for c in "wax")
        exclusive = "x" in mode
        truncates = "w" in mode
    else:
        flags = flags or 0
        acc = flags & os.O_ACCMODE
        writes = acc in (os.O_WRONLY, os.O_RDWR) or bool(flags & (os.O_CREAT | os.O_TRUNC))
        reads = acc in (os.O_RDONLY, os.O_RDWR)
        creates = bool(flags & os.O_CREAT)
        exclusive = creates and bool(flags & os.O_EXCL)
        truncates = bool(flags & os.O_TRUNC)
    exists = os.path.lexists(p)
    # The event fires before the call: predict whether it will succeed.  A
    # call that fails (absent file or directory, EACCES, EEXIST) is a probe
    # (docs/semantics.md), whatever it meant to do.
    if exists:
        ok = (not exclusive and (not writes or (_access(p, os.W_OK) and not os.path.isdir(p)))
              and (not reads or _access(p, os.R_OK)))
    else:
        ok = creates and _can_create(p)
    if not ok:
        return [("probes", p)]
    out = []
    if writes:
        out.append(("writes", p))
    if reads and exists and not truncates:
        if os.path.isdir(p):
            out.append(("probes", p))
        else:
            out.append(("reads", p))
            if os.path.islink(p):
                out.append(("reads", os.path.realpath(p)))
    return out


def _listing_event(args):
    p = _absolute(args[0] if args else None)
    if p is None:
        return ()
    return [("enumerations" if os.path.isdir(p) else "probes", p)]


def _writes_first(n_dirfd=None, creates=False, removes=False):
    """Handler for events whose first argument is a path that gets changed;
    ``n_dirfd`` is the index of their ``dir_fd`` argument, if any.  The call
    is predicted to fail (then it is a probe) when the path is absent, or,
    for ``creates`` (mkdir, mkfifo...), present or not creatable; a
    ``removes`` call needs a writable directory."""
    def handler(args):
        dir_fd = args[n_dirfd] if n_dirfd is not None and len(args) > n_dirfd else None
        p = _absolute(args[0], dir_fd)
        if not p:
            return ()
        exists = os.path.lexists(p)
        if creates:
            ok = not exists and _can_create(p)
        else:
            ok = exists and (not removes or _can_create(p))
        return [("writes" if ok else "probes", p)]
    return handler


def _rename_event(args):
    src, dst, src_dir_fd, dst_dir_fd = (tuple(args) + (None,) * 4)[:4]
    s, d = _absolute(src, src_dir_fd), _absolute(dst, dst_dir_fd)
    if s and d and not (os.path.lexists(s) and _can_create(s) and _can_create(d)):
        return [("probes", s), ("probes", d)]       # the rename will fail
    return [("writes", p) for p in (s, d) if p]


def _link_event(args):
    src, dst, src_dir_fd, dst_dir_fd = (tuple(args) + (None,) * 4)[:4]
    out = []
    s, d = _absolute(src, src_dir_fd), _absolute(dst, dst_dir_fd)
    if s:
        out.append(("probes", s))
    if d:
        ok = s is not None and os.path.lexists(s) and not os.path.lexists(d) and _can_create(d)
        out.append(("writes" if ok else "probes", d))
    return out


def _symlink_event(args):
    src, dst, dir_fd = (tuple(args) + (None,) * 3)[:3]
    d = _absolute(dst, dir_fd)
    if not d:
        return ()
    return [("writes" if not os.path.lexists(d) and _can_create(d) else "probes", d)]


def _probe_first(args):
    p = _absolute(args[0] if args else None)
    return [("probes", p)] if p else ()


def _executable(program, env) -> Optional[str]:
    program = os.fsdecode(program)
    if "/" in program:
        return _absolute(program)
    search = (env or {}).get("PATH") if env else None
    found = shutil.which(program, path=search if search is not None else os.environ.get("PATH"))
    return _absolute(found) if found else None


def _popen_event(args):
    executable, argv, cwd, env = (tuple(args) + (None,) * 4)[:4]
    if isinstance(argv, (str, bytes)):
        argv = [argv]
    argv = [os.fsdecode(a) for a in (argv or ())]
    program = executable if executable is not None else (argv[0] if argv else None)
    out = list(_exec_records(program, argv, env))
    if env is not None and _Children.active is not None:
        from ._backends.preload import LOG_ENV
        log = env.get(LOG_ENV) or env.get(LOG_ENV.encode())
        if os.fsdecode(log or "") != _Children.active.log_path:
            out.append(("unseen", "%s was started with an env= without the preload "
                                  "shim: its accesses are not seen" % (
                                      argv[0] if argv else program)))
    return out


def _exec_records(program, argv, env):
    if program is None:
        return ()
    path = _executable(program, env)
    if path is None:
        return [("probes", _absolute(os.fsdecode(program)))]
    return [("reads", path), ("execs", Exec(0, os.getpid(), path, tuple(argv)))]


def _exec_event(args):
    path, argv, env = (tuple(args) + (None,) * 3)[:3]
    return _exec_records(path, [os.fsdecode(a) for a in (argv or ())], env)


_FORK_UNSEEN = ("a process forked from this one (os.fork, multiprocessing) is not "
                "followed until it execs a program")


def _system_event(args):
    return _exec_records("/bin/sh", ["/bin/sh", "-c", os.fsdecode(args[0])], None)


_HANDLERS = {
    "open": _open_event,
    "os.listdir": _listing_event,
    "os.scandir": _listing_event,
    "os.mkdir": _writes_first(2, creates=True),
    "os.rmdir": _writes_first(1, removes=True),
    "os.remove": _writes_first(1, removes=True),
    "os.rename": _rename_event,
    "os.link": _link_event,
    "os.symlink": _symlink_event,
    "os.truncate": _writes_first(),
    "os.chmod": _writes_first(2),
    "os.chown": _writes_first(3),
    "os.utime": _writes_first(3),
    "os.chflags": _writes_first(),
    "os.lchflags": _writes_first(),
    "os.mkfifo": _writes_first(2, creates=True),
    "os.mknod": _writes_first(3, creates=True),
    "os.setxattr": _writes_first(),
    "os.removexattr": _writes_first(),
    "os.getxattr": _probe_first,
    "os.listxattr": _probe_first,
    "os.chdir": _probe_first,
    "subprocess.Popen": _popen_event,
    "os.exec": _exec_event,
    "os.posix_spawn": _exec_event,
    "os.spawn": lambda args: _exec_event(tuple(args)[1:]),
    "os.system": _system_event,
    # A forked copy of this process (multiprocessing's default) has no shim
    # until it execs.
    "os.fork": lambda args: [("unseen", _FORK_UNSEEN)],
    "os.forkpty": lambda args: [("unseen", _FORK_UNSEEN)],
}

# Audit hooks cannot be removed once added (PEP 578), so one hook is added on
# first use and dispatches to the running AuditTraces; with none running it
# returns after one list check.
_running: list = []
_hook_lock = threading.RLock()
_hook_added = False
_in_hook = threading.local()


#: Events that start a process which inherits the environment: the first
#: one in a trace's window puts the preload shim in os.environ (before the
#: fork: the events fire first), so a test that starts no process pays
#: nothing for it.
_SPAWN_EVENTS = frozenset(("subprocess.Popen", "os.system", "os.fork", "os.forkpty",
                           "os.posix_spawn", "os.spawn"))


def _audit_hook(event: str, args) -> None:
    running = _running
    if not running:
        return
    handler = _HANDLERS.get(event)
    if event in _SPAWN_EVENTS and not getattr(_in_hook, "active", False):
        _in_hook.active = True
        try:
            for tracer in running:
                tracer._follow_children()
        except Exception:
            pass                # never change the traced program's outcome
        finally:
            _in_hook.active = False
    if handler is None or getattr(_in_hook, "active", False):
        return
    _in_hook.active = True
    try:
        records = handler(args)
        for tracer in running:
            tracer._add(records)
    except Exception:
        # An audit hook's exception propagates into the traced code, which
        # did nothing wrong: tracing must never change the program's outcome.
        pass
    finally:
        _in_hook.active = False


class _Children:
    """Child processes started while an audit trace runs, followed by the
    preload backend's shim: the shim's variables are put in ``os.environ``
    for the window, so every child that inherits the environment (the
    ``subprocess`` default, ``os.system``, ``env=dict(os.environ, ...)``)
    loads it, and a reader collects what they did.  One window at a time
    (the environment is the process's): a second concurrent trace does
    not follow children and says so."""

    active: Optional["_Children"] = None

    def __init__(self, run, shim_env: dict, wait: float):
        self.run = run
        self.log_path = run.log_path
        self.wait = wait
        from ._backends.preload import CHILD_ENV
        self.saved = {k: os.environ.get(k) for k in CHILD_ENV}
        for k in CHILD_ENV:
            if k in shim_env:
                os.environ[k] = shim_env[k]
            else:
                os.environ.pop(k, None)

    @classmethod
    def start(cls, wait: float, breakaway=None, named: bool = False):
        """A window, or the reason children cannot be followed."""
        if cls.active is not None:
            return None, "another trace already follows child processes"
        from ._backends import availability
        ok, why = availability("preload")
        if not ok:
            return None, why
        from ._backends import preload
        run = preload.new_run(named=named)
        cls.active = cls(run, preload.child_env(None, run.log_path, None, breakaway), wait)
        return cls.active, None

    def stop(self) -> dict:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _Children.active = None
        from ._runner import core_fields
        done = self.run.wait(self.wait)
        fields = core_fields(self.run.finish())
        if not done:
            fields["complete"] = False
            fields["warnings"] = list(fields["warnings"]) + [
                "child processes started in the traced block were still running "
                "%gs after it ended; their later accesses are missing" % self.wait]
        return fields


class AuditTrace:
    """The audit-hook mechanism with the SelfTrace interface: start(), stop().

    ``children=True`` follows child processes through the preload shim
    (see _Children) when it is built here; ``wait`` is how long stop()
    waits for children still running."""

    def __init__(self, children: bool = True, wait: float = 10.0, breakaway=None):
        self._breakaway = breakaway     # a BreakawayRule, honoured by the shim in children
        self._sets = {c: set() for c in ("reads", "writes", "probes", "enumerations")}
        self._execs: list = []
        self._unseen: list = []
        self._want_children = children
        self._wait = wait
        self._children = None
        self._no_children = ""

    def _add(self, records) -> None:
        for category, value in records:
            if category == "execs":
                self._execs.append(value)
            elif category == "unseen":
                if value not in self._unseen:
                    self._unseen.append(value)
            elif value:
                self._sets[category].add(value)

    def _follow_children(self, named: bool = False) -> None:
        """A process is about to start: follow it (and any later ones).
        ``named``: the log is a file (children in a Landlock domain cannot
        reach an anonymous one through this process's /proc entry)."""
        if self._want_children and self._children is None and not self._no_children:
            with _hook_lock:
                if self._children is None and not self._no_children:
                    self._children, self._no_children = _Children.start(
                        self._wait, self._breakaway, named)

    def start(self) -> None:
        global _hook_added, _running
        with _hook_lock:
            if not _hook_added:
                sys.addaudithook(_audit_hook)
                _hook_added = True
            _running = _running + [self]

    def stop(self) -> dict:
        global _running
        with _hook_lock:
            _running = [t for t in _running if t is not self]
        if self._children is None:
            fields = {c: sorted(s) for c, s in self._sets.items()}
            warnings = [LIMITS] + [w for w in self._unseen if w == _FORK_UNSEEN]
            if self._no_children and self._execs:
                warnings.append("child processes were started and not followed: %s"
                                % self._no_children)
            fields.update(execs=list(self._execs), complete=False, warnings=warnings)
            return fields
        kids = self._children.stop()
        self._children = None
        fields = {c: sorted(self._sets[c] | set(kids.get(c, ()))) for c in self._sets}
        # The shim's exec records carry real pids; the audit hook's (pid 0,
        # fired before the fork) stay for programs the shim did not see start.
        # a declared breakaway's exec is the shim's breakaway record, not an exec
        seen = ({e.path for e in kids.get("execs", ())} |
                {b.path for b in kids.get("breakaways", ())})
        execs = list(kids.get("execs", ())) + [e for e in self._execs if e.path not in seen]
        warnings = [LIMITS_WITH_CHILDREN] + list(kids.get("warnings", ())) + self._unseen
        fields.update(execs=execs, complete=False, warnings=warnings,
                      breakaways=list(kids.get("breakaways", ())))
        return fields
