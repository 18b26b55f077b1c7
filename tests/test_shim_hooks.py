"""The one hook list (shims/core/hooks.def) against what the builds really
contain.  On Linux: the LD_PRELOAD shim exports exactly the POSIX and LINUX
entries, nothing more (an exported symbol that is not a hook would
interpose on the traced program's own symbols)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOKS_DEF = os.path.join(ROOT, "shims", "core", "hooks.def")


def hook_list() -> list:
    """[(name, where)] in hooks.def order."""
    with open(HOOKS_DEF, encoding="utf-8") as f:
        return re.findall(r"^SBX_HOOK_ENTRY\((\w+), (POSIX|LINUX|DARWIN|DARWIN_X86_64)\)",
                          f.read(), re.M)


def hooks_for(system: str) -> set:
    return {n for n, where in hook_list() if where in ("POSIX", system)}


def test_hook_list_is_well_formed():
    entries = hook_list()
    assert len(entries) > 100
    assert len(set(entries)) == len(entries), "an entry is listed twice"
    posix = {n for n, w in entries if w == "POSIX"}
    for n, w in entries:
        # a name only both systems have is POSIX; LINUX+DARWIN twice only
        # when the signatures differ (the xattr calls)
        assert not (w != "POSIX" and n in posix), n
    assert {"open", "stat", "execve", "posix_spawn"} <= posix


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the LD_PRELOAD shim is Linux's")
def test_linux_shim_exports_exactly_the_list():
    from sandbox_py._backends import preload
    if not os.path.exists(preload.SHIM):
        pytest.skip("the preload shim is not built")
    nm = shutil.which("nm") or shutil.which("llvm-nm")
    if not nm:
        pytest.skip("needs nm")
    out = subprocess.run([nm, "-D", "--defined-only", preload.SHIM], capture_output=True,
                         text=True, check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines()
                if line.split() and line.split()[-2] in ("T", "W")}
    # the controls of a process reading its own log (hooks.def says so)
    controls = {"sbx_shim_quiet_thread", "sbx_shim_set_breakaway"}
    assert controls <= exported
    exported -= controls
    assert exported == hooks_for("LINUX"), (
        "missing: %s; not in hooks.def: %s"
        % (sorted(hooks_for("LINUX") - exported), sorted(exported - hooks_for("LINUX"))))
