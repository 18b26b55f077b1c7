"""The command line, run as a user runs it: a subprocess, exit status,
stdout untouched, summary or JSON on stderr, saved results diffed."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import sandbox_py

SCHEMA = "sandbox_py.result/1"


def _backend_or_skip():
    if os.environ.get("SANDBOX_PY_REQUIRE_EBPF") == "1":
        return
    if not any(ok for ok, _ in sandbox_py.backends().values()):
        pytest.skip("no tracing backend can run here")


def cli(*args, env=None, cwd=None):
    _backend_or_skip()
    return subprocess.run([sys.executable, "-m", "sandbox_py", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, errors="surrogateescape")


def test_status_and_stdout_pass_through_and_summary_counts(tmp_path):
    out = tmp_path / "out.txt"
    p = cli("--", "sh", "-c", 'echo to-stdout; echo data > "$1"; exit 3', "sh", str(out))
    assert p.returncode == 3
    assert p.stdout == "to-stdout\n"
    lines = p.stderr.splitlines()
    assert lines[0].startswith("sh -c ")
    assert "exit status 3" in lines[0]
    writes = [ln for ln in lines if ln.split()[:1] == ["writes"]]
    assert writes and int(writes[0].split()[1]) >= 1
    assert "%s (1)" % tmp_path in writes[0]        # top directory of the writes
    assert any(ln.split()[:1] == ["execs"] for ln in lines)


def test_json_on_stderr_with_filters(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x")
    p = cli("--json", "--under", str(tmp_path), "--",
            "sh", "-c", 'cat "$1" > "$1.copy"', "sh", str(src))
    assert p.returncode == 0
    doc = json.loads(p.stderr)
    assert doc["schema"] == SCHEMA
    assert str(src) in doc["reads"]
    assert str(src) + ".copy" in doc["writes"]
    for cat in ("reads", "writes", "probes", "enumerations"):
        assert all(path.startswith(str(tmp_path) + "/") or path == str(tmp_path)
                   for path in doc[cat]), cat
    # execs are kept: the filter is about paths touched, not processes run.
    assert any(e["path"].endswith("/cat") for e in doc["execs"])


def test_exclude_system(tmp_path):
    p = cli("--json", "--", "cat", "/etc/hostname")
    doc = json.loads(p.stderr)
    assert "/etc/hostname" in doc["reads"]
    p = cli("--json", "--exclude-system", "--", "cat", "/etc/hostname")
    doc = json.loads(p.stderr)
    assert not [r for r in doc["reads"] if r.startswith(("/usr/", "/etc/", "/lib"))]


def test_output_file_and_diff(tmp_path):
    (tmp_path / "a.h").write_text("a")
    (tmp_path / "b.h").write_text("b")
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    cli("-q", "-o", str(old), "--", "cat", str(tmp_path / "a.h"))
    cli("-q", "-o", str(new), "--", "cat", str(tmp_path / "b.h"))
    assert sandbox_py.Result.from_json(old.read_text()).reads >= {str(tmp_path / "a.h")}

    p = cli("diff", "--under", str(tmp_path), str(old), str(new))
    assert p.returncode == 1
    assert "reads: 1 added, 1 removed" in p.stdout
    assert "  + %s/b.h" % tmp_path in p.stdout.splitlines()
    assert "  - %s/a.h" % tmp_path in p.stdout.splitlines()

    p = cli("diff", "--json", "--under", str(tmp_path), str(old), str(new))
    assert json.loads(p.stdout)["reads"] == {"added": [str(tmp_path / "b.h")],
                                             "removed": [str(tmp_path / "a.h")]}

    p = cli("diff", str(old), str(old))
    assert p.returncode == 0
    assert p.stdout.startswith("no difference")


def test_diff_of_a_file_that_is_not_a_result(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other"}')
    p = cli("diff", str(bad), str(bad))
    assert p.returncode == 2
    assert "not a sandbox_py.result/1 document" in p.stderr


def test_non_utf8_paths_are_escaped_in_the_summary(tmp_path):
    name = os.fsdecode(b"odd\xff.txt")
    p = cli("--under", str(tmp_path), "--", "sh", "-c", 'echo > "$1"', "sh",
            os.path.join(str(tmp_path), name))
    assert p.returncode == 0
    p2 = cli("-q", "-o", "-", "--under", str(tmp_path), "--", "sh", "-c", 'echo > "$1"',
             "sh", os.path.join(str(tmp_path), name))
    doc = json.loads(p2.stdout)
    assert os.path.join(str(tmp_path), name) in doc["writes"]
    # The summary names the command with the byte escaped, never raw.
    assert "odd\\xff.txt" in p.stderr
    assert "\udcff" not in p.stderr


def test_signal_and_missing_command():
    p = cli("--", "sh", "-c", "kill -9 $$")
    assert p.returncode == 128 + 9
    p = cli("--", "no-such-program-sandbox-py")
    assert p.returncode == 127
    assert "no-such-program-sandbox-py" in p.stderr


def test_no_command_is_a_usage_error():
    p = subprocess.run([sys.executable, "-m", "sandbox_py"], capture_output=True, text=True)
    assert p.returncode == 2
    assert "no command given" in p.stderr


def test_live_line(tmp_path):
    # The live line is for terminals; when forced, it is drawn with \r and
    # erased before the summary, so the summary starts on a clean line.
    _backend_or_skip()
    env = dict(os.environ, SANDBOX_PY_LIVE_AFTER="0")
    run = [sys.executable, "-m", "sandbox_py"]
    p = subprocess.run(run + ["--live=always", "--", "true"], capture_output=True, env=env)
    assert b"tracing true" in p.stderr
    assert b"\r\x1b[K" in p.stderr
    summary = p.stderr.rsplit(b"\r\x1b[K", 1)[1]
    assert summary.startswith(b"true: exit status 0")
    # Not a terminal and not forced: no control characters at all.
    p = subprocess.run(run + ["--", "true"], capture_output=True, env=env)
    assert b"\r" not in p.stderr and b"\x1b" not in p.stderr


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "sandbox-py")
    assert os.access(script, os.X_OK)
    _backend_or_skip()
    p = subprocess.run([script, "-q", "--", "sh", "-c", "exit 5"], capture_output=True)
    assert p.returncode == 5
    assert p.stderr == b""


def test_json_file_keeps_the_result_apart_from_the_commands_output(tmp_path):
    out = tmp_path / "r.json"
    p = cli("--json-file", str(out), "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2")
    assert p.stdout == "to-stdout\n"
    assert "to-stderr" in p.stderr and "{" not in p.stderr
    doc = json.loads(out.read_text())
    assert doc["args"] == ["sh", "-c", "echo to-stdout; echo to-stderr >&2"]
    # The JSON on stdout, after the command's own output.
    p = cli("-q", "--json-file", "-", "--", "true")
    assert json.loads(p.stdout)["returncode"] == 0


def test_diff_ignores_compiler_temporaries(tmp_path):
    if not shutil.which("cc"):
        pytest.skip("no C compiler")
    (tmp_path / "x.c").write_text("int f(void) { return 1; }\n")
    runs = []
    for n in (1, 2):
        runs.append(tmp_path / ("run%d.json" % n))
        p = cli("-q", "--json-file", str(runs[-1]), "--", "cc", "-c", "x.c", "-o", "x.o",
                cwd=tmp_path)
        assert p.returncode == 0, p.stderr
    # cc's intermediate files get fresh names in each run (/tmp/ccXXXXXX.s).
    p = cli("diff", "--exclude-pseudo", str(runs[0]), str(runs[1]))
    assert p.returncode == 1 and "/tmp/cc" in p.stdout, p.stdout
    p = cli("diff", "--exclude-pseudo", "--ignore", "/tmp/cc*", str(runs[0]), str(runs[1]))
    assert p.returncode == 0, p.stdout
    assert p.stdout.startswith("no difference")


def test_json_output_validates_against_the_shipped_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from sandbox_py.result import json_schema
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    name = os.fsdecode(b"caf\xe9.txt")       # a path that is not UTF-8
    out = tmp_path / "r.json"
    p = cli("--json-file", str(out), "--", "sh", "-c",
            "cat /etc/hostname > '%s'; ls /nonexistent; sh -c true" % name, cwd=tmp_path)
    doc = json.loads(out.read_text())
    validator.validate(doc)
    assert str(tmp_path / name) in doc["writes"] and doc["execs"]
    p = cli("--json", "--", "true")
    validator.validate(json.loads(p.stderr))
    with sandbox_py.trace() as t:
        open(tmp_path / "r.json").close()
    validator.validate(json.loads(t.result.to_json()))
    # The schema is not a rubber stamp.
    broken = dict(doc, reads="/etc/hostname")
    assert not validator.is_valid(broken)
    assert not validator.is_valid({k: v for k, v in doc.items() if k != "execs"})
    assert not validator.is_valid(dict(doc, writes=["relative/path"]))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="enforced here with Landlock")
def test_policy_options_refuse_and_report(tmp_path):
    src, out, secret = tmp_path / "src", tmp_path / "out", tmp_path / "secret.txt"
    src.mkdir()
    (src / "a.c").write_text("int x;\n")
    secret.write_text("s\n")
    script = 'cat src/a.c; cat secret.txt; echo o > out/o; echo nope > src/a.c; exit 0'
    p = cli("--read", "src", "--write", "out/", "--", "sh", "-c", script, cwd=tmp_path)
    # the command succeeded but reached outside the policy
    assert p.returncode == 3, p.stderr
    assert p.stdout == "int x;\n"
    assert (out / "o").read_text() == "o\n"                  # out/ was created for it
    assert (src / "a.c").read_text() == "int x;\n" and secret.read_text() == "s\n"
    assert "denied: " in p.stderr and str(secret) in p.stderr
    # report mode blocks nothing and lists the same
    p = cli("--read", "src", "--write", "out", "--on-violation", "report", "-q", "--",
            "sh", "-c", "cat secret.txt", cwd=tmp_path)
    assert p.returncode == 3 and p.stdout == "s\n"
    p = cli("--read", "src", "--", "cat", "src/a.c", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
