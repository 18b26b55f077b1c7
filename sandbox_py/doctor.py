"""``sandbox-py doctor``: which backends work here, why not, and the exact
remedy.  See README.md ("Install") and docs/cli.md."""
from __future__ import annotations

import os
import shlex
import sys
import textwrap
from typing import Optional

import sandbox_py
from . import _backends


def _capability_copy() -> list:
    """Shell commands (run as root) giving CAP_BPF and CAP_PERFMON to a copy
    of this interpreter made for the purpose: setcap on the shared python3
    would hand the capabilities to every Python program on the machine."""
    real = os.path.realpath(sys.executable)
    name = "python%d.%d-bpf" % sys.version_info[:2]
    if sys.prefix != sys.base_prefix:
        # Inside the venv's bin, the copy finds pyvenv.cfg and so this
        # venv's packages (sandbox_py among them).
        target = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), name)
    else:
        target = os.path.join("/usr/local/bin", name)
    return [["cp", real, target], ["setcap", "cap_bpf,cap_perfmon+ep", target],
            [target, "-m", "sandbox_py", "doctor"]], target


def remedy(name: str, why: str) -> Optional[str]:
    """What to do about backend ``name`` being unavailable for ``why``."""
    if "left out when" in why or "not built" in why:
        return None            # the reason already says how to rebuild
    if name == "ebpf" and ("refused" in why or "CAP_BPF" in why):
        commands, target = _capability_copy()
        lines = ["run as root, or give CAP_BPF and CAP_PERFMON to a copy of this "
                 "interpreter made for the purpose (as root; the file system must "
                 "keep extended attributes):"]
        lines += ["    " + " ".join(shlex.quote(a) for a in c) for c in commands[:2]]
        lines.append("  then run Python (and pytest) as %s; setcap on the shared "
                     "python3 would give every Python program on this machine the "
                     "capabilities" % target)
        return "\n".join(lines)
    module = _backends._load(name)
    return getattr(module, "REMEDY", None) if not isinstance(module, ImportError) else None


def report() -> tuple:
    """(text, any backend works)."""
    out = ["sandbox_py %s in %s" % (sandbox_py.__version__,
                                    os.path.dirname(os.path.abspath(sandbox_py.__file__))),
           "Python %s (%s)" % (sys.version.split()[0], sys.executable), ""]
    found = _backends.backends()
    out.append("backends (Sandbox().run, sandbox-py), in the order auto tries them:")
    for name, (ok, why) in found.items():
        out.append("  %-8s %s" % (name, "works" if ok else "UNAVAILABLE"))
        out.extend(textwrap.wrap(why, 76, initial_indent="           ",
                                 subsequent_indent="           "))
        fix = None if ok else remedy(name, why)
        if fix:
            for i, line in enumerate(fix.split("\n")):
                if line.startswith("    "):         # a command: never wrapped
                    out.append("           " + line)
                else:
                    out.extend(textwrap.wrap(("fix: " if i == 0 else "     ") + line.strip(),
                                             76, initial_indent="           ",
                                             subsequent_indent="                "))
    working = [n for n, (ok, _) in found.items() if ok]
    out.append("")
    out.append("backend='auto' uses: %s" % (working[0] if working else
                                           "nothing -- no backend works here"))
    from .inprocess import _ebpf_module
    module, why = _ebpf_module()
    if module is not None:
        line = ("in-process tracing (sandbox_py.trace(), the pytest plugin): ebpf "
                "(sees os.stat, C code and child processes)")
    else:
        line = ("in-process tracing (sandbox_py.trace(), the pytest plugin): audit "
                "hooks, because eBPF cannot run here; they do not see os.stat or "
                "accesses by C code; child processes are followed through the "
                "preload shim" + ("" if found.get("preload", (False,))[0]
                                  else " -- which is unavailable, so they are not seen"))
    out.extend(textwrap.wrap(line, 79, subsequent_indent="  "))
    out.extend(textwrap.wrap(_enforcement_line(), 79, subsequent_indent="  "))
    return "\n".join(out), bool(working)


def _enforcement_line() -> str:
    """How Policy(on_violation="deny") is enforced here (docs/enforcement.md)."""
    head = 'enforcement (policy=Policy(..., on_violation="deny")): '
    if sys.platform.startswith("linux"):
        from . import _landlock
        version, why = _landlock.abi()
        return head + ("Landlock ABI %d, no privilege needed" % version if version else
                       "UNAVAILABLE: %s; on_violation=\"report\" still lists what a run "
                       "does outside a policy" % why)
    if sys.platform == "darwin":
        return head + "a seatbelt profile applied by the interpose launcher"
    return head + "the Windows hook DLL (sbx-trace)"


def main(argv: list) -> int:
    import argparse
    p = argparse.ArgumentParser(
        prog="sandbox-py doctor",
        description="Say which tracing backends work here, why the others do not, and "
                    "what to do about it.  Exit status 0 when at least one works.")
    p.parse_args(argv)
    text, ok = report()
    sys.stdout.write(text + "\n")
    return 0 if ok else 1
