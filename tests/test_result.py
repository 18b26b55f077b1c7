"""Result as a value: unpacking, filters (POSIX and Windows paths), JSON."""
from sandbox_py.result import Exec, PathSet, Result, is_pseudo, is_system


def make(**kw):
    return Result(returncode=0, args=["x"], **kw)


def test_unpacks_and_sorts():
    r = make(reads=PathSet(["/b", "/a"]), writes=PathSet(["/c"]))
    status, reads, writes = r
    assert status == 0 and list(reads) == ["/a", "/b"] and "/c" in writes


def test_posix_filters():
    r = make(reads=PathSet(["/proc/self/maps", "/usr/lib/libc.so.6", "/home/u/p/a.c",
                            "/dev/null"]))
    assert set(r.filtered().reads) == {"/usr/lib/libc.so.6", "/home/u/p/a.c"}
    assert set(r.filtered(system=False).reads) == {"/home/u/p/a.c"}
    assert set(r.filtered(pseudo=True, under="/home/u").reads) == {"/home/u/p/a.c"}


def test_windows_paths_are_not_pseudo():
    user = "C:\\Users\\me\\src\\main.c"
    sysdll = "C:\\Windows\\System32\\KERNEL32.dll"
    pipe = "\\\\.\\pipe\\sbx"
    unc = "\\\\server\\share\\f.txt"
    assert not is_pseudo(user) and not is_system(user)
    assert is_system(sysdll) and not is_pseudo(sysdll)
    assert is_pseudo(pipe)
    assert not is_pseudo(unc)
    r = make(reads=PathSet([user, sysdll, pipe, unc]))
    assert set(r.filtered(system=False).reads) == {user, unc}


def test_json_round_trip_with_undecodable_bytes():
    name = "/tmp/caf\udce9.txt"        # os.fsdecode(b"/tmp/caf\xe9.txt")
    r = make(writes=PathSet([name]), execs=(Exec(2, 1, "/bin/sh", ("sh",)),),
             complete=False, warnings=("w",))
    back = Result.from_json(r.to_json())
    assert back.writes == r.writes and back.execs == r.execs
    assert back.complete is False and back.warnings == ("w",)


def test_a_real_result_survives_json_unchanged(tmp_path):
    # What a user does: save a run, load it later, compare.  args as given
    # (a list), stdout as bytes, a duration with many digits.
    import sandbox_py
    r = sandbox_py.run(["sh", "-c", "printf 'caf\\351'; cat %s" % (tmp_path / "absent")],
                       capture_output=True)
    assert isinstance(r.stdout, bytes) and r.duration > 0
    back = Result.from_json(r.to_json())
    assert back == r
    assert back != Result.from_json(make().to_json())
    assert back.duration == r.duration and back.args == ("sh", "-c", r.args[2])
