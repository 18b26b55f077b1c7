"""The detours backend (Windows): inline hooks in a suspended child.

The run goes through the C launcher ``sbx-trace.exe`` (csrc/win/trace_cli.c,
csrc/win/launcher.c) with the hook DLL ``sbx_hook.dll`` next to it
(shims/windows/).  Popen starts sbx-trace.exe in place of the program
(``executable=``) with the program's own command line, so the command line
quoting and PATH search are exactly subprocess's; ``SBX_TRACE_OUTPUT``
tells the launcher where to write the Result JSON (docs/json-schema.md),
``processes`` included (each access attributed to the process that made
it), and is removed from the environment before the program starts.

The launcher waits for the whole tree (a job object), so when Popen's
process has exited so has the tree; killing it kills the tree, because the
job is created with KILL_ON_JOB_CLOSE.

A Policy (sandbox_py/policy.py) is enforced by the hook DLL itself: this
module writes the resolved policy in the launcher's text form
(:func:`policy_text`, csrc/win/winpolicy.h) to a private file named by
``SBX_TRACE_POLICY``; the launcher reads it before the program starts and
hands it to every process of the tree in a section they can only read.

Only exercised under Wine by tests/test_windows.py, through sbx-trace.exe
directly: this module is the thin part that cannot be run on Linux.
"""
from __future__ import annotations

import errno
import json
import os
import sys
import tempfile

from .._runner import TraceSession, exec_record
from ..breakaway import Breakaway
from ..policy import Denied

NAME = "detours"
REMEDY = ("build the Windows binaries with shims/windows/winbuild.py (mingw-w64) and put "
          "sbx-trace.exe and sbx_hook.dll in sandbox_py/_bin, or point "
          "SANDBOX_PY_DETOURS_DIR at their directory")

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SEARCH = [os.path.join(_PKG, "_bin"),
           os.path.join(os.path.dirname(_PKG), "build", "windows")]


def _tools_dir():
    override = os.environ.get("SANDBOX_PY_DETOURS_DIR")
    dirs = [override] if override else _SEARCH
    for d in dirs:
        if all(os.path.isfile(os.path.join(d, f)) for f in ("sbx-trace.exe", "sbx_hook.dll")):
            return d
    return None


def availability():
    if sys.platform != "win32":
        return False, "the detours backend runs on Windows only"
    d = _tools_dir()
    if d is None:
        return False, "sbx-trace.exe and sbx_hook.dll were not found in %s" % ", ".join(_SEARCH)
    return True, "inline hooks on the NT and Win32 file APIs (%s)" % d


def policy_text(policy) -> str:
    """A *resolved* Windows Policy (``Policy.resolved(platform="win32")``) in
    the text form sbx-trace reads (csrc/win/winpolicy.h).  Only the normal
    form's absolute trees reach the DLL; a POSIX tree cannot name a Windows
    file and is left out."""
    from ..policy import is_windows_path  # noqa: PLC0415
    lines = ["sandbox_py.winpolicy/1", "on_violation " + policy.on_violation]
    # "search": directories whose entries may be probed (a $PATH search),
    # when the Policy has them
    for word, trees in (("read", policy.read), ("write", policy.write),
                        ("execute", policy.execute or ()),
                        ("search", getattr(policy, "search", ()))):
        for t in trees:
            if "\n" in t or "\r" in t:
                raise ValueError("a policy tree cannot contain a line break: %r" % (t,))
            if is_windows_path(t):
                lines.append("%s %s" % (word, t))
    return "\n".join(lines) + "\n"


class DetoursSession(TraceSession):
    #: breakaway: the hook DLL creates a matching process outside the job
    #: (CREATE_BREAKAWAY_FROM_JOB) and without itself (process_hooks.c)
    BREAKAWAY = True
    #: The hook DLL refuses what the policy does not allow (shims/windows/enforce.c).
    ENFORCES = True

    def __init__(self):
        self.exe = os.path.join(_tools_dir(), "sbx-trace.exe")
        fd, self.out = tempfile.mkstemp(prefix="sbx-", suffix=".json")
        os.close(fd)
        os.unlink(self.out)       # absent until the launcher writes it
        self.args0 = None
        self.policy_file = None

    def popen_kwargs(self, kwargs: dict) -> dict:
        if kwargs.get("executable") or kwargs.get("shell"):
            raise ValueError("the detours backend starts the program itself; "
                             "executable= and shell=True are not supported")
        kwargs = dict(kwargs)
        env = dict(os.environ if kwargs.get("env") is None else kwargs["env"])
        env["SBX_TRACE_OUTPUT"] = self.out
        env.pop("SBX_TRACE_BREAKAWAY", None)
        if self.breakaway:
            env["SBX_TRACE_BREAKAWAY"] = self.breakaway.lines()
        if self.policy is not None:
            # Private (mkstemp: only we may open it) and read by the launcher
            # before the program exists, so the program cannot change it.
            fd, self.policy_file = tempfile.mkstemp(prefix="sbx-policy-", suffix=".txt")
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(policy_text(self.policy))
            env["SBX_TRACE_POLICY"] = self.policy_file
        kwargs["env"] = env
        kwargs["executable"] = self.exe
        return kwargs

    def started(self, proc) -> None:
        argv0 = os.fsdecode(proc.args[0] if isinstance(proc.args, (list, tuple)) else proc.args)
        self.args0 = argv0

    def finish(self) -> dict:
        try:
            with open(self.out, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {"complete": False,
                    "warnings": ["sbx-trace.exe wrote no result (it was killed or failed): "
                                 "no accesses were recorded"]}
        finally:
            self.abort()
        if data.get("schema") == "sandbox_py.start_error/1":
            # 5: the program is outside the policy's execute trees
            code = {2: errno.ENOENT, 3: errno.ENOENT, 5: errno.EACCES}.get(
                data.get("winerror"), errno.EINVAL)
            raise OSError(code, data.get("message", "cannot start the command"))
        warnings = list(data["warnings"])
        if self.breakaway and self.args0 and self.breakaway.matches(self.args0, (self.args0,)):
            # sbx-trace.exe starts the command itself inside the job: only
            # the processes it starts can leave
            warnings.append("the command itself matches the breakaway declaration, but the "
                            "detours backend traces the command it starts; only its "
                            "children can break away")
        return {
            "reads": data["reads"], "writes": data["writes"], "probes": data["probes"],
            "enumerations": data["enumerations"],
            "execs": [exec_record(e["pid"], e["ppid"], e["path"], e["argv"])
                      for e in data["execs"]],
            "breakaways": [Breakaway(e["pid"], e["path"], tuple(e["argv"]))
                           for e in data.get("breakaways", ())],
            "complete": data["complete"] and len(warnings) == len(data["warnings"]),
            "warnings": warnings,
            # The root's exit code as the launcher saw it: an unsigned DWORD
            # (0xC0000135 is 3221225781), the same number Popen.returncode
            # gives for sbx-trace.exe, which exits with it.
            "returncode": data["returncode"],
            "denied": [Denied(d["path"], d["category"], d.get("pid"))
                       for d in data.get("denied", ())],
            # JSON objects: Result.from_fields makes them Process records
            "processes": data.get("processes", ()),
        }

    def abort(self) -> None:
        for path in (self.out, self.policy_file):
            try:
                if path:
                    os.unlink(path)
            except OSError:
                pass


def session(sandbox) -> TraceSession:
    return DetoursSession()
