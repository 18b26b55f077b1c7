"""The Result of a traced run, the same on every backend (DESIGN.md §4).

A Result unpacks as ``(status, reads, writes)``; everything else is an
attribute.  Path sets are :class:`PathSet` objects: frozensets of absolute,
lexically clean ``str`` paths (decoded with ``os.fsdecode``) that iterate in
sorted order, so printing or diffing them is deterministic.

The JSON form (``to_json``/``from_json``) is the stable schema documented in
``docs/json-schema.md``; the Windows command-line front writes the same one.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional, Sequence

from .breakaway import Breakaway
from .policy import Denied, Policy, _under_windows, is_windows_path

SCHEMA = "sandbox_py.result/1"


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of ``Result.to_json()``, shipped in
    the package as ``sandbox_py/result.schema.json``."""
    from importlib.resources import files
    return json.loads(files(__package__).joinpath("result.schema.json").read_text("utf-8"))

#: Directories whose entries are not files a user's data lives in: kernel
#: views, devices, and the names the kernel gives to pipes and sockets.
PSEUDO_PREFIXES = ("/proc", "/sys", "/dev")
#: Roots of the installed system; ``exclude_system`` drops them.
SYSTEM_PREFIXES = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin",
                   "/sbin", "/etc")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


#: Windows paths in the normal form of docs/json-schema.md (C:\\dir\\file).
WINDOWS_PSEUDO_PREFIXES = ("\\\\.\\", "\\Device\\", "\\??\\")
WINDOWS_SYSTEM_PREFIXES = ("C:\\Windows", "C:\\Program Files", "C:\\ProgramData")


def is_pseudo(path: str) -> bool:
    """True for /proc, /sys, /dev and anonymous objects (``pipe:[..]`` ...);
    on Windows, device namespaces (``\\\\.\\``, ``\\Device\\``)."""
    if is_windows_path(path):
        return any(path.startswith(p) for p in WINDOWS_PSEUDO_PREFIXES)
    return not path.startswith("/") or any(_under(path, p) for p in PSEUDO_PREFIXES)


def is_system(path: str) -> bool:
    """True for paths of the installed system (/usr, /lib, /etc, ...;
    C:\\Windows and C:\\Program Files on Windows)."""
    if is_windows_path(path):
        return any(_under_windows(path, p) for p in WINDOWS_SYSTEM_PREFIXES)
    return any(_under(path, p) for p in SYSTEM_PREFIXES)


class PathSet(frozenset):
    """A frozenset of paths that iterates, prints and compares in sorted order."""

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(frozenset.__iter__(self)))

    def __repr__(self) -> str:
        return "PathSet(%r)" % (list(self),)

    def under(self, directory: str | os.PathLike) -> "PathSet":
        """The paths at or below ``directory``."""
        d = os.path.abspath(os.fspath(directory))
        return PathSet(p for p in frozenset.__iter__(self) if _under(p, d))


@dataclass(frozen=True)
class Exec:
    """One successful exec in the traced tree."""
    pid: int
    ppid: int
    path: str
    argv: tuple

    def to_dict(self) -> dict:
        return {"pid": self.pid, "ppid": self.ppid, "path": self.path,
                "argv": list(self.argv)}


@dataclass
class Result:
    returncode: int
    args: Sequence
    reads: PathSet = field(default_factory=PathSet)
    writes: PathSet = field(default_factory=PathSet)
    probes: PathSet = field(default_factory=PathSet)
    enumerations: PathSet = field(default_factory=PathSet)
    execs: tuple = ()
    stdout: Optional[bytes | str] = None
    stderr: Optional[bytes | str] = None
    backend: str = ""
    duration: float = 0.0
    complete: bool = True
    warnings: tuple = ()
    #: Accesses outside the run's Policy (sandbox_py/policy.py): refused by
    #: the system with on_violation="deny", only listed with "report".
    denied: tuple = ()
    #: Processes that left the run by declaration (sandbox_py/breakaway.py).
    breakaways: tuple = ()
    #: The Policy the run had (resolved), or None.
    policy: Optional[object] = None

    def __eq__(self, other):
        """Two Results are equal when they record the same run: compared in
        their JSON form, so ``Result.from_json(r.to_json()) == r`` although
        JSON turns ``args`` into a list of str and ``stdout``/``stderr``
        bytes into str (``os.fsdecode``)."""
        if not isinstance(other, Result):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None     # mutable, like any dataclass with eq

    # -- the tuple face: status, reads, writes ------------------------------
    def __iter__(self):
        return iter((self.returncode, self.reads, self.writes))

    @property
    def status(self) -> int:
        return self.returncode

    def check_returncode(self) -> None:
        if self.returncode:
            from .errors import CalledProcessError
            raise CalledProcessError(self.returncode, self.args, self.stdout,
                                     self.stderr, result=self)

    # -- filters --------------------------------------------------------------
    def filtered(self, *, pseudo: bool = False, system: bool = True,
                 under: Optional[str | os.PathLike | Iterable] = None,
                 ignore: Iterable[str] = ()) -> "Result":
        """A copy keeping only some paths.

        ``pseudo=False`` drops /proc, /sys, /dev and anonymous objects;
        ``system=False`` drops the installed system (/usr, /lib, /etc ...);
        ``under`` keeps only paths below the given directory (or directories);
        ``ignore`` drops paths matching any of these shell patterns, matched
        against the whole path (``*`` also matches ``/``: ``/tmp/cc*``,
        ``*.pyc``).
        """
        import fnmatch
        if isinstance(ignore, str):
            ignore = [ignore]
        ignore = [os.fsdecode(g) for g in ignore]
        roots = None
        if under is not None:
            if isinstance(under, (str, bytes, os.PathLike)):
                under = [under]
            roots = [os.path.abspath(os.fsdecode(u)) for u in under]

        def keep(p: str) -> bool:
            if not pseudo and is_pseudo(p):
                return False
            if not system and is_system(p):
                return False
            if roots is not None and not any(_under(p, r) for r in roots):
                return False
            if any(fnmatch.fnmatchcase(p, g) for g in ignore):
                return False
            return True

        def f(s: PathSet) -> PathSet:
            return PathSet(p for p in frozenset.__iter__(s) if keep(p))

        from dataclasses import replace
        return replace(self, reads=f(self.reads), writes=f(self.writes),
                       probes=f(self.probes), enumerations=f(self.enumerations))

    # -- JSON -------------------------------------------------------------------
    def to_dict(self) -> dict:
        def out(v):
            if isinstance(v, bytes):
                return os.fsdecode(v)
            return v
        return {
            "schema": SCHEMA,
            "args": [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else a
                     for a in self.args],
            "returncode": self.returncode,
            "backend": self.backend,
            # Unrounded: a float's JSON form (repr) reads back exactly.
            "duration": float(self.duration),
            "complete": self.complete,
            "warnings": list(self.warnings),
            "reads": list(self.reads),
            "writes": list(self.writes),
            "probes": list(self.probes),
            "enumerations": list(self.enumerations),
            "execs": [e.to_dict() for e in self.execs],
            "policy": None if self.policy is None else self.policy.to_dict(),
            "denied": [d.to_dict() for d in self.denied],
            "breakaways": [b.to_dict() for b in self.breakaways],
            "stdout": out(self.stdout),
            "stderr": out(self.stderr),
        }

    def to_json(self, **kw) -> str:
        # ensure_ascii keeps undecodable bytes (lone surrogates from
        # surrogateescape) as \\udcXX escapes, which json.loads round-trips.
        kw.setdefault("ensure_ascii", True)
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        if d.get("schema") != SCHEMA:
            raise ValueError("not a %s document (schema=%r)" % (SCHEMA, d.get("schema")))
        return cls(
            returncode=d["returncode"], args=tuple(d.get("args", ())),
            reads=PathSet(d.get("reads", ())), writes=PathSet(d.get("writes", ())),
            probes=PathSet(d.get("probes", ())),
            enumerations=PathSet(d.get("enumerations", ())),
            execs=tuple(Exec(e["pid"], e["ppid"], e["path"], tuple(e["argv"]))
                        for e in d.get("execs", ())),
            stdout=d.get("stdout"), stderr=d.get("stderr"),
            backend=d.get("backend", ""), duration=d.get("duration", 0.0),
            complete=d.get("complete", True), warnings=tuple(d.get("warnings", ())),
            policy=None if d.get("policy") is None else Policy.from_dict(d["policy"]),
            denied=tuple(Denied(x["path"], x["category"], x.get("pid"))
                         for x in d.get("denied", ())),
            breakaways=tuple(Breakaway(x["pid"], x["path"], tuple(x["argv"]))
                             for x in d.get("breakaways", ())),
        )

    @classmethod
    def from_json(cls, text: str) -> "Result":
        return cls.from_dict(json.loads(text))

    # -- build drivers and notebooks (the work is in fingerprint.py,
    #    frames.py and display.py) ----------------------------------------------
    def fingerprint(self, *, system: bool = True) -> str:
        """SHA-256 over the current state of this run's inputs: content of the
        files read, presence of the paths probed, names in the directories
        listed (see sandbox_py/fingerprint.py)."""
        from .fingerprint import fingerprint
        return fingerprint(self, system=system)

    def to_pandas(self):
        """Long-format DataFrame: path, category, pid, process, ok, errno
        (needs ``pip install sandbox_py[notebook]``)."""
        from .frames import to_pandas
        return to_pandas(self)

    def to_graphviz(self, **kw):
        """``graphviz.Digraph`` of processes and the files they touched
        (needs ``pip install sandbox_py[notebook]``)."""
        from .frames import to_graphviz
        return to_graphviz(self, **kw)

    def _repr_html_(self) -> str:
        from .display import to_html
        return to_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        from .display import mimebundle
        return mimebundle(self)

    def _repr_pretty_(self, p, cycle: bool) -> None:
        from .display import repr_pretty
        repr_pretty(self, p, cycle)

    def __repr__(self) -> str:
        return ("Result(returncode=%r, backend=%r, reads=%d, writes=%d, probes=%d, "
                "enumerations=%d, execs=%d, complete=%r%s)" % (
                    self.returncode, self.backend, len(self.reads), len(self.writes),
                    len(self.probes), len(self.enumerations), len(self.execs),
                    self.complete,
                    "".join(", %s=%d" % (n, len(getattr(self, n)))
                            for n in ("denied", "breakaways") if getattr(self, n))))
