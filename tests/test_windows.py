"""The Windows backend (detours): under Wine on Linux, natively on Windows.

The session builds sbx-trace.exe and sbx_hook.dll with mingw-w64
(shims/windows/winbuild.py) and compiles the scenario programs of
tests/windows/.  On Linux it creates a private Wine prefix in a temporary
directory and keeps one wineserver up for the whole session (killed at the
end); on Windows (sys.platform == "win32", the CI job of
.github/workflows/windows.yml) the same programs run directly.  Each test
runs a scenario under `sbx-trace.exe -o result.json -- scenario.exe ...` and
checks what a user would: the expected paths in the right categories, and
not in the wrong ones.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = os.path.join(ROOT, "tests", "windows")
NATIVE = sys.platform == "win32"

sys.path.insert(0, os.path.join(ROOT, "shims", "windows"))
import winbuild  # noqa: E402  (shims/windows/winbuild.py)
import wineprefix  # noqa: E402  (shims/windows/wineprefix.py)

MINGW = winbuild.CC


if NATIVE:
    def winpath(path) -> str:
        """The path as the traced programs report it: absolute, with 8.3
        aliases (a runner's TEMP is C:\\Users\\RUNNER~1\\...) expanded to the
        long names, as the hook DLL reports them; a part that does not exist
        yet is kept as written."""
        import ctypes
        p = os.path.abspath(str(path))
        head, tail = p, []
        while head and not os.path.exists(head):
            head, t = os.path.split(head)
            if not t:
                break
            tail.insert(0, t)
        buf = ctypes.create_unicode_buffer(32768)
        if head and ctypes.windll.kernel32.GetLongPathNameW(head, buf, 32768):
            head = buf.value
        p = os.path.join(head, *tail)
        return p[0].upper() + p[1:] if p[1:2] == ":" else p

    class NativeRunner:
        """Stands in for the Wine prefix: runs the programs directly."""
        env = dict(os.environ)

        def run(self, argv, **kwargs):
            kwargs.setdefault("env", self.env)
            return subprocess.run(list(argv), **kwargs)

    HAVE_RUNTIME = True
else:
    winpath = wineprefix.winpath
    HAVE_RUNTIME = all(wineprefix.binaries())

pytestmark = pytest.mark.skipif(
    not (shutil.which(MINGW) and HAVE_RUNTIME),
    reason="needs mingw-w64 and wine (scripts/setup.sh installs gcc-mingw-w64-x86-64 and wine64)")


@pytest.fixture(scope="session")
def prefix(tmp_path_factory):
    if NATIVE:
        yield NativeRunner()
        return
    with wineprefix.WinePrefix(str(tmp_path_factory.mktemp("wineprefix"))) as w:
        yield w


@pytest.fixture(scope="session")
def tools(tmp_path_factory):
    out = tmp_path_factory.mktemp("winbuild")
    built = winbuild.build(str(out))
    exes = {}
    for name in ("win32_ops", "nt_ops", "popen_like", "buildtool_ops", "ba_daemon", "ba_build"):
        exe = str(out / (name + ".exe"))
        subprocess.run([MINGW, "-O1", "-municode", "-o", exe,
                        os.path.join(SCENARIOS, name + ".c"), "-lshell32"], check=True)
        exes[name] = exe
    return dict(built, **exes)


_counter = itertools.count()


def trace(prefix, tools, argv, tmp_path, *options, out_name="result-%d.json"):
    """Run argv (Windows paths) under sbx-trace; returns (exit code, Result JSON)."""
    out = tmp_path / (out_name % next(_counter))
    proc = prefix.run([tools["exe"], "-o", winpath(out), *options, "--", *argv],
                      capture_output=True, timeout=120)
    assert out.exists(), "sbx-trace wrote no result: %s" % proc.stderr.decode(errors="replace")
    return proc.returncode, json.loads(out.read_text(encoding="utf-8"))


def scenario(prefix, tools, tmp_path, mode, *extra, program="win32_ops", **kw):
    d = tmp_path
    argv = [winpath(tools[program])] + ([mode] if mode else []) + [winpath(d), *extra]
    rc, res = trace(prefix, tools, argv, tmp_path, **kw)
    assert rc == 0, "scenario %s failed under tracing: %r" % (mode, res.get("warnings"))
    assert res["complete"], json.dumps(res, indent=1)[:6000]
    return res


def files(base, *names, content="content\n"):
    for n in names:
        p = base / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content, encoding="utf-8")


# ---------------------------------------------------------------------------


def test_native_portable_parts(tmp_path):
    """winpath, cmdline, the x86-64 decoder/relocator and JSON escaping,
    compiled from the same sources with the host compiler."""
    exe = tmp_path / "unit_native"
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no host C compiler")
    srcs = ["tests/windows/unit_native.c", "csrc/win/winpath.c", "csrc/win/cmdline.c",
            "shims/windows/x64_decode.c", "csrc/core/result_json.c", "csrc/core/pathset.c",
            "csrc/core/result.c", "csrc/core/access.c", "csrc/core/ledger.c"]
    subprocess.run([cc, "-std=gnu11", "-Wall", "-Wextra", "-o", str(exe)] +
                   [os.path.join(ROOT, s) for s in srcs], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_hook_engine_relocates_prologues(prefix, tmp_path):
    """Hooks on functions starting with a RIP-relative load, a short jcc and
    a call still compute the original result through the trampoline; a
    function too short to patch is refused with a reason."""
    exe = str(tmp_path / "hook_engine_test.exe")
    subprocess.run([MINGW, "-O2", "-o", exe, os.path.join(SCENARIOS, "hook_engine_test.c"),
                    os.path.join(ROOT, "shims", "windows", "hook_engine.c"),
                    os.path.join(ROOT, "shims", "windows", "x64_decode.c")], check=True)
    proc = prefix.run([exe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_json_schema_and_exec_record(prefix, tools, tmp_path):
    files(tmp_path, "input.txt", "readwrite.txt", "ansi.txt", "untouched.txt")
    res = scenario(prefix, tools, tmp_path, "open")
    assert res["schema"] == "sandbox_py.result/1"
    assert res["backend"] == "detours"
    assert res["returncode"] == 0
    assert res["duration"] > 0
    assert res["stdout"] is None and res["stderr"] is None
    exe = winpath(tools["win32_ops"])
    assert res["args"] == [exe, "open", winpath(tmp_path)]
    root = res["execs"][0]
    assert root["path"] == exe and root["argv"] == res["args"]
    assert exe in res["reads"]
    for key in ("reads", "writes", "probes", "enumerations"):
        assert res[key] == sorted(res[key])


def test_win32_reads_and_writes(prefix, tools, tmp_path):
    files(tmp_path, "input.txt", "readwrite.txt", "ansi.txt", "untouched.txt")
    res = scenario(prefix, tools, tmp_path, "open")
    w = lambda n: winpath(tmp_path / n)
    reads, writes, probes = set(res["reads"]), set(res["writes"]), set(res["probes"])
    assert {w("input.txt"), w("readwrite.txt"), w("ansi.txt")} <= reads
    assert w("output.txt") in writes
    # opened read-write but only read: not a write
    assert w("readwrite.txt") not in writes and w("input.txt") not in writes
    # created and written by the run: not a read
    assert w("output.txt") not in reads
    # opened and closed unread: a probe, not a read
    assert w("untouched.txt") in probes and w("untouched.txt") not in reads
    assert (tmp_path / "output.txt").read_text() == "data\n" * 3


def test_missing_file_probes(prefix, tools, tmp_path):
    files(tmp_path, "present.txt")
    res = scenario(prefix, tools, tmp_path, "probe")
    w = lambda n: winpath(tmp_path / n)
    for name in ("absent1.txt", "absent2.txt", "absent3.txt", "present.txt"):
        assert w(name) in res["probes"], name
        assert w(name) not in res["reads"] and w(name) not in res["writes"], name


def test_directory_listing(prefix, tools, tmp_path):
    files(tmp_path, "listed/a.txt", "listed/b.txt", "other/c.txt")
    res = scenario(prefix, tools, tmp_path, "list")
    assert winpath(tmp_path / "listed") in res["enumerations"]
    assert winpath(tmp_path / "other") in res["enumerations"]
    # listing a directory does not read the files in it
    assert winpath(tmp_path / "listed" / "a.txt") not in res["reads"]
    # FindFirstFile of one exact name is a probe of it, not a listing
    assert winpath(tmp_path / "listed" / "a.txt") in res["probes"]
    assert winpath(tmp_path / "no_such_dir") in res["probes"]
    assert winpath(tmp_path / "no_such_dir") not in res["enumerations"]


def test_rename(prefix, tools, tmp_path):
    files(tmp_path, "old_name.txt")
    res = scenario(prefix, tools, tmp_path, "rename")
    assert winpath(tmp_path / "old_name.txt") in res["writes"]
    assert winpath(tmp_path / "new_name.txt") in res["writes"]
    assert (tmp_path / "new_name.txt").exists() and not (tmp_path / "old_name.txt").exists()


def test_delete(prefix, tools, tmp_path):
    files(tmp_path, "victim.txt")
    res = scenario(prefix, tools, tmp_path, "delete")
    assert winpath(tmp_path / "victim.txt") in res["writes"]
    # a failed delete changed nothing: a probe
    assert winpath(tmp_path / "never_there.txt") in res["probes"]
    assert winpath(tmp_path / "never_there.txt") not in res["writes"]


def test_copy(prefix, tools, tmp_path):
    files(tmp_path, "copy_src.txt")
    res = scenario(prefix, tools, tmp_path, "copy")
    src, dst = winpath(tmp_path / "copy_src.txt"), winpath(tmp_path / "copy_dst.txt")
    assert src in res["reads"] and src not in res["writes"]
    assert dst in res["writes"] and dst not in res["reads"]


def test_unhooked_win32_calls_reach_the_nt_layer(prefix, tools, tmp_path):
    files(tmp_path, "fb_old.txt", "fb_attr.txt", "fb_time.txt")
    res = scenario(prefix, tools, tmp_path, "ntfallback")
    w = lambda n: winpath(tmp_path / n)
    # MoveFileW, SetFileAttributesW, SetFileTime: not hooked as such
    assert {w("fb_old.txt"), w("fb_new.txt"), w("fb_attr.txt"),
            w("fb_time.txt")} <= set(res["writes"])
    assert not set(res["reads"]) & {w("fb_attr.txt"), w("fb_time.txt")}
    # a rename's old name is a read too: its content lives on as fb_new.txt
    assert w("fb_old.txt") in res["reads"]


def test_create_and_remove_directory(prefix, tools, tmp_path):
    (tmp_path / "gone_dir").mkdir()
    res = scenario(prefix, tools, tmp_path, "mkdir")
    assert winpath(tmp_path / "made_dir") in res["writes"]
    assert winpath(tmp_path / "gone_dir") in res["writes"]
    assert (tmp_path / "made_dir").is_dir() and not (tmp_path / "gone_dir").exists()


def test_relative_paths_after_set_current_directory(prefix, tools, tmp_path):
    files(tmp_path, "sub/rel.txt", "sub/crt.txt")
    res = scenario(prefix, tools, tmp_path, "cwd")
    assert winpath(tmp_path / "sub" / "rel.txt") in res["reads"]
    assert winpath(tmp_path / "sub" / "crt.txt") in res["reads"]
    assert winpath(tmp_path / "up_absent.txt") in res["probes"]


def test_long_path(prefix, tools, tmp_path):
    parts = ["d" * 100, "e" * 100, "f" * 100]
    # natively, Python itself needs the \\?\ form past 260 characters unless
    # the system enables long paths
    files(tmp_path if not NATIVE else type(tmp_path)("\\\\?\\" + str(tmp_path)),
          os.path.join(*parts, "long.txt"))
    rel = "\\".join(parts + ["long.txt"])
    res = scenario(prefix, tools, tmp_path, "long", rel)
    want = winpath(tmp_path / os.path.join(*parts, "long.txt"))
    assert len(want) > 260
    assert want in res["reads"]
    assert not any(p.startswith("\\\\?\\") for k in ("reads", "probes") for p in res[k])


def test_non_ascii_names(prefix, tools, tmp_path):
    files(tmp_path, "h\u00e9llo-w\u00f6rld-\u65e5\u672c.txt")
    # the result file's own name is not ASCII either
    res = scenario(prefix, tools, tmp_path, "unicode", out_name="r\u00e9sultat-%d.json")
    assert winpath(tmp_path / "h\u00e9llo-w\u00f6rld-\u65e5\u672c.txt") in res["reads"]
    assert winpath(tmp_path / "\u00f1ew-\U0001F600.txt") in res["writes"]
    assert (tmp_path / "\u00f1ew-\U0001F600.txt").exists()


def test_nt_level_access(prefix, tools, tmp_path):
    files(tmp_path, "nt_input.txt", "nt_rel.txt", "nt_delete.txt", "nt_delete2.txt",
          "nt_listed/x.txt")
    res = scenario(prefix, tools, tmp_path, None, program="nt_ops")
    w = lambda n: winpath(tmp_path / n)
    assert {w("nt_input.txt"), w("nt_rel.txt")} <= set(res["reads"])
    assert {w("nt_absent.txt"), w("nt_absent_attr.txt")} <= set(res["probes"])
    assert {w("nt_new.txt"), w("nt_renamed.txt"), w("nt_delete.txt"),
            w("nt_delete2.txt")} <= set(res["writes"])
    assert w("nt_listed") in res["enumerations"]
    assert w("nt_input.txt") not in res["writes"]
    assert (tmp_path / "nt_renamed.txt").exists() and not (tmp_path / "nt_delete.txt").exists()


def test_child_and_grandchild(prefix, tools, tmp_path):
    files(tmp_path, "child_input.txt", "grandchild_input.txt")
    res = scenario(prefix, tools, tmp_path, "spawn")
    assert winpath(tmp_path / "child_input.txt") in res["reads"]
    assert winpath(tmp_path / "grandchild_input.txt") in res["reads"]
    execs = res["execs"]
    assert [e["argv"][1] for e in execs] == ["spawn", "child", "grandchild"]
    assert execs[1]["ppid"] == execs[0]["pid"] and execs[2]["ppid"] == execs[1]["pid"]
    assert all(e["path"] == winpath(tools["win32_ops"]) for e in execs)


def test_processes_who_did_what(prefix, tools, tmp_path):
    """Each access is attributed to the process that made it: a root that
    starts two children at once, each reading a file of its own, gives
    three records with their own sets, argv, starting directory and exit
    code, the children hung under the root."""
    files(tmp_path, "parent_input.txt", "one.txt", "two.txt", "only_opened_by_one.txt",
          "only_opened_by_two.txt")
    (tmp_path / "sub").mkdir()
    res = scenario(prefix, tools, tmp_path, "fanout")
    jsonschema = pytest.importorskip("jsonschema")
    from sandbox_py.result import json_schema
    jsonschema.validate(res, json_schema())
    w = lambda n: winpath(tmp_path / n)
    exe = winpath(tools["win32_ops"])
    procs = res["processes"]
    assert [p["argv"][1:] for p in procs] == [
        ["fanout", winpath(tmp_path)],
        ["readone", winpath(tmp_path), "one.txt", "0"],
        ["readone", winpath(tmp_path), "two.txt", "7"]], procs
    root, one, two = procs
    for p in procs:
        assert set(p) == {"pid", "ppid", "parent", "path", "argv", "cwd", "returncode",
                          "reads", "writes", "probes", "enumerations"}
        assert p["path"] == exe and exe in p["reads"]
        for key in ("reads", "writes", "probes", "enumerations"):
            assert p[key] == sorted(p[key])
    assert root["parent"] is None and root["pid"] == res["execs"][0]["pid"]
    assert one["parent"] == two["parent"] == 0
    assert one["ppid"] == two["ppid"] == root["pid"] != one["pid"] != two["pid"]
    assert [p["returncode"] for p in procs] == [0, 0, 7]
    # the root started where sbx-trace was; CreateProcess's directory is the child's
    assert one["cwd"] == root["cwd"] and two["cwd"] == w("sub")

    assert w("parent_input.txt") in root["reads"] and w("parent_output.txt") in root["writes"]
    assert w("one.txt") in one["reads"] and w("two.txt") in two["reads"]
    for mine, other in ((root, None), (one, "two.txt"), (two, "one.txt")):
        touched = {x for k in ("reads", "writes", "probes", "enumerations") for x in mine[k]}
        assert (other is None and not {w("one.txt"), w("two.txt")} & touched) or \
            w(other) not in touched
    assert not ({w("parent_input.txt"), w("parent_output.txt")} &
                set(one["reads"] + one["writes"] + two["reads"] + two["writes"]))
    # the open-file ledger per process: opened, closed unread, a probe of that child
    assert w("only_opened_by_one.txt") in one["probes"]
    assert w("only_opened_by_one.txt") not in one["reads"] + two["probes"]
    assert w("only_opened_by_two.txt") in two["probes"]
    # ... and for the run: what the root read before the children only opened
    # it is a read of the run, not a probe; a probe of each child
    assert w("parent_input.txt") in one["probes"] and w("parent_input.txt") in two["probes"]
    assert w("parent_input.txt") in res["reads"] and w("parent_input.txt") not in res["probes"]
    # the run's sets from the records' (docs/semantics.md): writes and listings
    # their union; reads too here, where no process reads what another made
    for key in ("reads", "writes", "enumerations"):
        assert set(res[key]) == {x for p in procs for x in p[key]}, key
    assert set(res["probes"]) <= {x for p in procs for x in p["probes"]}


def test_processes_of_a_grandchild_and_a_killed_child(prefix, tools, tmp_path):
    """A grandchild's record hangs under its parent's, not the root's; a
    child killed from outside has the exit code it was killed with."""
    files(tmp_path, "child_input.txt", "grandchild_input.txt")
    res = scenario(prefix, tools, tmp_path, "spawn")
    procs = res["processes"]
    assert [(p["argv"][1], p["parent"]) for p in procs] == [
        ("spawn", None), ("child", 0), ("grandchild", 1)]
    assert [p["pid"] for p in procs] == [e["pid"] for e in res["execs"]]
    assert procs[2]["ppid"] == procs[1]["pid"] and procs[1]["ppid"] == procs[0]["pid"]
    assert winpath(tmp_path / "child_input.txt") in procs[1]["reads"]
    assert winpath(tmp_path / "grandchild_input.txt") in procs[2]["reads"]
    assert winpath(tmp_path / "grandchild_input.txt") not in procs[1]["reads"]

    rc, res = trace(prefix, tools, [winpath(tools["win32_ops"]), "killchild", winpath(tmp_path)],
                    tmp_path)
    assert rc == 0
    killed = [p for p in res["processes"] if p["argv"][1:2] == ["sleep"]]
    assert len(killed) == 1 and killed[0]["returncode"] == 9     # TerminateProcess(.., 9)
    assert res["processes"][0]["returncode"] == 0


def test_many_threads(prefix, tools, tmp_path):
    names = ["t%d_%d.txt" % (t, i) for t in range(8) for i in range(40)]
    files(tmp_path, *names)
    res = scenario(prefix, tools, tmp_path, "threads")
    reads, probes = set(res["reads"]), set(res["probes"])
    assert {winpath(tmp_path / n) for n in names} <= reads
    missing = {winpath(tmp_path / ("missing_t%d_%d.txt" % (t, i)))
               for t in range(8) for i in range(1, 40, 2)}
    assert missing <= probes


def test_killed_child_makes_the_result_incomplete(prefix, tools, tmp_path):
    rc, res = trace(prefix, tools, [winpath(tools["win32_ops"]), "killchild", winpath(tmp_path)],
                    tmp_path)
    assert rc == 0
    assert not res["complete"]
    killed = res["execs"][1]["pid"]
    assert any("process %d ended without delivering" % killed in w for w in res["warnings"])


def _processes_mentioning(text):
    if NATIVE:
        # the scenario's image name: nothing else in the session runs it
        out = subprocess.run(["tasklist", "/FI", "IMAGENAME eq win32_ops.exe", "/FO", "CSV",
                              "/NH"], capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if "win32_ops.exe" in line]
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except (OSError, ValueError):
            pass
    return found


def test_timeout_kills_the_tree(prefix, tools, tmp_path):
    start = time.monotonic()
    rc, res = trace(prefix, tools, [winpath(tools["win32_ops"]), "sleeptree", winpath(tmp_path)],
                    tmp_path, "--timeout", "6")
    assert time.monotonic() - start < 30
    assert not res["complete"]
    assert any("timeout" in w for w in res["warnings"])
    assert rc != 0
    assert len(res["execs"]) == 2          # the sleeping child was traced, then killed
    # neither the root nor the child survives (Wine shows the Windows path in
    # cmdline); the Unix processes may take a moment to be reaped after Wine
    # reported them terminated
    deadline = time.monotonic() + 10
    while _processes_mentioning(winpath(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(winpath(tmp_path)) == []


def test_missing_executable(prefix, tools, tmp_path):
    out = tmp_path / "err.json"
    proc = prefix.run([tools["exe"], "-o", winpath(out), "--", winpath(tmp_path / "nope.exe")],
                      capture_output=True, timeout=120)
    assert proc.returncode == 127
    assert b"cannot start" in proc.stderr
    err = json.loads(out.read_text())
    assert err["schema"] == "sandbox_py.start_error/1" and err["winerror"] == 2


def test_python_backend_wrapper_mode(prefix, tools, tmp_path, monkeypatch):
    """sandbox_py/_backends/detours.py: the Popen arguments it produces,
    replayed under Wine the way Popen would (CreateProcessW with the
    launcher as application and the program's own command line), and its
    reading of the launcher's result into Result fields."""
    from sandbox_py._backends import detours

    files(tmp_path, "input.txt", "readwrite.txt", "ansi.txt", "untouched.txt")
    monkeypatch.setenv("SANDBOX_PY_DETOURS_DIR", os.path.dirname(tools["exe"]))
    session = detours.session(None)
    kw = session.popen_kwargs({"env": {"KEEP": "1"}})
    assert kw["executable"] == tools["exe"]
    assert kw["env"]["KEEP"] == "1" and kw["env"]["SBX_TRACE_OUTPUT"] == session.out
    argv = [winpath(tools["win32_ops"]), "open", winpath(tmp_path)]
    env = dict(prefix.env, SBX_TRACE_OUTPUT=winpath(session.out))   # the Z: view of the same file
    proc = prefix.run([tools["popen_like"], winpath(kw["executable"]),
                       subprocess.list2cmdline(argv)],
                      env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    fields = session.finish()
    assert fields["complete"], fields["warnings"]
    assert winpath(tmp_path / "input.txt") in fields["reads"]
    assert winpath(tmp_path / "output.txt") in fields["writes"]
    assert [tuple(e.argv) for e in fields["execs"]] == [tuple(argv)]
    assert not os.path.exists(session.out)

    # a program that cannot be found raises FileNotFoundError, as subprocess does
    session = detours.session(None)
    env = dict(prefix.env, SBX_TRACE_OUTPUT=winpath(session.out))
    prefix.run([tools["popen_like"], winpath(tools["exe"]), winpath(tmp_path / "missing.exe")],
               env=env, capture_output=True, timeout=120)
    with pytest.raises(FileNotFoundError):
        session.finish()


def test_python_backend_hands_on_processes(prefix, tools, tmp_path, monkeypatch):
    """detours.py passes the launcher's processes on: the Result made from
    its fields has one Process per program, with its own sets, and steps
    roll them up."""
    from sandbox_py import Result
    from sandbox_py._backends import detours

    files(tmp_path, "parent_input.txt", "one.txt", "two.txt", "only_opened_by_one.txt",
          "only_opened_by_two.txt")
    (tmp_path / "sub").mkdir()
    monkeypatch.setenv("SANDBOX_PY_DETOURS_DIR", os.path.dirname(tools["exe"]))
    session = detours.session(None)
    kw = session.popen_kwargs({})
    argv = [winpath(tools["win32_ops"]), "fanout", winpath(tmp_path)]
    env = dict(prefix.env, SBX_TRACE_OUTPUT=winpath(session.out))
    proc = prefix.run([tools["popen_like"], winpath(kw["executable"]),
                       subprocess.list2cmdline(argv)],
                      env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    r = Result.from_fields(session.finish(), args=argv, returncode=0, backend="detours")
    assert r.complete, r.warnings
    root, one, two = r.processes
    assert root.argv == tuple(argv) and root.parent is None and root.returncode == 0
    assert (one.argv[1], one.argv[3], one.parent, one.returncode) == ("readone", "one.txt", 0, 0)
    assert (two.argv[1], two.argv[3], two.parent, two.returncode) == ("readone", "two.txt", 0, 7)
    w = lambda n: winpath(tmp_path / n)
    assert w("one.txt") in one.reads and w("one.txt") not in two.reads | root.reads
    assert w("two.txt") in two.reads and w("two.txt") not in one.reads | root.reads
    assert two.cwd == w("sub")
    steps = r.steps(lambda p: p.argv[1:2] == ("readone",))
    assert [s.process for s in steps] == [one, two]
    assert [w("one.txt") in s.reads for s in steps] == [True, False]


# --- paths and calls of build tools ---------------------------------------------


def _under(res, base):
    """Every recorded path (all categories) under the directory base."""
    prefix = winpath(base) + "\\"
    return {p for k in ("reads", "writes", "probes", "enumerations") for p in res[k]
            if p.startswith(prefix)}


def test_short_names_are_reported_long(prefix, tools, tmp_path):
    """A file opened by its 8.3 alias is reported under its long name, and so
    are probes and listings through a short directory name: a cache keyed on
    paths sees one spelling per file."""
    long_dir = tmp_path / "c19_long_directory_name"
    files(long_dir, "a_rather_long_file_name.text")
    proc = prefix.run([tools["exe"], "-o", winpath(tmp_path / "r.json"), "--",
                       winpath(tools["buildtool_ops"]), "shortname", winpath(tmp_path)],
                      capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    short_file = proc.stdout.split("short file: ")[1].split("\n")[0].strip()
    if "~" not in short_file:
        pytest.skip("this volume has no 8.3 names (%s)" % short_file)
    res = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert res["complete"], res["warnings"]
    w = lambda *n: winpath(tmp_path.joinpath(*n))
    assert w("c19_long_directory_name", "a_rather_long_file_name.text") in res["reads"]
    assert w("c19_long_directory_name", "written_through_short.txt") in res["writes"]
    assert w("c19_long_directory_name") in res["enumerations"]
    # absent files under a short directory name: the existing parent is expanded
    assert w("c19_long_directory_name", "absent_long_name.txt") in res["probes"]
    # a short-looking name that matches nothing is kept as written
    assert w("c19_long_directory_name", "NOPE~1.TXT") in res["probes"]
    spelled_short = {p for p in _under(res, tmp_path) if "~" in p and not p.endswith("NOPE~1.TXT")}
    assert not spelled_short


def test_nt_namespace_names_in_win32_calls(prefix, tools, tmp_path):
    """\\??\\, \\\\?\\ and \\\\.\\ names given to CreateFileW/GetFileAttributesW are
    the files they name, not a path rooted on the current drive."""
    files(tmp_path, "np.txt", "qp.txt", "dp.txt")
    res = scenario(prefix, tools, tmp_path, "nsprefix", program="buildtool_ops")
    w = lambda n: winpath(tmp_path / n)
    assert {w("np.txt"), w("qp.txt"), w("dp.txt")} <= set(res["reads"])
    assert w("missing.txt") in res["probes"] and w("missing.txt") not in res["reads"]
    assert w("out.txt") in res["writes"] and w("out.txt") not in res["reads"]
    assert (tmp_path / "out.txt").read_text() == "x"
    assert "\\\\sbxnohost\\share\\unc_probe.txt" in res["probes"]
    everything = [p for k in ("reads", "writes", "probes", "enumerations") for p in res[k]]
    assert not [p for p in everything if "?" in p or "\\\\.\\" in p[:4]]


def test_link_and_rename_sources_are_reads(prefix, tools, tmp_path):
    """The existing name of a hard link (CreateHardLinkW, FileLinkInformation)
    and the old name of a rename (MoveFileExW, MoveFileW) are reads: their
    content lives on under the new name.  A file the run made and renamed is
    not a read."""
    files(tmp_path, "hl_src.txt", "nl_src.txt", "mv_old.txt", "mw_old.txt")
    res = scenario(prefix, tools, tmp_path, "links", program="buildtool_ops")
    w = lambda n: winpath(tmp_path / n)
    reads, writes = set(res["reads"]), set(res["writes"])
    assert {w("hl_src.txt"), w("nl_src.txt"), w("mv_old.txt"), w("mw_old.txt")} <= reads
    assert {w("hl_new.txt"), w("nl_new.txt"), w("mv_new.txt"), w("mw_new.txt"),
            w("mv_old.txt"), w("mw_old.txt")} <= writes
    # a link's source is not changed by the link
    assert w("hl_src.txt") not in writes and w("nl_src.txt") not in writes
    # new names were created by the run: not reads
    assert not reads & {w("hl_new.txt"), w("nl_new.txt"), w("mv_new.txt"), w("mw_new.txt")}
    assert w("made_tmp.txt") in writes and w("made_final.txt") in writes
    assert w("made_tmp.txt") not in reads and w("made_final.txt") not in reads
    assert (tmp_path / "hl_new.txt").read_text() == "content\n"
    assert (tmp_path / "nl_new.txt").read_text() == "content\n"


def test_scatter_gather_io(prefix, tools, tmp_path):
    """ReadFileScatter reads and WriteFileGather writes (NtReadFileScatter,
    NtWriteFileGather are hooked, not a silent gap)."""
    (tmp_path / "scatter_in.bin").write_bytes(b"S" * 65536)
    (tmp_path / "gather_out.bin").write_bytes(b"x" * 65536)
    res = scenario(prefix, tools, tmp_path, "scatter", program="buildtool_ops")
    assert winpath(tmp_path / "scatter_in.bin") in res["reads"]
    assert winpath(tmp_path / "gather_out.bin") in res["writes"]
    assert winpath(tmp_path / "gather_out.bin") not in res["reads"]
    assert (tmp_path / "gather_out.bin").read_bytes().startswith(b"G" * 4096)


def test_exit_code_is_an_unsigned_dword(prefix, tools, tmp_path, monkeypatch):
    """ExitProcess(0xC0000135) is 3221225781 in the JSON and for Popen (the
    launcher exits with the same DWORD), never -1073741515."""
    rc, res = trace(prefix, tools, [winpath(tools["buildtool_ops"]), "exitcode",
                                    winpath(tmp_path)], tmp_path)
    assert res["returncode"] == 0xC0000135 == 3221225781
    assert res["complete"], res["warnings"]
    # the wrapper mode detours.py uses, started the way Popen starts it;
    # popen_like prints GetExitCodeProcess of sbx-trace.exe as Popen sees it
    from sandbox_py._backends import detours
    monkeypatch.setenv("SANDBOX_PY_DETOURS_DIR", os.path.dirname(tools["exe"]))
    session = detours.session(None)
    env = dict(prefix.env, SBX_TRACE_OUTPUT=winpath(session.out))
    argv = [winpath(tools["buildtool_ops"]), "exitcode", winpath(tmp_path)]
    proc = prefix.run([tools["popen_like"], winpath(tools["exe"]), subprocess.list2cmdline(argv)],
                      env=env, capture_output=True, text=True, timeout=120)
    assert "exit code 3221225781" in proc.stdout, proc.stdout + proc.stderr
    fields = session.finish()
    assert fields["returncode"] == 3221225781


def test_console_children_are_traced_and_complete(prefix, tools, tmp_path):
    """Children started with CREATE_NO_WINDOW and CREATE_NEW_CONSOLE are
    traced; the system console host started for them (under Wine, without
    the hook DLL) is recognised by its image and does not make the run
    incomplete, nor does it appear as an exec."""
    files(tmp_path, "nowin.txt", "newcon.txt")
    res = scenario(prefix, tools, tmp_path, "console", program="buildtool_ops")
    assert {winpath(tmp_path / "nowin.txt"), winpath(tmp_path / "newcon.txt")} <= set(res["reads"])
    assert [e["argv"][1] for e in res["execs"]] == ["console", "readchild_nowin",
                                                    "readchild_newcon"]
    assert not any("conhost" in e["path"].lower() for e in res["execs"])


def test_shell_execute_child_is_traced(prefix, tools, tmp_path):
    files(tmp_path, "shell.txt")
    res = scenario(prefix, tools, tmp_path, "shellexec", program="buildtool_ops")
    assert winpath(tmp_path / "shell.txt") in res["reads"]
    assert [e["argv"][1] for e in res["execs"]] == ["shellexec", "readchild_shell"]


def test_untraced_child_makes_the_run_incomplete(prefix, tools, tmp_path):
    """A child started by a call the DLL does not hook (CreateProcessAsUserW)
    runs without it: its read is missing, and the Result says so."""
    files(tmp_path, "asuser.txt")
    rc, res = trace(prefix, tools, [winpath(tools["buildtool_ops"]), "untraced",
                                    winpath(tmp_path)], tmp_path)
    assert rc == 0
    assert not res["complete"]
    warning = [w for w in res["warnings"] if "ran without the hook DLL" in w]
    assert warning, res["warnings"]
    # the warning names the program that ran unseen
    # (the total may include an excused console host on Windows)
    assert warning[0].startswith("1 of "), warning[0]
    assert winpath(tools["buildtool_ops"]) + " (pid " in warning[0]
    assert winpath(tmp_path / "asuser.txt") not in res["reads"]


def test_programs_started_by_short_name_are_reported_long(prefix, tools, tmp_path):
    """The root and a child started through the 8.3 alias of their image:
    execs and the image read carry the long name."""
    files(tmp_path, "short.txt")
    exe = winpath(tools["buildtool_ops"])
    proc = prefix.run([tools["exe"], "-o", winpath(tmp_path / "a.json"), "--",
                       exe, "spawnshort", winpath(tmp_path)],
                      capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    short = proc.stdout.split("short self: ")[1].split("\n")[0].strip()
    if "~" not in short:
        pytest.skip("this volume has no 8.3 names (%s)" % short)
    res = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert res["complete"], res["warnings"]
    assert [e["path"] for e in res["execs"]] == [exe, exe]
    assert winpath(tmp_path / "short.txt") in res["reads"]
    # the root itself started by its short name
    rc, res = trace(prefix, tools, [short, "readchild_short", winpath(tmp_path)], tmp_path)
    assert rc == 0 and res["complete"], res["warnings"]
    assert res["args"][0] == short          # the command as given
    assert res["execs"][0]["path"] == exe and exe in res["reads"]
    assert not [p for p in res["reads"] if "~" in p]


def _traced_with_stdout(prefix, tools, tmp_path, mode):
    out = tmp_path / ("%s.json" % mode)
    proc = prefix.run([tools["exe"], "-o", winpath(out), "--", winpath(tools["buildtool_ops"]),
                       mode, winpath(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(out.read_text(encoding="utf-8"))


def test_metadata_changes_through_a_handle(prefix, tools, tmp_path):
    """FSCTL_SET_SPARSE (NtFsControlFile) and SetFileSecurityW
    (NtSetSecurityObject) change a file opened without writing data: writes."""
    files(tmp_path, "sparse.bin", "secured.txt")
    out, res = _traced_with_stdout(prefix, tools, tmp_path, "fsctl")
    assert res["complete"], res["warnings"]
    if "set sparse: ok" in out:
        assert winpath(tmp_path / "sparse.bin") in res["writes"]
    out2, res = _traced_with_stdout(prefix, tools, tmp_path, "security")
    assert res["complete"], res["warnings"]
    if "set security: ok" in out2:
        assert winpath(tmp_path / "secured.txt") in res["writes"]
    if "set sparse: ok" not in out and "set security: ok" not in out2:
        pytest.skip("neither FSCTL_SET_SPARSE nor SetFileSecurityW works here")


def test_open_by_file_id(prefix, tools, tmp_path):
    """OpenFileById passes a binary id where a name would be: the file is
    reported under its real name, and an id that names nothing is a warning
    (complete=False), never a path made of the id's bytes."""
    files(tmp_path, "byid.txt")
    out, res = _traced_with_stdout(prefix, tools, tmp_path, "byid")
    if "open by id: ok" not in out:
        pytest.skip("OpenFileById is not supported here: " + out)
    assert winpath(tmp_path / "byid.txt") in res["reads"]
    recorded = _under(res, tmp_path)
    assert recorded <= {winpath(tmp_path / n) for n in ("byid.txt", "byid.json")} | {
        winpath(tmp_path)}, recorded
    assert not res["complete"]
    assert any("open by file id failed" in w for w in res["warnings"])


@pytest.mark.skipif(not NATIVE, reason="the Python API drives sbx-trace.exe only on Windows")
def test_python_api_on_windows(tools, tmp_path, monkeypatch):
    """Sandbox("detours").run() end to end on Windows: the Result a user
    gets, with an NTSTATUS exit code as subprocess reports it (unsigned)."""
    import sandbox_py
    monkeypatch.setenv("SANDBOX_PY_DETOURS_DIR", os.path.dirname(tools["exe"]))
    files(tmp_path, "nowin.txt", "newcon.txt")
    r = sandbox_py.Sandbox("detours").run([tools["buildtool_ops"], "console", str(tmp_path)],
                                          capture_output=True)
    assert r.returncode == 0 and r.complete, r.warnings
    assert winpath(tmp_path / "nowin.txt") in r.reads
    r = sandbox_py.Sandbox("detours").run([tools["buildtool_ops"], "exitcode", str(tmp_path)])
    assert r.returncode == 0xC0000135 == 3221225781


def _trace_to_files(prefix, tools, argv, tmp_path, *options):
    """Like trace(), with the output in files, not pipes: a daemon that
    outlives the run must not hold run()'s pipes (Wine hands the Unix
    standard descriptors down).  Returns (exit code, Result, seconds)."""
    out = tmp_path / ("result-%d.json" % next(_counter))
    log = tmp_path / ("sbx-trace-%d.log" % next(_counter))
    start = time.monotonic()
    with open(log, "wb") as f:
        proc = prefix.run([tools["exe"], "-o", winpath(out), *options, "--", *argv],
                          stdout=f, stderr=f, stdin=subprocess.DEVNULL, timeout=120)
    took = time.monotonic() - start
    assert out.exists(), "sbx-trace wrote no result: %s" % log.read_text(errors="replace")
    return proc.returncode, json.loads(out.read_text(encoding="utf-8")), took


def _daemon_finished(tmp_path, within=60.0) -> str:
    state = tmp_path / "daemon_state.txt"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if state.exists() and "done" in state.read_text():
            break
        time.sleep(0.2)
    return state.read_text() if state.exists() else ""


def test_breakaway_daemon_leaves_the_job(prefix, tools, tmp_path):
    """A declared daemon (tests/windows/ba_daemon.c) is created outside the
    job without the hook DLL: the build returns while it lives, its own file
    is not in the Result, and it finishes its work after the run."""
    files(tmp_path, "input.txt")
    rc, res, took = _trace_to_files(
        prefix, tools, [winpath(tools["ba_build"]), winpath(tools["ba_daemon"]),
                        winpath(tmp_path), "10"], tmp_path, "--breakaway", "ba_daemon")
    assert rc == 0, res.get("warnings")
    assert took < 10                      # not held until the daemon ends
    assert [e["argv"][1] for e in res["breakaways"]] == ["start"]
    assert res["breakaways"][0]["path"] == winpath(tools["ba_daemon"])
    assert [e["path"] for e in res["execs"]] == [winpath(tools["ba_build"])]
    assert winpath(tmp_path / "input.txt") in res["reads"]
    assert winpath(tmp_path / "out.txt") in res["writes"]
    everything = res["reads"] + res["writes"] + res["probes"] + res["enumerations"]
    assert not [p for p in everything if "daemon_state" in p]
    assert res["complete"], res["warnings"]
    state = _daemon_finished(tmp_path)
    assert "started" in state and "done" in state


def test_breakaway_daemon_survives_the_timeout(prefix, tools, tmp_path):
    files(tmp_path, "input.txt")
    rc, res, took = _trace_to_files(
        prefix, tools, [winpath(tools["ba_build"]), winpath(tools["ba_daemon"]),
                        winpath(tmp_path), "12", "60"], tmp_path, "--timeout", "4",
        "--breakaway", "ba_daemon.exe")
    assert rc != 0 and any("timeout" in w for w in res["warnings"])
    assert len(res["breakaways"]) == 1
    assert "done" in _daemon_finished(tmp_path)


def test_undeclared_daemon_is_in_the_job(prefix, tools, tmp_path):
    """Without the declaration the daemon is traced and waited for, as ever."""
    files(tmp_path, "input.txt")
    rc, res, took = _trace_to_files(
        prefix, tools, [winpath(tools["ba_build"]), winpath(tools["ba_daemon"]),
                        winpath(tmp_path), "3"], tmp_path)
    assert rc == 0 and took >= 3
    assert res["breakaways"] == []
    assert winpath(tmp_path / "daemon_state.txt") in res["writes"]
    assert [e["argv"][1] for e in res["execs"][1:]] == ["start", "serve"]


def test_python_backend_passes_the_breakaway_declaration(prefix, tools, tmp_path, monkeypatch):
    """detours.py hands run(breakaway=...) to sbx-trace.exe (replayed as
    Popen would start it) and reads Result.breakaways back."""
    from sandbox_py._backends import detours
    from sandbox_py.breakaway import compile_rule

    files(tmp_path, "input.txt")
    monkeypatch.setenv("SANDBOX_PY_DETOURS_DIR", os.path.dirname(tools["exe"]))
    session = detours.session(None)
    session.breakaway = compile_rule(["ba_daemon"])
    kw = session.popen_kwargs({"env": {}})
    assert kw["env"]["SBX_TRACE_BREAKAWAY"] == "ba_daemon"
    argv = [winpath(tools["ba_build"]), winpath(tools["ba_daemon"]), winpath(tmp_path), "5"]
    env = dict(prefix.env, SBX_TRACE_OUTPUT=winpath(session.out),
               SBX_TRACE_BREAKAWAY=kw["env"]["SBX_TRACE_BREAKAWAY"])
    with open(tmp_path / "log", "wb") as f:
        proc = prefix.run([tools["popen_like"], winpath(kw["executable"]),
                           subprocess.list2cmdline(argv)], env=env, stdout=f, stderr=f,
                          stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0
    fields = session.finish()
    assert [b.path for b in fields["breakaways"]] == [winpath(tools["ba_daemon"])]
    assert fields["breakaways"][0].argv[1] == "start"
    assert fields["complete"], fields["warnings"]
    assert "done" in _daemon_finished(tmp_path)
