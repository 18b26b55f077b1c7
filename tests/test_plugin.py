"""The pytest plugin as its users meet it: suites run by pytester in a
subprocess (the plugin is loaded through its pytest11 entry point, exactly as
in a user's project), outcomes and failure text checked."""
import importlib.metadata
import re
import sys
import textwrap

import pytest

from test_trace import ebpf_or_skip

pytest_plugins = ["pytester"]


def run(pytester, *args):
    # A subprocess: the traced pytest is a process of its own, as in real use,
    # and whatever tracing it does cannot leak into this one.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_registered_as_pytest11_entry_point():
    eps = importlib.metadata.entry_points(group="pytest11")
    assert any(ep.value == "sandbox_py.pytest_plugin" for ep in eps)


def test_unmarked_suite_is_untouched(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import sandbox_py.audit

        def test_writes_anywhere():
            with open("anywhere.txt", "w") as f:
                f.write("x")
            # The plugin did nothing: no trace ever started in this process.
            assert not sandbox_py.audit._running
            assert not sandbox_py.audit._hook_added
    """))
    result = run(pytester)
    result.assert_outcomes(passed=1)


def test_declared_accesses_pass(pytester):
    pytester.mkdir("fixtures")
    pytester.path.joinpath("fixtures", "data.txt").write_text("payload")
    pytester.makepyfile(textwrap.dedent("""
        import os, pytest

        @pytest.mark.sandbox(allow=["{tmp_path}"], allow_read=["fixtures/**"])
        def test_copies_fixture(tmp_path):
            data = open("fixtures/data.txt").read()
            (tmp_path / "sub").mkdir()
            (tmp_path / "sub" / "copy.txt").write_text(data)
            os.listdir(tmp_path)
            assert (tmp_path / "sub" / "copy.txt").read_text() == "payload"
    """))
    result = run(pytester)
    result.assert_outcomes(passed=1)


def test_undeclared_accesses_fail_with_a_readable_listing(pytester):
    pytester.path.joinpath("secret.txt").write_text("s")
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.sandbox(allow=["{tmp_path}"])
        def test_leaks(tmp_path):
            (tmp_path / "fine.txt").write_text("ok")
            open("secret.txt").read()
            with open(b"out\\xff.txt", "wb") as f:
                f.write(b"x")
            with open("new\\nline.txt", "w") as f:
                f.write("x")
    """))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    root = str(pytester.path)
    result.stdout.fnmatch_lines([
        "*sandbox_py: test_leaks touched 3 paths it does not declare:*",
        "*write*%s/new\\nline.txt" % root,
        "*write*%s/out\\xff.txt" % root,
        "*read*%s/secret.txt" % root,
        "allowed: */test_leaks0 ({tmp_path})",
    ])
    # Allowed work is not listed.
    assert "fine.txt" not in out


def test_warn_mode_passes_and_reports(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.sandbox
        def test_leaks():
            open("stray.txt", "w").close()
    """))
    result = run(pytester, "--sandbox-mode=warn")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*SandboxAccessWarning*", "*write*/stray.txt*"])


def test_marker_mode_overrides_suite_mode(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.sandbox(mode="warn")
        def test_tolerated():
            open("stray.txt", "w").close()
    """))
    result = run(pytester)
    result.assert_outcomes(passed=1, warnings=1)


def test_cli_flag_checks_unmarked_tests(pytester):
    pytester.makepyfile(textwrap.dedent("""
        def test_unmarked():
            open("stray.txt", "w").close()

        def test_in_tmp(tmp_path):
            (tmp_path / "ok.txt").write_text("ok")
    """))
    run(pytester).assert_outcomes(passed=2)
    result = run(pytester, "--sandbox")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*sandbox_py: test_unmarked touched 1 path*"])
    # And --sandbox-mode=off turns every check off, markers included.
    run(pytester, "--sandbox", "--sandbox-mode=off").assert_outcomes(passed=2)


def test_ini_options(pytester):
    pytester.makeini(textwrap.dedent("""
        [pytest]
        sandbox = true
        sandbox_allow =
            build/**
    """))
    pytester.mkdir("build")
    pytester.makepyfile(textwrap.dedent("""
        def test_allowed_by_ini():
            open("build/out.o", "w").close()

        def test_not_allowed():
            open("elsewhere.o", "w").close()
    """))
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*write*/elsewhere.o"])


def test_fixture_declares_at_run_time(pytester):
    pytester.makepyfile(textwrap.dedent("""
        def test_dynamic(sandbox_check):
            sandbox_check.allow("output")
            import os
            os.makedirs("output", exist_ok=True)
            open("output/a.txt", "w").close()

        def test_fixture_alone_enables_checking(sandbox_check):
            open("stray.txt", "w").close()
    """))
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_fixture_alone_enables_checking touched 1 path*"])


def test_failing_test_keeps_its_own_error_and_shows_accesses(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.sandbox
        def test_broken():
            open("stray.txt", "w").close()
            assert 1 == 2
    """))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 1 == 2*", "*Captured sandbox call*",
                                 "*write*/stray.txt"])


def test_under_xdist_each_worker_allows_its_own_tmp(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.sandbox(allow=["{tmp_path}"])
        def test_writes_tmp(tmp_path, n):
            (tmp_path / ("f%d" % n)).write_text("x")

        @pytest.mark.sandbox
        def test_leaks():
            open("stray.txt", "w").close()

        @pytest.mark.sandbox
        def test_outside_own_worker_dir(tmp_path_factory):
            # The directory holding every worker's basetemp (popen-gwN) is
            # not this worker's.
            shared = tmp_path_factory.getbasetemp().parent / "shared.txt"
            shared.write_text("x")
    """))
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines_random(["*test_leaks touched 1 path*",
                                        "*write*/shared.txt"])


def test_unknown_placeholder_is_reported(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.sandbox(allow=["{nowhere}/x"])
        def test_x():
            pass
    """))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unknown placeholder {nowhere}; known: basetemp,*"])


def test_ebpf_sees_stat_probes_and_children_of_the_test_body(pytester):
    # What audit hooks cannot see: os.stat in the test process itself and
    # the reads of a child process.
    ebpf_or_skip()
    pytester.path.joinpath("child_input.txt").write_text("x")
    pytester.makepyfile(textwrap.dedent("""
        import os, subprocess, pytest

        @pytest.mark.sandbox
        def test_probes_and_child():
            assert not os.path.exists("maybe.cfg")
            subprocess.run(["cat", "child_input.txt"], check=True, capture_output=True)
    """))
    result = run(pytester, "--sandbox-backend=ebpf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines_random(["*probe*/maybe.cfg", "*read*/child_input.txt",
                                        "traced with: ebpf (complete)"])


def test_pattern_semantics():
    from sandbox_py.pytest_plugin import Pattern
    plain = Pattern("data", "/p/data")
    assert plain.matches("/p/data") and plain.matches("/p/data/a/b.txt")
    assert not plain.matches("/p/database")
    star = Pattern("*.json", "/p/*.json")
    assert star.matches("/p/a.json") and not star.matches("/p/sub/a.json")
    deep = Pattern("fixtures/**", "/p/fixtures/**")
    assert deep.matches("/p/fixtures") and deep.matches("/p/fixtures/x/y/z.txt")
    assert not deep.matches("/p/fixtures2/x")
    mid = Pattern("/p/**/cache", "/p/**/cache")
    assert mid.matches("/p/a/b/cache/f") and not mid.matches("/p/a/b/cached")
    assert deep.literal_dir == "/p/fixtures" and plain.literal_dir == "/p/data"


@pytest.mark.parametrize("backend", ["auto", "preload"])
def test_what_the_harness_does_is_not_the_tests_doing(pytester, monkeypatch,
                                                      tmp_path_factory, backend):
    # auto: eBPF as root; preload: the session re-executed under the shim
    # Each test below makes the interpreter, pytest or sandbox_py touch files
    # on the test's behalf; none of that is the test's own access.  The
    # last test shows the check is live in the same run.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    # A home outside everything the suite may touch (pytester's is its
    # rootdir), so that the user-site probe is not allowed by accident.
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    pytester.makepyfile(helper_mod="VALUE = 1\n")
    pytester.mkdir("pkg")
    pytester.path.joinpath("pkg", "__init__.py").write_text("X = 2\n")
    pytester.path.joinpath("data.txt").write_text("d")
    pytester.path.joinpath(".pdbrc").write_text("# the debugger's own start-up file\n")
    pytester.makepyfile(test_harness=textwrap.dedent("""
        import importlib.metadata, subprocess, sys
        import pytest

        @pytest.mark.sandbox
        def test_first_import_writes_bytecode():
            import helper_mod, pkg
            assert helper_mod.VALUE == 1 and pkg.X == 2

        @pytest.mark.sandbox
        def test_child_prints_into_pytests_capture():
            subprocess.run(["echo", "to the captured stdout"], check=True)

        @pytest.mark.sandbox
        def test_child_prints_into_capfd(capfd):
            subprocess.run(["echo", "hello"], check=True)
            assert capfd.readouterr().out == "hello\\n"

        @pytest.mark.sandbox
        def test_python_child_looks_for_its_user_site():
            # The base interpreter (a venv's disables the user site).
            python = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([python, "-c", "pass"], check=True)

        @pytest.mark.sandbox
        def test_package_metadata():
            assert importlib.metadata.version("pytest")

        @pytest.mark.sandbox
        def test_nested_sandbox_run():
            import sandbox_py
            assert sandbox_py.Sandbox("preload").run(["true"]).returncode == 0

        @pytest.mark.sandbox
        def test_debugger_reads_its_start_up_files():
            # doctest makes a pdb.Pdb for every run; it reads ~/.pdbrc, ./.pdbrc
            import pdb
            assert pdb.Pdb().rcLines

        @pytest.mark.sandbox
        def test_still_caught():
            open("data.txt").read()
    """))
    result = run(pytester, "--sandbox-backend=%s" % backend)
    out = result.stdout.str()
    assert re.findall(r"^sandbox_py: (\S+) touched", out, re.M) == ["test_still_caught"], out
    result.stdout.fnmatch_lines(["*sandbox_py: test_still_caught touched 1 path*",
                                 "*read*/data.txt"])
    result.assert_outcomes(passed=7, failed=1)
    assert list(pytester.path.joinpath("pkg", "__pycache__").glob("__init__.*.pyc"))


def test_cli_allow_read_and_marker_mode_off(pytester):
    pytester.mkdir("data")
    pytester.path.joinpath("data", "in.txt").write_text("x")
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        def test_reads_data():
            open("data/in.txt").read()

        def test_writes_data():
            open("data/out.txt", "w").close()

        @pytest.mark.sandbox(mode="off")
        def test_not_checked():
            open("elsewhere.txt", "w").close()
    """))
    result = run(pytester, "--sandbox", "--sandbox-allow-read", "data")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_writes_data touched 1 path*", "*write*/data/out.txt",
                                 "allowed: */data (data) (read-only)"])


def test_audit_fallback_checks_child_processes(pytester):
    # What a non-root user gets (forced here with --sandbox-backend=audit):
    # a child's write outside the test's allowance fails the test.
    pytester.makepyfile(textwrap.dedent("""
        import subprocess, pytest

        @pytest.mark.sandbox(allow=["{tmp_path}"])
        def test_child_writes_outside(tmp_path):
            # Into the project (the rootdir, the cwd); ../ of tmp_path would
            # be this session's basetemp, which every test may use.
            subprocess.run(["sh", "-c", "echo x > outside.txt"], check=True)

        @pytest.mark.sandbox(allow=["{tmp_path}"])
        def test_child_writes_inside(tmp_path):
            subprocess.run(["sh", "-c", "echo x > inside.txt"], cwd=tmp_path, check=True)

        @pytest.mark.sandbox
        def test_child_with_its_own_env():
            subprocess.run(["true"], env={"PATH": "/usr/bin:/bin"}, check=True)
    """))
    result = run(pytester, "--sandbox-backend=audit")
    # every test checked by audit hooks alone is partly checked (C code in
    # the test process is not seen), each says so
    result.assert_outcomes(passed=2, failed=1, warnings=3)
    result.stdout.fnmatch_lines(["*test_child_writes_outside touched 1 path*",
                                 "*write*/outside.txt", "traced with: audit (incomplete:*"])
    # A child the shim cannot enter is not silently passed over.
    result.stdout.fnmatch_lines(["*SandboxIncompleteWarning: sandbox_py: "
                                 "test_child_with_its_own_env was only partly checked "
                                 "(Python audit hooks): *true was started with an env= "
                                 "without the preload shim*"])
    result.stdout.fnmatch_lines(["sandbox_py: 3 tests checked, 0 fully: 3 partly by Python "
                                 "audit hooks*"])


ENFORCED_SUITE = """
    import os, subprocess, sys, pytest

    @pytest.mark.sandbox(allow=["{tmp_path}"], allow_read=["data"], mode="enforce")
    def test_declared(tmp_path):
        (tmp_path / "out.txt").write_text(open("data/in.txt").read())
        subprocess.run(["cp", str(tmp_path / "out.txt"), str(tmp_path / "copy.txt")], check=True)
        assert (tmp_path / "copy.txt").read_text() == "in"

    @pytest.mark.sandbox(allow=["{tmp_path}"], mode="enforce")
    def test_reads_secret(tmp_path):
        open("secret.txt").read()

    @pytest.mark.sandbox(allow=["{tmp_path}"], mode="enforce")
    def test_child_overwrites_data():
        subprocess.run(["sh", "-c", "echo pwned > data/in.txt"], check=True)

    @pytest.mark.sandbox(allow=["{tmp_path}"], mode="enforce")
    def test_catches_the_refusal_and_passes(tmp_path):
        with pytest.raises(PermissionError):
            open("data/new.txt", "w")

    @pytest.mark.sandbox(mode="enforce")
    def test_skips():
        pytest.skip("not here")

    def test_unmarked_is_not_enforced():
        open("unmarked.txt", "w").close()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="enforced with Landlock")
@pytest.mark.parametrize("backend", ["auto", "audit"])
def test_enforce_mode_refuses_and_names_the_refused_access(pytester, backend):
    from sandbox_py import _landlock
    if not _landlock.abi()[0]:
        pytest.skip("no Landlock here: %s" % _landlock.abi()[1])
    pytester.mkdir("data")
    pytester.path.joinpath("data", "in.txt").write_text("in")
    pytester.path.joinpath("secret.txt").write_text("s")
    pytester.makepyfile(textwrap.dedent(ENFORCED_SUITE))
    result = run(pytester, "--sandbox-backend=%s" % backend, "-rs")
    root = str(pytester.path)
    result.assert_outcomes(passed=2, failed=3, skipped=1)
    out = result.stdout.str()
    # refused by the kernel: the test sees EACCES, the failure names the path
    result.stdout.fnmatch_lines([
        "*PermissionError*secret.txt*",
        "*sandbox_py: test_reads_secret touched 1 path it does not declare (mode=enforce*",
        "*%s/secret.txt" % root,
    ])
    assert "cannot create data/in.txt: Permission denied" in out
    assert pytester.path.joinpath("data", "in.txt").read_text() == "in"
    assert not pytester.path.joinpath("data", "new.txt").exists()
    # a refusal the test survived is still an undeclared access
    result.stdout.fnmatch_lines(["*test_catches_the_refusal_and_passes touched 1 path*"])
    result.stdout.fnmatch_lines(["*SKIPPED*test_*.py:*not here*"])
    assert pytester.path.joinpath("unmarked.txt").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="enforced with Landlock")
def test_enforce_mode_from_the_command_line(pytester):
    from sandbox_py import _landlock
    if not _landlock.abi()[0]:
        pytest.skip("no Landlock here: %s" % _landlock.abi()[1])
    pytester.makepyfile(textwrap.dedent("""
        import pytest

        @pytest.mark.sandbox
        def test_marked():
            open("stray.txt", "w").close()

        @pytest.mark.sandbox
        def test_warns():
            import warnings
            warnings.warn("raised in the enforced child")
    """))
    result = run(pytester, "--sandbox-mode=enforce")
    result.assert_outcomes(failed=1, passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*PermissionError*stray.txt*",
                                 "*UserWarning: raised in the enforced child*"])
    assert not pytester.path.joinpath("stray.txt").exists()


@pytest.mark.parametrize("declared", [True, False])
def test_breakaway_marker_lets_a_test_daemon_go(pytester, declared):
    """@pytest.mark.sandbox(breakaway=[...]): a daemon the test starts is not
    held against it (its own file lies outside what the test may touch);
    without the declaration the same test fails on the daemon's accesses."""
    import os
    import socket
    import time
    daemon = os.path.join(os.path.dirname(__file__), "breakaway", "sbx-test-daemon")
    outside = pytester.mkdir("daemon-home")
    sock = "/tmp/sbx-plugin-%d-%d.sock" % (os.getpid(), declared)
    pytester.makepyfile(textwrap.dedent("""
        import os, subprocess, pytest

        @pytest.mark.sandbox(allow=["{tmp_path}"]%s)
        def test_starts_a_daemon(tmp_path):
            subprocess.run([%r, %r, %r], check=True)
            (tmp_path / "out.txt").write_text("x")
    """ % (', breakaway=["sbx-test-daemon"]' if declared else "", daemon, sock,
           str(outside / "state"))))
    try:
        result = run(pytester, "-o", "sandbox_wait=1")
        if declared:
            result.assert_outcomes(passed=1)
        else:
            result.assert_outcomes(failed=1)
            result.stdout.fnmatch_lines(
                ["*test_starts_a_daemon touched * paths it does not declare*"])
        assert "started" in (outside / "state").read_text()     # it did run
    finally:
        for _ in range(50):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock)
                s.sendall(b"stop\n")
                s.recv(64)
                break
            except OSError:
                time.sleep(0.1)
        if os.path.exists(sock):
            os.unlink(sock)


def test_failure_names_the_process_behind_each_violation():
    # A Result whose mechanism recorded who did what (Result.processes):
    # the listing says, under each path, which process touched it.
    import os
    import types
    from sandbox_py.pytest_plugin import _format
    from sandbox_py.result import Result
    fields = {"writes": ["/p/out.txt", "/p/both.txt"], "reads": ["/p/secret"],
              "processes": [
                  (os.getpid(), 1, None, "/usr/bin/python3", ["python3", "-m", "pytest"],
                   "/p", None, ["/p/secret"], ["/p/both.txt"], [], []),
                  (4242, os.getpid(), 0, "/bin/sh", ["sh", "-c", "echo x > out.txt"],
                   "/p", 0, [], ["/p/out.txt", "/p/both.txt"], [], [])]}
    result = Result.from_fields(fields, args=(), returncode=0, backend="preload")
    item = types.SimpleNamespace(name="test_x")
    policy = types.SimpleNamespace(mode="fail", describe=lambda: "nothing")
    text = _format(item, policy, result, {"/p/out.txt": ["write"], "/p/both.txt": ["write"],
                                          "/p/secret": ["read"]})
    lines = [line.strip() for line in text.splitlines()]
    at = lines.index("write        /p/out.txt")
    assert lines[at + 1] == "by pid 4242: sh -c 'echo x > out.txt'"
    at = lines.index("write        /p/both.txt")
    assert lines[at + 1:at + 3] == ["by pid %d (the test process)" % os.getpid(),
                                    "by pid 4242: sh -c 'echo x > out.txt'"]
    at = lines.index("read         /p/secret")
    assert lines[at + 1] == "by pid %d (the test process)" % os.getpid()
    assert not lines[at + 2].startswith("by ")
