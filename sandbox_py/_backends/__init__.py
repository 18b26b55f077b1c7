"""Backend registry: one module per mechanism.

Each backend module defines ``NAME``, ``availability() -> (bool, str)`` (the
second item is a one-line reason either way) and ``session(sandbox) ->
TraceSession``.  A backend that does not exist on this OS is simply absent
from ``_MODULES`` for that OS, as psutil does.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys

from ..errors import SandboxUnavailableError

if sys.platform.startswith("linux"):
    # Most complete first: this is the order backend="auto" tries.
    _MODULES = ["ebpf", "preload", "ptrace"]
elif sys.platform == "darwin":
    _MODULES = ["interpose"]
elif sys.platform == "win32":
    _MODULES = ["detours"]
else:
    _MODULES = []

#: Backends of other systems, listed by backends() as unavailable with the
#: reason (a user asking "can I trace on my Mac?" finds the answer here).
_ELSEWHERE = {"interpose": "macOS only"} if sys.platform != "darwin" else {}


def not_built(exc: BaseException, what: str = "the C extension") -> str:
    """Why a compiled piece is missing, and what to do: most often the
    package was imported from a source checkout (the current directory
    comes first on sys.path) that shadows the built, installed copy."""
    return "%s is not built (%s)%s" % (what, exc, shadow_hint())


def left_out(backend: str) -> str:
    """Why the build of this copy left ``backend`` out (setup.py records it
    in sandbox_py/_build_info.json), or ``""``."""
    import json
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        with open(os.path.join(pkg, "_build_info.json"), encoding="utf-8") as f:
            reason = json.load(f).get(backend + "_left_out")
    except (OSError, ValueError, AttributeError):
        return ""
    return ("the %s backend was left out when this copy of sandbox_py was built: %s"
            % (backend, reason)) if reason else ""


def shadow_hint() -> str:
    """``""``, or why a source checkout is in the way (see not_built)."""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tree = os.path.dirname(pkg)
    if not os.path.exists(os.path.join(tree, "setup.py")):
        return ""
    others = [p for p in sys.path if isinstance(p, str) and os.path.abspath(p or ".") != tree]
    try:
        spec = importlib.machinery.PathFinder.find_spec("sandbox_py", others)
    except (ImportError, ValueError):
        spec = None
    installed = os.path.dirname(spec.origin) if spec and spec.origin else None
    if installed and os.path.realpath(installed) != os.path.realpath(pkg):
        return ("; sandbox_py was imported from the source tree %s, which shadows the "
                "installed copy in %s: run from another directory (or build the source "
                "tree in place: pip install -e .)" % (pkg, installed))
    return ("; sandbox_py was imported from the source tree %s, which is not built: "
            "build it in place (pip install -e .), or install it (pip install .) and run "
            "from another directory" % pkg)


def _load(name: str):
    try:
        return importlib.import_module("." + name, __name__)
    except ImportError as e:
        return e


def availability(name: str) -> tuple:
    """``(available, reason)`` of one backend of this OS (the reason says
    what is missing when it is not built)."""
    mod = _load(name)
    if isinstance(mod, ImportError):
        return False, not_built(mod, "the %s backend" % name)
    return mod.availability()


def backends() -> dict:
    """``{name: (available, reason)}`` for every backend of this OS, in the
    order ``backend="auto"`` tries them."""
    out = {}
    for name in _MODULES:
        out[name] = availability(name)
    for name, why in _ELSEWHERE.items():
        out[name] = (False, "%s (this is %s)" % (why, sys.platform))
    return out


def resolve(name: str):
    """The backend module for ``name`` ("auto" picks the first available);
    raises SandboxUnavailableError naming what is missing."""
    if name == "auto":
        reasons = []
        for n in _MODULES:
            mod = _load(n)
            if isinstance(mod, ImportError):
                reasons.append("%s: %s" % (n, not_built(mod, "the backend")))
                continue
            ok, why = mod.availability()
            if ok:
                return mod
            reasons.append("%s: %s" % (n, why))
        raise SandboxUnavailableError("auto", ("no backend works here: " + "; ".join(reasons))
                                      if reasons else "no backend exists for %s" % sys.platform)
    if name in _ELSEWHERE:
        raise SandboxUnavailableError(
            name, "%s (this is %s)" % (_ELSEWHERE[name], sys.platform),
            "on Linux choose one of: %s" % ", ".join(["auto"] + _MODULES)
            if sys.platform.startswith("linux") else "")
    if name not in _MODULES:
        raise SandboxUnavailableError(
            name, "no such backend on %s" % sys.platform,
            "choose one of: %s" % ", ".join(["auto"] + _MODULES))
    mod = _load(name)
    if isinstance(mod, ImportError):
        raise SandboxUnavailableError(name, not_built(mod, "the backend"),
                                      "reinstall with the build dependencies, see README.md")
    ok, why = mod.availability()
    if not ok:
        raise SandboxUnavailableError(name, why, getattr(mod, "REMEDY", ""))
    return mod
