"""sandbox_py.memo as a build driver uses it: a step runs once, then is
restored while nothing it read, probed or listed changed, and reruns when
something did -- checked on the files and output a user would look at."""
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import sandbox_py
from sandbox_py.memo import Memo, action_result, document_digest

from conftest import sandbox_for

BACKENDS = ["auto", "preload", "ptrace"]
CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param != "auto":
        sandbox_for(request.param)      # skips (or fails where required)
    elif not any(ok for ok, _ in sandbox_py.backends().values()):
        pytest.skip("no tracing backend can run here")
    return request.param


@pytest.fixture
def auto():
    return "auto" if any(ok for ok, _ in sandbox_py.backends().values()) else pytest.skip(
        "no tracing backend can run here")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def memo(tmp_path, backend, **kw) -> Memo:
    kw.setdefault("root", str(tmp_path))
    return Memo(str(tmp_path / ".cache"), backend=backend, **kw)


def sh(script: str) -> list:
    return ["sh", "-c", script]


# -- item 1: semantics -------------------------------------------------------------

def test_hit_restores_outputs_and_replays_output_and_status(tmp_path, backend):
    write(tmp_path / "in.txt", "payload\n")
    step = sh("cat in.txt > out.txt; echo ran >> runs.log; echo hello; echo warn >&2; exit 2")
    m = memo(tmp_path, backend)
    r = m.run(step, cwd=tmp_path, capture_output=True, text=True)
    assert r.memo.status == "miss" and r.returncode == 2
    assert (r.stdout, r.stderr) == ("hello\n", "warn\n")

    (tmp_path / "out.txt").unlink()
    r = m.run(step, cwd=tmp_path, capture_output=True, text=True)
    assert r.memo.status == "hit"
    assert (r.stdout, r.stderr, r.returncode) == ("hello\n", "warn\n", 2)
    assert (tmp_path / "out.txt").read_text() == "payload\n"
    # Restored, not rerun: the step's own log has the one line of the first run.
    assert (tmp_path / "runs.log").read_text() == "ran\n"
    assert str(tmp_path / "in.txt") in r.reads and str(tmp_path / "out.txt") in r.writes
    with pytest.raises(subprocess.CalledProcessError) as e:
        m.run(step, cwd=tmp_path, check=True, capture_output=True)
    assert e.value.returncode == 2 and e.value.stdout == b"hello\n"

    write(tmp_path / "in.txt", "changed\n")
    assert m.why(step, cwd=tmp_path).startswith("read in.txt changed: ")
    r = m.run(step, cwd=tmp_path, capture_output=True)
    assert r.memo.status == "miss" and "read in.txt changed" in r.memo.why
    assert (tmp_path / "out.txt").read_text() == "changed\n"


def test_output_is_replayed_on_our_stdout_without_capture(tmp_path, auto):
    step = [sys.executable, "-c",
            "from sandbox_py.memo import Memo; import sys;"
            "r = Memo(sys.argv[1], root=sys.argv[2]).run(['sh', '-c', 'echo out; echo err >&2']);"
            "print(r.memo.status, r.stdout)", str(tmp_path / ".cache"), str(tmp_path)]
    outs = [subprocess.run(step, capture_output=True, text=True, cwd=tmp_path)
            for _ in range(2)]
    assert [o.stdout for o in outs] == ["out\nmiss None\n", "out\nhit None\n"]
    assert [o.stderr for o in outs] == ["err\n", "err\n"]


@pytest.mark.skipif(not CC, reason="no C compiler")
def test_header_created_in_an_include_dir_searched_earlier(tmp_path, backend):
    write(tmp_path / "main.c", '#include <stdio.h>\n#include "config.h"\n'
          'int main(void) { printf("%d\\n", VALUE); return 0; }\n')
    write(tmp_path / "inc2" / "config.h", "#define VALUE 1\n")
    (tmp_path / "inc1").mkdir()
    step = [CC, "-Iinc1", "-Iinc2", "main.c", "-o", "app"]
    m = memo(tmp_path, backend)

    def build_and_run():
        r = m.run(step, cwd=tmp_path, check=True)
        return r.memo.status, subprocess.run([str(tmp_path / "app")], capture_output=True,
                                             text=True).stdout

    assert build_and_run() == ("miss", "1\n")
    assert build_and_run() == ("hit", "1\n")
    write(tmp_path / "inc1" / "config.h", "#define VALUE 2\n")
    assert m.why(step, cwd=tmp_path) == "probe inc1/config.h changed: absent -> file"
    assert build_and_run() == ("miss", "2\n")
    # Back to the first state: the first run's program is restored, not rebuilt.
    (tmp_path / "inc1" / "config.h").unlink()
    assert build_and_run() == ("hit", "1\n")


def test_file_added_to_a_listed_directory(tmp_path, backend):
    write(tmp_path / "src" / "a.txt", "a")
    m = memo(tmp_path, backend)
    # cp -r into an existing directory nests: a build step starts afresh.
    copy = sh("rm -rf out; cp -r src out")
    glob = sh("cat src/*.txt > all.txt")
    for step in (copy, glob):
        assert m.run(step, cwd=tmp_path).memo.status == "miss"
    shutil.rmtree(tmp_path / "out")
    for step in (copy, glob):
        assert m.run(step, cwd=tmp_path).memo.status == "hit"
    assert sorted(os.listdir(tmp_path / "out")) == ["a.txt"]

    write(tmp_path / "src" / "b.txt", "b")
    for step in (copy, glob):
        r = m.run(step, cwd=tmp_path)
        assert r.memo.status == "miss" and r.memo.why.startswith("list src changed"), r.memo
    assert sorted(os.listdir(tmp_path / "out")) == ["a.txt", "b.txt"]
    assert (tmp_path / "all.txt").read_text() == "ab"


def test_tool_that_reads_and_rewrites_its_own_cache(tmp_path, backend):
    # A tool with a private cache file: it reads it, then rewrites it.
    write(tmp_path / "in.txt", "abc\n")
    step = sh("n=$(cat tool.cache 2>/dev/null || echo 0); echo $((n+1)) > tool.cache;"
              "tr a-z A-Z < in.txt > out.txt")
    m = memo(tmp_path, backend)
    assert m.run(step, cwd=tmp_path).memo.status == "miss"
    # Its cache is as the step left it: a hit, and the cache file is not an
    # input that changes under every run.
    assert m.run(step, cwd=tmp_path).memo.status == "hit"
    assert (tmp_path / "tool.cache").read_text() == "1\n"
    write(tmp_path / "in.txt", "xyz\n")
    assert m.run(step, cwd=tmp_path).memo.status == "miss"
    assert (tmp_path / "out.txt").read_text() == "XYZ\n"
    # Someone else edits the tool's cache: the step depends on it, so it runs.
    write(tmp_path / "tool.cache", "41\n")
    r = m.run(step, cwd=tmp_path)
    assert r.memo.status == "miss" and "tool.cache" in r.memo.why, (r.memo, r.warnings)
    assert (tmp_path / "tool.cache").read_text() == "42\n"


def test_step_that_deletes_a_file(tmp_path, backend):
    write(tmp_path / "stale.txt", "old")
    step = sh("rm -f stale.txt; echo done > out.txt")
    m = memo(tmp_path, backend)
    assert m.run(step, cwd=tmp_path).memo.status == "miss"
    assert not (tmp_path / "stale.txt").exists()
    write(tmp_path / "stale.txt", "old")
    (tmp_path / "out.txt").unlink()
    m.run(step, cwd=tmp_path)
    # Hit or rerun, the tree is as the step leaves it.
    assert not (tmp_path / "stale.txt").exists()
    assert (tmp_path / "out.txt").read_text() == "done\n"


@pytest.mark.skipif(not CC, reason="no C compiler")
def test_a_later_step_depends_on_an_output_only_through_its_content(tmp_path, auto):
    write(tmp_path / "x.c", "int x(void) { return 1; }\n")
    write(tmp_path / "main.c", "int x(void);\nint main(void) { return x(); }\n")
    m = memo(tmp_path, auto)
    steps = [[CC, "-c", "x.c"], [CC, "-c", "main.c"], [CC, "x.o", "main.o", "-o", "app"]]
    assert [m.run(s, cwd=tmp_path).memo.status for s in steps] == ["miss"] * 3
    # A comment changes x.c but not x.o: the link is restored, not rerun.
    write(tmp_path / "x.c", "/* a comment */\nint x(void) { return 1; }\n")
    assert [m.run(s, cwd=tmp_path).memo.status for s in steps] == ["miss", "hit", "hit"]
    write(tmp_path / "x.c", "int x(void) { return 3; }\n")
    assert [m.run(s, cwd=tmp_path).memo.status for s in steps] == ["miss", "hit", "miss"]
    assert subprocess.run([str(tmp_path / "app")]).returncode == 3


def test_env_keys_are_part_of_the_key_and_other_variables_are_not(tmp_path, auto):
    m = memo(tmp_path, auto, env_keys=["GREETING"])
    step = sh('echo "$GREETING" > out.txt')
    env = dict(os.environ, GREETING="hi", UNRELATED="1")
    assert m.run(step, cwd=tmp_path, env=env).memo.status == "miss"
    assert m.run(step, cwd=tmp_path, env=dict(env, UNRELATED="2")).memo.status == "hit"
    r = m.run(step, cwd=tmp_path, env=dict(env, GREETING="ho"))
    assert r.memo.status == "miss" and (tmp_path / "out.txt").read_text() == "ho\n"
    # Per-run env_keys extend the Memo's.
    r = m.run(step, cwd=tmp_path, env=dict(env, GREETING="ho", OTHER="x"), env_keys=["OTHER"])
    assert r.memo.status == "miss"


def test_input_is_part_of_the_key(tmp_path, auto):
    m = memo(tmp_path, auto)
    step = ["tr", "a-z", "A-Z"]
    outs = [m.run(step, cwd=tmp_path, input=i, capture_output=True, text=True)
            for i in ("abc\n", "xyz\n", "abc\n")]
    assert [(r.memo.status, r.stdout) for r in outs] == [
        ("miss", "ABC\n"), ("miss", "XYZ\n"), ("hit", "ABC\n")]


def test_a_timeout_raises_and_stores_nothing(tmp_path, auto):
    m = memo(tmp_path, auto)
    step = sh("echo started > out.txt; sleep 30")
    with pytest.raises(subprocess.TimeoutExpired):
        m.run(step, cwd=tmp_path, timeout=0.5)
    assert m.why(step, cwd=tmp_path).startswith("first run")


def test_incomplete_trace_is_never_cached(tmp_path, auto):
    # io_uring hides file accesses from the tracer: the Result says so.
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "print(libc.syscall(425, 4, (ctypes.c_uint32 * 30)()))\n"
            "open('out.txt', 'w').write('x')\n")
    # The ptrace backend flags io_uring (the eBPF backend traces it).
    m = Memo(str(tmp_path / ".cache"), root=str(tmp_path), sandbox=sandbox_for("ptrace"))
    for _ in range(2):
        r = m.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
        if int(r.stdout.split()[0]) < 0:
            pytest.skip("io_uring is disabled on this kernel")
        assert r.memo.status == "not cached" and "incomplete" in r.memo.why
        assert any(w.startswith("memo: not cached") for w in r.warnings)
    assert m.stats["hit"] == 0


def test_an_input_edited_while_the_step_runs_is_not_cached(tmp_path, auto):
    write(tmp_path / "in.txt", "before\n")
    m = memo(tmp_path, auto)
    step = sh("cat in.txt > out.txt; sleep 1.5")
    # Someone saves the file while the step is still running: what the step
    # read is not what is on disk now, so this run must not be remembered.
    editor = threading.Timer(0.5, write, (tmp_path / "in.txt", "after\n"))
    editor.start()
    r = m.run(step, cwd=tmp_path)
    editor.join()
    assert (tmp_path / "out.txt").read_text() == "before\n"
    assert r.memo.status == "not cached" and "in.txt was modified" in r.memo.why
    r = m.run(step, cwd=tmp_path)
    assert r.memo.status == "miss" and (tmp_path / "out.txt").read_text() == "after\n"


def test_run_many_in_parallel(tmp_path, auto):
    for i in range(6):
        write(tmp_path / ("in%d.txt" % i), "n%d\n" % i)
    steps = [sh("sleep 0.2; tr a-z A-Z < in%d.txt > out%d.txt; echo %d" % (i, i, i))
             for i in range(6)]
    m = memo(tmp_path, auto)
    rs = m.run_many(steps, jobs=3, cwd=tmp_path, capture_output=True, text=True)
    assert [r.stdout for r in rs] == ["%d\n" % i for i in range(6)]
    assert {r.memo.status for r in rs} == {"miss"}
    for i in range(6):
        (tmp_path / ("out%d.txt" % i)).unlink()
    write(tmp_path / "in4.txt", "changed\n")
    rs = m.run_many([{"argv": s, "cwd": tmp_path} for s in steps], jobs=3)
    assert [r.memo.status for r in rs] == ["hit"] * 4 + ["miss", "hit"]
    assert [(tmp_path / ("out%d.txt" % i)).read_text() for i in range(6)] == \
        ["N0\n", "N1\n", "N2\n", "N3\n", "CHANGED\n", "N5\n"]


def test_corrupt_local_blob_is_never_restored(tmp_path, auto):
    write(tmp_path / "in.txt", "good\n")
    step = ["cp", "in.txt", "out.txt"]
    m = memo(tmp_path, auto)
    m.run(step, cwd=tmp_path)
    blob = next(p for p in (tmp_path / ".cache" / "cas").rglob("*")
                if p.is_file() and p.read_bytes() == b"good\n")
    blob.write_bytes(b"evil\n")
    (tmp_path / "out.txt").unlink()
    r = m.run(step, cwd=tmp_path)
    assert r.memo.status == "miss"
    assert (tmp_path / "out.txt").read_text() == "good\n"


# -- item 2: a shared cache on nginx (Bazel HTTP cache protocol) -------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc=None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with status %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /cache/ {{
            root {d}/www;
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
        }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path_factory):
    """An nginx WebDAV location: the documented minimal Bazel HTTP cache."""
    exe = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",)
                                         if os.access(p, os.X_OK)), None)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is required in CI (scripts/setup.sh installs nginx-light)")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    d = tmp_path_factory.mktemp("nginx")
    port = free_port()
    (d / "www" / "cache").mkdir(parents=True)
    (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, port=port))
    proc = subprocess.Popen([exe, "-p", str(d), "-e", str(d / "error.log"),
                             "-c", str(d / "nginx.conf")], stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        yield "http://127.0.0.1:%d/cache" % port, d / "www" / "cache"
    finally:
        proc.terminate()
        proc.wait(10)


def checkout(path: Path) -> Path:
    """A small C project, as a fresh clone would have it."""
    write(path / "src" / "util.c", '#include "util.h"\nint util(void) { return LEVEL; }\n')
    write(path / "include" / "util.h", "#define LEVEL 7\nint util(void);\n")
    write(path / "src" / "main.c", '#include <stdio.h>\n#include "util.h"\n'
          'int main(void) { printf("level %d\\n", util()); return 0; }\n')
    return path


def build(root: Path, url: str, auto) -> list:
    m = Memo(str(root / ".cache"), root=str(root), remote=url, backend=auto)
    steps = [[CC, "-I" + str(root / "include"), "-c", "util.c"],
             [CC, "-I" + str(root / "include"), "-c", "main.c"]]
    rs = m.run_many([{"argv": s, "cwd": root / "src"} for s in steps], jobs=2)
    rs.append(m.run([CC, "util.o", "main.o", "-o", str(root / "app")], cwd=root / "src",
                    capture_output=True))
    return [r.memo.status for r in rs], m


@pytest.mark.skipif(not CC, reason="no C compiler")
def test_two_checkouts_share_a_remote_cache(tmp_path, nginx, auto):
    url, served = nginx
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    assert build(a, url, auto)[0] == ["miss"] * 3
    # What the server holds is what the protocol says: /ac/ values are
    # ActionResults (servers that validate them accept ours) naming a blob
    # of /cas/, every blob stored under its SHA-256.
    acs = list((served / "ac").iterdir())
    assert acs
    for ac in acs:
        digest, size = document_digest(ac.read_bytes())
        assert (served / "cas" / digest).stat().st_size == size
    for blob in (served / "cas").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    statuses, m = build(b, url, auto)
    assert statuses == ["hit"] * 3 and m.remote.down is None
    for name in ("src/util.o", "src/main.o", "app"):
        assert (b / name).read_bytes() == (a / name).read_bytes()
    assert subprocess.run([str(b / "app")], capture_output=True,
                          text=True).stdout == "level 7\n"
    # The other checkout's paths never leak into this one's Result.
    r = Memo(str(b / ".cache"), root=str(b), remote=url, backend=auto).run(
        [CC, "util.o", "main.o", "-o", str(b / "app")], cwd=b / "src")
    assert r.memo.status == "hit" and str(b / "app") in r.writes
    assert not [p for p in r.reads | r.writes if p.startswith(str(a))]
    # nor into its per-process records: the linker's own writes, argv, cwd
    assert r.processes and not leaks(r, a)
    assert [p.argv[-1] for p in r.processes if p.argv[:1] == (CC,)] == [str(b / "app")]


def leaks(result, other: Path) -> list:
    """Every mention of ``other`` in a Result: its sets, execs and processes."""
    texts = list(result.reads | result.writes | result.probes | result.enumerations)
    texts += [a for e in result.execs for a in (e.path, *e.argv)]
    for p in result.processes:
        texts += [p.path or "", p.cwd or "", *p.argv,
                  *(p.reads | p.writes | p.probes | p.enumerations)]
    return [t for t in texts if str(other) in t]


@pytest.mark.skipif(not CC, reason="no C compiler")
def test_corrupt_remote_blobs_are_rejected(tmp_path, nginx, auto):
    url, served = nginx
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    build(a, url, auto)
    for blob in (served / "cas").iterdir():
        blob.write_bytes(b"\x7fELF garbage")
    statuses, m = build(b, url, auto)
    assert statuses == ["miss"] * 3
    assert subprocess.run([str(b / "app")], capture_output=True,
                          text=True).stdout == "level 7\n"


def test_a_server_that_is_down_degrades_to_running(tmp_path, auto):
    write(tmp_path / "in.txt", "x\n")
    m = memo(tmp_path, auto, remote="http://127.0.0.1:%d/cache" % free_port())
    r = m.run(["cp", "in.txt", "out.txt"], cwd=tmp_path)
    assert r.memo.status == "miss" and r.returncode == 0
    assert (tmp_path / "out.txt").read_text() == "x\n"
    assert m.remote.down


def hostile_handler(outputs, result):
    """A server that answers every GET with well-formed lies: each /ac/
    value is an ActionResult naming one document, which is both a manifest
    whose one candidate has no inputs (so it always matches) and an entry
    with ``outputs``; every other /cas/ blob is junk."""
    doc = json.dumps({"format": "sandbox_py.memo/1",
                      "candidates": [{"inputs": [], "entry": "ab" * 32}],
                      "outputs": outputs, "result": result, "stdout": None,
                      "stderr": None}).encode()
    digest = hashlib.sha256(doc).hexdigest()
    evil = b"evil\n"

    class Hostile(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/ac/"):
                body = action_result(digest, len(doc))
            elif self.path == "/cas/" + digest:
                body = doc
            elif self.path == "/cas/" + hashlib.sha256(evil).hexdigest():
                body = evil
            else:
                body = b"\x7fELF junk"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_PUT(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass
    return Hostile


EVIL = hashlib.sha256(b"evil\n").hexdigest()
RESULT = sandbox_py.Result(returncode=0, args=("cp",)).to_dict()


# Each entry is wrong in one way; the rest of it is well-formed.  (A server
# that forges a whole consistent entry is trusted, as Bazel trusts its
# cache: see docs/memo.md.)
@pytest.mark.parametrize("outputs, result", [
    ([["out.txt", "file", "cd" * 32, 0o644]], RESULT),          # a blob that is junk
    ([["out.txt", "file", EVIL, 0o644]], {}),                   # no readable Result
    ([["../secret.txt", "file", EVIL, 0o644]], RESULT),         # a path out of the root
    ([["out.txt", "file", "../../secret.txt", 0o644]], RESULT),  # a "digest" that is a path
    ([["out.txt", "file"]], RESULT),                            # a malformed record
], ids=["junk-blob", "no-result", "escape", "digest-path", "malformed"])
def test_a_server_answering_lies_never_gives_a_wrong_output(tmp_path, auto, outputs, result):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             hostile_handler(outputs, result))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = tmp_path / "root"
        write(root / "in.txt", "real\n")
        write(tmp_path / "secret.txt", "secret\n")
        m = Memo(str(root / ".cache"), root=str(root), backend=auto,
                 remote="http://127.0.0.1:%d/" % server.server_port)
        for _ in range(2):
            (root / "out.txt").unlink(missing_ok=True)
            r = m.run(["cp", "in.txt", "out.txt"], cwd=root)
            assert (root / "out.txt").read_text() == "real\n"
        assert r.memo.status == "hit"       # from the local store
        assert sorted(os.listdir(tmp_path)) == ["root", "secret.txt"]
        assert (tmp_path / "secret.txt").read_text() == "secret\n"
    finally:
        server.shutdown()


# -- item 3: the command line ---------------------------------------------------------

def test_cli_memo_why(tmp_path, auto):
    write(tmp_path / "in.txt", "one\n")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "sandbox_py", "memo", "--why", *args,
                               "--", "sh", "-c", "cat in.txt; cp in.txt out.txt; exit 4"],
                              capture_output=True, text=True, cwd=tmp_path)

    p = cli()
    assert (p.returncode, p.stdout) == (4, "one\n")
    assert "ran: first run" in p.stderr
    (tmp_path / "out.txt").unlink()
    p = cli()
    assert (p.returncode, p.stdout) == (4, "one\n") and "restored" in p.stderr
    assert (tmp_path / "out.txt").read_text() == "one\n"
    write(tmp_path / "in.txt", "two\n")
    p = cli()
    assert (p.returncode, p.stdout) == (4, "two\n")
    assert "ran: read in.txt changed" in p.stderr
    assert (tmp_path / ".sandbox_py-memo" / "ac").is_dir()


def test_ignored_private_cache_and_an_explicit_sandbox(tmp_path):
    sb = sandbox_for("ptrace")
    write(tmp_path / "in.txt", "abc\n")
    step = sh("cat .toolcache/hits 2>/dev/null; mkdir -p .toolcache; date +%N > .toolcache/hits;"
              "tr a-z A-Z < in.txt > out.txt")
    m = Memo(str(tmp_path / ".cache"), root=str(tmp_path), sandbox=sb, ignore=[".toolcache"])
    r = m.run(step, cwd=tmp_path)
    assert r.memo.status == "miss" and r.backend == "ptrace"
    # What the tool keeps for itself does not decide whether the step runs...
    write(tmp_path / ".toolcache" / "hits", "edited\n")
    assert m.run(step, cwd=tmp_path).memo.status == "hit"
    # ... and is not restored over the tool's current one.
    assert (tmp_path / ".toolcache" / "hits").read_text() == "edited\n"
    write(tmp_path / "in.txt", "def\n")
    assert m.run(step, cwd=tmp_path).memo.status == "miss"
    assert (tmp_path / "out.txt").read_text() == "DEF\n"
