"""The Result of a traced run, the same on every backend.

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
from . import paths
from .paths import PSEUDO_PREFIXES, SYSTEM_PREFIXES, is_pseudo, is_system  # noqa: F401
from .policy import UNSEEN_REFUSALS, Denied, Policy, merge_denied


SCHEMA = "sandbox_py.result/1"


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of ``Result.to_json()``, shipped in
    the package as ``sandbox_py/result.schema.json``."""
    from importlib.resources import files
    return json.loads(files(__package__).joinpath("result.schema.json").read_text("utf-8"))

class PathSet(frozenset):
    """A frozenset of paths that iterates, prints and compares in sorted order."""

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(frozenset.__iter__(self)))

    def __repr__(self) -> str:
        return "PathSet(%r)" % (list(self),)

    def under(self, directory: str | os.PathLike) -> "PathSet":
        """The paths at or below ``directory``."""
        d = os.path.abspath(os.fspath(directory))
        return PathSet(p for p in frozenset.__iter__(self) if paths.under(p, d))


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


_CATEGORIES = ("reads", "writes", "probes", "enumerations")


@dataclass(frozen=True)
class Process:
    """One program image of one process of the run: a process that execs
    twice has two records (same ``pid``); what a forked child does before
    its exec is a record of its own, with its parent's image.  Threads are
    their process.  ``parent`` is the index in ``Result.processes`` of the
    record this pid was forked from (None for the root); ``returncode`` is
    None where the mechanism does not learn it; ``path``, ``cwd`` None where
    unknown.  The four sets are what this record itself touched."""
    pid: int
    ppid: int
    path: Optional[str]
    argv: tuple
    cwd: Optional[str] = None
    returncode: Optional[int] = None
    parent: Optional[int] = None
    reads: PathSet = field(default_factory=PathSet)
    writes: PathSet = field(default_factory=PathSet)
    probes: PathSet = field(default_factory=PathSet)
    enumerations: PathSet = field(default_factory=PathSet)

    @property
    def name(self) -> str:
        """The program's name: the executed file's, else argv[0]'s."""
        if self.path:
            return os.path.basename(self.path)
        return os.path.basename(self.argv[0]) if self.argv else ""

    def categories(self, path: str) -> tuple:
        """The categories (``"read"``, ``"write"``, ``"probe"``,
        ``"enumeration"``) in which this record touched ``path``."""
        return tuple(c[:-1] if c != "enumerations" else "enumeration"
                     for c in _CATEGORIES if path in getattr(self, c))

    def to_dict(self) -> dict:
        d = {"pid": self.pid, "ppid": self.ppid, "parent": self.parent,
             "path": self.path, "argv": list(self.argv), "cwd": self.cwd,
             "returncode": self.returncode}
        for c in _CATEGORIES:
            d[c] = list(getattr(self, c))
        return d

    @classmethod
    def from_any(cls, x) -> "Process":
        """A Process from a C core's tuple (csrc/python/pyresult.c), a JSON
        object (docs/json-schema.md) or a Process."""
        if isinstance(x, Process):
            return x
        if isinstance(x, dict):
            return cls(x["pid"], x["ppid"], x.get("path"), tuple(x.get("argv", ())),
                       x.get("cwd"), x.get("returncode"), x.get("parent"),
                       *(PathSet(x.get(c, ())) for c in _CATEGORIES))
        pid, ppid, parent, path, argv, cwd, rc, r, w, p, e = x
        return cls(pid, ppid, path, tuple(argv), cwd, rc, parent,
                   PathSet(r), PathSet(w), PathSet(p), PathSet(e))


@dataclass(frozen=True)
class Step:
    """A process of the run that matched ``Result.steps(select)`` and all
    its descendants, rolled up: ``gcc -c x.c`` is one step whose reads
    include what cc1 read and whose writes what as wrote.  The sets are the
    union of its processes' sets."""
    process: Process
    processes: tuple
    reads: PathSet
    writes: PathSet
    probes: PathSet
    enumerations: PathSet

    @property
    def argv(self) -> tuple:
        return self.process.argv

    @property
    def cwd(self) -> Optional[str]:
        return self.process.cwd


def _selector(select):
    if callable(select):
        return select
    if not isinstance(select, (str, bytes, os.PathLike)):
        raise TypeError("select must be a program name, an absolute path or a callable "
                        "taking a Process, not %s" % type(select).__name__)
    want = os.fsdecode(select)
    if os.path.isabs(want):
        real = os.path.realpath(want)

        def by_path(p: Process) -> bool:
            return bool(p.path) and (p.path == want or os.path.realpath(p.path) == real)
        return by_path
    if "/" in want:
        raise ValueError("select: a program name (%r has a slash) must be a bare name "
                         "or an absolute path" % want)

    def by_name(p: Process) -> bool:
        return p.name == want or (bool(p.argv) and os.path.basename(p.argv[0]) == want)
    return by_name


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
    #: Who did what: one Process per program image, in start order.
    processes: tuple = ()

    @classmethod
    def from_fields(cls, fields: dict, *, args, returncode: int, backend: str,
                    duration: float = 0.0, stdout=None, stderr=None, policy=None,
                    warnings: Sequence[str] = (), policy_warnings: Sequence[str] = ()
                    ) -> "Result":
        """The one place a Result is made from what a backend's session
        returns (TraceSession.finish(): the four path sets, execs, processes,
        complete, warnings, and optionally denied, refused, breakaways).
        ``policy_warnings`` (what a session found about the policy before the
        run) come first and ``warnings`` (the caller's own: a timeout) last;
        any of the latter makes the Result incomplete.  With a ``policy``, Result.denied is what the
        mechanism refused and every traced access outside the policy, each
        with the pid of a process that made it."""
        own = list(warnings)
        r = cls(
            returncode=returncode, args=args,
            **{c: PathSet(fields.get(c, ())) for c in _CATEGORIES},
            execs=tuple(x if isinstance(x, Exec) else Exec(*x)
                        for x in fields.get("execs", ())),
            processes=tuple(Process.from_any(x) for x in fields.get("processes", ())),
            stdout=stdout, stderr=stderr, backend=backend, duration=duration,
            complete=bool(fields.get("complete", True)) and not own,
            warnings=tuple(policy_warnings) + tuple(fields.get("warnings", ())) + tuple(own),
            policy=policy,
            breakaways=tuple(fields.get("breakaways", ())))
        if policy is not None:
            mechanism = list(fields.get("denied", ()))
            mechanism += policy.refusals(fields.get("refused", ()))
            r.denied = tuple(r._with_pid(d) for d in merge_denied(mechanism,
                                                                  policy.violations(r)))
            if not r.complete and policy.on_violation == "deny":
                # the system refused what it refused; the list is the trace's
                r.warnings = r.warnings + (UNSEEN_REFUSALS,)
        return r

    def _with_pid(self, d: Denied) -> Denied:
        """A denied access without a pid gets the first process that made it."""
        if d.pid is not None:
            return d
        cat = {"read": "reads", "write": "writes", "probe": "probes",
               "enumeration": "enumerations"}.get(d.category)
        for p in self.processes:
            if cat and d.path in getattr(p, cat):
                return Denied(d.path, d.category, p.pid)
        return d

    # -- who did what -------------------------------------------------------------
    def parent_of(self, index: int) -> Optional[int]:
        """The index of record ``index``'s parent, None for a root (also
        when the document names a parent out of range)."""
        parent = self.processes[index].parent
        return parent if parent is not None and 0 <= parent < len(self.processes) else None

    def tree(self) -> dict:
        """``{parent index or None: [child indices]}`` in start order: the
        process tree every view walks (None holds the roots)."""
        kids: dict = {}
        for i in range(len(self.processes)):
            kids.setdefault(self.parent_of(i), []).append(i)
        return kids

    def children(self, index: int) -> tuple:
        """Indices of the records forked from record ``index``."""
        return tuple(self.tree().get(index, ()))

    def who(self, path: str | os.PathLike) -> tuple:
        """The processes that touched ``path``: ``(Process, categories)``
        pairs in start order, categories as in ``Process.categories``."""
        path = os.path.abspath(os.fsdecode(path))
        touched = ((p, p.categories(path)) for p in self.processes)
        return tuple((p, cats) for p, cats in touched if cats)

    def steps(self, select) -> tuple:
        """Roll the process tree up: each record that matches ``select`` (a
        program name such as ``"cc"``, matched against the executed file's
        name and argv[0]; an absolute path; or a callable taking a
        Process) and is not below another match becomes a Step with it, its
        descendants and the union of their sets, in start order."""
        match = _selector(select)
        kids = self.tree()
        steps = []

        def subtree(i: int) -> list:
            out, todo = [], [i]
            while todo:
                j = todo.pop()
                out.append(j)
                todo.extend(kids.get(j, ()))
            return sorted(out)

        def walk(i: int) -> None:
            p = self.processes[i]
            if match(p):
                members = tuple(self.processes[j] for j in subtree(i))
                steps.append((i, Step(p, members, *(
                    PathSet(frozenset().union(*(getattr(m, c) for m in members)))
                    for c in _CATEGORIES))))
                return
            for k in kids.get(i, ()):
                walk(k)

        for i in kids.get(None, ()):
            walk(i)
        return tuple(s for _, s in sorted(steps, key=lambda t: t[0]))

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
            if roots is not None and not any(paths.under(p, r) for r in roots):
                return False
            if any(fnmatch.fnmatchcase(p, g) for g in ignore):
                return False
            return True

        def f(s: PathSet) -> PathSet:
            return PathSet(p for p in frozenset.__iter__(s) if keep(p))

        from dataclasses import replace
        return replace(self, reads=f(self.reads), writes=f(self.writes),
                       probes=f(self.probes), enumerations=f(self.enumerations),
                       processes=tuple(replace(p, reads=f(p.reads), writes=f(p.writes),
                                               probes=f(p.probes),
                                               enumerations=f(p.enumerations))
                                       for p in self.processes))

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
            "processes": [p.to_dict() for p in self.processes],
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
            processes=tuple(Process.from_any(x) for x in d.get("processes", ())),
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
                "enumerations=%d, execs=%d, processes=%d, complete=%r%s)" % (
                    self.returncode, self.backend, len(self.reads), len(self.writes),
                    len(self.probes), len(self.enumerations), len(self.execs),
                    len(self.processes), self.complete,
                    "".join(", %s=%d" % (n, len(getattr(self, n)))
                            for n in ("denied", "breakaways") if getattr(self, n))))
