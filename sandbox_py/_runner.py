"""The part of ``run()`` every backend shares: subprocess.run semantics.

A backend supplies a :class:`TraceSession`; this module starts the command
with ``subprocess.Popen`` inside the session's spawn window, feeds input,
collects output, waits for the whole tree, and on timeout kills the whole
tree and attaches the partial Result to the exception.  Keeping this in one
place is what makes every backend behave like ``subprocess.run``.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import time
from typing import Optional

from .breakaway import Breakaway, compile_rule
from .errors import SandboxUnavailableError, TimeoutExpired
from .policy import Policy
from .result import Exec, Result

#: How long to wait for the tree to die after it was killed.
KILL_GRACE = 5.0


class TraceSession:
    """What a backend does around one run.  Subclasses override the hooks."""

    #: The run's resolved Policy (sandbox_py/policy.py) or None; set by
    #: run_traced() before spawning.  A session that can make the system
    #: refuse accesses sets ENFORCES and applies it when on_violation="deny".
    policy = None
    ENFORCES = False
    #: Why it cannot, when ENFORCES is false only on this machine.
    ENFORCE_MISSING = ""
    #: The run's BreakawayRule (sandbox_py/breakaway.py) or None; set by
    #: run_traced() before spawning, honoured by sessions with BREAKAWAY.
    breakaway = None
    BREAKAWAY = False
    #: Warnings about the policy a session found before the run (e.g. fds
    #: handed to the run that it cannot refuse accesses through).
    policy_warnings = ()

    def prepare(self, args: list, kwargs: dict) -> None:
        """The command is known, before popen_kwargs(): a backend may choose
        how to start it (preload starts a dynamically linked command
        directly, a static one through its launcher)."""

    def popen_kwargs(self, kwargs: dict) -> dict:
        """Adjust Popen's keyword arguments (e.g. inject LD_PRELOAD)."""
        return kwargs

    def spawning(self):
        """Context manager around Popen(): children forked inside are traced."""
        return contextlib.nullcontext()

    def started(self, proc: subprocess.Popen) -> None:
        """Popen returned: the root process exists."""

    def wait_tree(self, timeout: Optional[float]) -> bool:
        """The root was reaped; wait until every descendant has exited.
        Returns False when ``timeout`` elapsed first."""
        return True

    def kill_tree(self) -> None:
        """Kill every process of the run, including ones forked meanwhile."""

    def finish(self) -> dict:
        """Stop tracing and return the run's fields, the same from every
        session, for Result.from_fields (the one place a Result is made):
        reads, writes, probes, enumerations (iterables of str), execs
        (Exec records or (pid, ppid, path, argv) tuples), processes (Process
        records, C tuples or JSON objects: sandbox_py/result.py), complete
        (bool), warnings (list of str); optionally denied (Denied records
        the mechanism itself saw refused, with their pids), refused (the
        core's (path, category) pairs of refused calls) and breakaways
        (Breakaway records)."""
        raise NotImplementedError

    def abort(self) -> None:
        """Popen failed: release whatever the session holds."""


def check_args(args) -> list:
    if isinstance(args, (str, bytes, os.PathLike)):
        raise TypeError("argv must be a sequence of arguments, not a single %s; "
                        "use shlex.split() for a command line" % type(args).__name__)
    try:
        args = list(args)
    except TypeError:
        raise TypeError("argv must be a sequence of str, bytes or os.PathLike, "
                        "not %s" % type(args).__name__) from None
    if not args:
        raise ValueError("argv is empty: give at least the program to run")
    for i, a in enumerate(args):
        if not isinstance(a, (str, bytes, os.PathLike)):
            raise TypeError("argv[%d] must be str, bytes or os.PathLike, not %s (%r)"
                            % (i, type(a).__name__, a))
    return args


def prepare_session(backend: str, session: TraceSession, policy, breakaway,
                    cwd, env=None) -> None:
    """Hand the run's Policy (resolved against its cwd) and breakaway rule
    to the session, or say clearly that this backend cannot honour them."""
    if policy is not None:
        if not isinstance(policy, Policy):
            raise TypeError("policy must be a sandbox_py.Policy, not %s"
                            % type(policy).__name__)
        if policy.on_violation == "deny" and not session.ENFORCES:
            why = session.ENFORCE_MISSING
            raise SandboxUnavailableError(
                backend, "it cannot make the system refuse accesses (policy with "
                "on_violation='deny')%s" % (": " + why if why else ""),
                "use on_violation='report', or another backend (docs/enforcement.md)")
        session.policy = policy.resolved(cwd, env)
    rule = compile_rule(breakaway)
    if rule is not None:
        if not session.BREAKAWAY:
            raise SandboxUnavailableError(backend, "it cannot let processes leave the run "
                                          "(breakaway=)", "use another backend")
        rule.check_decidable(backend)
        session.breakaway = rule


def run_traced(backend: str, session: TraceSession, args, *, input=None,
               capture_output: bool = False, timeout: Optional[float] = None,
               check: bool = False, policy=None, breakaway=None, **popen_kwargs) -> Result:
    args = check_args(args)
    prepare_session(backend, session, policy, breakaway, popen_kwargs.get("cwd"),
                    popen_kwargs.get("env"))
    if input is not None:
        if popen_kwargs.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used.")
        popen_kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        if popen_kwargs.get("stdout") is not None or popen_kwargs.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used "
                             "with capture_output.")
        popen_kwargs["stdout"] = subprocess.PIPE
        popen_kwargs["stderr"] = subprocess.PIPE

    start = time.monotonic()
    try:
        session.prepare(args, popen_kwargs)
        with session.spawning():
            proc = subprocess.Popen(args, **session.popen_kwargs(popen_kwargs))
    except BaseException:
        session.abort()
        raise
    try:
        session.started(proc)
    except (OSError, ValueError):
        raise                       # the command could not start: nothing runs
    except BaseException:
        # Ctrl-C while the command starts: the tree must not run on unseen
        session.kill_tree()
        proc.kill()
        proc.wait()
        session.finish()
        raise

    def build(stdout, stderr, extra_warning=None) -> Result:
        return Result.from_fields(
            session.finish(), args=args,
            returncode=proc.returncode if proc.returncode is not None else -9,
            stdout=stdout, stderr=stderr, backend=backend,
            duration=time.monotonic() - start, policy=session.policy,
            warnings=[extra_warning] if extra_warning else (),
            policy_warnings=session.policy_warnings)

    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        if not wait_interruptibly(session, left):
            raise subprocess.TimeoutExpired(args, timeout)
    except subprocess.TimeoutExpired:
        session.kill_tree()
        proc.kill()
        stdout, stderr = proc.communicate()
        session.wait_tree(KILL_GRACE)
        result = build(stdout, stderr,
                       "timeout after %gs: the whole process tree was killed; "
                       "accesses after that point are missing" % timeout)
        raise TimeoutExpired(args, timeout, stdout, stderr, result=result) from None
    except BaseException:
        # KeyboardInterrupt and friends: never leave the tree running.
        session.kill_tree()
        proc.kill()
        proc.wait()
        session.wait_tree(KILL_GRACE)
        session.finish()
        raise

    result = build(stdout, stderr)
    if check:
        result.check_returncode()
    return result


#: Longest a C wait runs before Python gets to handle a signal (Ctrl-C).
WAIT_SLICE = 0.1


def wait_interruptibly(session, timeout: Optional[float]) -> bool:
    """session.wait_tree(timeout) in short slices: the C waits release the
    GIL but cannot run Python's signal handlers, so a KeyboardInterrupt
    while a background child lingers is raised within WAIT_SLICE."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        step = WAIT_SLICE if left is None else min(WAIT_SLICE, left)
        if session.wait_tree(step):
            return True
        if left is not None and left <= step:
            return False


def core_fields(d: dict) -> dict:
    """A C core's result dict (csrc/python/pyresult.c) as TraceSession.finish()
    returns it: execs become Exec records."""
    d = dict(d)
    d["execs"] = [Exec(pid, ppid, path, tuple(argv)) for pid, ppid, path, argv in d["execs"]]
    d["breakaways"] = [Breakaway(pid, path, tuple(argv))
                       for pid, _ppid, path, argv in d.get("breakaways", ())]
    return d


def exec_record(pid: int, ppid: int, path: str, argv) -> Exec:
    return Exec(pid, ppid, path, tuple(argv))
