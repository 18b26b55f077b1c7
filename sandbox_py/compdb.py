"""A compilation database (``compile_commands.json``) from what a traced
build really did (docs/compdb.md).

A compiler invocation is recognised by its program's name (gcc, g++, cc,
c++, clang, clang++, with version suffixes such as ``gcc-12`` and target
prefixes such as ``x86_64-linux-gnu-gcc``) **and confirmed by its step**
(the process and everything it started, ``Result.steps``): each source
named on the command line must have been read by the step, and the output
must have been written by it.  So a wrapper (``ccache gcc ...``,
``/usr/lib/ccache/gcc``) is not an entry when it ran the compiler: the real
compiler's compile is, once (ccache's preprocessing run, ``-E``, is not a
compilation); on a cache hit no compiler runs and the wrapper's own step,
which read the source and wrote the output, is the entry, with the
wrapper's command line.  A command that failed before reading its source,
or only preprocessed (``-E``, ``-M``, ``-MM``), is not an entry.  ``arguments``
are the command line exactly as it was executed, never reordered.

``--deps`` (``deps(result)``): per output, the sources and headers the step
read, i.e. the step's reads less what is not source text: pseudo files,
files the step wrote itself (temporaries such as cc1's assembly), ELF files
(the compiler's programs and libraries), and the system's configuration and
locale data (``/etc``, ``.../locale/...``, ``.../gconv/...``).
"""
from __future__ import annotations

import os
import re
from typing import Optional

from .result import Process, Result, is_pseudo

#: gcc, g++, cc, c++, clang, clang++; optionally a target prefix
#: (x86_64-linux-gnu-, x86_64-w64-mingw32-) and a version (-12, -19.1).
COMPILER_NAME = re.compile(r"^(?:[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*-)?"
                           r"(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(?:-\d+(?:\.\d+)*)?$")
#: Programs that start the real compiler (under this name or another) and
#: are not themselves the compilation.
WRAPPERS = frozenset({"ccache", "sccache", "distcc", "icecc", "buildcache"})
#: What a compiler compiles (C, C++, Objective-C, assembly, preprocessed).
SOURCE_SUFFIXES = frozenset({".c", ".C", ".cc", ".cp", ".cpp", ".cxx", ".c++", ".CPP",
                             ".m", ".mm", ".M", ".i", ".ii", ".mi", ".mii", ".s", ".S",
                             ".sx"})
#: Options whose value is the next argument (gcc and clang spellings).
SEPARATE_VALUE = frozenset({
    "-o", "-I", "-D", "-U", "-include", "-imacros", "-isystem", "-idirafter", "-iquote",
    "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "-imultilib", "-MF",
    "-MT", "-MQ", "-x", "-L", "-l", "-Xlinker", "-Xassembler", "-Xpreprocessor",
    "-Xclang", "-u", "-T", "-aux-info", "-target", "--target", "-arch", "-z",
    "--sysroot", "-B", "-specs", "--param", "-G", "-e"})
#: Options that make the command no compilation (preprocessing, queries).
NOT_A_COMPILE = ("-E", "-M", "-MM", "--version", "-v", "-###", "-dumpversion",
                 "-dumpmachine", "-print-search-dirs")


def _names(p: Process) -> set:
    """The names a program goes by: argv[0]'s and the executed file's."""
    names = {os.path.basename(p.argv[0])} if p.argv else set()
    if p.path:
        names.add(os.path.basename(p.path))
    return names


def is_wrapper(p: Process) -> bool:
    """ccache and friends, by name or by what the executed file links to."""
    real = {os.path.basename(os.path.realpath(p.path))} if p.path else set()
    return bool((_names(p) | real) & WRAPPERS)


def is_compiler(p: Process) -> bool:
    """Named like a compiler driver, and not a wrapper in disguise
    (``/usr/lib/ccache/gcc`` is a link to ccache)."""
    return not is_wrapper(p) and any(COMPILER_NAME.match(n) for n in _names(p))


def _sources(argv) -> list:
    out, skip = [], False
    for a in argv[1:]:
        if skip:
            skip = False
            continue
        if a in SEPARATE_VALUE:
            skip = True
            continue
        if a.startswith("-") or a.startswith("@"):
            continue
        if os.path.splitext(a)[1] in SOURCE_SUFFIXES:
            out.append(a)
    return out


def _option(argv, name: str) -> Optional[str]:
    val = None
    for i, a in enumerate(argv[1:], 1):
        if a == name and i + 1 < len(argv):
            val = argv[i + 1]
        elif a.startswith(name) and len(a) > len(name) and name == "-o":
            val = a[len(name):]
    return val


def _output(argv, source: str) -> Optional[str]:
    """The file the command writes for ``source`` (relative as given)."""
    if "-fsyntax-only" in argv:
        return None
    out = _option(argv, "-o")
    if out is not None:
        return out
    stem = os.path.splitext(os.path.basename(source))[0]
    if "-c" in argv:
        return stem + ".o"
    if "-S" in argv:
        return stem + ".s"
    return "a.out"


def _resolve(directory: Optional[str], name: str, reads) -> Optional[str]:
    """The absolute path of ``name`` as the step used it, confirmed by its
    reads or writes (``reads``: a PathSet).  Without a known directory, a
    relative name without ``..`` is matched against the step's paths."""
    if os.path.isabs(name):
        path = os.path.normpath(name)
        return path if path in reads else None
    if directory:
        path = os.path.normpath(os.path.join(directory, name))
        if path in reads:
            return path
        real = os.path.realpath(path)
        return real if real in reads else None
    if ".." in name.split("/"):
        return None
    tail = "/" + os.path.normpath(name)
    hits = [p for p in reads if p.endswith(tail)]
    return hits[0] if len(hits) == 1 else None


def _directory(p: Process, source: str, found: str) -> Optional[str]:
    if p.cwd:
        return p.cwd
    if os.path.isabs(source):
        return None
    return found[: -len("/" + os.path.normpath(source))] or "/"


def _compiles(result: Result) -> list:
    """``(step, argv as run, argv of the compiler)`` of each compilation,
    in start order: the compiler steps, and the steps of wrappers that ran
    no compiler (a cache hit)."""
    found = [(s, s.process.argv) for s in result.steps(is_compiler)]
    for s in result.steps(is_wrapper):
        if not any(is_compiler(p) for p in s.processes[1:]):
            argv = s.process.argv
            if argv and os.path.basename(argv[0]) in WRAPPERS:
                argv = argv[1:]       # ccache gcc ...: the compiler's command
            found.append((s, argv))
    order = {id(p): i for i, p in enumerate(result.processes)}
    found.sort(key=lambda t: order.get(id(t[0].process), 0))
    out = []
    for step, argv in found:
        if any(a in NOT_A_COMPILE for a in argv[1:]):
            continue
        out.append((step, list(step.process.argv), list(argv)))
    return out


def _confirmed(result: Result):
    """(step, arguments, directory, source path, output path or None)."""
    for step, as_run, argv in _compiles(result):
        for src in _sources(argv):
            path = _resolve(step.process.cwd, src, step.reads)
            if path is None:
                continue                  # never read: not compiled here
            directory = _directory(step.process, src, path)
            name = _output(argv, src)
            written = None
            if name is not None:
                written = _resolve(directory, name, step.writes)
                if written is None:
                    continue              # it wrote nothing: a failed compile
            yield step, as_run, directory, path, written


def entries(result: Result) -> list:
    """``compile_commands.json`` entries (``directory``, ``file``,
    ``arguments``, ``output``), one per source of each compiler invocation
    the run confirmed, in the order the compilers started."""
    out = []
    for _, as_run, directory, path, written in _confirmed(result):
        entry = {"directory": directory, "file": path, "arguments": as_run}
        if written is not None:
            entry["output"] = written
        out.append(entry)
    return out


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


_NOT_SOURCE = re.compile(r"^/etc/|/locale/|/gconv/|/locale\.alias$")


def deps(result: Result) -> list:
    """Per compiler output: ``{"output", "file", "directory", "reads"}``,
    ``reads`` being the sources and headers the step really read (see the
    module's docstring for what is left out), sorted."""
    out = []
    # the compiler's programs and the system's headers are read by every
    # step: each file is opened once per call, not once per step
    is_text: dict = {}

    def source_text(r: str) -> bool:
        if r not in is_text:
            is_text[r] = not _is_elf(r) and not os.path.isdir(r)
        return is_text[r]

    for step, _, directory, path, written in _confirmed(result):
        if written is None:
            continue
        reads = sorted(r for r in step.reads
                       if not is_pseudo(r) and r not in step.writes
                       and not _NOT_SOURCE.search(r) and source_text(r))
        out.append({"output": written, "file": path, "directory": directory,
                    "reads": reads})
    return out
