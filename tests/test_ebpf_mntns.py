"""A private mount namespace under the eBPF backend: names are the host's.

A process of the run that makes its own mount namespace (unshare -m) starts
with a copy of the host's mounts; the backend follows the mounts it makes
there, so a file read through a bind mount is reported under the host's
name of the bind's source, complete.  Only what the host has no name for
(a tmpfs mounted in the namespace) is left out, with a warning.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import sandbox_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount)")


def work(tmp_path) -> Path:
    w = Path(os.path.realpath(tmp_path)) / "work"
    (w / "src" / "sub").mkdir(parents=True)
    (w / "src" / "f.txt").write_text("s")
    (w / "src" / "sub" / "g.txt").write_text("g")
    (w / "mnt").mkdir()
    return w


def run(w, script):
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) is not installed")
    return sandbox_for("ebpf").run(["unshare", "-m", "sh", "-c", script], cwd=str(w),
                                   capture_output=True, timeout=60)


def test_bind_mount_reported_under_the_hosts_name(tmp_path):
    w = work(tmp_path)
    r = run(w, "mount --bind src mnt && cat mnt/f.txt && cd mnt/sub && cat g.txt "
               "&& ls .. >/dev/null; cat /dev/null nope 2>/dev/null; true")
    assert r.returncode == 0, r.stderr
    assert r.complete, r.warnings
    src, mnt = str(w / "src"), str(w / "mnt")
    assert {src + "/f.txt", src + "/sub/g.txt"} <= r.reads
    assert src + "/sub/nope" in r.probes
    assert src in r.enumerations
    every = r.reads | r.writes | r.probes | r.enumerations
    assert not [p for p in every if p.startswith(mnt + "/")]
    # the processes' cwds are host names too
    (cat,) = [p for p in r.processes if p.argv == ("cat", "g.txt")]
    assert cat.cwd == src + "/sub"


def test_file_system_only_in_the_namespace_is_named_in_a_warning(tmp_path):
    w = work(tmp_path)
    r = run(w, "mount -t tmpfs none mnt && echo x > mnt/t.txt && cat mnt/t.txt "
               "&& cat src/f.txt")
    assert r.returncode == 0, r.stderr
    assert not r.complete
    assert any("mounted only in its mount namespace" in x for x in r.warnings), r.warnings
    every = r.reads | r.writes | r.probes | r.enumerations
    assert str(w / "mnt" / "t.txt") not in every      # no host file has that name
    assert str(w / "src" / "f.txt") in r.reads          # the rest is still seen
