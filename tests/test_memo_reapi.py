"""sandbox_py.memo on a Remote Execution API v2 cache: a real BuildGrid server
on 127.0.0.1 (PyPI buildgrid 0.4.4, installed by scripts/setup.sh in
build/buildgrid-venv, configured by tests/buildgrid/memo.yml), read back with
BuildGrid's own client ``bgd`` -- and the faults a shared cache has: down,
stopped, paused (deadline), read-only, blobs lost or damaged."""
import hashlib
import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sandbox_py.memo import Memo

from test_memo import CC, checkout, free_port, leaks, write

ROOT = Path(__file__).resolve().parent.parent
BGD = ROOT / "build" / "buildgrid-venv" / "bin" / "bgd"
CONFIG = Path(__file__).resolve().parent / "buildgrid" / "memo.yml"
INSTANCE = "memo"


def required(what: str):
    if os.environ.get("CI"):
        pytest.fail("%s is required in CI (scripts/setup.sh installs it)" % what)
    pytest.skip("%s is not installed (bash scripts/setup.sh)" % what)


try:
    from sandbox_py import _reapi
    from sandbox_py._reapi import remote_execution_pb2 as re
except ImportError as e:          # the 'remote' extra is missing
    _reapi, re, REAPI_MISSING = None, None, str(e)
else:
    REAPI_MISSING = None


class BuildGrid:
    """One BuildGrid server process on 127.0.0.1, its CAS on disk in ``dir``."""

    def __init__(self, directory: Path, allow_updates: bool = True):
        self.dir = directory
        self.storage = directory / "storage"
        self.port = free_port()
        self.allow_updates = allow_updates
        self.proc = None

    @property
    def url(self) -> str:
        return "grpc://127.0.0.1:%d/%s" % (self.port, INSTANCE)

    def start(self) -> "BuildGrid":
        conf = self.dir / "memo.yml"
        conf.write_text(CONFIG.read_text().format(
            address="127.0.0.1:%d" % self.port, storage=self.storage,
            allow_updates="true" if self.allow_updates else "false"))
        self.log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen([str(BGD), "server", "start", str(conf)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        # Ready when GetCapabilities answers (the port opens before that).
        import grpc
        from sandbox_py._reapi import remote_execution_pb2_grpc
        deadline = time.monotonic() + 60
        with grpc.insecure_channel("127.0.0.1:%d" % self.port) as channel:
            stub = remote_execution_pb2_grpc.CapabilitiesStub(channel)
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("BuildGrid exited (%d): %s" % (
                        self.proc.returncode, (self.dir / "server.log").read_text()[-2000:]))
                try:
                    stub.GetCapabilities(re.GetCapabilitiesRequest(instance_name=INSTANCE),
                                         timeout=1)
                    return self
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None

    def bgd(self, group: str, *args) -> subprocess.CompletedProcess:
        """BuildGrid's client, as a user would run it on our entries."""
        return subprocess.run([str(BGD), group, "--remote", "http://127.0.0.1:%d" % self.port,
                               "--instance-name", INSTANCE, *args],
                              capture_output=True, text=True, timeout=120)

    def action_result(self, action: str) -> dict:
        """``bgd actioncache get --json`` of an Action digest (``hash/size``)."""
        shown = self.bgd("actioncache", "get", "--json", action)
        assert shown.returncode == 0, shown.stderr
        return json.loads(shown.stdout[shown.stdout.index("{"):])

    def download(self, digest: dict, path: Path) -> bytes:
        """``bgd cas download-file --verify``: the blob's bytes."""
        done = self.bgd("cas", "download-file", "--verify",
                        "%s/%s" % (digest["hash"], digest.get("sizeBytes", 0)), str(path))
        assert done.returncode == 0, done.stderr
        return path.read_bytes()

    def blob_file(self, digest: str) -> Path:
        return self.storage / "cas" / "objects" / digest[:2] / digest[2:]


@pytest.fixture
def buildgrid_factory(tmp_path_factory):
    if REAPI_MISSING:
        required("the 'remote' extra (grpcio, protobuf, generated stubs: %s)" % REAPI_MISSING)
    if not BGD.exists():
        required("BuildGrid (build/buildgrid-venv)")
    servers = []

    def make(**kw) -> BuildGrid:
        server = BuildGrid(tmp_path_factory.mktemp("buildgrid"), **kw)
        servers.append(server)
        return server.start()
    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def buildgrid(buildgrid_factory):
    return buildgrid_factory()


@pytest.fixture
def auto():
    import sandbox_py
    if not any(ok for ok, _ in sandbox_py.backends().values()):
        pytest.skip("no tracing backend can run here")
    return "auto"


def build(root: Path, url: str, backend: str, **kw):
    """The small C project of test_memo: two compiles and a link."""
    m = Memo(str(root / ".cache"), root=str(root), remote=url, backend=backend, **kw)
    rs = [m.run([CC, "-I" + str(root / "include"), "-c", src], cwd=root / "src")
          for src in ("util.c", "main.c")]
    rs.append(m.run([CC, "util.o", "main.o", "-o", str(root / "app")], cwd=root / "src",
                    capture_output=True))
    return rs, m


def app_output(root: Path) -> str:
    return subprocess.run([str(root / "app")], capture_output=True, text=True).stdout


pytestmark = pytest.mark.skipif(not CC, reason="no C compiler")


# -- sharing, and what other REAPI tools see ----------------------------------------

def test_a_second_checkout_restores_everything_from_the_first(tmp_path, buildgrid, auto):
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    rs, m = build(a, buildgrid.url, auto)
    assert [r.memo.status for r in rs] == ["miss"] * 3
    assert m.remote.down is None and m.remote.notes == []
    assert m.remote.calls["capabilities"] == 1          # asked once per Memo
    assert all(r.memo.remote for r in rs)

    rs_b, m_b = build(b, buildgrid.url, auto)
    assert [r.memo.status for r in rs_b] == ["hit"] * 3
    for name in ("src/util.o", "src/main.o", "app"):
        assert (b / name).read_bytes() == (a / name).read_bytes()
    assert app_output(b) == "level 7\n"
    # Nothing of the first checkout leaks into the second's Results, and
    # both name the same Action on the server.
    assert not [leak for r in rs_b for leak in leaks(r, a)]
    assert [r.memo.remote for r in rs_b] == [r.memo.remote for r in rs]
    # Restored from the server, not from a local store: b's was empty.
    assert m_b.remote.calls.get("BatchReadBlobs", 0) >= 1 and "UpdateActionResult" not in \
        m_b.remote.calls


def test_bgd_shows_the_real_outputs_of_a_stored_step(tmp_path, buildgrid, auto):
    a = checkout(tmp_path / "a")
    rs, _ = build(a, buildgrid.url, auto)
    result = buildgrid.action_result(rs[2].memo.remote)
    app = (a / "app").read_bytes()
    # The link ran in src/: its output is ../app from the working directory.
    files = {f["path"]: f for f in result["outputFiles"]}
    assert set(files) == {"../app"}
    assert files["../app"]["digest"]["hash"] == hashlib.sha256(app).hexdigest()
    assert int(files["../app"]["digest"]["sizeBytes"]) == len(app)
    assert files["../app"]["isExecutable"] is True
    assert result.get("exitCode", 0) == 0
    assert buildgrid.download(files["../app"]["digest"], tmp_path / "downloaded") == app

    # A compile: its object file, and the Action is a real one -- a Command
    # with the argv (root written @ROOT@) and working directory, and an input
    # root holding the sources it read, by content.
    compiled = buildgrid.action_result(rs[0].memo.remote)
    obj = (a / "src" / "util.o").read_bytes()
    assert [(f["path"], f["digest"]["hash"]) for f in compiled["outputFiles"]] == [
        ("util.o", hashlib.sha256(obj).hexdigest())]

    def message(cls, digest, name):
        return cls.FromString(buildgrid.download(
            {"hash": digest.hash, "sizeBytes": digest.size_bytes}, tmp_path / name))
    action_hash, _, action_size = rs[0].memo.remote.partition("/")
    action = message(re.Action, re.Digest(hash=action_hash, size_bytes=int(action_size)),
                     "action")
    command = message(re.Command, action.command_digest, "command")
    assert list(command.arguments) == [CC, "-I@ROOT@/include", "-c", "util.c"]
    assert command.working_directory == "src" and list(command.output_paths) == ["util.o"]
    root = message(re.Directory, action.input_root_digest, "root")
    assert [d.name for d in root.directories] == ["include", "src"]
    for sub, name in (("include", "util.h"), ("src", "util.c")):
        node = next(d for d in root.directories if d.name == sub)
        listing = message(re.Directory, node.digest, sub)
        assert [(f.name, f.digest.hash) for f in listing.files] == [
            (name, hashlib.sha256((a / sub / name).read_bytes()).hexdigest())]


def test_an_output_directory_is_a_tree(tmp_path, buildgrid, auto):
    write(tmp_path / "a" / "in.txt", "payload\n")
    m = Memo(str(tmp_path / "a" / ".cache"), root=str(tmp_path / "a"), remote=buildgrid.url,
             backend=auto)
    r = m.run(["sh", "-c", "mkdir -p out/sub && cp in.txt out/sub/x && echo done"],
              cwd=tmp_path / "a", capture_output=True)
    assert r.memo.status == "miss"
    result = buildgrid.action_result(r.memo.remote)
    assert [d["path"] for d in result["outputDirectories"]] == ["out"]
    assert "outputFiles" not in result          # x is in the tree, not beside it
    assert buildgrid.download(result["stdoutDigest"], tmp_path / "stdout") == b"done\n"
    tree = re.Tree.FromString(buildgrid.download(result["outputDirectories"][0]["treeDigest"],
                                                 tmp_path / "tree"))
    assert [d.name for d in tree.root.directories] == ["sub"]
    assert [(f.name, f.digest.hash) for f in tree.children[0].files] == [
        ("x", hashlib.sha256(b"payload\n").hexdigest())]
    # and a second checkout gets the tree back
    write(tmp_path / "b" / "in.txt", "payload\n")
    m = Memo(str(tmp_path / "b" / ".cache"), root=str(tmp_path / "b"), remote=buildgrid.url,
             backend=auto)
    r = m.run(["sh", "-c", "mkdir -p out/sub && cp in.txt out/sub/x && echo done"],
              cwd=tmp_path / "b", capture_output=True)
    assert r.memo.status == "hit" and r.stdout == b"done\n"
    assert (tmp_path / "b" / "out" / "sub" / "x").read_text() == "payload\n"


def test_a_blob_over_the_batch_limit_goes_through_bytestream(tmp_path, buildgrid, auto):
    size = 6 * 1024 * 1024          # BuildGrid's batch limit is just under 4 MiB
    step = ["sh", "-c", "head -c %d /dev/urandom > big.bin" % size]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    m = Memo(str(a / ".cache"), root=str(a), remote=buildgrid.url, backend=auto)
    assert m.run(step, cwd=a).memo.status == "miss"
    assert m.remote.batch_limit < size
    assert m.remote.calls.get("ByteStream.Write") == 1
    big = (a / "big.bin").read_bytes()
    assert buildgrid.blob_file(hashlib.sha256(big).hexdigest()).read_bytes() == big

    m = Memo(str(b / ".cache"), root=str(b), remote=buildgrid.url, backend=auto)
    r = m.run(step, cwd=b)
    assert r.memo.status == "hit" and (b / "big.bin").read_bytes() == big
    assert m.remote.calls.get("ByteStream.Read") == 1


# -- faults: the step runs here, the output is right, and it is said once ---------------

def notes(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "sandbox_py.memo"]


def test_a_read_only_action_cache_is_honoured(tmp_path, buildgrid_factory, auto, caplog):
    server = buildgrid_factory(allow_updates=False)
    caplog.set_level(logging.WARNING, logger="sandbox_py.memo")
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    rs, m = build(a, server.url, auto)
    assert [r.memo.status for r in rs] == ["miss"] * 3 and app_output(a) == "level 7\n"
    assert m.remote.can_update is False and m.remote.down is None
    # Nothing was sent to be stored: no update, and no blob for one.
    assert not {"UpdateActionResult", "BatchUpdateBlobs", "ByteStream.Write",
                "FindMissingBlobs"} & set(m.remote.calls)
    said = notes(caplog)
    assert len(said) == 1 and "does not accept action-cache updates" in said[0]
    # The local store still works; the server has nothing for another checkout.
    assert [r.memo.status for r in build(a, server.url, auto)[0]] == ["hit"] * 3
    assert [r.memo.status for r in build(b, server.url, auto)[0]] == ["miss"] * 3
    assert app_output(b) == "level 7\n"


def test_a_server_that_is_down(tmp_path, auto, caplog):
    if REAPI_MISSING:
        required("the 'remote' extra")
    caplog.set_level(logging.WARNING, logger="sandbox_py.memo")
    a = checkout(tmp_path / "a")
    start = time.monotonic()
    rs, m = build(a, "grpc://127.0.0.1:%d/memo" % free_port(), auto, remote_timeout=2)
    assert [r.memo.status for r in rs] == ["miss"] * 3 and app_output(a) == "level 7\n"
    assert m.remote.down and "UNAVAILABLE" in m.remote.down
    # Asked once (with its retries), not once per step; said once.
    assert m.remote.calls == {"capabilities": 3}
    assert len(notes(caplog)) == 1
    assert time.monotonic() - start < 60


def test_a_server_stopped_then_restarted(tmp_path, buildgrid, auto, caplog):
    caplog.set_level(logging.WARNING, logger="sandbox_py.memo")
    a, b, c, d = (checkout(tmp_path / x) for x in "abcd")
    build(a, buildgrid.url, auto)
    buildgrid.stop()
    rs, m = build(b, buildgrid.url, auto)
    assert [r.memo.status for r in rs] == ["miss"] * 3 and app_output(b) == "level 7\n"
    assert m.remote.down and len(notes(caplog)) == 1
    # Restarted on the same storage: its action cache (in memory) is empty,
    # the blobs are still there.  The next build stores again, and the one
    # after restores.
    buildgrid.start()
    rs, m = build(c, buildgrid.url, auto)
    assert [r.memo.status for r in rs] == ["miss"] * 3 and m.remote.down is None
    rs, m = build(d, buildgrid.url, auto)
    assert [r.memo.status for r in rs] == ["hit"] * 3 and app_output(d) == "level 7\n"


def test_a_paused_server_costs_one_deadline(tmp_path, buildgrid, auto, caplog):
    caplog.set_level(logging.WARNING, logger="sandbox_py.memo")
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    build(a, buildgrid.url, auto)
    buildgrid.proc.send_signal(signal.SIGSTOP)      # accepts connections, answers nothing
    try:
        start = time.monotonic()
        rs, m = build(b, buildgrid.url, auto, remote_timeout=1.5)
        took = time.monotonic() - start
    finally:
        buildgrid.proc.send_signal(signal.SIGCONT)
    assert [r.memo.status for r in rs] == ["miss"] * 3 and app_output(b) == "level 7\n"
    assert "DEADLINE_EXCEEDED" in m.remote.down and len(notes(caplog)) == 1
    assert sum(m.remote.calls.values()) == 1       # one deadline, then not asked again
    assert took < 60


def test_blobs_lost_by_the_server(tmp_path, buildgrid, auto, caplog):
    """An ActionResult whose blobs the server no longer has (NOT_FOUND)."""
    caplog.set_level(logging.WARNING, logger="sandbox_py.memo")
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    rs, _ = build(a, buildgrid.url, auto)
    # The compiles' object files, deleted from the server's disk storage
    for name in ("util.o", "main.o"):
        digest = hashlib.sha256((a / "src" / name).read_bytes()).hexdigest()
        buildgrid.blob_file(digest).unlink()
    # and memo's document for the link (its ActionResult still names it).
    doc = buildgrid.action_result(rs[2].memo.remote)["executionMetadata"][
        "auxiliaryMetadata"][0]
    buildgrid.blob_file(doc["hash"]).unlink()
    rs, m = build(b, buildgrid.url, auto)
    # Each step ran here; the link's inputs are the freshly compiled objects,
    # which are the same bytes, but its entry is gone: it runs too.
    assert [r.memo.status for r in rs] == ["miss"] * 3
    assert app_output(b) == "level 7\n"
    assert (b / "src" / "util.o").read_bytes() == (a / "src" / "util.o").read_bytes()
    said = notes(caplog)
    assert len([s for s in said if "NOT_FOUND" in s]) == 1, said
    assert m.remote.down is None


def test_blobs_damaged_on_the_server_are_never_restored(tmp_path, buildgrid, auto, caplog):
    caplog.set_level(logging.WARNING, logger="sandbox_py.memo")
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    build(a, buildgrid.url, auto)
    for name in ("src/util.o", "src/main.o", "app"):
        blob = buildgrid.blob_file(hashlib.sha256((a / name).read_bytes()).hexdigest())
        blob.write_bytes(b"\x7fELF garbage".ljust(blob.stat().st_size, b"\0"))
    rs, m = build(b, buildgrid.url, auto)
    assert [r.memo.status for r in rs] == ["miss"] * 3
    assert app_output(b) == "level 7\n"
    for name in ("src/util.o", "src/main.o", "app"):
        assert (b / name).read_bytes() == (a / name).read_bytes()
    said = notes(caplog)
    assert len([s for s in said if "does not match its digest" in s]) == 1, said


# -- what BuildGrid cannot be made to do: a fake server ----------------------------------

class FakeREAPI:
    """An in-memory REAPI cache that records who called what, and can
    advertise updates yet refuse them (BuildGrid with updates off says so in
    its capabilities, so ours never even tries)."""

    def __init__(self, refuse_updates=False):
        import grpc
        from concurrent import futures
        from sandbox_py._reapi import remote_execution_pb2_grpc as rg
        fake = self
        self.blobs, self.results, self.calls = {}, {}, []

        def seen(name, context, request):
            self.calls.append((name, dict(context.invocation_metadata()).get("authorization"),
                               request.instance_name))

        class Caps(rg.CapabilitiesServicer):
            def GetCapabilities(self, request, context):
                seen("GetCapabilities", context, request)
                return re.ServerCapabilities(cache_capabilities=re.CacheCapabilities(
                    digest_functions=[re.DigestFunction.SHA256],
                    action_cache_update_capabilities=re.ActionCacheUpdateCapabilities(
                        update_enabled=True)))

        class AC(rg.ActionCacheServicer):
            def GetActionResult(self, request, context):
                seen("GetActionResult", context, request)
                if request.action_digest.hash not in fake.results:
                    context.abort(grpc.StatusCode.NOT_FOUND, "no such action")
                return fake.results[request.action_digest.hash]

            def UpdateActionResult(self, request, context):
                seen("UpdateActionResult", context, request)
                if refuse_updates:
                    context.abort(grpc.StatusCode.PERMISSION_DENIED, "read-only token")
                fake.results[request.action_digest.hash] = request.action_result
                return request.action_result

        class CAS(rg.ContentAddressableStorageServicer):
            def FindMissingBlobs(self, request, context):
                seen("FindMissingBlobs", context, request)
                return re.FindMissingBlobsResponse(missing_blob_digests=[
                    d for d in request.blob_digests if d.hash not in fake.blobs])

            def BatchUpdateBlobs(self, request, context):
                seen("BatchUpdateBlobs", context, request)
                resp = re.BatchUpdateBlobsResponse()
                for r in request.requests:
                    fake.blobs[r.digest.hash] = r.data
                    resp.responses.add(digest=r.digest)
                return resp

            def BatchReadBlobs(self, request, context):
                seen("BatchReadBlobs", context, request)
                resp = re.BatchReadBlobsResponse()
                for d in request.digests:
                    r = resp.responses.add(digest=d, data=fake.blobs.get(d.hash, b""))
                    r.status.code = 0 if d.hash in fake.blobs else 5
                return resp

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        rg.add_CapabilitiesServicer_to_server(Caps(), self.server)
        rg.add_ActionCacheServicer_to_server(AC(), self.server)
        rg.add_ContentAddressableStorageServicer_to_server(CAS(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def names(self):
        return [c[0] for c in self.calls]


@pytest.fixture
def fake_reapi():
    if REAPI_MISSING:
        required("the 'remote' extra")
    servers = []

    def make(**kw):
        servers.append(FakeREAPI(**kw))
        return servers[-1]
    yield make
    for s in servers:
        s.server.stop(None)


def test_headers_and_the_instance_name_go_with_every_call(tmp_path, fake_reapi, auto):
    server = fake_reapi()
    write(tmp_path / "in.txt", "x\n")
    m = Memo(str(tmp_path / ".cache"), root=str(tmp_path), backend=auto,
             remote="grpc://127.0.0.1:%d/team/a" % server.port,
             remote_headers={"Authorization": "Bearer s3cret"})
    r = m.run(["cp", "in.txt", "out.txt"], cwd=tmp_path)
    assert r.memo.status == "miss" and (tmp_path / "out.txt").read_text() == "x\n"
    assert "UpdateActionResult" in server.names()
    assert server.calls and all(c[1:] == ("Bearer s3cret", "team/a") for c in server.calls)


def test_an_update_refused_by_the_server_is_said_once(tmp_path, fake_reapi, auto, caplog):
    caplog.set_level(logging.WARNING, logger="sandbox_py.memo")
    server = fake_reapi(refuse_updates=True)
    a = checkout(tmp_path / "a")
    rs, m = build(a, "grpc://127.0.0.1:%d" % server.port, auto)
    assert [r.memo.status for r in rs] == ["miss"] * 3 and app_output(a) == "level 7\n"
    # Tried once; the later steps did not upload for an update that would be refused.
    names = server.names()
    assert names.count("UpdateActionResult") == 1
    refused = names.index("UpdateActionResult")
    assert not {"FindMissingBlobs", "BatchUpdateBlobs"} & set(names[refused:])
    assert m.remote.can_update is False and m.remote.down is None
    said = notes(caplog)
    assert len(said) == 1 and "PERMISSION_DENIED" in said[0], said
    assert not server.results and all(not r.memo.remote for r in rs)


def test_parallel_steps_wait_for_the_capabilities(tmp_path, fake_reapi, auto):
    server = fake_reapi()
    for i in range(6):
        write(tmp_path / ("in%d.txt" % i), "%d\n" % i)
    m = Memo(str(tmp_path / ".cache"), root=str(tmp_path), backend=auto,
             remote="grpc://127.0.0.1:%d" % server.port)
    rs = m.run_many([["cp", "in%d.txt" % i, "out%d.txt" % i] for i in range(6)],
                    cwd=tmp_path, jobs=6)
    assert [r.memo.status for r in rs] == ["miss"] * 6
    assert server.names().count("GetCapabilities") == 1
    # every step stored, none skipped for not knowing yet whether it may
    assert all(r.memo.remote for r in rs)
    assert server.names().count("UpdateActionResult") == 12     # entry + manifest each


def test_cli_through_a_grpc_cache(tmp_path, buildgrid, fake_reapi, auto):
    """``sandbox-py memo --remote grpc://...``: two checkouts, one process per
    step as a shell build runs it; a header line from the environment."""
    import sys

    def cli(root: Path, *args, env=None):
        return subprocess.run([sys.executable, "-m", "sandbox_py", "memo", "--why", *args,
                               "--", "sh", "-c", "cat in.txt; cp in.txt out.txt"],
                              capture_output=True, text=True, cwd=root,
                              env=dict(os.environ, **(env or {})))

    a, b = tmp_path / "a", tmp_path / "b"
    write(a / "in.txt", "one\n")
    write(b / "in.txt", "one\n")
    headers = {"SANDBOX_PY_MEMO_REMOTE_HEADERS": "x-team=memo\nx-build=7"}
    p = cli(a, "--remote", buildgrid.url, env=headers)
    assert (p.returncode, p.stdout) == (0, "one\n") and "ran: first run" in p.stderr
    p = cli(b, "--remote", buildgrid.url, "--remote-header", "x-team=memo")
    assert (p.returncode, p.stdout) == (0, "one\n") and "restored" in p.stderr
    assert (b / "out.txt").read_text() == "one\n"
    assert "remote cache" not in p.stderr
    # Down: said once, and the step's output is right.
    (b / "out.txt").unlink()
    down = "grpc://127.0.0.1:%d/memo" % free_port()
    p = cli(tmp_path / "b", "--store", str(tmp_path / "fresh"), "--remote", down)
    assert p.returncode == 0 and (b / "out.txt").read_text() == "one\n"
    assert p.stderr.count("remote cache") == 1 and "UNAVAILABLE" in p.stderr
    # The header lines reach the server (the fake one records them).
    fake = fake_reapi()
    p = cli(a, "--store", str(tmp_path / "fresh2"), "--remote",
            "grpc://127.0.0.1:%d/ci" % fake.port,
            env={"SANDBOX_PY_MEMO_REMOTE_HEADERS": "Authorization=Bearer t0ken\n"})
    assert p.returncode == 0 and fake.calls
    assert all(c[1:] == ("Bearer t0ken", "ci") for c in fake.calls)
    p = cli(b, "--remote", buildgrid.url, "--remote-header", "no-equals-sign")
    assert p.returncode == 2 and "NAME=VALUE" in p.stderr
