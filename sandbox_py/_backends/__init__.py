"""Backend registry: one module per mechanism (DESIGN.md §5).

Each backend module defines ``NAME``, ``availability() -> (bool, str)`` (the
second item is a one-line reason either way) and ``session(sandbox) ->
TraceSession``.  A backend that does not exist on this OS is simply absent
from ``_MODULES`` for that OS, as psutil does.
"""
from __future__ import annotations

import importlib
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


def _load(name: str):
    try:
        return importlib.import_module("." + name, __name__)
    except ImportError as e:
        return e


def backends() -> dict:
    """``{name: (available, reason)}`` for every backend of this OS, in the
    order ``backend="auto"`` tries them."""
    out = {}
    for name in _MODULES:
        mod = _load(name)
        if isinstance(mod, ImportError):
            out[name] = (False, "not built in this installation (%s)" % mod)
        else:
            out[name] = mod.availability()
    return out


def resolve(name: str):
    """The backend module for ``name`` ("auto" picks the first available);
    raises SandboxUnavailableError naming what is missing."""
    if name == "auto":
        reasons = []
        for n in _MODULES:
            mod = _load(n)
            if isinstance(mod, ImportError):
                reasons.append("%s: not built (%s)" % (n, mod))
                continue
            ok, why = mod.availability()
            if ok:
                return mod
            reasons.append("%s: %s" % (n, why))
        raise SandboxUnavailableError("auto", "no backend works here: " + "; ".join(reasons)
                                      or "no backend exists for %s" % sys.platform)
    if name not in _MODULES:
        raise SandboxUnavailableError(
            name, "no such backend on %s" % sys.platform,
            "choose one of: %s" % ", ".join(["auto"] + _MODULES))
    mod = _load(name)
    if isinstance(mod, ImportError):
        raise SandboxUnavailableError(name, "not built in this installation (%s)" % mod,
                                      "reinstall with the build dependencies, see docs/backends.md")
    ok, why = mod.availability()
    if not ok:
        raise SandboxUnavailableError(name, why, getattr(mod, "REMEDY", ""))
    return mod
