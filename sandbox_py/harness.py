"""What the interpreter, pytest and sandbox_py touch on their own while a
checked test runs -- accesses the test did not ask for, recognised by who
made them rather than by where they went.

The pytest plugin (sandbox_py/pytest_plugin.py) excludes exactly these:

- **bytecode caches**: a first import of a module writes
  ``D/__pycache__/M.<tag>.pyc`` through a temporary ``....pyc.<N>`` (importlib:
  ``N`` is an object id; pytest's assertion rewriter: the pid), creating
  ``D/__pycache__`` first.  Recognised by name *and* content: ``D/M.py``
  exists and the ``.pyc`` left behind is the cache of that very source
  (its header carries the source's size and mtime, or its hash).  The same
  holds in Python child processes, whatever their version.
- **pytest's capture files**: with ``--capture=fd`` (the default) and the
  ``capfd`` fixtures, pytest points fds 1 and 2 at nameless temporary files;
  whatever the test or its children print lands there.  Recognised by
  identity: the files behind the descriptors of pytest's capture objects.
- **a starting Python's look for the user site directory**
  (``~/.local/lib/pythonX.Y/site-packages``): ``site`` probes it in every
  interpreter that does not run with ``-s``/``-I``.
- **distribution metadata**: ``importlib.metadata`` (``version()``,
  entry points) reads ``*.dist-info``/``*.egg-info`` directories of
  ``sys.path`` entries -- read, probe and list only.
- **the debugger's start-up files**: every ``pdb.Pdb`` (``doctest`` makes
  one for each run, ``breakpoint()``) reads ``~/.pdbrc`` and ``./.pdbrc``
  when they exist -- read and probe of exactly those two names.
- **sandbox_py itself**: a ``Sandbox().run()`` inside a test reads the
  package's own files (the preload shim, the ptrace launcher) -- read, probe
  and list only.
"""
from __future__ import annotations

import importlib.util
import os
import re
import site
from typing import Iterable, Optional

from .paths import under

#: Files the import system reads from sys.path entries.
IMPORT_SUFFIXES = (".py", ".pyc", ".so", ".pth")

#: ``M.<tag>.pyc`` with an optional temporary suffix: ``<tag>`` is a cache
#: tag (``cpython-311``, ``pypy39``...) optionally followed by pytest's
#: ``-pytest-<version>`` and an ``.opt-N`` level.
_PYC = re.compile(r"(?P<stem>[^/]+?)\.(?P<tag>[a-z]+-?\d+(?:-pytest-[^/]+?)?(?:\.opt-\d+)?)"
                  r"\.pyc(?P<temp>\.\d+)?\Z")
#: The user site directory of any Python 3 (site.getusersitepackages()).
_USER_SITE = re.compile(r"lib/python3\.\d+/site-packages\Z")


def _header_matches(pyc: str, source: str) -> bool:
    """``pyc`` is a bytecode cache of ``source`` as it is now (PEP 552
    header: magic, flags, then either mtime+size or the source hash)."""
    try:
        with open(pyc, "rb") as f:
            header = f.read(16)
        st = os.stat(source)
    except OSError:
        return False
    if len(header) < 16 or header[2:4] != b"\r\n":     # every CPython magic ends \r\n
        return False
    flags = int.from_bytes(header[4:8], "little")
    if flags & 1:
        try:
            with open(source, "rb") as f:
                digest = importlib.util.source_hash(f.read())
        except OSError:
            return False
        # source_hash() uses this interpreter's key; a pyc from another
        # version with another key still names an existing source.
        return header[8:16] == digest or header[:4] != importlib.util.MAGIC_NUMBER
    return (int.from_bytes(header[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(header[12:16], "little") == st.st_size & 0xFFFFFFFF)


def bytecode_source(path: str) -> Optional[str]:
    """The source ``path`` is (or is a temporary file for) the bytecode
    cache of, when it has that form and the source exists; else None."""
    cache_dir, name = os.path.split(path)
    if os.path.basename(cache_dir) != "__pycache__":
        return None
    m = _PYC.match(name)
    if m is None:
        return None
    source = os.path.join(os.path.dirname(cache_dir), m.group("stem") + ".py")
    return source if os.path.isfile(source) else None


def is_bytecode_write(path: str) -> bool:
    """A write the import system (or pytest's assertion rewriter) made to
    cache the bytecode of an existing source."""
    source = bytecode_source(path)
    if source is None:
        return False
    if path.endswith(".pyc"):
        # Left behind: it must be that source's cache.  Gone: the import
        # system removed it (a cache that could not be completed).
        return not os.path.lexists(path) or _header_matches(path, source)
    # The temporary file: renamed over the .pyc or removed on failure.
    return not os.path.lexists(path)


class Harness:
    """The accesses of one checked test call that the harness made."""

    def __init__(self, capture_paths: Iterable[str] = ()):
        self.capture_paths = frozenset(capture_paths)
        self.own_dir = _OWN_DIR
        self.user_bases = _resolved_user_bases()
        # pdb.Pdb(readrc=True) opens these two names, relative to the cwd
        self.pdbrc = {os.path.abspath(os.path.expanduser("~/.pdbrc")),
                      os.path.abspath(".pdbrc")}

    def allows(self, category: str, path: str, result, entries: Iterable[str]) -> bool:
        if path in self.capture_paths:
            return True
        if category in ("writes", "probes"):
            if is_bytecode_write(path):
                return True
            if os.path.basename(path) == "__pycache__" and _made_for_bytecode(path, result):
                return True
        if category == "writes":
            return False
        if under(path, self.own_dir):
            return True
        if category in ("reads", "probes") and path in self.pdbrc:
            return True
        if category == "probes" and any(
                path.startswith(b.rstrip("/") + "/") and _USER_SITE.search(path)
                for b in self.user_bases):
            return True
        return any(_in_metadata(path, e) for e in entries)


_OWN_DIR = os.path.dirname(os.path.realpath(__file__))
_USER_BASES: dict = {}


def _resolved_user_bases() -> set:
    """_user_bases(), also with symlinks resolved; found again only when
    what they depend on changed (a test may set HOME or PYTHONUSERBASE)."""
    key = (os.environ.get("HOME"), os.environ.get("PYTHONUSERBASE"))
    if key not in _USER_BASES:
        bases = _user_bases()
        _USER_BASES.clear()
        _USER_BASES[key] = {os.path.realpath(b) for b in bases} | set(bases)
    return _USER_BASES[key]


def _user_bases() -> list:
    bases = [os.path.expanduser("~/.local")]
    try:
        bases.append(site.getuserbase())
    except Exception:      # a stripped-down site module: the default is enough
        pass
    if os.environ.get("PYTHONUSERBASE"):
        bases.append(os.environ["PYTHONUSERBASE"])
    return bases


def _made_for_bytecode(cache_dir: str, result) -> bool:
    """``D/__pycache__`` created by the import system: a bytecode cache of
    this run lies in it."""
    prefix = cache_dir + "/"
    return any(p.startswith(prefix) and is_bytecode_write(p)
               for p in list(result.writes) + list(result.probes))


def _in_metadata(path: str, entry: str) -> bool:
    """``path`` lies in a distribution's metadata directory directly in the
    ``sys.path`` entry ``entry`` (what importlib.metadata reads)."""
    prefix = entry.rstrip("/") + "/"
    if not path.startswith(prefix):
        return False
    top = path[len(prefix):].split("/", 1)[0]
    return top.endswith((".dist-info", ".egg-info"))


def capture_paths(config, item) -> set:
    """The paths the tracer reports for pytest's capture files: the files
    behind the descriptors of the global capture and of a capture fixture
    (capfd, capfdbinary) the test uses."""
    capman = config.pluginmanager.getplugin("capturemanager")
    multis = [getattr(capman, "_global_capturing", None)]
    fixture = getattr(capman, "_capture_fixture", None)
    multis.append(getattr(fixture, "_capture", None))
    out = set()
    for multi in multis:
        for name in ("in_", "out", "err"):
            tmpfile = getattr(getattr(multi, name, None), "tmpfile", None)
            try:
                fd = tmpfile.fileno()
                link = os.readlink("/proc/self/fd/%d" % fd)
            except (AttributeError, OSError, ValueError):
                continue
            # A nameless file (O_TMPFILE, or unlinked): the kernel shows it
            # as "/tmp/#<inode> (deleted)"; a tracer may report either form.
            out.add(link)
            if link.endswith(" (deleted)"):
                out.add(link[:-len(" (deleted)")])
    return {p for p in out if p.startswith("/")}
