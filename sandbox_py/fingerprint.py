"""A content hash over a step's *real* inputs, for build drivers.

    r = Sandbox().run(cmd)
    saved = (r.to_json(), r.fingerprint())
    ...
    if Result.from_json(saved[0]).fingerprint() == saved[1]:
        skip the step: nothing it depended on has changed

What goes in, for the Result's paths as they are on disk *now*:

- reads: the content of each file (a directory read counts as present);
- probes: whether each path exists and as what (file, directory, other) --
  the absent half matters: a header created in an earlier include directory
  must invalidate the step;
- enumerations: the sorted names in each listed directory;
- a path the step itself wrote is its output, not its input, and is left out
  (otherwise every run would change its own fingerprint).

Pseudo files (/proc, /sys, /dev, pipes) are always left out: their content is
not a property of the tree.  ``system=False`` also leaves out the installed
system (/usr, /lib, /etc ...), which is faster but misses compiler upgrades.
The command line is *not* included: key your cache on it yourself.
"""
from __future__ import annotations

import hashlib
import os
import stat
import threading

from .paths import is_pseudo, is_system

VERSION = b"sandbox_py.fingerprint/1\n"

# Content hashes by (path, device, inode, size, mtime_ns, ctime_ns): the
# system headers a build reads on every step are hashed once per process.
_content_cache: dict = {}
_cache_lock = threading.Lock()


def _content_hash(path: str, st: os.stat_result) -> str:
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _cache_lock:
        cached = _content_cache.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
    except OSError as e:
        # Exists but unreadable now: its state is the error, not stale content.
        return "error:%d" % e.errno
    with _cache_lock:
        _content_cache[key] = digest
    return digest


def _kind(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return "absent", None
    if stat.S_ISREG(st.st_mode):
        return "file", st
    if stat.S_ISDIR(st.st_mode):
        return "dir", st
    return "other", st


def _listing_hash(path: str) -> str:
    try:
        names = sorted(os.fsencode(n) for n in os.listdir(path))
    except OSError as e:
        return "error:%d" % e.errno
    return hashlib.sha256(b"\0".join(names)).hexdigest()


def input_states(result, *, system: bool = True):
    """``(category, path, state)`` triples the fingerprint hashes, sorted; a
    driver can store them to explain *why* a step reran."""
    outputs = set(result.writes)

    def inputs(paths):
        return sorted(p for p in paths if p not in outputs and not is_pseudo(p)
                      and (system or not is_system(p)))

    for path in inputs(result.reads):
        kind, st = _kind(path)
        yield "read", path, _content_hash(path, st) if kind == "file" else kind
    for path in inputs(result.probes):
        yield "probe", path, _kind(path)[0]
    for path in inputs(result.enumerations):
        kind, _ = _kind(path)
        yield "list", path, _listing_hash(path) if kind == "dir" else kind


def fingerprint(result, *, system: bool = True) -> str:
    """Hex SHA-256 over the current state of ``result``'s inputs."""
    h = hashlib.sha256(VERSION)
    for category, path, state in input_states(result, system=system):
        h.update(b"%s\0%s\0%s\n" % (category.encode(), os.fsencode(path), state.encode()))
    return h.hexdigest()
