"""The Policy rule on the other systems' paths (sandbox_py/policy.py):
Windows trees in the normal form, compared without regard to case; the
system baseline per platform.  The Windows rule's C mirror is checked
against this one in tests/test_windows_enforce.py."""
import pytest

from sandbox_py import Policy
from sandbox_py.policy import Denied, system_baseline, windows_fold, windows_normal
from sandbox_py.result import Exec, PathSet, Result


@pytest.mark.parametrize("given,cwd,normal", [
    ("c:/Users/x/../y/", None, "C:\\Users\\y"),
    ("src", "C:\\w", "C:\\w\\src"),
    ("..\\lib", "c:\\w\\sub", "C:\\w\\lib"),
    ("\\\\?\\C:\\long\\path", None, "C:\\long\\path"),
    ("\\??\\D:\\x", None, "D:\\x"),
    ("\\\\?\\UNC\\srv\\share\\a", None, "\\\\srv\\share\\a"),
    ("\\\\srv\\share\\a\\.\\b", None, "\\\\srv\\share\\a\\b"),
    ("C:\\", None, "C:\\"),
    ("d:", "C:\\w", "D:\\"),
    ("\\\\.\\pipe", None, "\\\\.\\pipe"),
])
def test_windows_trees_take_the_normal_form(given, cwd, normal):
    assert windows_normal(given, cwd) == normal


def test_relative_windows_tree_needs_a_cwd():
    with pytest.raises(ValueError, match="cwd"):
        windows_normal("src", None)


def test_windows_fold_is_one_to_one():
    assert windows_fold("c:\\été\\ωmega") == "C:\\ÉTÉ\\ΩMEGA"
    assert windows_fold("straße") == "STRAßE"           # no one-to-one upper case
    assert windows_fold("\U0001d41a") == "\U0001d41a"   # beyond 16 bits
    assert len(windows_fold("ﬁ")) == 1


def test_windows_policy_rule():
    p = Policy(read=["C:\\Src"], write=["out"], system=False).resolved("C:\\Work",
                                                                      platform="win32")
    assert p.read == ("C:\\Src",) and p.write == ("C:\\Work\\out",)
    assert p.allows("read", "c:\\SRC\\a.c") and not p.allows("read", "C:\\Srcx\\a.c")
    assert p.allows("write", "C:\\WORK\\OUT\\a.obj") and not p.allows("write", "C:\\Src\\a.c")
    assert p.allows("probe", "C:\\") and p.allows("probe", "c:\\work")
    assert not p.allows("enumeration", "C:\\Work")
    assert p.allows("exec", "C:\\src\\tool.exe")          # execute defaults to read + write
    # a POSIX path is never under a Windows tree, nor the reverse
    assert not p.allows("read", "/C:/Src/a.c")
    posix = Policy(read=["/"], system=False).resolved("/")
    assert not posix.allows("read", "C:\\Src\\a.c")


def test_windows_baseline(monkeypatch):
    monkeypatch.setenv("SystemRoot", "C:\\WINNT")
    p = Policy(read=["C:\\src"]).resolved("C:\\", platform="win32")
    assert p.allows("exec", "c:\\winnt\\system32\\cmd.exe")
    assert p.allows("read", "C:\\WINNT\\System32\\kernel32.dll")
    assert not p.allows("write", "C:\\WINNT\\System32\\kernel32.dll")
    for dev in ("\\\\.\\NUL", "\\\\.\\CONOUT$", "\\\\.\\pipe\\mspdbsrv"):
        assert p.allows("write", dev), dev
    assert not p.allows("read", "C:\\Users\\me\\secret.txt")
    assert system_baseline("win32")["read"] == ("C:\\WINNT",)


def test_violations_of_windows_paths():
    p = Policy(read=["C:\\src"], write=["C:\\out"], system=False).resolved("C:\\",
                                                                         platform="win32")
    r = Result(0, ["cl"], reads=PathSet({"C:\\SRC\\a.c", "C:\\secret.txt"}),
               writes=PathSet({"c:\\out\\a.obj", "C:\\src\\a.c"}),
               execs=(Exec(4, 1, "C:\\tools\\cl.exe", ("cl",)),))
    assert set(p.violations(r)) == {Denied("C:\\secret.txt", "read"),
                                    Denied("C:\\src\\a.c", "write"),
                                    Denied("C:\\tools\\cl.exe", "exec", 4)}


def test_macos_baseline():
    b = system_baseline("darwin")
    assert "/System" in b["read"] and "/private/etc" in b["read"]
    assert "/dev/dtracehelper" in b["devices"]
    assert "/proc" not in b["read"]
    assert system_baseline("linux")["read"][0] == "/usr"


@pytest.mark.parametrize("given,cwd,normal", [
    ("c:x", "C:\\w", "C:\\w\\x"), ("\\top", "D:\\w", "D:\\top"), ("E:y", "C:\\w", "E:\\y"),
])
def test_drive_relative_and_rooted_trees(given, cwd, normal):
    assert windows_normal(given, cwd) == normal
