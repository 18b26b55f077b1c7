"""Tests for a tiny config tool, each held to the files it declares.

sandbox = true in pytest.ini checks every test; the marker and the
sandbox_check fixture declare what a test may touch beyond the baseline
(the Python installation, imports, this worker's temporary directory).
"""
import json
import os
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "config.json")


def load(path):
    with open(path) as f:
        return json.load(f)


def save(config, path):
    with open(path, "w") as f:
        json.dump(config, f)


def test_loads_its_fixture():
    # Allowed by sandbox_allow_read in pytest.ini.
    assert load(FIXTURE)["threshold"] == 3


@pytest.mark.sandbox(allow=["{tmp_path}"])
def test_saves_into_tmp_path(tmp_path):
    config = load(FIXTURE)
    config["threshold"] = 4
    save(config, tmp_path / "out.json")
    assert load(tmp_path / "out.json")["threshold"] == 4


def test_declares_at_run_time(sandbox_check, tmp_path):
    target = tmp_path / "generated"
    sandbox_check.allow(str(target))
    target.mkdir()
    save({}, target / "empty.json")


@pytest.mark.sandbox(allow=["{tmp_path}"])
def test_child_processes_count_too(tmp_path):
    # A child reading the fixture is covered by the same declaration.
    out = subprocess.run([sys.executable, "-c", "import sys; print(open(sys.argv[1]).read())",
                          FIXTURE], check=True, capture_output=True, text=True).stdout
    assert "demo" in out


@pytest.mark.xfail(raises=pytest.fail.Exception, strict=True,
                   reason="demonstrates a violation: writes to the system temp directory")
def test_leaks_outside_its_declared_places():
    fd, path = tempfile.mkstemp(prefix="sandbox-py-example-")
    os.close(fd)
    os.unlink(path)
