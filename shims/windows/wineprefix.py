"""Run Windows programs under Wine for the tests and the benchmark.

One private prefix per session, created on first use, and one persistent
wineserver for it (each wine start then costs a fraction of a second), shut
down at the end.  Works with the plain `wine64` Debian package, which has
no `wine` on PATH when installed without recommends.
"""
from __future__ import annotations

import os
import shutil
import subprocess


def _find(names, fallbacks):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    for p in fallbacks:
        if os.access(p, os.X_OK):
            return p
    return None


def binaries():
    """(wine, wineserver) paths, or None for a missing one."""
    wine = _find(["wine", "wine64"], ["/usr/lib/wine/wine64", "/usr/lib/wine/wine"])
    server = _find(["wineserver"], ["/usr/lib/wine/wineserver64", "/usr/lib/wine/wineserver"])
    return wine, server


def winpath(path) -> str:
    """The Windows name of a Linux path under Wine (the Z: drive maps /)."""
    return "Z:" + os.path.abspath(str(path)).replace("/", "\\")


class WinePrefix:
    """A private prefix with a persistent wineserver: ``with WinePrefix(d) as w:``."""

    def __init__(self, directory: str):
        self.wine, self.server = binaries()
        if not (self.wine and self.server):
            raise RuntimeError("wine not found: install wine64 (Debian: apt-get install wine64)")
        os.makedirs(directory, exist_ok=True)
        self.env = dict(os.environ, WINEPREFIX=str(directory), WINEDEBUG="-all",
                        # no Mono/Gecko installer prompts while the prefix is created
                        WINEDLLOVERRIDES="mscoree,mshtml=")
        self.env.pop("DISPLAY", None)

    def _start(self):
        subprocess.run([self.server, "-p"], env=self.env, check=True, timeout=60)
        # DEVNULL, not pipes: the services Wine starts with a prefix inherit
        # the standard handles and would keep a pipe open forever.
        subprocess.run([self.wine, "cmd", "/c", "exit"], env=self.env, timeout=300,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def __enter__(self):
        fresh = not os.path.exists(os.path.join(self.env["WINEPREFIX"], "system.reg"))
        self._start()
        if fresh:
            # A new prefix keeps its services busy for a while (registry and
            # font set-up); restart the server so runs start on a quiet one.
            subprocess.run([self.server, "-k"], env=self.env, timeout=60)
            subprocess.run([self.server, "-w"], env=self.env, timeout=60)
            self._start()
        return self

    def run(self, argv, **kwargs):
        """subprocess.run of a Windows program (argv[0] may be a Linux path)."""
        kwargs.setdefault("env", self.env)
        return subprocess.run([self.wine] + list(argv), **kwargs)

    def __exit__(self, *exc):
        subprocess.run([self.server, "-k"], env=self.env, timeout=60)
