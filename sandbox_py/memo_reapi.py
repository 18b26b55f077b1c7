"""The Remote Execution API v2 (gRPC) store of ``sandbox_py.memo``:
``Memo(".cache", remote="grpc://host:port/instance")``.  See docs/memo.md.

A step is stored as the messages any REAPI client reads:

- a ``Command`` (argv and the declared environment variables, with the
  checkout root written ``@ROOT@``; the working directory relative to the
  root; the output paths),
- an ``Action`` pointing at it and at an input root ``Directory`` tree of the
  files the step read below the root (content digests, executable bit).
  What a tree cannot say -- files read outside the root, absent paths
  probed, directories listed, stdin -- is folded into the key through the
  Action's ``salt``: memo's own key of the step, which covers all of them;
- an ``ActionResult`` with the real outputs (``output_files``,
  ``output_directories`` as ``Tree`` blobs, ``output_symlinks``),
  ``exit_code``, ``stdout_digest`` and ``stderr_digest``.

What memo needs beyond that (the manifest of input sets under the command,
the traced Result, deletions, outputs outside the root) is JSON in CAS blobs
that the ActionResult names in ``execution_metadata.auxiliary_metadata`` (a
``Digest`` packed in an ``Any``): never a non-standard action-cache body.
The manifest of a command lives under an Action of its Command without
output paths, an empty input root and the salt
``sandbox_py.memo/1 manifest <key1>``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import stat
import threading
import time
import urllib.parse
import uuid
from typing import Optional

from . import _reapi
from ._reapi import bytestream_pb2 as bs
from ._reapi import bytestream_pb2_grpc as bs_grpc
from ._reapi import remote_execution_pb2 as re
from ._reapi import remote_execution_pb2_grpc as re_grpc
from .memo import BLOCK, FORMAT, _is_digest

grpc = _reapi.grpc
log = logging.getLogger("sandbox_py.memo")

#: When the server does not say (``max_batch_total_size_bytes`` = 0): gRPC's
#: default message limit, which most servers keep.
DEFAULT_BATCH = 4 * 1024 * 1024
#: Room for the request's own fields (digests, instance name) in a batch.
BATCH_OVERHEAD = 64 * 1024
CHUNK = 1 << 20
#: A failed call with one of these is tried again (twice, after 0.1 and 0.4 s):
#: the server is there but busy or restarting.
TRANSIENT = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "ABORTED")
DOC_TYPE = "type.googleapis.com/build.bazel.remote.execution.v2.Digest"
WORKER = "sandbox_py.memo"


class _Fault(Exception):
    def __init__(self, code: str, details: str):
        super().__init__("%s: %s" % (code, details))
        self.code = code


def _digest(data: bytes) -> "re.Digest":
    return re.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def digest_string(d) -> str:
    """``hash/size``, as ``bgd actioncache get`` and ``bazel`` print them."""
    return "%s/%d" % (d.hash, d.size_bytes)


def _tree(items: dict):
    """Directory messages for ``{relative path: node}`` where a node is
    ``("file", sha256, size, executable)``, ``("symlink", target)`` or
    ``("dir",)``.  Returns ``(root Directory, [every Directory below it])``,
    children sorted by name as the REAPI requires."""
    nested: dict = {}
    for path, node in items.items():
        parts = path.split("/")
        d = nested
        for p in parts[:-1]:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):
                break
        else:
            if node[0] == "dir":
                d.setdefault(parts[-1], {})
            elif not isinstance(d.get(parts[-1]), dict):
                d[parts[-1]] = node
    below: list = []

    def build(d: dict):
        msg = re.Directory()
        for name in sorted(d):
            node = d[name]
            if isinstance(node, dict):
                sub = build(node)
                below.append(sub)
                msg.directories.add(name=name, digest=_digest(sub.SerializeToString()))
            elif node[0] == "file":
                msg.files.add(name=name, digest=re.Digest(hash=node[1], size_bytes=node[2]),
                              is_executable=node[3])
            else:
                msg.symlinks.add(name=name, target=node[1])
        return msg
    return build(nested), below


class REAPIStore:
    """A REAPI v2 cache: ``grpc://host:port[/instance]`` or ``grpcs://`` (TLS;
    gRPC's bundled roots or ``$GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``).
    ``headers``: gRPC metadata sent with every call (``authorization:
    Bearer ...``, ``x-buildbuddy-api-key: ...``).

    Faults are misses, never errors: the step then runs here.  Each kind of
    fault is said once (a ``sandbox_py.memo`` log warning, and in
    ``notes``), not per step.  A server that cannot be reached or does not
    answer within ``timeout`` is not asked again (``down`` says why): one
    timeout per build, not one per step."""

    def __init__(self, url: str, timeout: float = 10.0, headers=()):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("grpc", "grpcs") or not u.hostname:
            raise ValueError("REAPI URL must be grpc[s]://host[:port][/instance], not %r" % url)
        self.url = url
        self.instance = urllib.parse.unquote(u.path.strip("/"))
        port = u.port or (443 if u.scheme == "grpcs" else 50051)
        self._target = "%s:%d" % (u.hostname if ":" not in u.hostname
                                  else "[%s]" % u.hostname, port)
        self._tls = u.scheme == "grpcs"
        self.timeout = timeout
        meta = dict(headers.items() if hasattr(headers, "items") else headers)
        tool = re.RequestMetadata(tool_details=re.ToolDetails(tool_name=WORKER,
                                                              tool_version=FORMAT))
        self._metadata = tuple((k.lower(), v) for k, v in meta.items()) + (
            ("build.bazel.remote.execution.v2.requestmetadata-bin", tool.SerializeToString()),)
        self.down: Optional[str] = None
        self.notes: list = []
        self.can_update = False
        self.batch_limit = DEFAULT_BATCH
        #: Calls made, by kind: what a user (or a test) checks went where.
        self.calls: dict = {}
        self._said: set = set()
        self._lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._ready = False
        self._channel = None

    # -- the connection ------------------------------------------------------------
    def _connect(self) -> bool:
        """Open the channel and ask GetCapabilities, once.  False when the
        server cannot be used.  Parallel steps wait for the first one's
        answer: until then nobody knows the batch limit or whether to store."""
        with self._connect_lock:
            if not self._ready and not self.down:
                self._ready = self._open()
            return self._ready and not self.down

    def _open(self) -> bool:
        with self._lock:
            # A subchannel of our own: gRPC otherwise shares connections
            # per target across the process, and a new Memo would inherit
            # the reconnect backoff of an earlier one whose server was down
            # (UNAVAILABLE at once, though the server is back).
            options = [("grpc.max_receive_message_length", -1),
                       ("grpc.max_send_message_length", -1),
                       ("grpc.use_local_subchannel_pool", 1)]
            if self._tls:
                self._channel = grpc.secure_channel(self._target, grpc.ssl_channel_credentials(),
                                                    options)
            else:
                self._channel = grpc.insecure_channel(self._target, options)
            self._ac = re_grpc.ActionCacheStub(self._channel)
            self._cas = re_grpc.ContentAddressableStorageStub(self._channel)
            self._bs = bs_grpc.ByteStreamStub(self._channel)
            caps_stub = re_grpc.CapabilitiesStub(self._channel)
        try:
            caps = self._call("capabilities", caps_stub.GetCapabilities,
                              re.GetCapabilitiesRequest(instance_name=self.instance))
        except _Fault as e:
            self._give_up("GetCapabilities failed (%s)" % e)
            return False
        if caps is None:
            return False
        cache = caps.cache_capabilities
        functions = list(cache.digest_functions)
        if functions and re.DigestFunction.SHA256 not in functions:
            self._give_up("the server does not offer SHA-256 digests")
            return False
        if cache.max_batch_total_size_bytes > 0:
            self.batch_limit = cache.max_batch_total_size_bytes
        self.can_update = cache.action_cache_update_capabilities.update_enabled
        if not self.can_update:
            self._note("read-only", "the server does not accept action-cache updates "
                       "(GetCapabilities): entries are read from it, none are stored")
        return True

    def _give_up(self, why: str) -> None:
        with self._lock:
            if self.down:
                return
            self.down = "%s: %s" % (self.url, why)
        self._note("down", why + "; steps run here, and the server is not asked again")

    def _note(self, kind: str, message: str) -> None:
        """Say what happened once per kind of fault, not once per step."""
        with self._lock:
            if kind in self._said:
                return
            self._said.add(kind)
            self.notes.append(message)
        log.warning("sandbox_py.memo: remote cache %s: %s", self.url, message)

    def _count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.calls[kind] = self.calls.get(kind, 0) + n

    def _call(self, kind: str, method, request, timeout: Optional[float] = None):
        """One unary call, retried on transient codes.  None once the server
        is down; raises _Fault for an answer with another code."""
        for attempt in range(3):
            if self.down:
                return None
            self._count(kind)
            try:
                return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                code = e.code().name if e.code() else "UNKNOWN"
                if code in TRANSIENT and attempt < 2:
                    time.sleep(0.1 * 4 ** attempt)
                    continue
                return self._fault(code, e.details() or "")
        return None

    def _fault(self, code: str, details: str):
        if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "UNAUTHENTICATED"):
            # Down, too slow, or our credentials refused: asking again for
            # the next step would cost the same again.
            self._give_up("%s (%s)" % (code, details))
            return None
        raise _Fault(code, details)

    # -- CAS -------------------------------------------------------------------------
    def _batches(self, sizes: dict):
        """Blobs small enough for a batch call, grouped under the limit, and
        the ones that must go through ByteStream."""
        budget = max(self.batch_limit - BATCH_OVERHEAD, self.batch_limit // 2)
        big = [d for d, n in sizes.items() if n > budget]
        batches, current, total = [], [], 0
        for d, n in sizes.items():
            if n > budget:
                continue
            if current and total + n > budget:
                batches.append(current)
                current, total = [], 0
            current.append(d)
            total += n
        if current:
            batches.append(current)
        return batches, big

    def _resource(self, digest: str, size: int, upload: bool = False) -> str:
        name = "blobs/%s/%d" % (digest, size)
        if upload:
            name = "uploads/%s/%s" % (uuid.uuid4(), name)
        return self.instance + "/" + name if self.instance else name

    def _missing(self, sizes: dict) -> dict:
        resp = self._call("FindMissingBlobs", self._cas.FindMissingBlobs,
                          re.FindMissingBlobsRequest(
                              instance_name=self.instance,
                              blob_digests=[re.Digest(hash=d, size_bytes=n)
                                            for d, n in sizes.items()]))
        if resp is None:
            return {}
        return {m.hash: m.size_bytes for m in resp.missing_blob_digests if m.hash in sizes}

    def upload(self, blobs: dict) -> bool:
        """``{sha256: bytes or a file path}``: upload those the server lacks.
        True when all are there afterwards."""
        if not blobs or not self._connect():
            return not blobs
        sizes = {d: (len(b) if isinstance(b, bytes) else os.path.getsize(b))
                 for d, b in blobs.items()}
        try:
            missing = self._missing(sizes)
            if self.down:
                return False
            batches, big = self._batches(missing)
            for batch in batches:
                req = re.BatchUpdateBlobsRequest(instance_name=self.instance)
                for d in batch:
                    req.requests.add(digest=re.Digest(hash=d, size_bytes=missing[d]),
                                     data=_read(blobs[d]))
                resp = self._call("BatchUpdateBlobs", self._cas.BatchUpdateBlobs, req)
                if resp is None:
                    return False
                bad = [r for r in resp.responses if r.status.code != 0]
                if bad:
                    self._note("upload", "BatchUpdateBlobs refused a blob (code %d: %s): "
                               "its step is not shared" % (bad[0].status.code,
                                                           bad[0].status.message))
                    return False
            for d in big:
                if not self._write(d, missing[d], blobs[d]):
                    return False
        except _Fault as e:
            self._note("upload", "storing blobs failed (%s): steps are not shared" % e)
            return False
        return True

    def _write(self, digest: str, size: int, blob) -> bool:
        name = self._resource(digest, size, upload=True)

        def requests():
            offset = 0
            with _open(blob) as f:
                while True:
                    data = f.read(CHUNK)
                    last = offset + len(data) >= size
                    yield bs.WriteRequest(resource_name=name if offset == 0 else "",
                                          write_offset=offset, finish_write=last, data=data)
                    offset += len(data)
                    if last or not data:
                        return
        self._count("ByteStream.Write")
        try:
            resp = self._bs.Write(requests(), timeout=self._stream_timeout(size),
                                  metadata=self._metadata)
        except grpc.RpcError as e:
            code = e.code().name if e.code() else "UNKNOWN"
            if code == "ALREADY_EXISTS":
                return True
            self._fault(code, e.details() or "")
            return False
        if resp.committed_size not in (size, -1):
            self._note("upload", "ByteStream.Write committed %d of %d bytes"
                       % (resp.committed_size, size))
            return False
        return True

    def _stream_timeout(self, size: int) -> float:
        # The deadline covers the whole stream: allow for 10 MB/s on top.
        return self.timeout + size / 10e6

    def fetch(self, sizes: dict, local) -> Optional[str]:
        """Download ``{sha256: size}`` into the LocalStore ``local``, each
        checked against its digest.  None when all arrived, else why not."""
        if not sizes:
            return None
        if not self._connect():
            return "the remote cache is unavailable"
        batches, big = self._batches(sizes)
        try:
            for batch in batches:
                resp = self._call("BatchReadBlobs", self._cas.BatchReadBlobs,
                                  re.BatchReadBlobsRequest(
                                      instance_name=self.instance,
                                      digests=[re.Digest(hash=d, size_bytes=sizes[d])
                                               for d in batch]))
                if resp is None:
                    return "the remote cache is unavailable"
                got = set()
                for r in resp.responses:
                    if r.digest.hash not in sizes or r.status.code != 0:
                        continue
                    if not local.put_cas_stream(r.digest.hash, [r.data]):
                        return self._mismatch(r.digest.hash)
                    got.add(r.digest.hash)
                lost = [d for d in batch if d not in got]
                if lost:
                    return self._not_found(lost[0])
            for d in big:
                why = self._read(d, sizes[d], local)
                if why:
                    return why
        except _Fault as e:
            if e.code == "NOT_FOUND":
                return self._not_found(None)
            self._note("read", "reading blobs failed (%s)" % e)
            return "reading a blob failed (%s)" % e
        return None

    def _read(self, digest: str, size: int, local) -> Optional[str]:
        self._count("ByteStream.Read")
        try:
            stream = self._bs.Read(bs.ReadRequest(resource_name=self._resource(digest, size)),
                                   timeout=self._stream_timeout(size), metadata=self._metadata)
            ok = local.put_cas_stream(digest, (r.data for r in stream))
        except grpc.RpcError as e:
            code = e.code().name if e.code() else "UNKNOWN"
            if code == "NOT_FOUND":
                return self._not_found(digest)
            self._fault(code, e.details() or "")
            return "reading blob %s... failed (%s)" % (digest[:12], code)
        return None if ok else self._mismatch(digest)

    def _mismatch(self, digest: str) -> str:
        self._note("mismatch", "the server returned a blob whose content does not match "
                   "its digest (%s...): it is never restored" % digest[:12])
        return "remote blob %s... does not match its digest" % digest[:12]

    def _not_found(self, digest: Optional[str]) -> str:
        what = "%s... " % digest[:12] if digest else ""
        self._note("not found", "the server lost blob %sthat an action result names "
                   "(NOT_FOUND): such steps run here" % what)
        return "blob %sis missing from the remote cache" % what

    def _blob(self, d) -> Optional[bytes]:
        """One small blob named by a Digest message, verified."""
        if not _is_digest(d.hash) or d.size_bytes < 0:
            return None

        class Sink:
            data = None

            def put_cas_stream(self, digest, chunks):
                data = b"".join(chunks)
                if hashlib.sha256(data).hexdigest() != digest:
                    return False
                self.data = data
                return True
        sink = Sink()
        return sink.data if self.fetch({d.hash: d.size_bytes}, sink) is None else None

    # -- the action cache ------------------------------------------------------------
    def _get_result(self, action: "re.Digest"):
        try:
            return self._call("GetActionResult", self._ac.GetActionResult,
                              re.GetActionResultRequest(instance_name=self.instance,
                                                        action_digest=action))
        except _Fault as e:
            if e.code != "NOT_FOUND":
                self._note("lookup", "GetActionResult failed (%s)" % e)
            return None

    def _document(self, action: "re.Digest") -> Optional[bytes]:
        """Memo's JSON document named by the ActionResult of ``action``."""
        if not self._connect():
            return None
        result = self._get_result(action)
        if result is None:
            return None
        for extra in result.execution_metadata.auxiliary_metadata:
            if extra.type_url == DOC_TYPE:
                ref = re.Digest()
                try:
                    ref.ParseFromString(extra.value)
                except Exception:
                    return None
                return self._blob(ref)
        return None

    def _update(self, action: "re.Digest", result: "re.ActionResult") -> bool:
        if not self.can_update:
            return False
        try:
            return self._call("UpdateActionResult", self._ac.UpdateActionResult,
                              re.UpdateActionResultRequest(
                                  instance_name=self.instance, action_digest=action,
                                  action_result=result)) is not None
        except _Fault as e:
            # Refused (PERMISSION_DENIED, UNIMPLEMENTED, ...): reading still
            # works; writing again would be refused again.
            self.can_update = False
            self._note("read-only", "UpdateActionResult was refused (%s): entries are read "
                       "from the server, none are stored" % e)
            return False

    @staticmethod
    def command(step: dict, outputs=()) -> "re.Command":
        cwd = step["cwd"]
        workdir = "" if cwd == "." or cwd.startswith("/") else cwd
        return re.Command(
            arguments=step["argv"],
            environment_variables=[re.Command.EnvironmentVariable(name=k, value=v)
                                   for k, v in sorted(step["env"].items()) if v is not None],
            working_directory=workdir,
            output_paths=sorted(outputs))

    def _action(self, command: "re.Command", root: "re.Directory", salt: str):
        cmd = command.SerializeToString()
        action = re.Action(command_digest=_digest(cmd),
                           input_root_digest=_digest(root.SerializeToString()),
                           salt=salt.encode())
        data = action.SerializeToString()
        return _digest(data), {hashlib.sha256(cmd).hexdigest(): cmd,
                               hashlib.sha256(data).hexdigest(): data}

    def _manifest_action(self, key1: str, step: dict):
        return self._action(self.command(step), re.Directory(),
                            "%s manifest %s" % (FORMAT, key1))

    def _put_document(self, action, blobs: dict, doc: bytes, result: "re.ActionResult"):
        ref = _digest(doc)
        result.execution_metadata.worker = WORKER
        result.execution_metadata.auxiliary_metadata.add().Pack(ref)
        # Pack() writes the type URL from the message's full name: the same
        # string as DOC_TYPE, which lookups match.
        blobs[ref.hash] = doc
        root = re.Directory().SerializeToString()
        blobs[hashlib.sha256(root).hexdigest()] = root
        return self.upload(blobs) and self._update(action, result)

    # -- what Memo calls -------------------------------------------------------------
    def get_manifest(self, key1: str, step: dict) -> Optional[bytes]:
        return self._document(self._manifest_action(key1, step)[0])

    def put_manifest(self, key1: str, step: dict, data: bytes) -> None:
        if not self._connect() or not self.can_update:
            return
        action, blobs = self._manifest_action(key1, step)
        self._put_document(action, blobs, data, re.ActionResult())

    def get_entry(self, key2: str, ref) -> Optional[bytes]:
        if not isinstance(ref, str) or "/" not in ref:
            return None
        digest, _, size = ref.partition("/")
        if not _is_digest(digest) or not size.isdigit():
            return None
        return self._document(re.Digest(hash=digest, size_bytes=int(size)))

    def put_blobs(self, sizes: dict, local) -> bool:
        if not self._connect() or not self.can_update:
            return False
        return self.upload({d: local.cas_path(d) for d in sizes})

    def put_entry(self, key2: str, step: dict, inputs: list, entry: dict,
                  entry_bytes: bytes, roots) -> Optional[str]:
        """Store a step's Command, Action, input root and ActionResult;
        returns the Action's digest (``hash/size``) or None."""
        if not self._connect() or not self.can_update:
            return None
        sizes = entry.get("sizes", {})
        workdir = "" if step["cwd"] == "." or step["cwd"].startswith("/") else step["cwd"]

        def rel(name: str) -> str:
            return posixpath.relpath(name, workdir) if workdir else name

        # The real outputs below the root; a directory the step made is an
        # OutputDirectory (a Tree of what the step wrote in it).
        below = [o for o in entry["outputs"] if not o[0].startswith("/") and o[0] != "."]
        dirs = sorted(o[0] for o in below if o[1] == "dir")
        tops = [d for d in dirs if not any(d.startswith(t + "/") for t in dirs if t != d)]

        def top_of(name):
            return next((t for t in tops if name.startswith(t + "/")), None)
        result = re.ActionResult(exit_code=entry["result"].get("returncode") or 0)
        blobs: dict = {}
        for name, kind, ref, mode in below:
            if top_of(name) is not None or kind in ("absent", "dir"):
                continue
            if kind == "file":
                result.output_files.add(path=rel(name),
                                        digest=re.Digest(hash=ref, size_bytes=sizes.get(ref, 0)),
                                        is_executable=bool(mode & 0o111))
            elif kind == "symlink":
                result.output_symlinks.add(path=rel(name), target=ref)
        for top in tops:
            items = {}
            for name, kind, ref, mode in below:
                if not name.startswith(top + "/"):
                    continue
                sub = name[len(top) + 1:]
                if kind == "file":
                    items[sub] = ("file", ref, sizes.get(ref, 0), bool(mode & 0o111))
                elif kind == "symlink":
                    items[sub] = ("symlink", ref)
                elif kind == "dir":
                    items[sub] = ("dir",)
            root, children = _tree(items)
            tree = re.Tree(root=root, children=children).SerializeToString()
            blobs[hashlib.sha256(tree).hexdigest()] = tree
            result.output_directories.add(
                path=rel(top), tree_digest=_digest(tree),
                root_directory_digest=_digest(root.SerializeToString()))
            for d in [root] + children:
                data = d.SerializeToString()
                blobs[hashlib.sha256(data).hexdigest()] = data
        for name in ("stdout", "stderr"):
            if entry.get(name):
                getattr(result, name + "_digest").CopyFrom(
                    re.Digest(hash=entry[name], size_bytes=sizes.get(entry[name], 0)))

        # The input root: what the step read below the root, by content.
        items = {}
        for rec in inputs:
            category, name, state = rec[0], rec[1], rec[2]
            if category != "read" or name.startswith("/") or name == "." \
                    or not _is_digest(state):
                continue
            try:
                st = os.stat(roots.from_key(name))
            except OSError:
                continue
            items[name] = ("file", state, st.st_size, bool(st.st_mode & stat.S_IXUSR))
        root, children = _tree(items)
        for d in [root] + children:
            data = d.SerializeToString()
            blobs[hashlib.sha256(data).hexdigest()] = data
        outputs = [rel(o[0]) for o in below if o[1] != "absent"
                   and (top_of(o[0]) is None)]
        action, more = self._action(self.command(step, outputs), root,
                                    "%s entry %s" % (FORMAT, key2))
        blobs.update(more)
        return digest_string(action) if self._put_document(action, blobs, entry_bytes,
                                                           result) else None


def _read(blob) -> bytes:
    if isinstance(blob, bytes):
        return blob
    with open(blob, "rb") as f:
        return f.read()


class _BytesReader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _open(blob):
    return _BytesReader(blob) if isinstance(blob, bytes) else open(blob, "rb", buffering=BLOCK)
