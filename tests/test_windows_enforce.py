"""Enforcement on Windows (the detours backend): the hook DLL refuses what a
Policy does not allow, under Wine on Linux and natively on Windows.

Each test writes the policy the way ``Sandbox().run(policy=...)`` does
(``Policy.resolved(platform="win32")`` in the text form of
``detours.policy_text``), runs a scenario program under ``sbx-trace
--policy``, and checks what a user would: the refused calls failed with
ERROR_ACCESS_DENIED, the protected files are unchanged on disk, the allowed
work happened, and the Result's ``denied`` names each refused access with
the process that tried it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sandbox_py import Policy
from sandbox_py._backends import detours
from sandbox_py.policy import Denied

from test_windows import (MINGW, ROOT, SCENARIOS, prefix, tools,  # noqa: F401  (fixtures)
                          winpath)
from test_windows import pytestmark  # noqa: F401  (same requirements: mingw-w64, Wine)


@pytest.fixture(scope="session")
def programs(tmp_path_factory):
    out = tmp_path_factory.mktemp("enforce_progs")
    exes = {}
    for name, extra in (("enforce_ops", []),
                        ("policy_match", [os.path.join(ROOT, "csrc", "win", "winpolicy.c")])):
        exe = str(out / (name + ".exe"))
        subprocess.run([MINGW, "-O1", "-municode", "-o", exe,
                        os.path.join(SCENARIOS, name + ".c")] + extra, check=True)
        exes[name] = exe
    return exes


def write_policy(tmp_path, policy: Policy, cwd=None) -> str:
    """The resolved policy in sbx-trace's form; returns its Windows name."""
    resolved = policy.resolved(cwd or winpath(tmp_path), platform="win32")
    f = tmp_path / "policy.txt"
    f.write_text(detours.policy_text(resolved), encoding="utf-8")
    return winpath(f)


def run_ops(prefix, tools, programs, tmp_path, policy_file, ops, name="result.json"):
    """enforce_ops.exe under sbx-trace with the policy; returns
    (exit code, {op: outcome, ...} in order as a list, Result JSON)."""
    out = tmp_path / name
    proc = prefix.run([tools["exe"], "-o", winpath(out), "--policy", policy_file, "--",
                       winpath(programs["enforce_ops"]), *ops],
                      capture_output=True, timeout=120)
    assert out.exists(), proc.stderr.decode(errors="replace")
    lines = proc.stdout.decode(errors="replace").replace("\r", "").splitlines()
    return proc.returncode, lines, json.loads(out.read_text(encoding="utf-8"))


def layout(tmp_path):
    for d in ("src", "out", "secret"):
        (tmp_path / d).mkdir()
    (tmp_path / "src" / "in.txt").write_text("input\n")
    (tmp_path / "secret" / "s.txt").write_text("secret s\n")
    (tmp_path / "secret" / "t.txt").write_text("secret t\n")
    (tmp_path / "out" / "mv.txt").write_text("movable\n")
    (tmp_path / "out" / "mv2.txt").write_text("movable 2\n")


def standard_policy(tmp_path, programs, on_violation="deny") -> Policy:
    progs = os.path.dirname(programs["enforce_ops"])
    return Policy(read=[winpath(tmp_path / "src"), winpath(progs)],
                  write=[winpath(tmp_path / "out")], on_violation=on_violation)


def secret_ops(tmp_path):
    w = lambda n: winpath(tmp_path / n)  # noqa: E731
    return ["w32read", w("src/in.txt"),
            "w32read", w("secret/s.txt"),
            "w32append", w("secret/s.txt"),
            "ntread", w("secret/t.txt"),
            "ntwrite", w("secret/t.txt"),
            "w32write", w("out/new.txt"),
            "delete", w("secret/s.txt"),
            "ntdelete", w("secret/t.txt"),
            "rename", w("out/mv.txt"), w("secret/mv.txt"),
            "ntrename", w("out/mv2.txt"), w("secret/mv2.txt"),
            "stat", w("secret/s.txt"),
            "list", w("secret")]


# ---------------------------------------------------------------------------


POLICY_CASES = [
    # (category, path) asked of Policy(read=[C:\Src, D:\], write=[C:\Work\Out,
    # \\srv\share\Build, C:\Été\Ωmega], execute=[C:\Tools]), system=False
    ("read", "C:\\Src"), ("read", "c:\\src\\a.c"), ("read", "C:\\SRC\\Sub\\B.H"),
    ("read", "C:\\Srcx"), ("read", "C:\\Sr"), ("read", "C:\\"), ("probe", "C:\\"),
    ("probe", "c:\\work"), ("enumeration", "C:\\work"), ("probe", "C:\\Other"),
    ("write", "C:\\Src\\a.c"), ("write", "C:\\Work\\Out\\x.obj"), ("write", "C:\\work\\OUT"),
    ("write", "C:\\Work\\Outer\\x"), ("read", "C:\\Work\\Out\\x.obj"),
    ("exec", "C:\\Tools\\cc.exe"), ("exec", "C:\\Src\\tool.exe"), ("read", "C:\\tools\\cc.exe"),
    ("read", "D:\\anything\\at\\all"), ("read", "D:\\"), ("read", "E:\\x"),
    ("write", "\\\\srv\\share\\Build\\o"), ("write", "\\\\SRV\\SHARE\\build"),
    ("write", "\\\\srv\\share\\Builder"), ("probe", "\\\\srv\\share"), ("probe", "\\\\srv"),
    # letter case beyond ASCII: é/É, Ω/ω, and the ones without a one-to-one
    # upper case (ß stays ß) or outside 16 bits (stays as it is)
    ("write", "C:\\été\\ωMEGA\\f"), ("write", "C:\\ÉTÉ\\ΩMEGA"), ("write", "C:\\Ete\\Omega"),
    ("read", "C:\\src\\straße"), ("write", "C:\\Été\\Ωmega\\\U0001d400"),
    ("read", "/etc/passwd"),
]


def test_policy_rule_agrees_with_policy_py(prefix, programs, tmp_path):
    """The DLL's rule (csrc/win/winpolicy.c with ntdll's upper-case mapping)
    answers every case of the table as Policy.allows does."""
    p = Policy(read=["C:\\Src", "D:\\"], write=["C:\\Work\\Out", "\\\\srv\\share\\Build",
                                                "C:\\Été\\Ωmega"],
               execute=["C:\\Tools"], system=False).resolved("C:\\", platform="win32")
    f = tmp_path / "policy.txt"
    f.write_text(detours.policy_text(p), encoding="utf-8")
    args = [a for case in POLICY_CASES for a in case]
    proc = prefix.run([winpath(programs["policy_match"]), winpath(f), *args],
                      capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = proc.stdout.decode().split()
    assert len(got) == len(POLICY_CASES)
    mismatches = [(c, path, g, p.allows(c, path)) for (c, path), g in zip(POLICY_CASES, got)
                  if (g == "1") != p.allows(c, path)]
    assert not mismatches
    # and the table says what it should (not both wrong alike)
    assert p.allows("write", "C:\\été\\ωMEGA\\f") and not p.allows("read", "C:\\Srcx")
    assert p.allows("probe", "\\\\srv\\share") and not p.allows("enumeration", "C:\\work")


def test_deny_refuses_reads_writes_deletes_and_renames(prefix, tools, programs, tmp_path):
    layout(tmp_path)
    policy_file = write_policy(tmp_path, standard_policy(tmp_path, programs))
    rc, lines, res = run_ops(prefix, tools, programs, tmp_path, policy_file,
                             secret_ops(tmp_path))
    assert rc == 0
    assert lines == ["w32read ok",
                     "w32read error 5", "w32append error 5",
                     "ntread error 0xc0000022", "ntwrite error 0xc0000022",
                     "w32write ok",
                     "delete error 5", "ntdelete error 0xc0000022",
                     "rename error 5", "ntrename error 0xc0000022",
                     "stat error 5", "list error 5"], lines
    # nothing outside the policy changed on disk; the allowed write happened
    assert (tmp_path / "secret" / "s.txt").read_text() == "secret s\n"
    assert (tmp_path / "secret" / "t.txt").read_text() == "secret t\n"
    assert sorted(os.listdir(tmp_path / "secret")) == ["s.txt", "t.txt"]
    assert (tmp_path / "out" / "mv.txt").read_text() == "movable\n"
    assert (tmp_path / "out" / "mv2.txt").read_text() == "movable 2\n"
    assert (tmp_path / "out" / "new.txt").read_text() == "changed\n"
    # each refusal is named, with the process that tried it
    w = lambda n: winpath(tmp_path / n)  # noqa: E731
    pid = res["execs"][0]["pid"]
    denied = {(d["path"], d["category"]) for d in res["denied"]}
    assert denied == {(w("secret/s.txt"), "read"), (w("secret/s.txt"), "write"),
                      (w("secret/t.txt"), "read"), (w("secret/t.txt"), "write"),
                      (w("secret/mv.txt"), "write"), (w("secret/mv2.txt"), "write"),
                      (w("secret/s.txt"), "probe"), (w("secret"), "enumeration")}
    assert {d["pid"] for d in res["denied"]} == {pid}
    # refused accesses did not happen: they are not in the traced sets
    for key in ("reads", "writes"):
        assert not [p for p in res[key] if p.startswith(w("secret"))], key
    assert w("src/in.txt") in res["reads"] and w("out/new.txt") in res["writes"]
    assert res["complete"], res["warnings"]
    # sbx-trace's JSON, "denied" included, is a Result of the shipped schema
    import jsonschema
    from sandbox_py.result import json_schema
    jsonschema.validate(res, json_schema())


def test_detours_session_reads_denied_into_the_result(prefix, tools, programs, tmp_path,
                                                      monkeypatch):
    """What Sandbox("detours").run() does with sbx-trace's JSON: Denied
    records with pids, merged with the traced violations into Result.denied."""
    layout(tmp_path)
    policy = standard_policy(tmp_path, programs)
    policy_file = write_policy(tmp_path, policy)
    ops = ["w32read", winpath(tmp_path / "secret/s.txt")]
    _, lines, res = run_ops(prefix, tools, programs, tmp_path, policy_file, ops)
    assert lines == ["w32read error 5"]
    monkeypatch.setenv("SANDBOX_PY_DETOURS_DIR", os.path.dirname(tools["exe"]))
    session = detours.session(None)
    session.out = str(tmp_path / "result.json")
    fields = session.finish()
    assert fields["denied"] == [Denied(winpath(tmp_path / "secret/s.txt"), "read",
                                       res["execs"][0]["pid"])]
    from sandbox_py.policy import merge_denied
    merged = merge_denied(fields["denied"], [Denied(fields["denied"][0].path, "read")])
    assert merged == tuple(fields["denied"])       # the pid is kept


def test_a_hard_link_cannot_bring_a_protected_file_into_a_write_tree(prefix, tools, programs,
                                                                    tmp_path):
    """A hard link of a file outside the write trees, made inside one, would
    let it be changed through the new name: refused, and so is a link of a
    file of the write tree made outside it.  A link inside the write tree
    works."""
    layout(tmp_path)
    policy_file = write_policy(tmp_path, standard_policy(tmp_path, programs))
    w = lambda n: winpath(tmp_path / n)  # noqa: E731
    _, lines, res = run_ops(prefix, tools, programs, tmp_path, policy_file,
                            ["link", w("src/in.txt"), w("out/in-link.txt"),
                             "link", w("out/mv.txt"), w("secret/mv-link.txt"),
                             "link", w("out/mv.txt"), w("out/mv-link.txt"),
                             "w32write", w("out/in-link.txt")])
    assert lines == ["link error 5", "link error 5", "link ok", "w32write ok"], lines
    # the write went to a new file of its own, not through a link
    assert (tmp_path / "src" / "in.txt").read_text() == "input\n"
    assert not os.path.samefile(tmp_path / "src" / "in.txt", tmp_path / "out" / "in-link.txt")
    assert not (tmp_path / "secret" / "mv-link.txt").exists()
    assert os.path.samefile(tmp_path / "out" / "mv.txt", tmp_path / "out" / "mv-link.txt")
    denied = {(d["path"], d["category"]) for d in res["denied"]}
    assert {(w("src/in.txt"), "write"), (w("secret/mv-link.txt"), "write")} <= denied


def test_an_open_by_file_id_is_checked_once_it_names_its_file(prefix, tools, programs,
                                                              tmp_path):
    """OpenFileById gives no name to check beforehand: the handle is named
    once opened and, outside the policy, closed before the program sees it;
    nothing was written."""
    layout(tmp_path)
    policy = Policy(read=[winpath(tmp_path / "secret"),
                          winpath(os.path.dirname(programs["enforce_ops"]))],
                    write=[winpath(tmp_path / "out")])
    policy_file = write_policy(tmp_path, policy)
    _, lines, res = run_ops(prefix, tools, programs, tmp_path, policy_file,
                            ["byidwrite", winpath(tmp_path / "secret" / "s.txt"),
                             "byidwrite", winpath(tmp_path / "out" / "mv.txt")])
    if lines[1] != "byidwrite ok":
        pytest.skip("OpenFileById is not supported here: %s" % lines)
    assert lines[0] == "byidwrite error 5"
    assert (tmp_path / "secret" / "s.txt").read_text() == "secret s\n"
    assert (tmp_path / "out" / "mv.txt").read_text().startswith("changed")
    assert (winpath(tmp_path / "secret" / "s.txt"), "write") in {
        (d["path"], d["category"]) for d in res["denied"]}


def test_report_mode_blocks_nothing_and_lists_everything(prefix, tools, programs, tmp_path):
    layout(tmp_path)
    policy_file = write_policy(tmp_path, standard_policy(tmp_path, programs, "report"))
    w = lambda n: winpath(tmp_path / n)  # noqa: E731
    rc, lines, res = run_ops(prefix, tools, programs, tmp_path, policy_file,
                             ["w32read", w("secret/s.txt"), "ntwrite", w("secret/t.txt"),
                              "rename", w("out/mv.txt"), w("secret/mv.txt")])
    assert lines == ["w32read ok", "ntwrite ok", "rename ok"]
    assert (tmp_path / "secret" / "t.txt").read_text() == "changed\n"
    assert (tmp_path / "secret" / "mv.txt").exists()
    pid = res["execs"][0]["pid"]
    assert {(d["path"], d["category"], d["pid"]) for d in res["denied"]} >= {
        (w("secret/s.txt"), "read", pid), (w("secret/t.txt"), "write", pid),
        (w("secret/mv.txt"), "write", pid)}
    # and traced as usual
    assert w("secret/s.txt") in res["reads"] and w("secret/t.txt") in res["writes"]


def test_exec_outside_the_execute_trees_is_refused(prefix, tools, programs, tmp_path):
    """CreateProcessW of a program that may be read but not executed fails
    with ERROR_ACCESS_DENIED before the program runs; the root program
    itself outside the trees is not started at all."""
    layout(tmp_path)
    progs = os.path.dirname(programs["enforce_ops"])
    src_copy = tmp_path / "src" / "copy.exe"
    src_copy.write_bytes(open(programs["enforce_ops"], "rb").read())
    policy = Policy(read=[winpath(tmp_path / "src"), winpath(progs)],
                    write=[winpath(tmp_path / "out")], execute=[winpath(progs)])
    policy_file = write_policy(tmp_path, policy)
    marker = winpath(tmp_path / "out" / "ran.txt")
    rc, lines, res = run_ops(prefix, tools, programs, tmp_path, policy_file,
                             ["spawn", winpath(src_copy), "w32write", marker])
    assert lines == ["spawn error 5"]
    assert not (tmp_path / "out" / "ran.txt").exists()
    assert {(d["path"], d["category"]) for d in res["denied"]} == {(winpath(src_copy), "exec")}
    assert [e["path"] for e in res["execs"]] == [winpath(programs["enforce_ops"])]

    out = tmp_path / "root.json"
    proc = prefix.run([tools["exe"], "-o", winpath(out), "--policy", policy_file, "--",
                       winpath(src_copy), "w32write", marker], capture_output=True, timeout=120)
    assert proc.returncode == 125
    start = json.loads(out.read_text())
    assert start["schema"] == "sandbox_py.start_error/1" and start["winerror"] == 5
    assert not (tmp_path / "out" / "ran.txt").exists()


def test_children_are_held_to_the_same_policy(prefix, tools, programs, tmp_path):
    """A child started by the traced program gets the policy from the
    launcher's read-only section and is refused like its parent; its
    refusals carry its own pid."""
    layout(tmp_path)
    policy_file = write_policy(tmp_path, standard_policy(tmp_path, programs))
    w = lambda n: winpath(tmp_path / n)  # noqa: E731
    rc, lines, res = run_ops(prefix, tools, programs, tmp_path, policy_file,
                             ["spawn", winpath(programs["enforce_ops"]),
                              "ntwrite", w("secret/t.txt"), "w32write", w("out/child.txt")])
    assert lines == ["ntwrite error 0xc0000022", "w32write ok", "spawn ok"]
    assert (tmp_path / "secret" / "t.txt").read_text() == "secret t\n"
    assert (tmp_path / "out" / "child.txt").read_text() == "changed\n"
    child = res["execs"][1]["pid"]
    assert child != res["execs"][0]["pid"]
    assert [(d["path"], d["category"], d["pid"]) for d in res["denied"]] == [
        (w("secret/t.txt"), "write", child)]
    assert res["complete"], res["warnings"]


def test_command_line_trees(prefix, tools, programs, tmp_path):
    """sbx-trace --read/--write/--execute/--on-violation without a file:
    exactly the trees given."""
    layout(tmp_path)
    progs = winpath(os.path.dirname(programs["enforce_ops"]))
    out = tmp_path / "cli.json"
    w = lambda n: winpath(tmp_path / n)  # noqa: E731
    proc = prefix.run([tools["exe"], "-o", winpath(out), "--read", progs, "--execute", progs,
                       "--read", "C:\\windows", "--execute", "C:\\windows",
                       "--write", "\\\\.\\CONOUT$", "--write", w("out"),
                       "--on-violation", "deny", "--",
                       winpath(programs["enforce_ops"]), "w32read", w("src/in.txt"),
                       "w32write", w("out/x.txt")], capture_output=True, timeout=120)
    res = json.loads(out.read_text())
    assert proc.stdout.decode().replace("\r", "").splitlines() == ["w32read error 5",
                                                                   "w32write ok"]
    assert [d["path"] for d in res["denied"]] == [w("src/in.txt")]
    bad = prefix.run([tools["exe"], "--read", "relative\\dir", "--", "x.exe"],
                     capture_output=True, timeout=120)
    assert bad.returncode == 125 and b"not an absolute Windows path" in bad.stderr


@pytest.mark.skipif(sys.platform != "win32", reason="Sandbox('detours') runs on Windows only")
def test_sandbox_run_with_a_policy(programs, tmp_path):
    """The whole path a user takes on Windows: Sandbox("detours").run(...,
    policy=...) refuses the read and names it, with the pid, in Result.denied."""
    import sandbox_py
    layout(tmp_path)
    secret = winpath(tmp_path / "secret" / "s.txt")
    r = sandbox_py.Sandbox("detours").run(
        [programs["enforce_ops"], "w32read", secret, "w32read", winpath(tmp_path / "src/in.txt")],
        policy=standard_policy(tmp_path, programs), capture_output=True, text=True)
    assert r.stdout.splitlines() == ["w32read error 5", "w32read ok"]
    assert [(d.path, d.category) for d in r.denied] == [(secret, "read")]
    assert r.denied[0].pid == r.execs[0].pid


def test_a_traced_program_cannot_make_its_policy_writable(prefix, tools, programs, tmp_path):
    """The program looks through its own handles for the policy section (the
    one its DLL maps) and tries to write it: a writable view, a duplicate
    handle with every right, a writable protection on the mapped page.
    Each is refused; so a process cannot change what its children will be
    held to."""
    layout(tmp_path)
    policy_file = write_policy(tmp_path, standard_policy(tmp_path, programs))
    _, lines, res = run_ops(prefix, tools, programs, tmp_path, policy_file,
                            ["policyhack", "-"])
    assert lines == ["policyhack found 1 writable 0"], lines


def test_wrapper_mode_takes_the_policy_from_the_environment(prefix, tools, programs, tmp_path,
                                                           monkeypatch):
    """detours.py's own Popen arguments for a run with a policy, replayed
    under Wine as Popen would start them (CreateProcessW with sbx-trace as
    the application and the program's command line): the policy file it
    wrote is applied, the refusal comes back as a Denied record with its
    pid, and the file is gone afterwards.  A policy that cannot be used
    starts nothing and says so in the output file; detours.py raises it."""
    layout(tmp_path)
    monkeypatch.setenv("SANDBOX_PY_DETOURS_DIR", os.path.dirname(tools["exe"]))
    session = detours.session(None)
    session.policy = standard_policy(tmp_path, programs).resolved(winpath(tmp_path),
                                                                  platform="win32")
    kw = session.popen_kwargs({"env": {}})
    policy_file = kw["env"]["SBX_TRACE_POLICY"]
    assert oct(os.stat(policy_file).st_mode & 0o777) == "0o600"
    secret = winpath(tmp_path / "secret" / "s.txt")
    argv = [winpath(programs["enforce_ops"]), "w32read", secret]
    env = dict(prefix.env, SBX_TRACE_OUTPUT=winpath(session.out),
               SBX_TRACE_POLICY=winpath(policy_file))
    proc = prefix.run([tools["popen_like"], winpath(kw["executable"]),
                       subprocess.list2cmdline(argv)], env=env, capture_output=True, timeout=120)
    assert proc.stdout.decode().replace("\r", "").splitlines()[0] == "w32read error 5"
    fields = session.finish()
    assert [(d.path, d.category) for d in fields["denied"]] == [(secret, "read")]
    assert fields["denied"][0].pid == fields["execs"][0].pid
    assert not os.path.exists(policy_file)

    bad = tmp_path / "bad-policy.txt"
    bad.write_text("sandbox_py.winpolicy/1\nread relative\\dir\n")
    session = detours.session(None)
    env = dict(prefix.env, SBX_TRACE_OUTPUT=winpath(session.out), SBX_TRACE_POLICY=winpath(bad))
    never = winpath(tmp_path / "out" / "never.txt")
    proc = prefix.run([tools["popen_like"], winpath(tools["exe"]),
                       subprocess.list2cmdline([winpath(programs["enforce_ops"]), "w32write",
                                                never])],
                      env=env, capture_output=True, timeout=120)
    assert not (tmp_path / "out" / "never.txt").exists()
    start = json.loads(open(session.out).read())
    assert start["schema"] == "sandbox_py.start_error/1" and start["winerror"] == 87
    with pytest.raises(OSError, match="policy could not be used"):
        session.finish()


def test_search_directories_allow_probes_of_their_entries(prefix, programs, tmp_path):
    """A policy's search directories (its $PATH, where a program is looked
    for): a name directly in one may be probed, nothing more."""
    f = tmp_path / "policy.txt"
    f.write_text("sandbox_py.winpolicy/1\non_violation deny\nsearch C:\\Bin\nsearch D:\\\n",
                 encoding="utf-8")
    cases = [("probe", "C:\\Bin\\cl.exe", "1"), ("probe", "c:\\bin\\CL.EXE", "1"),
             ("probe", "C:\\Bin\\sub\\x", "0"), ("read", "C:\\Bin\\cl.exe", "0"),
             ("exec", "C:\\Bin\\cl.exe", "0"), ("probe", "C:\\Binx\\a", "0"),
             ("probe", "D:\\x", "1"), ("probe", "D:\\x\\y", "0")]
    proc = prefix.run([winpath(programs["policy_match"]), winpath(f),
                       *[a for c in cases for a in c[:2]]], capture_output=True, timeout=120)
    assert proc.stdout.decode().split() == [c[2] for c in cases]


def test_a_search_by_name_goes_past_a_refused_candidate(prefix, tools, programs, tmp_path):
    """CreateProcessW with a bare name looks in the current directory before
    the system's: there the probe is refused (and reported), and the search
    goes on to the system's copy, which runs (under Wine; see the doc's
    limits for Windows)."""
    layout(tmp_path)
    policy_file = write_policy(tmp_path, standard_policy(tmp_path, programs))
    out = tmp_path / "search.json"
    proc = prefix.run([tools["exe"], "-o", winpath(out), "--cwd", winpath(tmp_path / "secret"),
                       "--policy", policy_file, "--", winpath(programs["enforce_ops"]),
                       "run", "hostname.exe"], capture_output=True, timeout=120)
    assert proc.stdout.decode().replace("\r", "").splitlines()[-1] == "run ok"
    res = json.loads(out.read_text())
    assert (winpath(tmp_path / "secret" / "hostname.exe"), "probe") in {
        (d["path"], d["category"]) for d in res["denied"]}
    assert res["execs"][1]["path"].lower().endswith("\\system32\\hostname.exe")
