"""The Windows backend (detours), run under Wine on Linux.

The session builds sbx-trace.exe and sbx_hook.dll with mingw-w64
(shims/windows/winbuild.py), compiles the scenario programs of tests/windows/,
creates a private Wine prefix in a temporary directory and keeps one
wineserver up for the whole session (killed at the end).  Each test runs a
scenario under `wine sbx-trace.exe -o result.json -- scenario.exe ...` and
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
MINGW = "x86_64-w64-mingw32-gcc"

sys.path.insert(0, os.path.join(ROOT, "shims", "windows"))
import winbuild  # noqa: E402  (shims/windows/winbuild.py)
import wineprefix  # noqa: E402  (shims/windows/wineprefix.py)

winpath = wineprefix.winpath

pytestmark = pytest.mark.skipif(
    not (shutil.which(MINGW) and all(wineprefix.binaries())),
    reason="needs mingw-w64 and wine (scripts/setup.sh installs gcc-mingw-w64-x86-64 and wine64)")


@pytest.fixture(scope="session")
def prefix(tmp_path_factory):
    with wineprefix.WinePrefix(str(tmp_path_factory.mktemp("wineprefix"))) as w:
        yield w


@pytest.fixture(scope="session")
def tools(tmp_path_factory):
    out = tmp_path_factory.mktemp("winbuild")
    built = winbuild.build(str(out))
    exes = {}
    for name in ("win32_ops", "nt_ops", "popen_like"):
        exe = str(out / (name + ".exe"))
        subprocess.run([MINGW, "-O1", "-municode", "-o", exe,
                        os.path.join(SCENARIOS, name + ".c")], check=True)
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
            "csrc/core/result.c"]
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
    assert {w("fb_old.txt"), w("fb_new.txt"), w("fb_attr.txt"), w("fb_time.txt")} <= set(res["writes"])
    assert not set(res["reads"]) & {w("fb_old.txt"), w("fb_attr.txt"), w("fb_time.txt")}


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
    files(tmp_path, os.path.join(*parts, "long.txt"))
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
