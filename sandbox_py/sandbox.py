"""The public entry point: ``Sandbox().run(argv)``."""
from __future__ import annotations

from typing import Optional

from . import _backends
from ._runner import run_traced
from .policy import Policy
from .result import Result


class Sandbox:
    """Runs commands and reports what their whole process tree touched.

    ``backend`` is ``"auto"`` (the most complete one available here) or a
    name from :func:`sandbox_py.backends`.  A Sandbox is cheap and may be
    shared by threads; the expensive set-up (loading BPF programs) is paid
    once per Python process.
    """

    def __init__(self, backend: str = "auto"):
        self._module = _backends.resolve(backend)
        self.backend = self._module.NAME

    def run(self, args, *, cwd=None, env=None, input=None, stdin=None, stdout=None,
            stderr=None, capture_output: bool = False, text: Optional[bool] = None,
            timeout: Optional[float] = None, check: bool = False,
            policy: Optional[Policy] = None, breakaway=None, **popen_kwargs) -> Result:
        """Run ``args`` like ``subprocess.run`` and return a :class:`Result`.

        Keyword arguments mean what they mean for ``subprocess.run``; other
        ``subprocess.Popen`` arguments (``encoding``, ``start_new_session`` ...)
        are passed through.  ``policy`` (a :class:`sandbox_py.Policy`) limits
        what the run may touch and fills ``Result.denied``; ``breakaway``
        (program names, absolute paths or callables) lets matching processes
        leave the run at their exec (``Result.breakaways``)."""
        session = self._module.session(self)
        return run_traced(self.backend, session, args, cwd=cwd, env=env, input=input,
                          stdin=stdin, stdout=stdout, stderr=stderr,
                          capture_output=capture_output, text=text, timeout=timeout,
                          check=check, policy=policy, breakaway=breakaway,
                          **popen_kwargs)


def run(args, *, backend: str = "auto", **kwargs) -> Result:
    """Shorthand for ``Sandbox(backend).run(args, **kwargs)``."""
    return Sandbox(backend).run(args, **kwargs)
