"""The preload backend: an LD_PRELOAD shim in every dynamically linked process.

Needs no privilege.  The shim (shims/core + shims/linux, built as
``sandbox_py/_sbx_preload.so``) writes records into a shared-memory log
that a reader thread in this process follows; see csrc/linux/preload/preload_reader.c.
A statically linked program started by a traced process is handed to the
ptrace backend when it works here (the shim execs the ptrace launcher in
its place and the reader adopts it); processes the shim cannot enter
otherwise (a static root command, setuid programs) are named in
``Result.warnings`` and make the Result incomplete.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional

from .._landlock import LandlockSession
from .unpriv_session import Launcher, RunSession

NAME = "preload"
REMEDY = "rebuild sandbox_py on Linux with a C compiler (pip install -e .)"

_HERE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
SHIM = os.path.join(_HERE, "_sbx_preload.so")
# the dynamic loader's library search, seen through glibc's rtld-audit interface
AUDIT = os.path.join(_HERE, "_sbx_audit.so")


def _unpriv():
    from .. import _unpriv  # noqa: PLC0415 - the extension is optional at import
    return _unpriv


def own_files() -> list:
    """[(path, "read" | "execute")]: the files of sandbox_py a traced
    process needs (the loader maps the shim and the audit module)."""
    return [(SHIM, "read"), (AUDIT, "read")]


#: The environment variables child_env() sets: what a child needs to be
#: followed (a program that drops them is no longer seen).
CHILD_ENV = ("LD_PRELOAD", "LD_AUDIT", "SBX_PRELOAD_LOG", "SBX_PRELOAD_SHIM",
             "SBX_PRELOAD_AUDIT", "SBX_PRELOAD_CAPDIRS", "SBX_PRELOAD_MNTNS",
             "SBX_PRELOAD_HANDOFF", "SBX_PRELOAD_BREAKAWAY")
#: The one that names the run's log.
LOG_ENV = "SBX_PRELOAD_LOG"


def new_run(**kw):
    """A PreloadRun of the C extension (csrc/python/module_unpriv.c)."""
    return _unpriv().PreloadRun(**kw)


def log_create():
    """A paused log for a session traced in-process (sandbox_py/selfshim.py)."""
    return _unpriv().preload_log_create()


def self_quiet(on: bool) -> None:
    """While on, the shim in this process records nothing (sandbox_py's own
    look at the process, inside a traced window)."""
    _unpriv().preload_self_quiet(on)


def self_breakaway(lines: str) -> None:
    """Tell the shim in this process which programs leave the run ("" for none)."""
    _unpriv().preload_self_breakaway(lines)


def availability():
    try:
        _unpriv()
    except ImportError as e:
        from . import not_built
        return False, not_built(e, "the C extension sandbox_py._unpriv")
    if not os.path.exists(SHIM):
        from . import shadow_hint
        return False, "the preload shim %s is not built%s" % (SHIM, shadow_hint())
    return True, ("LD_PRELOAD shim: sees programs that call libc; static children "
                  "go to ptrace when it works, else are reported as unobserved")


def handoff_launcher() -> Optional[str]:
    """The ptrace launcher when static programs can be handed to ptrace."""
    from . import ptrace  # noqa: PLC0415
    ok, _ = ptrace.availability()
    return ptrace.LAUNCHER if ok else None


_CAPDIRS = None


def loader_capdirs() -> str:
    """The capability subdirectories this machine's dynamic loader tries in
    each library directory (glibc-hwcaps/x86-64-v3, tls, x86_64 ...), in
    its order, as it prints them itself (LD_DEBUG=libs); "" if unknown.
    Asked once per process: the loader audit module models the search in
    them (rtld-audit reports only the directory)."""
    global _CAPDIRS
    if _CAPDIRS is None:
        _CAPDIRS = ""
        if not sys.platform.startswith("linux"):
            return _CAPDIRS
        probe = "/sandbox-py-nonexistent-dir"
        try:
            out = subprocess.run(["/bin/true"], capture_output=True, timeout=10,
                                 env={"LD_DEBUG": "libs", "LD_LIBRARY_PATH": probe}).stderr
        except (OSError, subprocess.SubprocessError):
            out = b""
        for line in out.decode(errors="replace").splitlines():
            if "search path=" in line and "(LD_LIBRARY_PATH)" in line:
                paths = line.split("search path=", 1)[1].split()[0].split(":")
                subs = []
                for p in paths:
                    if p.startswith(probe + "/"):
                        sub = p[len(probe) + 1:]
                        if sub not in subs:
                            subs.append(sub)
                _CAPDIRS = ":".join(subs)
                break
    return _CAPDIRS


def child_env(env: Optional[dict], log_path: str, handoff: Optional[str] = None,
              breakaway=None) -> dict:
    """The child's environment: the caller's (or ours) plus the shim."""
    env = dict(os.environ if env is None else env)
    # the shim matches the declaration at each exec (shims/core/shim_core.c)
    env.pop("SBX_PRELOAD_BREAKAWAY", None)
    if breakaway:
        env.update(breakaway.shim_env())
    old = env.get("LD_PRELOAD", "")
    if SHIM not in old.replace(":", " ").split():
        env["LD_PRELOAD"] = SHIM + (" " + old if old else "")
    env["SBX_PRELOAD_LOG"] = log_path
    env["SBX_PRELOAD_SHIM"] = SHIM
    try:    # the run's mount namespace: a process in another one is flagged
        env["SBX_PRELOAD_MNTNS"] = str(os.stat("/proc/self/ns/mnt").st_ino)
    except OSError:
        env.pop("SBX_PRELOAD_MNTNS", None)
    if os.path.exists(AUDIT):
        old = env.get("LD_AUDIT", "")
        if AUDIT not in old.split(":"):
            env["LD_AUDIT"] = AUDIT + (":" + old if old else "")
        env["SBX_PRELOAD_AUDIT"] = env["LD_AUDIT"]
        env["SBX_PRELOAD_CAPDIRS"] = loader_capdirs()
    if handoff:
        env["SBX_PRELOAD_HANDOFF"] = handoff
    else:
        env.pop("SBX_PRELOAD_HANDOFF", None)
    return env


def needs_launcher(path: str) -> bool:
    """True when the shim cannot enter what exec(path) runs: an ELF file
    that names no dynamic loader (static, static-pie), or one of another
    class than the shim's (32-bit).  Scripts and dynamically linked
    programs load the shim themselves.  Unreadable files are left to exec,
    which reports them as it would without sandbox_py."""
    try:
        with open(path, "rb") as f:
            ident = f.read(5)
    except OSError:
        return False
    if ident[:4] != b"\x7fELF":
        return False
    if ident[4:5] != b"\x02":                # not ELFCLASS64
        return True
    return _unpriv().elf_interp(path) == ""  # the PT_INTERP the exec tracers read


def _exec_target(args: list, kwargs: dict) -> tuple:
    """The file Popen would exec for args and the candidates of its $PATH
    search it would try and miss before it (absolute, as the child's cwd
    makes them): (target or None, [missed ...])."""
    if kwargs.get("shell"):
        prog = kwargs.get("executable") or "/bin/sh"
    else:
        prog = kwargs.get("executable") or args[0]
    prog = os.fsdecode(prog)
    cwd = kwargs.get("cwd")
    base = os.path.abspath(os.fsdecode(cwd)) if cwd is not None else os.getcwd()
    if os.path.dirname(prog):
        return os.path.normpath(os.path.join(base, prog)), []
    missed = []
    for d in os.get_exec_path(kwargs.get("env")):
        cand = os.path.normpath(os.path.join(base, os.fsdecode(d), prog))
        if os.access(cand, os.X_OK) and not os.path.isdir(cand):
            return cand, missed
        missed.append(cand)
    return None, missed


class LogKeeper:
    """Removes a named log when this process is gone, SIGKILL included: a
    shell (in a session of its own, outside the run) that waits for the end
    of a pipe whose only writer is this process.  Only for the named log of
    an enforced run: an anonymous one needs nobody."""

    def __init__(self, path: str):
        r, w = os.pipe()            # not inheritable: the run never holds w
        try:
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", 'read _ || :; exec rm -f -- "$0"', path], stdin=r,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, env={"PATH": "/usr/bin:/bin"})
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self.w = w

    def close(self):
        if self.w is not None:
            os.close(self.w)
            self.w = None
            self.proc.wait()


class PreloadSession(LandlockSession, RunSession):
    #: breakaway: the shim matches each exec and runs a declared program
    #: without itself; the reader stops watching that process
    BREAKAWAY = True

    def __init__(self):
        self.run = None
        self.keeper = None
        self.handoff = handoff_launcher()
        self.launcher = None
        self.path_misses = ()
        self.root_pid = None

    def prepare(self, args, kwargs):
        # The log has no name (nothing is left behind if this process is
        # killed), except under an enforced policy: the processes of a
        # Landlock domain cannot reach it through this process's /proc entry.
        enforced = self.policy is not None and self.policy.on_violation == "deny"
        self.run = _unpriv().PreloadRun(named=enforced)
        if enforced:
            self.keeper = LogKeeper(self.run.log_path)
        if self.handoff:
            self.run.set_handoff(self.handoff)
        # A statically linked command goes through the launcher, which
        # starts it from a child whose exec the shim hands to ptrace like
        # any static child.  A dynamically linked one loads the shim itself:
        # starting it directly saves the launcher's own start (with the shim
        # and the audit module), about a millisecond per run.
        if self.handoff:
            target, missed = _exec_target(args, kwargs)
            if target and needs_launcher(target):
                self.launcher = Launcher({"SBX_PTRACE_ROOT": "1"})
            elif target:
                # Popen's own $PATH search happens before any traced code
                # runs (under the launcher the shim saw it as failed execs):
                # its misses are probes, as under the other backends.
                self.path_misses = missed

    def finish(self):
        if self.fields is None:
            fields = super().finish()
            if self.keeper:
                self.keeper.close()
            if self.path_misses:
                probes = list(fields.get("probes", ()))
                seen = set(probes)
                fields["probes"] = probes + [p for p in self.path_misses if p not in seen]
                # ... made by the root process before its exec: its record's,
                # as the kernel-side backends file them
                procs = list(fields.get("processes") or ())
                if procs and procs[0][0] == self.root_pid and procs[0][2] is None:
                    root = list(procs[0])
                    have = set(root[9])
                    root[9] = list(root[9]) + [p for p in self.path_misses if p not in have]
                    procs[0] = tuple(root)
                    fields["processes"] = procs
        return self.fields

    def own_files(self):
        from .._landlock import EXECUTE, READ, WRITE  # noqa: PLC0415
        own = [(SHIM, READ), (AUDIT, READ), (self.run.log_path, READ | WRITE)]
        if self.handoff:    # a static child execs the launcher to be adopted
            own.append((self.handoff, READ | EXECUTE))
        return own

    def popen_kwargs(self, kwargs):
        kwargs = dict(kwargs)
        kwargs["env"] = child_env(kwargs.get("env"), self.run.log_path, self.handoff,
                                  self.breakaway)
        if self.launcher:
            return self.launcher_kwargs(self.launcher.popen_kwargs(kwargs))
        return self.preexec_kwargs(kwargs)

    def started(self, proc):
        self.close_ruleset()
        argv0 = proc.args[0] if isinstance(proc.args, (list, tuple)) else proc.args
        self.root_pid = proc.pid
        self.run.set_root(proc.pid, os.fsdecode(argv0))
        if self.launcher:
            err = self.launcher.exec_error(proc)
            if err:
                self.finish()
                raise err


def session(sandbox) -> PreloadSession:
    return PreloadSession()
