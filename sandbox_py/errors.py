"""Exceptions.  They subclass the ``subprocess`` ones, so code written for
``subprocess.run`` keeps working, and carry the (partial) Result."""
from __future__ import annotations

import subprocess


class SandboxError(Exception):
    """Base class of sandbox_py's own errors."""


class SandboxUnavailableError(SandboxError, RuntimeError):
    """The requested backend cannot run here.

    ``backend`` names it, ``missing`` the capability it lacks and ``remedy``
    what to do about it."""

    def __init__(self, backend: str, missing: str, remedy: str = ""):
        self.backend, self.missing, self.remedy = backend, missing, remedy
        msg = "backend %r is unavailable: %s" % (backend, missing)
        if remedy:
            msg += ". To fix: %s" % remedy
        super().__init__(msg)


class TimeoutExpired(subprocess.TimeoutExpired, SandboxError):
    """The run exceeded ``timeout``; the whole tree was killed.

    ``result`` is the partial Result (``complete`` is False)."""

    def __init__(self, cmd, timeout, output=None, stderr=None, *, result=None):
        super().__init__(cmd, timeout, output=output, stderr=stderr)
        self.result = result


class CalledProcessError(subprocess.CalledProcessError, SandboxError):
    """``check=True`` and the command exited non-zero; ``result`` is attached."""

    def __init__(self, returncode, cmd, output=None, stderr=None, *, result=None):
        super().__init__(returncode, cmd, output=output, stderr=stderr)
        self.result = result


class SandboxIncompleteWarning(UserWarning):
    """Part of what a traced block or a checked test did could not be seen:
    the mechanism cannot see it (the audit-hook fallback does not see C
    code in this process), or it was missed (a child started without the
    shim, one still running when the block ended).  The message says which.
    (Also ``sandbox_py.pytest_plugin.SandboxIncompleteWarning``.)"""
