"""sandbox_py — run a command and report every file its process tree touched.

    from sandbox_py import Sandbox
    status, reads, writes = Sandbox().run(["make", "-j2"])
"""
from ._backends import backends
from .errors import (CalledProcessError, SandboxError, SandboxIncompleteWarning,
                     SandboxUnavailableError, TimeoutExpired)
from .breakaway import Breakaway
from .policy import Denied, Policy
from .result import Exec, PathSet, Result
from .sandbox import Sandbox, run
from .inprocess import trace

__all__ = ["Sandbox", "run", "trace", "Result", "PathSet", "Exec", "backends",
           "Policy", "Denied", "Breakaway",
           "SandboxError", "SandboxUnavailableError", "SandboxIncompleteWarning",
           "TimeoutExpired",
           "CalledProcessError"]
__version__ = "0.1.0"
