"""Result.fingerprint(): changes exactly when a step's real inputs change."""
import os

from sandbox_py import PathSet, Result


def result_for(tmp_path, **cats):
    kw = {c: PathSet(str(tmp_path / p) if not p.startswith("/") else p for p in paths)
          for c, paths in cats.items()}
    return Result(returncode=0, args=["step"], **kw)


def test_stable_when_nothing_changed_and_across_json(tmp_path):
    (tmp_path / "a.h").write_text("int a;")
    (tmp_path / "inc").mkdir()
    r = result_for(tmp_path, reads=["a.h"], probes=["inc/a.h"], enumerations=["inc"])
    fp = r.fingerprint()
    assert fp == r.fingerprint()
    assert Result.from_json(r.to_json()).fingerprint() == fp
    assert len(fp) == 64


def test_content_of_a_read_file(tmp_path):
    (tmp_path / "a.h").write_text("int a;")
    r = result_for(tmp_path, reads=["a.h"])
    fp = r.fingerprint()
    (tmp_path / "a.h").write_text("int b;")
    assert r.fingerprint() != fp
    (tmp_path / "a.h").write_text("int a;")
    assert r.fingerprint() == fp          # content, not timestamps
    (tmp_path / "a.h").unlink()
    assert r.fingerprint() != fp


def test_a_probed_absent_file_appearing(tmp_path):
    r = result_for(tmp_path, probes=["inc1/config.h"])
    fp = r.fingerprint()
    (tmp_path / "inc1").mkdir()
    assert r.fingerprint() == fp          # still absent
    (tmp_path / "inc1" / "config.h").write_text("")
    assert r.fingerprint() != fp


def test_listing_of_an_enumerated_directory(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.c").write_text("")
    r = result_for(tmp_path, enumerations=["src"])
    fp = r.fingerprint()
    (tmp_path / "src" / "a.c").write_text("changed")
    assert r.fingerprint() == fp          # listing only: names, not content
    (tmp_path / "src" / "b.c").write_text("")
    assert r.fingerprint() != fp


def test_outputs_and_pseudo_files_are_not_inputs(tmp_path):
    (tmp_path / "a.c").write_text("x")
    (tmp_path / "a.o").write_text("1")
    r = result_for(tmp_path, reads=["a.c", "a.o", "/proc/self/stat", "/dev/null"],
                   writes=["a.o"], probes=["a.o"])
    fp = r.fingerprint()
    (tmp_path / "a.o").write_text("2")
    assert r.fingerprint() == fp


def test_system_paths_optional(tmp_path):
    (tmp_path / "a.h").write_text("x")
    r = result_for(tmp_path, reads=["a.h", "/etc/hostname"])
    s = result_for(tmp_path, reads=["a.h"])
    assert r.fingerprint(system=False) == s.fingerprint(system=False)
    assert r.fingerprint() != s.fingerprint()


def test_non_utf8_names(tmp_path):
    name = os.fsdecode(b"h\xff.h")
    (tmp_path / name).write_text("x")
    r = result_for(tmp_path, reads=[name])
    fp = r.fingerprint()
    (tmp_path / name).write_text("y")
    assert r.fingerprint() != fp
