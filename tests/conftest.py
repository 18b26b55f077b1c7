"""Shared fixtures: backends under test and the compiled scenario programs."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import sandbox_py

HERE = Path(__file__).resolve().parent

#: Set by scripts/test.sh when running as root: a backend that should load
#: here but does not is a failure, not a skip.
REQUIRE_EBPF = os.environ.get("SANDBOX_PY_REQUIRE_EBPF") == "1"


def sandbox_for(name: str) -> sandbox_py.Sandbox:
    """A Sandbox on backend `name`, or skip (fail where it is required)."""
    ok, why = sandbox_py.backends().get(name, (False, "no such backend on this OS"))
    if not ok:
        if name == "ebpf" and REQUIRE_EBPF:
            pytest.fail("the eBPF backend is required here but cannot load: %s" % why)
        pytest.skip("backend %s unavailable: %s" % (name, why))
    return sandbox_py.Sandbox(name)


def build_scenario(tmp_path_factory, source: str, libs=()) -> dict:
    """tests/scenarios/<source> built dynamically and statically:
    {"dynamic": path, "static": path}."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.fail("a C compiler is needed to build the scenario programs")
    out = tmp_path_factory.mktemp("bin")
    src = HERE / "scenarios" / source
    bins = {}
    for kind, extra in (("dynamic", []), ("static", ["-static"])):
        exe = out / ("%s-%s" % (src.stem, kind))
        subprocess.run([cc, "-O1", "-o", str(exe), str(src)] + list(libs) + extra,
                       check=True, capture_output=True)
        bins[kind] = str(exe)
    return bins


def own_bpf_maps():
    """(fd, description) of every BPF map this process holds, the
    description as `bpftool -j map show` gives it (name, max_entries,
    bytes_value ...).  Skips the test when bpftool is missing."""
    import json
    import re
    bpftool = shutil.which("bpftool") or shutil.which("bpftool", path="/usr/sbin:/sbin")
    if not bpftool:
        pytest.skip("bpftool is needed to look into the maps")
    for fd in os.listdir("/proc/self/fd"):
        try:
            with open("/proc/self/fdinfo/%s" % fd) as f:
                m = re.search(r"map_id:\s+(\d+)", f.read())
        except OSError:
            continue
        if m:
            out = subprocess.run([bpftool, "-j", "map", "show", "id", m.group(1)],
                                 capture_output=True, text=True).stdout
            yield int(fd), json.loads(out or "{}")


@pytest.fixture(scope="session")
def scenario_bins(tmp_path_factory) -> dict:
    """tests/scenarios/scenario.c built dynamically and statically."""
    return build_scenario(tmp_path_factory, "scenario.c", ["-lpthread"])
