"""Memoized build steps: run a command, or restore what it produced the last
time its *real* inputs were in the same state.  See docs/memo.md.

    from sandbox_py.memo import Memo
    m = Memo(".cache", env_keys=["CC", "CFLAGS"])
    r = m.run(["gcc", "-c", "x.c", "-o", "x.o"], cwd="src")   # runs, or restores x.o
    m.run_many([argv1, argv2], jobs=4)

The lookup is two-level, like ccache's manifests and Bazel's action cache:

1. ``key1`` = SHA-256 of the command: argv, cwd, the values of ``env_keys``
   and ``input``.  It names a *manifest*: the input sets recorded by earlier
   runs of that command (newest first).
2. For each recorded input set, the inputs' current state is evaluated
   (content hash of each file read, existence and type of each path probed,
   the names in each directory listed).  The first set that matches names the
   *entry* (``key2``): the outputs (content-addressed blobs), stdout, stderr,
   exit status and the traced Result.  All blobs are fetched and verified
   before anything is restored; a missing or corrupt one makes it a miss.

Paths at or below ``root`` are stored relative to it, and occurrences of the
root in argv and in the ``env_keys`` values are replaced by a marker, so two
checkouts of one tree at different places share keys.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import locale
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

from .fingerprint import _kind  # absent / file / dir / other, as fingerprints see it
from .result import Result, is_pseudo

FORMAT = "sandbox_py.memo/1"
#: Input sets kept per command: enough for a few configurations or branches
#: in use at once, few enough that a lookup evaluates them quickly.
MAX_CANDIDATES = 16
#: Stands for the declared root in stored argv and environment values.
ROOT_MARK = "@ROOT@"
#: Where tools make scratch files (see ``_store``).
_TEMP_DIRS = frozenset({"/tmp", "/var/tmp", tempfile.gettempdir()})
BLOCK = 1 << 20


@dataclass(frozen=True)
class Outcome:
    """What the memo did for one step, as ``Result.memo``.

    ``status`` is ``"hit"`` (outputs restored, nothing ran), ``"miss"`` (ran
    and stored) or ``"not cached"`` (ran, nothing stored: ``why`` says why).
    On a miss, ``why`` says what differed from the newest earlier run."""
    status: str
    why: str
    key: str
    #: On a REAPI (gRPC) store: the digest (``hash/size``) of the step's
    #: Action there, for ``bgd actioncache get`` or any REAPI client.
    remote: str = ""


def _is_digest(s) -> bool:
    # Digests name files in the store: anything else (from a broken or
    # hostile server) must never become a path.
    return isinstance(s, str) and len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def _valid_entry(entry: dict) -> bool:
    """The shape ``_restore`` relies on, checked before anything is written."""
    try:
        for name, kind, ref, mode in entry["outputs"]:
            if not isinstance(name, str) or not name or ".." in name.split("/") \
                    or not isinstance(mode, int):
                return False
            if kind == "file" and not _is_digest(ref):
                return False
            if kind == "symlink" and not isinstance(ref, str):
                return False
            if kind not in ("file", "dir", "symlink", "absent"):
                return False
        return all(entry.get(k) is None or _is_digest(entry[k]) for k in ("stdout", "stderr")) \
            and isinstance(entry["result"], dict)
    except (KeyError, TypeError, ValueError):
        return False


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


# -- paths relative to the declared root ----------------------------------------

class Roots:
    """Maps host paths to stored names and back: a path at or below ``root``
    is stored relative to it (never starting with ``/``), any other path
    stays absolute.  Text (argv, env values) has the root replaced by
    ``@ROOT@``."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self._prefix = self.root.rstrip("/") + "/"

    def to_key(self, path: str) -> str:
        if self.root == "/":
            return path
        if path == self.root:
            return "."
        if path.startswith(self._prefix):
            return path[len(self._prefix):]
        return path

    def from_key(self, name: str) -> str:
        if name.startswith("/") or not name:
            return name
        return self.root if name == "." else self._prefix + name

    def text_to_key(self, text: str) -> str:
        return text if self.root == "/" else text.replace(self.root, ROOT_MARK)

    def text_from_key(self, text: str) -> str:
        return text.replace(ROOT_MARK, self.root)


# -- the state of an input ----------------------------------------------------------

class ContentHashes:
    """SHA-256 of files by (device, inode, size, mtime, ctime), kept in
    memory and, when ``path`` is given, in an append-only file, so that a
    shell build that starts one process per step does not re-read the
    compiler and every system header each time (ccache keeps the same).

    The kernel stamps mtime and ctime from a clock that ticks every few
    milliseconds: a file rewritten twice within one tick with the same size
    keeps its stamps.  A hash is therefore remembered only for a file whose
    stamps are older than ``SETTLED_NS``; younger ones are hashed every time.
    """

    SETTLED_NS = 2 * 10**9

    def __init__(self, path: Optional[str] = None):
        self.path = path
        self._known: Optional[dict] = None
        self._lock = threading.Lock()

    def _load(self) -> dict:
        known = {}
        if self.path:
            try:
                with open(self.path, "rb") as f:
                    for line in f:
                        parts = line.rstrip(b"\n").split(b" ", 6)
                        if len(parts) == 7 and len(parts[0]) == 64:
                            try:
                                known[(os.fsdecode(parts[6]),) + tuple(
                                    int(x) for x in parts[1:6])] = parts[0].decode()
                            except ValueError:
                                continue    # a torn line: ignore it
            except OSError:
                pass
        return known

    def digest(self, path: str, st: os.stat_result) -> str:
        key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if self._known is None:
                self._known = self._load()
            cached = self._known.get(key)
        if cached is not None:
            return cached
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(BLOCK), b""):
                    h.update(block)
        except OSError as e:
            # Exists but unreadable now: its state is the error, not stale content.
            return "error:%d" % e.errno
        digest = h.hexdigest()
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > self.SETTLED_NS:
            with self._lock:
                self._known[key] = digest
            if self.path and "\n" not in path:      # one line per hash
                line = b"%s %d %d %d %d %d %s\n" % ((digest.encode(),) + key[1:]
                                                   + (os.fsencode(path),))
                try:
                    # One write on an O_APPEND descriptor: concurrent
                    # processes never interleave inside a line.
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    try:
                        os.write(fd, line)
                    finally:
                        os.close(fd)
                except OSError:
                    pass
        return digest


_HASHES = ContentHashes()


def input_state(category: str, path: str, exclude=(), hashes: ContentHashes = _HASHES) -> str:
    """The current state of one input, as stored in a manifest.

    read: the content's SHA-256 (or ``dir``/``other``/``absent``); probe:
    ``file``/``dir``/``other``/``absent``; list: ``names:<sha256 of the
    sorted names>`` leaving out ``exclude`` (the step's own outputs in that
    directory, so that the listing describes what was there before)."""
    kind, st = _kind(path)
    if category == "read":
        return hashes.digest(path, st) if kind == "file" else kind
    if category == "probe":
        return kind
    if kind != "dir":
        return kind
    try:
        names = set(os.listdir(path)) - set(exclude)
    except OSError as e:
        return "error:%d" % e.errno
    return "names:" + _sha256_bytes(b"\0".join(sorted(os.fsencode(n) for n in names)))


# -- stores ---------------------------------------------------------------------------

class LocalStore:
    """A directory laid out like the remote protocol: ``ac/<key>`` (JSON
    documents) and ``cas/<xx>/<sha256>`` (blobs).  Every write is a rename
    of a complete temporary file, so concurrent steps and processes never see
    half a document."""

    def __init__(self, directory: str):
        self.dir = os.path.abspath(directory)
        for sub in ("ac", "cas", "tmp"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)

    def _ac(self, key: str) -> str:
        return os.path.join(self.dir, "ac", key)

    def cas_path(self, digest: str) -> str:
        return os.path.join(self.dir, "cas", digest[:2], digest)

    def _tmp(self):
        return tempfile.NamedTemporaryFile(dir=os.path.join(self.dir, "tmp"), delete=False)

    def get_ac(self, key: str) -> Optional[bytes]:
        try:
            with open(self._ac(key), "rb") as f:
                return f.read()
        except OSError:
            return None

    def put_ac(self, key: str, data: bytes) -> None:
        with self._tmp() as f:
            f.write(data)
        os.replace(f.name, self._ac(key))

    def has_cas(self, digest: str) -> bool:
        return os.path.isfile(self.cas_path(digest))

    def put_cas_file(self, path: str) -> str:
        """Copy ``path`` into the store; returns its SHA-256."""
        h = hashlib.sha256()
        with open(path, "rb") as src, self._tmp() as dst:
            for block in iter(lambda: src.read(BLOCK), b""):
                h.update(block)
                dst.write(block)
        return self._commit(dst.name, h.hexdigest())

    def put_cas_bytes(self, data: bytes) -> str:
        digest = _sha256_bytes(data)
        if not self.has_cas(digest):
            with self._tmp() as f:
                f.write(data)
            self._commit(f.name, digest)
        return digest

    def put_cas_stream(self, digest: str, chunks) -> bool:
        """Store a downloaded blob only if its content has ``digest``."""
        h = hashlib.sha256()
        with self._tmp() as f:
            for block in chunks:
                h.update(block)
                f.write(block)
        if h.hexdigest() != digest:
            os.unlink(f.name)
            return False
        self._commit(f.name, digest)
        return True

    def _commit(self, tmp: str, digest: str) -> str:
        final = self.cas_path(digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(tmp, final)
        return digest

    def read_cas(self, digest: str) -> Optional[bytes]:
        try:
            with open(self.cas_path(digest), "rb") as f:
                data = f.read()
        except OSError:
            return None
        return data if _sha256_bytes(data) == digest else None


# -- the action-cache value servers accept -------------------------------------------
#
# bazel-remote (and BuildBuddy) check that what is PUT under /ac/ is a REAPI
# ActionResult protobuf.  Ours is the smallest valid one: a single output
# file, named MEMO_DOCUMENT, whose digest points at our JSON document in the
# CAS.  Fields (remote_execution.proto): ActionResult.output_files = 2;
# OutputFile.path = 1, .digest = 2; Digest.hash = 1, .size_bytes = 2.

MEMO_DOCUMENT = "sandbox_py-memo.json"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    # wire type 2: length-delimited
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def action_result(digest: str, size: int) -> bytes:
    d = _field(1, digest.encode()) + _varint(2 << 3 | 0) + _varint(size)
    return _field(2, _field(1, MEMO_DOCUMENT.encode()) + _field(2, d))


def _fields(data: bytes):
    """``(number, value)`` of a protobuf message; ValueError on garbage."""
    i = 0

    def varint():
        nonlocal i
        n = shift = 0
        while True:
            if i >= len(data) or shift > 63:
                raise ValueError("truncated varint")
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, varint()
        elif wire == 2:
            n = varint()
            if i + n > len(data):
                raise ValueError("truncated field")
            yield number, data[i:i + n]
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError("unsupported wire type %d" % wire)


def document_digest(ac_value: bytes) -> Optional[tuple]:
    """``(sha256, size)`` of our document in an ActionResult, or None."""
    try:
        for number, value in _fields(ac_value):
            if number != 2 or not isinstance(value, bytes):
                continue
            f = dict(_fields(value))
            if f.get(1) == MEMO_DOCUMENT.encode() and isinstance(f.get(2), bytes):
                d = dict(_fields(f[2]))
                return d[1].decode("ascii"), int(d.get(2, 0))
    except (ValueError, KeyError, UnicodeDecodeError):
        pass
    return None


class HTTPStore:
    """A remote cache speaking the Bazel HTTP cache protocol: ``GET``/``PUT``
    of ``<url>/ac/<key>`` and ``<url>/cas/<sha256>``, as bazel-remote,
    BuildBuddy and nginx's WebDAV module serve it.  Our documents
    (manifests, entries) are CAS blobs; ``/ac/`` holds a minimal
    ActionResult naming one, so servers that validate action-cache entries
    accept it.  Any failure (refused, timeout, an error status, garbage) is
    a miss, never an error: the step then runs.  After a connection failure
    the server is not asked again by this store, so a server that is down
    costs one timeout, not one per step.
    """

    def __init__(self, url: str, timeout: float = 10.0, headers=()):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("remote cache URL must be http://host[:port][/path], not %r"
                             % url)
        self.url = url
        self._https = u.scheme == "https"
        self._host, self._port = u.hostname, u.port
        self._base = u.path.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers.items() if hasattr(headers, "items") else headers)
        self.down: Optional[str] = None
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            c = self._local.conn = cls(self._host, self._port, timeout=self.timeout)
        return c

    def _request(self, method: str, path: str, body=None, sink=None):
        """``(status, data)``; ``sink(chunks)`` consumes a 200 body instead.
        None when the server could not be asked."""
        if self.down:
            return None
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request(method, self._base + path, body=body, headers=self.headers)
                resp = conn.getresponse()
                if resp.status == 200 and sink is not None:
                    return resp.status, sink(iter(lambda: resp.read(BLOCK), b""))
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                # A kept-alive connection the server closed: retry once afresh.
                conn.close()
                self._local.conn = None
                if attempt:
                    self.down = "%s: %s" % (self.url, e)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                self._local.conn = None
                self.down = "%s: %s" % (self.url, e)
                return None
        return None

    def get_ac(self, key: str) -> Optional[bytes]:
        """Our document stored under ``key``: an ActionResult pointing at it
        in the CAS, whose content is verified against its digest."""
        r = self._request("GET", "/ac/" + key)
        ref = document_digest(r[1]) if r and r[0] == 200 else None
        if ref is None or not _is_digest(ref[0]):
            return None
        r = self._request("GET", "/cas/" + ref[0])
        if not (r and r[0] == 200 and _sha256_bytes(r[1]) == ref[0]):
            return None
        return r[1]

    def put_ac(self, key: str, data: bytes) -> None:
        digest = _sha256_bytes(data)
        if not self.has_cas(digest):
            self._request("PUT", "/cas/" + digest, body=data)
        self._request("PUT", "/ac/" + key, body=action_result(digest, len(data)))

    def has_cas(self, digest: str) -> bool:
        r = self._request("HEAD", "/cas/" + digest)
        return bool(r and r[0] == 200)

    def put_cas(self, digest: str, path: str) -> None:
        if self.has_cas(digest):
            return
        with open(path, "rb") as f:
            self._request("PUT", "/cas/" + digest, body=f.read())

    def fetch_cas(self, digest: str, local: LocalStore) -> bool:
        """Download a blob into ``local``, verifying its hash."""
        r = self._request("GET", "/cas/" + digest,
                          sink=lambda chunks: local.put_cas_stream(digest, chunks))
        return bool(r and r[0] == 200 and r[1] is True)

    # What Memo calls (memo_reapi.REAPIStore has the same methods): the
    # manifest of a command, the entry of an input set, blobs.
    def get_manifest(self, key1: str, step: dict) -> Optional[bytes]:
        return self.get_ac(key1)

    def put_manifest(self, key1: str, step: dict, data: bytes) -> None:
        self.put_ac(key1, data)

    def get_entry(self, key2: str, ref) -> Optional[bytes]:
        return self.get_ac(key2)

    def put_entry(self, key2: str, step: dict, inputs: list, entry: dict,
                  entry_bytes: bytes, roots) -> Optional[str]:
        self.put_ac(key2, entry_bytes)
        return None

    def put_blobs(self, sizes: dict, local: LocalStore) -> bool:
        for digest in sizes:
            self.put_cas(digest, local.cas_path(digest))
        return True

    def fetch(self, sizes: dict, local: LocalStore) -> Optional[str]:
        """None when every blob arrived, else why not."""
        for d in sizes:
            if not self.fetch_cas(d, local):
                return "output blob %s... is missing from the store" % d[:12]
        return None


def remote_store(url: str, timeout: float = 10.0, headers=()):
    """The store for a remote cache URL: ``http(s)://`` (Bazel HTTP cache
    protocol) or ``grpc(s)://`` (REAPI v2, sandbox_py.memo_reapi)."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("grpc", "grpcs"):
        from .memo_reapi import REAPIStore
        return REAPIStore(url, timeout, headers)
    return HTTPStore(url, timeout, headers)


# -- the memo -------------------------------------------------------------------------

class _Miss(Exception):
    """An entry cannot be restored (a blob is missing or corrupt)."""


class Memo:
    """Memoizes commands on their traced inputs.

    ``store``: the local cache directory (created).  ``root``: the tree
    whose paths are stored relative (default: the current directory), so
    that checkouts at different places share entries.  ``env_keys``: the
    environment variables that are part of every step's key (others are
    not: a step's output must not depend on them).  ``remote``: a cache
    shared by machines and checkouts: a Bazel HTTP cache
    (``http://host:port/prefix``) or a Remote Execution API v2 server
    (``grpc://host:port/instance``, ``grpcs://`` for TLS; needs the
    ``remote`` extra).  ``remote_headers``: sent with every request (an
    ``authorization`` token, say).  ``backend`` or ``sandbox``: how steps are traced.
    ``ignore``: path prefixes that are never inputs nor outputs (a tool's
    own cache directory, for instance; relative ones are below ``root``).
    ``cache_failures``: also remember steps that exit non-zero (never those
    killed by a signal).
    """

    def __init__(self, store: str = ".sandbox_py-memo", *, root: Optional[str] = None,
                 env_keys=(), remote: Optional[str] = None, backend: str = "auto",
                 sandbox=None, ignore=(), cache_failures: bool = True,
                 remote_timeout: float = 10.0, remote_headers=()):
        # The Sandbox is made at the first miss: loading the BPF programs
        # costs more than a whole warm build's lookups.
        self._sandbox = sandbox
        self._backend = backend
        self.roots = Roots(root if root is not None else os.getcwd())
        self.local = LocalStore(store)
        self.hashes = ContentHashes(os.path.join(self.local.dir, "hashes"))
        self.remote = remote_store(remote, remote_timeout, remote_headers) if remote else None
        self.env_keys = tuple(env_keys)
        # The store is ours, not the step's: a step that lists the root would
        # otherwise see the cache change under it.
        self.ignore = tuple(self.roots.from_key(os.fspath(p)) if not os.path.isabs(p)
                            else os.fspath(p) for p in ignore) + (self.local.dir,)
        self.cache_failures = cache_failures
        self._lock = threading.Lock()
        self.stats = {"hit": 0, "miss": 0, "not cached": 0}

    @property
    def sandbox(self):
        with self._lock:
            if self._sandbox is None:
                from .sandbox import Sandbox
                self._sandbox = Sandbox(self._backend)
            return self._sandbox

    # -- keys ---------------------------------------------------------------------
    def _ignored(self, path: str) -> bool:
        if is_pseudo(path):
            # /proc, /sys, /dev describe the machine and the process, not the
            # tree: never inputs (a step reading /proc/cpuinfo is cached as
            # if it did not) and never outputs (/dev/null, /dev/tty).
            return True
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.ignore)

    def command_key(self, argv, *, cwd=None, env=None, env_keys=(), input=None) -> tuple:
        """``(key1, description)`` of a command (level one of the lookup)."""
        values = os.environ if env is None else env
        keys = sorted(set(self.env_keys) | set(env_keys))
        if isinstance(input, str):
            input = input.encode()
        desc = {
            "format": FORMAT,
            "argv": [self.roots.text_to_key(os.fsdecode(a)) for a in argv],
            "cwd": self.roots.to_key(os.path.abspath(cwd or os.getcwd())),
            "env": {k: (None if values.get(k) is None
                        else self.roots.text_to_key(values.get(k))) for k in keys},
            "input": None if input is None else _sha256_bytes(input),
        }
        return _sha256_bytes(_canonical(desc)), desc

    # -- the two levels -------------------------------------------------------------
    def _manifest(self, key1: str, step: dict) -> list:
        """Candidates from the local store, then the remote one."""
        out, seen = [], {}
        docs = [self.local.get_ac(key1)]
        if self.remote:
            docs.append(self.remote.get_manifest(key1, step))
        for data in docs:
            doc = self._json(data)
            for c in (doc or {}).get("candidates", ()):
                if not (isinstance(c, dict) and _is_digest(c.get("entry"))
                        and isinstance(c.get("inputs"), list)):
                    continue
                if c["entry"] in seen:
                    # The same input set, stored here before the remote
                    # store knew it: take the remote's name for it.
                    if c.get("remote"):
                        seen[c["entry"]].setdefault("remote", c["remote"])
                    continue
                seen[c["entry"]] = c = dict(c)
                out.append(c)
        return out

    @staticmethod
    def _json(data: Optional[bytes]):
        if data is None:
            return None
        try:
            doc = json.loads(data)
        except ValueError:
            return None     # garbage from a server or a torn file: a miss
        return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None

    def _first_difference(self, inputs: list) -> Optional[str]:
        for rec in inputs:
            try:
                category, name, state = rec[0], rec[1], rec[2]
                exclude = rec[3] if len(rec) > 3 else ()
                if category not in ("read", "probe", "list") or not isinstance(name, str):
                    raise TypeError
            except (TypeError, IndexError, KeyError):
                return "unreadable manifest"
            path = self.roots.from_key(name)
            now = input_state(category, path, exclude, self.hashes)
            if now != state:
                return "%s %s changed: %s -> %s" % (category, name, _show(state), _show(now))
        return None

    def _lookup(self, key1: str, step: dict):
        """``(entry, key2, why, remote ref)``; entry is None on a miss."""
        candidates = self._manifest(key1, step)
        if not candidates:
            return None, None, "first run of this command (argv, cwd, env)", ""
        why = None
        for c in candidates:
            diff = self._first_difference(c["inputs"])
            if diff is not None:
                why = why or diff
                continue
            key2 = c.get("entry")
            entry = self._json(self.local.get_ac(key2))
            if entry is None and self.remote:
                data = self.remote.get_entry(key2, c.get("remote"))
                entry = self._json(data)
                if entry is not None:
                    self.local.put_ac(key2, data)
            if entry is None or not _valid_entry(entry):
                why = why or "inputs match but the entry is missing from the store"
                continue
            try:
                self._fetch_blobs(entry)
            except _Miss as e:
                why = why or str(e)
                continue
            return entry, key2, None, c.get("remote") or ""
        return None, None, why, ""

    def _fetch_blobs(self, entry: dict) -> None:
        digests = [o[2] for o in entry.get("outputs", ()) if o[1] == "file"]
        digests += [d for d in (entry.get("stdout"), entry.get("stderr")) if d]
        sizes = entry.get("sizes") if isinstance(entry.get("sizes"), dict) else {}
        missing = {d: sizes.get(d, 0) for d in digests if not self.local.has_cas(d)}
        if not missing:
            return
        if not self.remote:
            raise _Miss("output blob %s... is missing from the store" % next(iter(missing))[:12])
        if any(not isinstance(n, int) or n < 0 for n in missing.values()):
            raise _Miss("unreadable entry (blob sizes)")
        why = self.remote.fetch(missing, self.local)
        if why:
            raise _Miss(why)

    # -- public API ------------------------------------------------------------------
    def why(self, argv, *, cwd=None, env=None, env_keys=(), input=None) -> Optional[str]:
        """None when ``run`` would restore the step, else the reason it
        would run: no earlier run, or the first input that differs from the
        newest earlier run (``read src/x.h changed: 3f2a.. -> 9bc1..``)."""
        key1, step = self.command_key(argv, cwd=cwd, env=env, env_keys=env_keys, input=input)
        return self._lookup(key1, step)[2]

    def run(self, argv, *, cwd=None, env=None, env_keys=(), input=None,
            capture_output: bool = False, text: Optional[bool] = None,
            encoding: Optional[str] = None, errors: Optional[str] = None,
            timeout: Optional[float] = None, check: bool = False) -> Result:
        """Run ``argv`` under the sandbox, or restore its outputs.

        Keyword arguments mean what they mean for ``subprocess.run``.  The
        step's stdout and stderr are always captured so that a hit can
        replay them: without ``capture_output`` they are written to this
        process's stdout and stderr when the step ends.  stdin is /dev/null
        unless ``input`` is given (it is part of the key).  The Result has a
        ``memo`` attribute (:class:`Outcome`)."""
        argv = [os.fspath(a) for a in argv]
        if not argv:
            raise ValueError("argv is empty: give at least the program to run")
        cwd = os.path.abspath(os.fspath(cwd)) if cwd is not None else os.getcwd()
        key1, step = self.command_key(argv, cwd=cwd, env=env, env_keys=env_keys, input=input)
        start = time.monotonic()
        entry, key2, why, ref = self._lookup(key1, step)
        if entry is not None:
            try:
                result = self._restore(entry)
            except _Miss as e:
                why = str(e)
            else:
                result.duration = time.monotonic() - start
                result.memo = Outcome("hit", "", key2, ref)
                return self._deliver(result, capture_output, text, encoding, errors, check)
        result = self._execute(argv, key1, step, why, cwd=cwd, env=env, input=input,
                               timeout=timeout)
        return self._deliver(result, capture_output, text, encoding, errors, check)

    def run_many(self, steps, *, jobs: Optional[int] = None, **common) -> list:
        """Run independent steps in parallel; returns their Results in order.

        Each step is an argv list or a dict of ``run`` arguments with an
        ``"argv"`` item; ``common`` holds arguments for every step.  Steps
        must not read what another one of the same call writes."""
        calls = []
        for s in steps:
            kw = dict(common)
            if isinstance(s, dict):
                s = dict(s)
                argv = s.pop("argv")
                kw.update(s)
            else:
                argv = s
            calls.append((argv, kw))
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as ex:
            futures = [ex.submit(self.run, argv, **kw) for argv, kw in calls]
            return [f.result() for f in futures]

    # -- a miss ----------------------------------------------------------------------
    def _execute(self, argv, key1, step, why, *, cwd, env, input, timeout) -> Result:
        started_ns = time.time_ns()
        kwargs = dict(cwd=cwd, env=env, capture_output=True, timeout=timeout)
        if input is None:
            kwargs["stdin"] = subprocess.DEVNULL
        else:
            kwargs["input"] = input.encode() if isinstance(input, str) else input
        result = self.sandbox.run(argv, **kwargs)
        ended_ns = time.time_ns()
        reason = self._uncacheable(result)
        inputs = None
        if reason is None:
            inputs, reason = self._inputs(result, started_ns, ended_ns)
        if reason is not None:
            result.warnings = tuple(result.warnings) + ("memo: not cached: %s" % reason,)
            result.memo = Outcome("not cached", reason, "")
            self._count("not cached")
            return result
        key2, ref = self._store(key1, step, inputs, result)
        result.memo = Outcome("miss", why or "", key2, ref or "")
        self._count("miss")
        return result

    def _count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def _uncacheable(self, result: Result) -> Optional[str]:
        if not result.complete:
            return "the trace is incomplete (%s)" % "; ".join(result.warnings)
        if result.returncode < 0:
            return "killed by signal %d" % -result.returncode
        if result.returncode and not self.cache_failures:
            return "exit status %d" % result.returncode
        return None

    def _inputs(self, result: Result, started_ns: int, ended_ns: int):
        """The input records of a finished step, or ``(None, reason)``."""
        written = {p for p in result.writes if not self._ignored(p)}
        records = []
        for path in result.reads:
            if self._ignored(path):
                continue
            kind, st = _kind(path)
            if path not in written and st is not None \
                    and started_ns < st.st_mtime_ns <= ended_ns:
                # Changed while the step ran: the hash taken now may not be
                # what the step read, so this run proves nothing.
                return None, "input %s was modified while the step ran" % path
            # A file the step read and then rewrote (its own cache, an
            # in-place edit) is an input as the step left it: untouched since
            # -> hit; edited by someone else -> rerun.
            records.append(["read", self.roots.to_key(path),
                            input_state("read", path, (), self.hashes)])
        reads = set(result.reads)
        for path in result.probes:
            # A probe of the step's own output (ld checks the file it will
            # replace) says nothing about the tree before the step.
            if self._ignored(path) or path in written or path in reads:
                continue
            records.append(["probe", self.roots.to_key(path), input_state("probe", path)])
        for path in result.enumerations:
            if self._ignored(path) or path in written:
                continue
            # The listing as it was before the step: without the names the
            # step created or removed there.
            own = sorted(os.path.basename(w) for w in written if os.path.dirname(w) == path)
            records.append(["list", self.roots.to_key(path),
                            input_state("list", path, own)] + ([own] if own else []))
        return records, None

    def _store(self, key1: str, step: dict, inputs: list, result: Result) -> tuple:
        """Store a step's entry and add its input set to the manifest;
        returns ``(key2, the entry's Action digest on a REAPI store or None)``."""
        key2 = _sha256_bytes(key1.encode() + b"\0" + _canonical(inputs))
        outputs, sizes = [], {}
        for path in sorted(p for p in result.writes if not self._ignored(p)):
            name = self.roots.to_key(path)
            try:
                st = os.lstat(path)
            except OSError:
                # A name gone from the temp directory itself is a scratch file
                # (gcc's /tmp/ccXXXXXX.s): deleting it again on a hit could
                # delete another process's file of the same random name.
                if os.path.dirname(path) not in _TEMP_DIRS:
                    outputs.append([name, "absent", None, 0])
                continue
            if stat.S_ISLNK(st.st_mode):
                outputs.append([name, "symlink", os.readlink(path), 0])
            elif stat.S_ISDIR(st.st_mode):
                outputs.append([name, "dir", None, stat.S_IMODE(st.st_mode)])
            elif stat.S_ISREG(st.st_mode):
                digest = self.local.put_cas_file(path)
                sizes[digest] = os.path.getsize(self.local.cas_path(digest))
                outputs.append([name, "file", digest, stat.S_IMODE(st.st_mode)])
        streams = {}
        for name in ("stdout", "stderr"):
            data = getattr(result, name) or b""
            streams[name] = self.local.put_cas_bytes(data)
            sizes[streams[name]] = len(data)
        doc = result.to_dict()
        doc = _map_result(doc, self.roots.to_key, self.roots.text_to_key)
        doc["stdout"] = doc["stderr"] = None
        # sizes: what a REAPI Digest needs besides the hash.
        entry = {"format": FORMAT, "outputs": outputs, "result": doc, "sizes": sizes,
                 **streams}
        entry_bytes = _canonical(entry)
        self.local.put_ac(key2, entry_bytes)
        candidate = {"inputs": inputs, "entry": key2}
        ref = None
        # Blobs before the entry, the entry before the manifest: a reader
        # never finds a manifest pointing at nothing.
        if self.remote and self.remote.put_blobs(sizes, self.local):
            ref = self.remote.put_entry(key2, step, inputs, entry, entry_bytes, self.roots)
            if ref:
                candidate["remote"] = ref
        with self._lock:
            self.local.put_ac(key1, self._add_candidate(self.local.get_ac(key1), candidate))
        if self.remote and (ref or isinstance(self.remote, HTTPStore)):
            self.remote.put_manifest(key1, step, self._add_candidate(
                self.remote.get_manifest(key1, step), candidate))
        return key2, ref

    def _add_candidate(self, old: Optional[bytes], candidate: dict) -> bytes:
        doc = self._json(old) or {"format": FORMAT, "candidates": []}
        rest = [c for c in doc.get("candidates", ())
                if isinstance(c, dict) and c.get("entry") != candidate["entry"]]
        return _canonical({"format": FORMAT,
                           "candidates": [candidate] + rest[:MAX_CANDIDATES - 1]})

    # -- a hit -----------------------------------------------------------------------
    def _restore(self, entry: dict) -> Result:
        # Everything that can fail without touching the tree comes first.
        try:
            doc = _map_result(entry["result"], self.roots.from_key, self.roots.text_from_key)
            result = Result.from_dict(doc)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise _Miss("unreadable entry (%s)" % e) from None
        streams = []
        for name in ("stdout", "stderr"):
            data = self.local.read_cas(entry[name]) if entry.get(name) else b""
            if data is None:
                raise _Miss("%s blob is corrupt" % name)
            streams.append(data)
        result.stdout, result.stderr = streams

        outputs = entry["outputs"]
        # Deletions first, deepest first (a file before its directory), then
        # directories and files in path order (a directory before its files).
        for name, kind, _, _ in sorted(outputs, reverse=True):
            if kind == "absent":
                _remove(self.roots.from_key(name))
        for name, kind, ref, mode in sorted(outputs):
            path = self.roots.from_key(name)
            if kind == "dir":
                if not os.path.isdir(path):
                    _remove(path)
                    os.makedirs(path, exist_ok=True)
            elif kind == "symlink":
                if not (os.path.islink(path) and os.readlink(path) == ref):
                    _remove(path)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.symlink(ref, path)
            elif kind == "file":
                self._restore_file(path, ref, mode)
        self._count("hit")
        return result

    def _restore_file(self, path: str, digest: str, mode: int) -> None:
        try:
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and self.hashes.digest(path, st) == digest:
                if stat.S_IMODE(st.st_mode) != mode:
                    os.chmod(path, mode)
                return          # already right: keep its mtime, as make would
        except OSError:
            pass
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".memo-")
        try:
            with open(self.local.cas_path(digest), "rb") as src, os.fdopen(fd, "wb") as dst:
                for block in iter(lambda: src.read(BLOCK), b""):
                    h.update(block)
                    dst.write(block)
            if h.hexdigest() != digest:
                # A damaged local blob: drop it, never restore it.
                os.unlink(self.local.cas_path(digest))
                raise _Miss("output blob %s... is corrupt" % digest[:12])
            os.chmod(tmp, mode)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # -- both --------------------------------------------------------------------------
    def _deliver(self, result: Result, capture_output, text, encoding, errors,
                 check) -> Result:
        """Hand out stdout/stderr the way subprocess.run would have."""
        if not capture_output:
            for data, stream in ((result.stdout, sys.stdout), (result.stderr, sys.stderr)):
                if data:
                    stream.flush()
                    buf = getattr(stream, "buffer", None)
                    if buf is not None:
                        buf.write(data)
                    else:
                        stream.write(data.decode(errors="replace"))
                    stream.flush()
            result.stdout = result.stderr = None
        elif text or encoding or errors:
            enc = encoding or locale.getpreferredencoding(False)
            result.stdout, result.stderr = (
                _universal_newlines(d.decode(enc, errors or "strict"))
                for d in (result.stdout, result.stderr))
        if check:
            result.check_returncode()
        return result


_CATEGORIES = ("reads", "writes", "probes", "enumerations")


def _map_result(doc: dict, path, text) -> dict:
    """A Result document with every path mapped by ``path`` (to or from the
    stored names) and every text that may hold one (argv, the executed
    files) by ``text``: the run's sets, its execs and each process's record,
    so that no path of the checkout that stored it shows in another."""
    def opt(f, v):
        return None if v is None else f(v)
    doc = dict(doc)
    for cat in _CATEGORIES:
        doc[cat] = [path(p) for p in doc[cat]]
    doc["args"] = [text(a) for a in doc["args"]]
    doc["execs"] = [dict(e, path=text(e["path"]), argv=[text(a) for a in e["argv"]])
                    for e in doc["execs"]]
    doc["processes"] = [dict(p, path=opt(text, p.get("path")), cwd=opt(path, p.get("cwd")),
                             argv=[text(a) for a in p.get("argv", ())],
                             **{c: [path(x) for x in p.get(c, ())] for c in _CATEGORIES})
                        for p in doc.get("processes", ())]
    return doc


def _universal_newlines(s: str) -> str:
    # As subprocess's text mode reads them.
    return s.replace("\r\n", "\n").replace("\r", "\n")


def _show(state: str) -> str:
    if len(state) == 64:
        return state[:12]
    if state.startswith("names:"):
        return "listing " + state[6:18]
    return state


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)      # only if empty: other files are not ours
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass
