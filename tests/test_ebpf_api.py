"""The Python API on the eBPF backend: subprocess.run semantics, errors,
concurrency, and external oracles (tools that know their own inputs)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import sandbox_py
from conftest import sandbox_for


@pytest.fixture
def sb():
    return sandbox_for("ebpf")


# ---- subprocess.run semantics -------------------------------------------------

def test_result_unpacks_and_carries_fields(sb, tmp_path):
    (tmp_path / "in.txt").write_text("x")
    r = sb.run(["cat", "in.txt"], cwd=tmp_path, capture_output=True, text=True)
    status, reads, writes = r
    assert status == 0 and r.stdout == "x"
    assert str(tmp_path / "in.txt") in reads
    assert r.backend == "ebpf" and r.complete and r.duration > 0
    assert r.execs[0].argv == ("cat", "in.txt")
    assert isinstance(r.stderr, str)


def test_input_and_env(sb, tmp_path):
    r = sb.run(["sh", "-c", 'cat > "$OUT"'],
               env={"OUT": str(tmp_path / "o"), "PATH": "/usr/bin:/bin"},
               input=b"payload", capture_output=True)
    assert r.returncode == 0
    assert (tmp_path / "o").read_bytes() == b"payload"
    assert str(tmp_path / "o") in r.writes


def test_check_raises_with_result(sb):
    with pytest.raises(sandbox_py.CalledProcessError) as ei:
        sb.run(["sh", "-c", "exit 3"], check=True)
    assert ei.value.returncode == 3
    assert ei.value.result.returncode == 3
    assert isinstance(ei.value, subprocess.CalledProcessError)


# ---- bad input ------------------------------------------------------------------

def test_missing_executable_is_file_not_found(sb):
    with pytest.raises(FileNotFoundError):
        sb.run(["definitely-not-a-program-4242"])
    # the backend is still usable afterwards
    assert sb.run(["true"]).returncode == 0


def test_bad_cwd(sb, tmp_path):
    with pytest.raises(FileNotFoundError):
        sb.run(["true"], cwd=tmp_path / "nope")


def test_empty_argv(sb):
    with pytest.raises(ValueError, match="empty"):
        sb.run([])


def test_non_string_argv(sb):
    with pytest.raises(TypeError, match=r"argv\[1\]"):
        sb.run(["echo", 42])
    with pytest.raises(TypeError, match="sequence"):
        sb.run("echo hi")


def test_unknown_backend_names_the_choices():
    with pytest.raises(sandbox_py.SandboxUnavailableError, match="choose one of"):
        sandbox_py.Sandbox("nosuch")


def test_timeout_kills_the_whole_tree_and_keeps_the_partial_result(sb, scenario_bins, tmp_path):
    (tmp_path / "data.txt").write_text("d")
    script = 'cat data.txt >/dev/null; "$1" sleep & "$1" sleep & wait'
    t0 = time.monotonic()
    with pytest.raises(sandbox_py.TimeoutExpired) as ei:
        sb.run(["sh", "-c", script, "sh", scenario_bins["dynamic"]], cwd=tmp_path, timeout=1.5)
    assert time.monotonic() - t0 < 30
    assert isinstance(ei.value, subprocess.TimeoutExpired)
    res = ei.value.result
    assert res is not None and not res.complete
    assert any("timeout" in w for w in res.warnings)
    assert str(tmp_path / "data.txt") in res.reads
    pids = [e.pid for e in res.execs]
    assert len(pids) >= 3
    for pid in pids:        # every process of the tree is gone
        assert not os.path.exists("/proc/%d" % pid) or \
            open("/proc/%d/stat" % pid).read().split()[2] == "Z"


def test_crash_of_traced_program(sb, tmp_path):
    r = sb.run([sys.executable, "-c", "import os; open('f','w').write('x'); os.abort()"],
               cwd=tmp_path)
    assert r.returncode == -6
    assert str(tmp_path / "f") in r.writes


def test_full_event_buffer_is_reported(tmp_path):
    # A fresh process with a deliberately tiny ring buffer (one page) and a
    # starved reader: the burst of a Python start-up overflows it.  Events are lost, and the
    # Result must say so instead of being silently short.
    sandbox_for("ebpf")
    code = textwrap.dedent("""
        import sys
        from sandbox_py import Sandbox
        r = Sandbox("ebpf").run([sys.executable, "-c", "import json, decimal, email.parser"])
        print(r.returncode, r.complete, "|".join(r.warnings))
    """)
    env = dict(os.environ, SANDBOX_PY_RINGBUF_BYTES="4096", SANDBOX_PY_READER_DELAY_MS="200")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                         env=env, capture_output=True, text=True, check=True).stdout
    rc, complete, warnings = out.strip().split(" ", 2)
    assert rc == "0"
    assert complete == "False"
    assert "lost because the kernel ring buffer was full" in warnings


# ---- concurrency ----------------------------------------------------------------

def test_parallel_runs_see_only_their_own_files(sb, tmp_path):
    results = {}

    def one(i):
        d = tmp_path / ("d%d" % i)
        d.mkdir()
        (d / "in").write_text(str(i))
        results[i] = sb.run(["sh", "-c", "cat in > out; ls"], cwd=d, capture_output=True)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in results.items():
        mine = str(tmp_path / ("d%d" % i))
        touched = {p for p in r.reads | r.writes | r.probes | r.enumerations
                   if p.startswith(str(tmp_path))}
        assert touched, i
        assert all(p == mine or p.startswith(mine + "/") for p in touched), (i, touched)
        assert mine + "/in" in r.reads and mine + "/out" in r.writes


# ---- external oracles -------------------------------------------------------------

def test_every_header_gcc_lists_is_read(sb, tmp_path):
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.fail("gcc is needed")
    src = tmp_path / "x.c"
    src.write_text("#include <stdio.h>\n#include <stdlib.h>\n#include <sys/stat.h>\n"
                   "#include \"local.h\"\nint main(void){return LOCAL;}\n")
    (tmp_path / "local.h").write_text("#define LOCAL 0\n")
    deps = subprocess.run([gcc, "-M", "x.c"], cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout
    headers = {os.path.normpath(os.path.join(tmp_path, h))
               for h in deps.replace("\\\n", " ").split(":", 1)[1].split()}
    r = sb.run([gcc, "-c", "x.c", "-o", "x.o"], cwd=tmp_path)
    assert r.returncode == 0
    missing = {h for h in headers if h not in r.reads}
    assert not missing
    assert str(tmp_path / "x.o") in r.writes


def test_every_imported_module_file_is_read(sb, tmp_path):
    # Modules frozen into the interpreter have a __file__ but are not read
    # from it; the oracle lists the ones loaded from disk.
    code = ("import json, email.parser, decimal, sys\n"
            "for m in list(sys.modules.values()):\n"
            "    spec = getattr(m, '__spec__', None)\n"
            "    if spec and spec.has_location and spec.origin: print(spec.origin)\n")
    r = sb.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0
    files = {os.path.abspath(f) for f in r.stdout.split()}
    assert len(files) > 20
    # a module's source may be served from its cached bytecode instead
    def seen(f):
        if f in r.reads:
            return True
        d, b = os.path.split(f)
        cached = os.path.join(d, "__pycache__")
        return any(p.startswith(cached + "/" + b[:-3] + ".") for p in r.reads)
    missing = {f for f in files if not seen(f)}
    assert not missing


def test_make_reports_what_it_builds_from(sb, tmp_path):
    make = shutil.which("make")
    if not make:
        pytest.fail("make is needed")
    (tmp_path / "a.c").write_text("int a(void){return 1;}\n")
    (tmp_path / "Makefile").write_text("a.o: a.c\n\tcc -c a.c -o a.o\n")
    r = sb.run([make], cwd=tmp_path, capture_output=True)
    assert r.returncode == 0
    assert str(tmp_path / "Makefile") in r.reads
    assert str(tmp_path / "a.c") in r.reads
    assert str(tmp_path / "a.o") in r.writes
    assert any(e.argv[:1] == ("cc",) for e in r.execs)
    # make lists the directory to learn which makefile names exist, and
    # checks the target before it exists
    assert str(tmp_path) in r.enumerations
    assert str(tmp_path / "a.o") in r.probes


def test_io_uring_ring_alone_is_not_flagged(sb):
    # Requests are traced (tests/test_io_uring.py): setting up a ring is no
    # longer a reason to call the run incomplete.
    code = ("import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "params = (ctypes.c_uint32 * 30)()\n"
            "fd = libc.syscall(425, 4, params)\n"
            "print(fd)\n")
    r = sb.run([sys.executable, "-c", code], capture_output=True, text=True)
    if int(r.stdout.strip() or -1) < 0:
        pytest.skip("io_uring is disabled on this kernel")
    assert r.complete, r.warnings


def test_repeated_probes_keep_every_distinct_path(sb, tmp_path):
    # The kernel half reports a repeated probe once per run; the same name
    # under another directory, or with another outcome, is still reported.
    script = ("for i in 1 2 3; do test -e missing; done; mkdir d; cd d; "
              "test -e missing; touch missing; test -e missing; cd ..; test -e missing")
    r = sb.run(["sh", "-c", script], cwd=tmp_path)
    assert r.returncode == 1     # the last test -e fails
    assert str(tmp_path / "missing") in r.probes
    assert str(tmp_path / "d" / "missing") in r.probes
    assert str(tmp_path / "d" / "missing") in r.writes


def test_in_process_trace_sees_the_caller_and_its_children(tmp_path):
    sandbox_for("ebpf")
    from sandbox_py._backends import ebpf
    (tmp_path / "mine.txt").write_text("m")
    (tmp_path / "child.txt").write_text("c")
    t = ebpf.SelfTrace(wait=5).start()
    open(tmp_path / "mine.txt").read()
    subprocess.run(["cat", str(tmp_path / "child.txt")], check=True, capture_output=True)
    os.path.exists(tmp_path / "after-child")
    f = t.stop()
    assert str(tmp_path / "mine.txt") in f["reads"]
    assert str(tmp_path / "child.txt") in f["reads"]
    assert str(tmp_path / "after-child") in f["probes"]
    assert f["complete"], f["warnings"]


def test_nested_run_inside_in_process_trace(sb, tmp_path):
    # Sandbox.run() inside a traced block owns its command; the outer trace
    # says so instead of silently missing it.
    from sandbox_py._backends import ebpf
    (tmp_path / "inner.txt").write_text("i")
    t = ebpf.SelfTrace(wait=5).start()
    inner = sb.run(["cat", str(tmp_path / "inner.txt")], capture_output=True)
    f = t.stop()
    assert inner.complete and str(tmp_path / "inner.txt") in inner.reads
    assert not f["complete"]
    assert any("nested Sandbox.run()" in w for w in f["warnings"])
