"""Linux enforcement of a Policy with Landlock (docs/enforcement.md).

The ruleset is built here, in the process that starts the run, from the
resolved policy's trees; the run's first process restricts itself to it
before exec (the ptrace launcher for preload and ptrace, a preexec_fn for
ebpf), so every process of the run inherits it and none can undo it.  The
rules travel as a Landlock ruleset fd: nothing the command could rewrite.

Every Linux session mixes in :class:`LandlockSession` (before its
TraceSession base); the kernel's Landlock ABI decides what can be refused
(:func:`abi`).
"""
from __future__ import annotations

import errno
import os
from typing import Optional

#: kinds of csrc/linux/landlock.h
READ, WRITE, EXECUTE, LIST = 1, 2, 4, 8


def _unpriv():
    from . import _unpriv  # noqa: PLC0415 - the extension is optional at import
    return _unpriv


def abi() -> tuple:
    """(the Landlock ABI used here, or 0; why not, when 0)."""
    try:
        mod = _unpriv()
    except ImportError as e:
        return 0, "the C extension sandbox_py._unpriv is not built (%s)" % e
    if not hasattr(mod, "landlock_abi"):
        return 0, "Landlock is Linux's"
    version, err = mod.landlock_abi()
    if version:
        return version, ""
    if err == errno.EOPNOTSUPP:
        return 0, ("Landlock is built into this kernel but not enabled (add landlock to "
                   "lsm= at boot)")
    return 0, "this kernel has no Landlock (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)"


def rules(policy, own=()) -> list:
    """[(path, kind)] of a resolved Policy and of the backend's ``own``
    files ([(path, kind)]: its shim, its log), each once, kinds merged.
    A write tree that does not exist yet is created (a directory, parents
    included): Landlock grants rights on existing inodes only, and the
    policy allows the run to create it anyway.  A read or execute tree that
    does not exist is left out (there is nothing to read there)."""
    kinds: dict = {}
    for trees, kind in ((policy.read, READ), (policy.write, READ | WRITE),
                        (policy.execute or (), READ | EXECUTE)):
        for t in trees:
            kinds[t] = kinds.get(t, 0) | kind
    for t, kind in kinds.items():
        if kind & WRITE and not os.path.lexists(t):
            os.makedirs(t, exist_ok=True)
    for t, kind in own:
        kinds[t] = kinds.get(t, 0) | kind
    return sorted(kinds.items())


class Ruleset:
    """One run's ruleset fd, built from a resolved Policy."""

    def __init__(self, policy, own=()):
        version, why = abi()
        if not version:
            from .errors import SandboxUnavailableError
            raise SandboxUnavailableError("landlock", why, "use on_violation='report'")
        self.abi = version
        self.fd, skipped = _unpriv().landlock_ruleset(version, rules(policy, own))
        # Left out: trees that do not exist, trees this user cannot reach
        # (EACCES: the run could not either, with or without a rule), and
        # files of the kernel's internal mounts (EBADFD: a memfd such as the
        # preload log, which Landlock never restricts); anything else means
        # a rule the run would silently lack: say it.
        quiet = (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP, errno.EBADFD)
        bad = [(os.fsdecode(p), e) for p, e in skipped if e not in quiet]
        if bad:
            self.close()
            raise OSError(bad[0][1], "cannot add the policy rule for %s to the Landlock "
                          "ruleset: %s" % (bad[0][0], os.strerror(bad[0][1])))

    def allow(self, path: str, kind: int) -> None:
        """One more rule, before any process restricts itself to it."""
        _unpriv().landlock_allow(self.fd, self.abi, path, kind)

    def preexec(self):
        """For subprocess.Popen(preexec_fn=...): restrict the child."""
        _unpriv().landlock_restrict(self.fd)
        os.close(self.fd)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class LandlockSession:
    """What a Linux session adds to enforce a policy: ENFORCES where the
    kernel has Landlock, and the run's ruleset (built on first use)."""

    ruleset: Optional[Ruleset] = None

    def own_files(self) -> tuple:
        """[(path, kind)] the backend's own machinery needs inside the run
        (a shim every process loads, the log it writes): not the policy's
        business, so granted whatever the policy says."""
        return ()

    @property
    def ENFORCES(self) -> bool:     # noqa: N802 - the TraceSession attribute
        return abi()[0] > 0

    @property
    def ENFORCE_MISSING(self) -> str:  # noqa: N802
        return abi()[1]

    def enforcing(self) -> Optional[Ruleset]:
        """The run's ruleset when its policy is to be enforced, else None."""
        if self.policy is None or self.policy.on_violation != "deny":
            return None
        if self.ruleset is None:
            self.ruleset = Ruleset(self.policy, self.own_files())
        return self.ruleset

    def check_passed_fds(self, kwargs: dict) -> None:
        """Landlock checks a file when it is opened: an fd handed to the run
        (pass_fds) stays usable whatever the policy says.  Name each one that
        reaches outside it, so that the gap is never silent (the tracers list
        what the run actually did through it in Result.denied)."""
        out = []
        for fd in kwargs.get("pass_fds", ()):
            try:
                path = os.readlink("/proc/self/fd/%d" % fd)
                import fcntl  # noqa: PLC0415 - Linux only, like this module
                mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
            except OSError:
                continue
            if not path.startswith("/"):
                continue            # a pipe, a socket: no path to police
            wants = ["read"] if mode == os.O_RDONLY else ["write"] if mode == os.O_WRONLY \
                else ["read", "write"]
            refused = [w for w in wants if not self.policy.allows(w, path)]
            if refused:
                out.append("fd %d (%s, open for %s) was passed to the run: the policy "
                           "cannot refuse accesses through an fd opened before it "
                           "(docs/enforcement.md)" % (fd, path, " and ".join(wants)))
        self.policy_warnings = tuple(out)

    def launcher_kwargs(self, kwargs: dict) -> dict:
        """Popen kwargs of a run started through the ptrace launcher, which
        restricts itself before exec (csrc/linux/ptrace/ptrace_launcher.c)."""
        rs = self.enforcing()
        if rs is None:
            return kwargs
        self.check_passed_fds(kwargs)
        kwargs = dict(kwargs)
        kwargs["env"] = dict(kwargs["env"], SBX_LANDLOCK_FD=str(rs.fd))
        kwargs["pass_fds"] = tuple(kwargs.get("pass_fds", ())) + (rs.fd,)
        return kwargs

    def preexec_kwargs(self, kwargs: dict) -> dict:
        """Popen kwargs of a run started without the launcher: the child
        restricts itself in a preexec_fn (after the caller's own)."""
        rs = self.enforcing()
        if rs is None:
            return kwargs
        self.check_passed_fds(kwargs)
        kwargs = dict(kwargs)
        theirs = kwargs.get("preexec_fn")

        def preexec():
            if theirs is not None:
                theirs()
            rs.preexec()
        kwargs["preexec_fn"] = preexec
        return kwargs

    def close_ruleset(self):
        if self.ruleset is not None:
            self.ruleset.close()

    def abort(self):
        self.close_ruleset()
        super().abort()
