"""What a run may touch: ``Sandbox().run(argv, policy=Policy(...))``.

A Policy names trees (a path and everything below it):

- ``read``: may be read, probed (stat, failed opens) and listed;
- ``write``: may also be created, written, renamed and removed;
- ``execute``: programs that may be exec'd (``None``: the read and write
  trees, so ``Policy(read=["/usr"])`` can run ``/usr/bin/cc``).

``system=True`` (the default) adds what almost every program needs to start:
reading and executing the installed system (/usr, /lib*, /bin, /sbin),
reading /etc except its secrets (SYSTEM_SECRETS: shadow and gshadow,
sudoers, /etc/ssl/private, the ssh host keys), reading /proc and /sys, and
the harmless devices (/dev/null, /dev/zero, /dev/full, /dev/random,
/dev/urandom, /dev/tty) in both directions.
It also allows probing names directly in the run's ``$PATH`` directories
(how a shell or ``execvp`` looks for a program) and in ``/`` (libselinux
looks for ``/selinux`` in nearly every tool): a stat cannot be refused
anyway, and these reveal nothing.  ``system=False`` gives exactly the trees listed.

``on_violation="deny"`` makes the operating system refuse what the policy
does not allow (Landlock on Linux, a seatbelt profile on macOS, the hook DLL
on Windows) and still traces; ``"report"`` blocks nothing.  (Landlock grants
rights on existing files only: a write tree that does not exist yet is
created, as a directory, before a denying run.)  Either way
``Result.denied`` lists every traced access outside the policy as
``Denied(path, category, pid)``; what each system can and cannot refuse is
in docs/enforcement.md.

Relative paths are taken from the run's ``cwd`` (or the current directory),
and every tree is resolved with ``os.path.realpath`` when the run starts,
because the kernel -- and so both the tracer and the enforcer -- sees
resolved paths.  This module is the one place that decides what a policy
allows; every backend and surface asks it.
"""
from __future__ import annotations

import os
from typing import Iterable, NamedTuple, Optional

ON_VIOLATION = ("deny", "report")

#: Result categories (singular, as in ``Denied.category``) each tree allows.
READ_CATEGORIES = ("read", "probe", "enumeration")
WRITE_CATEGORIES = READ_CATEGORIES + ("write",)

#: The installed system: read and executed by nearly every program.
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
               "/etc", "/proc", "/sys")
SYSTEM_EXECUTE = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")
#: Secrets under /etc that the system baseline leaves out: a tree rule
#: cannot carve a hole, so /etc is granted entry by entry without them
#: (and /etc/ssl, /etc/ssh one level further).
SYSTEM_SECRETS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
                  "/etc/sudoers", "/etc/sudoers.d", "/etc/ssl/private",
                  "/etc/security/opasswd")
_SECRET_SUFFIXES = {"/etc/ssh": "_key"}      # private host keys (ssh_host_*_key)


def _system_read() -> list:
    """SYSTEM_READ with /etc spelled out entry by entry, secrets left out."""
    out = []
    for tree in SYSTEM_READ:
        out.extend(_without_secrets(tree) if tree == "/etc" else [tree])
    return out


def _without_secrets(directory: str) -> list:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return [directory]
    out = []
    for name in names:
        p = os.path.join(directory, name)
        suffix = _SECRET_SUFFIXES.get(directory)
        if p in SYSTEM_SECRETS or (suffix and name.endswith(suffix)):
            continue
        if any(s.startswith(p + "/") for s in SYSTEM_SECRETS) or p in _SECRET_SUFFIXES:
            out.extend(_without_secrets(p))     # a secret lies below: one level further
        else:
            out.append(p)
    return out


#: Devices every program may use both ways.
SYSTEM_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                  "/dev/urandom", "/dev/tty")


class Denied(NamedTuple):
    """One access outside the policy: the resolved path, its category
    (``read``, ``write``, ``probe``, ``enumeration`` or ``exec``) and the
    process that made it (``None`` when the mechanism does not say)."""
    path: str
    category: str
    pid: Optional[int] = None

    def to_dict(self) -> dict:
        return {"path": self.path, "category": self.category, "pid": self.pid}


def _under(path: str, tree: str) -> bool:
    return path == tree or tree == "/" or path.startswith(tree + "/")


def _trees(value, name: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (str, bytes, os.PathLike)):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError("Policy(%s=...) must be a path or a list of paths, not %s"
                        % (name, type(value).__name__)) from None
    out = []
    for v in items:
        if not isinstance(v, (str, bytes, os.PathLike)):
            raise TypeError("Policy(%s=...) entries must be paths, not %s (%r)"
                            % (name, type(v).__name__, v))
        s = os.fsdecode(v)
        if not s or "\0" in s:
            raise ValueError("Policy(%s=...): %r is not a path" % (name, s))
        out.append(s)
    return tuple(out)


class Policy:
    """Trees a run may read, write and execute, and what to do otherwise."""

    def __init__(self, read: Iterable = (), write: Iterable = (),
                 execute: Optional[Iterable] = None, *, on_violation: str = "deny",
                 system: bool = True):
        if on_violation not in ON_VIOLATION:
            raise ValueError("on_violation must be one of %s, not %r"
                             % (", ".join(repr(m) for m in ON_VIOLATION), on_violation))
        self.read = _trees(read, "read")
        self.write = _trees(write, "write")
        self.execute = None if execute is None else _trees(execute, "execute")
        self.on_violation = on_violation
        self.system = bool(system)
        #: $PATH directories whose entries may be probed (set by resolved())
        self.search = ()

    def __repr__(self) -> str:
        return ("Policy(read=%r, write=%r, execute=%r, on_violation=%r, system=%r)"
                % (list(self.read), list(self.write),
                   None if self.execute is None else list(self.execute),
                   self.on_violation, self.system))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def to_dict(self) -> dict:
        return {"read": list(self.read), "write": list(self.write),
                "execute": None if self.execute is None else list(self.execute),
                "on_violation": self.on_violation, "system": self.system}

    @classmethod
    def from_dict(cls, d: dict) -> "Policy":
        return cls(d.get("read", ()), d.get("write", ()), d.get("execute"),
                   on_violation=d.get("on_violation", "deny"),
                   system=d.get("system", True))

    # -- resolution: once per run -------------------------------------------
    def resolved(self, cwd: Optional[str | os.PathLike] = None,
                 env: Optional[dict] = None) -> "Policy":
        """This policy with every tree absolute, relative paths taken from
        ``cwd``, each tree both as written and resolved (symlinks followed as
        the kernel would), and the system baseline spelled out
        (``system=False`` on the copy; the ``$PATH`` of ``env``, or of this
        process, in ``search``)."""
        base = os.path.abspath(os.fsdecode(cwd) if cwd is not None else os.getcwd())

        def fix(trees) -> tuple:
            out = []
            for t in trees:
                t = os.path.join(base, os.path.expanduser(t))
                # Both spellings: the resolved one is what an enforcer sees;
                # the lexical one is what a path names when it goes through
                # a symlinked directory (/lib -> usr/lib on merged systems).
                for p in (os.path.realpath(t), os.path.normpath(t)):
                    if p not in out:
                        out.append(p)
            return tuple(out)

        read, write = list(self.read), list(self.write)
        execute = None if self.execute is None else list(self.execute)
        if self.system:
            read += _system_read()
            write += SYSTEM_DEVICES
            if execute is not None:
                execute += SYSTEM_EXECUTE
        execute = read + write if execute is None else execute
        out = Policy(fix(read), fix(write), fix(execute),
                     on_violation=self.on_violation, system=False)
        if self.system:
            path = (os.environ if env is None else env).get("PATH", os.defpath)
            # "/": top-level names (/selinux ...); "/etc": names the loader
            # and libc look for there (/etc/ld.so.preload is absent on most
            # systems) now that /etc is granted entry by entry
            out.search = fix(d for d in path.split(os.pathsep) if d) + ("/", "/etc")
        return out

    # -- the rule -------------------------------------------------------------
    def allows(self, category: str, path: str) -> bool:
        """Whether an access of ``category`` to the resolved ``path`` is
        inside a *resolved* policy (see :meth:`resolved`).  Probing or
        listing a directory on the way to an allowed tree is allowed: that
        is how anything gets there (realpath, makedirs, the loader)."""
        if category == "exec":
            return any(_under(path, t) for t in (self.execute or ()))
        if category == "write":
            return any(_under(path, t) for t in self.write)
        if category not in READ_CATEGORIES:
            raise ValueError("unknown access category %r" % (category,))
        trees = self.read + self.write + (self.execute or ())
        if any(_under(path, t) for t in trees):
            return True
        return category == "probe" and (any(_under(t, path) for t in trees)
                                        or os.path.dirname(path) in self.search)

    def refusals(self, refused) -> list:
        """The refused calls a tracer saw -- ``(path, "read" | "write")``,
        a call the system failed with EACCES or EPERM, traced as a probe of
        its name -- that this policy explains: what it asked for is outside
        the policy.  (A refusal inside the policy came from elsewhere, e.g.
        file permissions, and is not the policy's.)"""
        return [Denied(path, category) for path, category in refused
                if path.startswith("/") and not self.allows(category, path)]

    def violations(self, result) -> tuple:
        """Every traced access of ``result`` outside this *resolved* policy,
        as :class:`Denied` records sorted by path (pid unknown: a Result's
        sets do not say which process made an access)."""
        out = set()
        for field, category in (("reads", "read"), ("writes", "write"),
                                ("probes", "probe"), ("enumerations", "enumeration")):
            for path in getattr(result, field):
                if path.startswith("/") and not self.allows(category, path):
                    out.add(Denied(path, category))
        for e in result.execs:
            if e.path.startswith("/") and not self.allows("exec", e.path):
                out.add(Denied(e.path, "exec", e.pid))
        return tuple(sorted(out, key=lambda d: (d.path, d.category, d.pid or 0)))
