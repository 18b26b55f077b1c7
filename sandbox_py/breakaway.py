"""Processes that leave the run: ``Sandbox().run(argv, breakaway=[...])``.

Build daemons (compiler servers, Gradle, Bazel, sccache) are meant to
outlive the build that started them.  A process whose exec matches the
declaration leaves the run at that exec: it and its descendants are no
longer traced, waited for, or killed on timeout, and their file accesses
are *not* in the Result; ``Result.breakaways`` lists each such process.

A declaration is a list of

- program names, matched against the basename of the exec'd file and of
  ``argv[0]`` (``"sccache"``);
- absolute paths, matched against the exec'd file, symlinks resolved
  (``"/usr/bin/sccache"``);
- callables ``f(path, argv) -> bool``, asked after the exec.

This module is the one place that decides whether an exec matches.
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional


class Breakaway(NamedTuple):
    """One process that left the run by declaration, at its exec."""
    pid: int
    path: str
    argv: tuple

    def to_dict(self) -> dict:
        return {"pid": self.pid, "path": self.path, "argv": list(self.argv)}


class BreakawayRule:
    """A compiled ``breakaway=`` declaration."""

    def __init__(self, declaration):
        if isinstance(declaration, (str, bytes, os.PathLike)) or callable(declaration):
            declaration = [declaration]
        try:
            items = list(declaration)
        except TypeError:
            raise TypeError("breakaway must be a list of program names, absolute paths "
                            "or callables, not %s" % type(declaration).__name__) from None
        self.names: set = set()
        self.paths: set = set()
        self.callables: list = []
        for item in items:
            if callable(item) and not isinstance(item, (str, bytes, os.PathLike)):
                self.callables.append(item)
                continue
            if not isinstance(item, (str, bytes, os.PathLike)):
                raise TypeError("breakaway entries must be program names, absolute paths "
                                "or callables, not %s (%r)" % (type(item).__name__, item))
            s = os.fsdecode(item)
            if not s or "\0" in s:
                raise ValueError("breakaway entry %r is not a program name or path" % (s,))
            if os.path.isabs(s):
                self.paths.add(os.path.realpath(s))
                self.paths.add(os.path.normpath(s))
            elif "/" in s:
                raise ValueError("breakaway entry %r: give a program name or an absolute "
                                 "path" % (s,))
            else:
                self.names.add(s)

    def __bool__(self) -> bool:
        return bool(self.names or self.paths or self.callables)

    def check_decidable(self, backend: str) -> None:
        """Every backend decides at the exec itself (in the kernel, the
        shim, the tracer or the DLL), where Python cannot be asked: a
        declaration with a callable is refused, saying so."""
        if self.callables:
            from .errors import SandboxUnavailableError  # noqa: PLC0415
            raise SandboxUnavailableError(
                backend, "it decides breakaway at the exec itself, where Python cannot be "
                "asked (a callable in breakaway=)", "declare program names or absolute paths")

    def entries(self) -> list:
        """The names and paths as bytes, for a mechanism that matches them
        itself at the exec (the kernel, the shim, the tracer) the way
        matches() does."""
        return sorted(os.fsencode(e) for e in self.names | self.paths)

    def lines(self) -> str:
        """The names and paths one per line: the form the C matcher takes
        (csrc/core/breakaway.h; the shim, the ptrace tracer)."""
        entries = self.entries()
        if any(b"\n" in e for e in entries):
            raise ValueError("a breakaway entry contains a newline")
        return os.fsdecode(b"\n".join(entries))

    def shim_env(self) -> dict:
        """The variable the preload/interpose shim reads the declaration
        from (shims/core/sbx_log.h)."""
        return {"SBX_PRELOAD_BREAKAWAY": self.lines()}

    def matches(self, path: str, argv=(), resolved=None) -> bool:
        """``path``: the file as exec'd; ``resolved``: the same with
        symlinks resolved, when the mechanism knows it."""
        path = os.fsdecode(path)
        argv = tuple(os.fsdecode(a) for a in argv)
        if path in self.paths or (resolved is not None and os.fsdecode(resolved) in self.paths):
            return True
        if os.path.basename(path) in self.names:
            return True
        if argv and os.path.basename(argv[0]) in self.names:
            return True
        return any(bool(f(path, argv)) for f in self.callables)


def compile_rule(declaration) -> Optional[BreakawayRule]:
    """``None`` for no declaration (every process stays in the run)."""
    if declaration is None:
        return None
    rule = BreakawayRule(declaration)
    return rule if rule else None

