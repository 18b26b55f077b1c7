"""The interpose backend's Python half, where it runs everywhere: the
registry lists it on every system; the child's environment; the launch
errors subprocess would raise."""
from __future__ import annotations

import sys

import pytest

import sandbox_py
from sandbox_py._backends import interpose


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the listing off macOS")
def test_listed_as_unavailable_with_the_reason_off_macos():
    ok, why = sandbox_py.backends()["interpose"]
    assert ok is False and "macOS only" in why
    with pytest.raises(sandbox_py.SandboxUnavailableError) as ei:
        sandbox_py.Sandbox("interpose")
    assert "macOS only" in str(ei.value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux order")
def test_auto_never_picks_interpose_on_linux():
    assert list(sandbox_py.backends())[:3] == ["ebpf", "preload", "ptrace"]
    assert sandbox_py.Sandbox().backend != "interpose"


def test_child_env_injects_the_dylib_once(tmp_path):
    env = interpose.child_env({"DYLD_INSERT_LIBRARIES": "/x/other.dylib"}, "/tmp/log")
    assert env["DYLD_INSERT_LIBRARIES"].split(":") == [interpose.DYLIB, "/x/other.dylib"]
    again = interpose.child_env(env, "/tmp/log")
    assert again["DYLD_INSERT_LIBRARIES"] == env["DYLD_INSERT_LIBRARIES"]
    assert env["SBX_PRELOAD_LOG"] == "/tmp/log" and env["SBX_PRELOAD_SHIM"] == interpose.DYLIB


def test_exec_errors_follow_execvp_rules(tmp_path):
    import errno
    tool = tmp_path / "tool"
    tool.write_text("")
    tool.chmod(0o755)
    (tmp_path / "data").write_text("")
    assert interpose._exec_error("sh", "/bin:/usr/bin", None) == 0
    assert interpose._exec_error("no-such-tool-here", "/bin:/usr/bin", None) == errno.ENOENT
    assert interpose._exec_error("./tool", None, str(tmp_path)) == 0
    assert interpose._exec_error("./absent", None, str(tmp_path)) == errno.ENOENT
    assert interpose._exec_error(str(tmp_path / "data"), "", None) == errno.EACCES
    assert interpose._exec_error(str(tmp_path), "", None) == errno.EACCES
