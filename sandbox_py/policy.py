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

The system baseline depends on the system the run happens on
(``resolved(platform=...)``, default ``sys.platform``): Linux's above;
macOS's (:data:`DARWIN_SYSTEM`) adds /System, /Library, /private/etc and
the devices dyld opens; Windows's (:data:`WINDOWS_SYSTEM`) is
``%SystemRoot%`` and the console and null devices.  Windows paths (the
normal form of docs/json-schema.md, ``C:\\dir\\file``) are compared
without regard to letter case, one UTF-16 unit at a time with Unicode's
simple upper-case mapping (:func:`windows_fold`), the comparison the hook
DLL makes (csrc/win/winpolicy.c mirrors :meth:`Policy.allows`;
tests/test_windows_enforce.py checks that both answer a table of cases
alike).
"""
from __future__ import annotations

import ntpath
import os
import sys
from typing import Iterable, NamedTuple, Optional

from .paths import is_windows_path, under, windows_fold  # noqa: F401 (policy's names too)

ON_VIOLATION = ("deny", "report")

#: Categories (singular, as in ``Denied.category``) a read tree allows.
READ_CATEGORIES = ("read", "probe", "enumeration")

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

#: macOS: what dyld, libSystem and the frameworks read when any program
#: starts (the shared cache lives under /System, and under
#: /System/Volumes/Preboot/Cryptexes since macOS 13; /etc is /private/etc;
#: time zones and the dyld closure cache under /private/var/db).  /Library
#: holds the system-wide frameworks and preferences, readable by every user.
DARWIN_SYSTEM = {
    "read": ("/usr", "/bin", "/sbin", "/System", "/Library", "/private/etc",
             "/private/var/db/timezone", "/private/var/db/dyld"),
    "execute": ("/usr", "/bin", "/sbin", "/System", "/Library/Developer"),
    # /dev/dtracehelper: dyld opens it read-write in every process
    "devices": ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/tty",
                "/dev/dtracehelper", "/dev/fd"),
}


def _windows_system() -> dict:
    """Windows: the system directory tree (%SystemRoot%, where the loader
    finds kernel32 and every system DLL), the null and console devices,
    and named pipes (channels between processes, not files; compilers and
    build servers talk through them)."""
    root = os.environ.get("SystemRoot") or os.environ.get("windir") or "C:\\Windows"
    return {"read": (root,), "execute": (root,),
            "devices": ("\\\\.\\NUL", "\\\\.\\CON", "\\\\.\\CONIN$",
                        "\\\\.\\CONOUT$", "\\\\.\\pipe")}


def system_baseline(platform: Optional[str] = None) -> dict:
    """``{"read", "execute", "devices"}`` trees of ``system=True`` on
    ``platform`` (a ``sys.platform`` value; default this one)."""
    platform = platform or sys.platform
    if platform == "win32":
        return _windows_system()
    if platform == "darwin":
        return dict(DARWIN_SYSTEM)
    return {"read": _system_read(), "execute": SYSTEM_EXECUTE, "devices": SYSTEM_DEVICES}


# ---- Windows paths ------------------------------------------------------------
def windows_normal(path: str, cwd: Optional[str] = None) -> str:
    """A Windows tree as the hook DLL spells paths (docs/json-schema.md):
    absolute (relative ones taken from ``cwd``), backslashes, ``.``/``..``
    applied, no ``\\\\?\\`` prefix, drive letter upper case, no
    trailing backslash but on a drive's root."""
    p = path.replace("/", "\\")
    if p.startswith("\\\\?\\UNC\\"):
        p = "\\\\" + p[8:]
    elif p.startswith("\\\\?\\") or p.startswith("\\??\\"):
        p = p[4:]
    drive_relative = len(p) > 1 and p[1] == ":" and p[2:3] != "\\"      # D:x
    rooted = p.startswith("\\") and not p.startswith("\\\\")          # \x
    if drive_relative or rooted or not ntpath.isabs(p):
        base = windows_normal(cwd) if cwd is not None else None
        if drive_relative and (base is None or base[:2].upper() != p[:2].upper()):
            # another drive's current directory is not known here: its root
            p = p[:2] + "\\" + p[2:]
        elif base is None:
            raise ValueError("a relative Windows path needs the run's cwd: %r" % (path,))
        elif rooted:
            p = base[:2] + p if base[1:2] == ":" else ntpath.join(base, p)
        else:
            p = ntpath.join(base, p[2:] if drive_relative else p)
    device = p.startswith("\\\\.\\")
    p = p if device else ntpath.normpath(p)
    if len(p) > 1 and p[1] == ":":
        p = p[0].upper() + p[1:]
    if len(p) > 3 and p.endswith("\\"):
        p = p.rstrip("\\")
    return p


class Denied(NamedTuple):
    """One access outside the policy: the resolved path, its category
    (``read``, ``write``, ``probe``, ``enumeration`` or ``exec``) and the
    process that made it (``None`` when the mechanism does not say)."""
    path: str
    category: str
    pid: Optional[int] = None

    def to_dict(self) -> dict:
        return {"path": self.path, "category": self.category, "pid": self.pid}


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


def _checkable(path: str) -> bool:
    """A path a policy speaks about: absolute, on either system (pipes and
    sockets named ``pipe:[..]`` are not files)."""
    return path.startswith("/") or is_windows_path(path)


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
                 env: Optional[dict] = None, platform: Optional[str] = None) -> "Policy":
        """This policy with every tree absolute, relative paths taken from
        ``cwd``, each tree both as written and resolved (symlinks followed as
        the kernel would), and the system baseline of ``platform`` (a
        ``sys.platform`` value, default this one) spelled out
        (``system=False`` on the copy; the ``$PATH`` of ``env``, or of this
        process, in ``search``).  On Windows trees are put in the normal
        form the hook DLL reports paths in; they are also resolved
        (junctions, symbolic links) when resolving on Windows itself."""
        platform = platform or sys.platform
        if platform == "win32":
            base = os.fsdecode(cwd) if cwd is not None else (
                os.getcwd() if sys.platform == "win32" else None)
        else:
            base = os.path.abspath(os.fsdecode(cwd) if cwd is not None else os.getcwd())

        def spellings(t: str) -> tuple:
            if platform == "win32":
                p = windows_normal(t, base)
                # only Windows can follow its links (junctions, symlinks)
                return (p, windows_normal(os.path.realpath(p))) if sys.platform == "win32" \
                    else (p,)
            t = os.path.join(base, os.path.expanduser(t))
            # Both spellings: the resolved one is what an enforcer sees; the
            # lexical one is what a path names when it goes through a
            # symlinked directory (/lib -> usr/lib on merged systems).
            return os.path.realpath(t), os.path.normpath(t)

        known: dict = {}        # each tree resolved once, however many lists hold it

        def fix(trees) -> tuple:
            out: dict = {}
            for t in trees:
                if t not in known:
                    known[t] = spellings(t)
                out.update(dict.fromkeys(known[t]))
            return tuple(out)

        read, write = list(self.read), list(self.write)
        execute = None if self.execute is None else list(self.execute)
        if self.system:
            baseline = system_baseline(platform)
            read += baseline["read"]
            write += baseline["devices"]
            if execute is not None:
                execute += baseline["execute"]
        execute = read + write if execute is None else execute
        out = Policy(fix(read), fix(write), fix(execute),
                     on_violation=self.on_violation, system=False)
        if self.system and platform != "win32":
            path = (os.environ if env is None else env).get("PATH", os.defpath)
            # "/": top-level names (/selinux ...); "/etc": names the loader
            # and libc look for there (/etc/ld.so.preload is absent on most
            # systems) now that /etc is granted entry by entry
            out.search = fix(d for d in path.split(":") if d) + ("/", "/etc")
        return out

    # -- the rule -------------------------------------------------------------
    def allows(self, category: str, path: str) -> bool:
        """Whether an access of ``category`` to the resolved ``path`` is
        inside a *resolved* policy (see :meth:`resolved`).  Probing or
        listing a directory on the way to an allowed tree is allowed: that
        is how anything gets there (realpath, makedirs, the loader)."""
        if category == "exec":
            return any(under(path, t) for t in (self.execute or ()))
        if category == "write":
            return any(under(path, t) for t in self.write)
        if category not in READ_CATEGORIES:
            raise ValueError("unknown access category %r" % (category,))
        trees = self.read + self.write + (self.execute or ())
        if any(under(path, t) for t in trees):
            return True
        return category == "probe" and (any(under(t, path) for t in trees)
                                        or os.path.dirname(path) in self.search)

    def refusals(self, refused) -> list:
        """The refused calls a tracer saw -- ``(path, "read" | "write")``,
        a call the system failed with EACCES or EPERM, traced as a probe of
        its name and of the file that name reached (a symlink's target, what
        /proc/self/root or /proc/self/fd/N led to: what the system judged)
        -- that this policy explains: what it asked for is outside the
        policy.  (A refusal inside the policy came from elsewhere, e.g. file
        permissions, and is not the policy's.)"""
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
                if _checkable(path) and not self.allows(category, path):
                    out.add(Denied(path, category))
        for e in result.execs:
            if _checkable(e.path) and not self.allows("exec", e.path):
                out.add(Denied(e.path, "exec", e.pid))
        return tuple(sorted(out, key=lambda d: (d.path, d.category, d.pid or 0)))


#: Said by an incomplete Result of a run under a deny policy.
UNSEEN_REFUSALS = ("Result.denied lists the accesses this run traced: what the backend "
                   "did not see (named in the warnings above) was held to the policy all "
                   "the same, but a refusal among it is not listed")


def merge_denied(mechanism, traced) -> tuple:
    """The run's denied accesses: what the mechanism reported (with pids)
    and every traced access outside the policy, each (path, category) once.
    A refused call is traced as a probe of its name; when the mechanism
    says what it asked for (a read, a write), that stands instead."""
    seen = {}
    for d in list(mechanism) + list(traced):
        key = (d.path, d.category)
        if key not in seen or (seen[key].pid is None and d.pid is not None):
            seen[key] = d
    asked = {d.path for d in seen.values() if d.category in ("read", "write")}
    return tuple(sorted((d for d in seen.values()
                         if not (d.category == "probe" and d.path in asked)),
                        key=lambda d: (d.path, d.category)))
