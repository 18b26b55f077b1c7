"""pytest plugin: a test declares what it may touch, and is held to it.

    @pytest.mark.sandbox(allow=["{tmp_path}", "tests/fixtures/**"])
    def test_load(tmp_path): ...

Loaded in every pytest run through the ``pytest11`` entry point, so importing
it must stay cheap and it must do nothing for a test that did not ask: a test
is checked when it carries the ``sandbox`` marker, requests the
``sandbox_check`` fixture, or the whole suite is switched on (``--sandbox``
or the ``sandbox = true`` ini option).  See docs/pytest.md.

Only the test *call* is traced (not fixture setup and teardown): in-process,
with the eBPF backend when it can run here; else, when every test is checked
(``--sandbox``), with the preload shim in the test process itself, the
session re-executed under it before anything else happens
(sandbox_py/selfshim.py); else with Python audit hooks, which miss C code in
the test process (sandbox_py/audit.py) -- said for every test so checked.
"""
from __future__ import annotations

import os
import re
import site
import sys
import warnings
from typing import Iterable, Optional

import pytest

MODES = ("fail", "warn", "off", "enforce")
BACKENDS = ("auto", "ebpf", "preload", "audit")
#: How each mechanism is named in the session summary.
MECHANISM = {"ebpf": "eBPF", "preload": "preload shim in the test process",
             "audit": "Python audit hooks"}
#: Path categories a read-only allowance covers.
READ_CATEGORIES = ("reads", "probes", "enumerations")
#: Short names for the failure listing.
OPERATION = {"reads": "read", "writes": "write", "probes": "probe",
             "enumerations": "list"}
#: How many offending paths a failure lists before "... and N more".
LISTED = 50
#: Files a starting Python interpreter looks for to find its prefix.
PYTHON_LANDMARK = re.compile(r"(?:python\d+\.zip|pyvenv\.cfg|pybuilddir\.txt|Setup\.local)\Z")


class SandboxAccessWarning(UserWarning):
    """A test touched paths it did not declare (``--sandbox-mode=warn``)."""


# A checked test that passed although part of what it did could not be seen
# (the audit fallback does not see C code in the test process; a child
# started without the shim; one still running when the call ended).
from .errors import SandboxIncompleteWarning  # noqa: E402  (its public name here too)
from .harness import IMPORT_SUFFIXES  # noqa: E402

#: Why the session does not trace with the shim in the test process (when
#: it does not use eBPF either): said in every partly-checked test's warning.
_NO_SHIM = pytest.StashKey[str]()
#: {(mechanism, fully checked): count} of this session's checked tests.
_CHECKED = pytest.StashKey[dict]()
#: user_properties key carrying "mechanism:full|partial" to the controller
#: (pytest-xdist sends reports, not stashes).
_PROPERTY = "sandbox_py"


def pytest_addoption(parser):
    group = parser.getgroup("sandbox", "file-access checking (sandbox_py)")
    group.addoption("--sandbox", action="store_true", default=None,
                    help="check the file accesses of every test, not only those "
                         "marked @pytest.mark.sandbox (ini: sandbox = true)")
    group.addoption("--sandbox-mode", choices=MODES, default=None,
                    help="what an undeclared access does: fail the test (default), "
                         "warn, enforce (the system refuses it and the test fails; "
                         "Linux, Landlock), or off to disable all checks "
                         "(ini: sandbox_mode)")
    group.addoption("--sandbox-allow", action="append", default=[], metavar="PATTERN",
                    help="allow PATTERN for every checked test (repeatable; "
                         "ini: sandbox_allow)")
    group.addoption("--sandbox-allow-read", action="append", default=[], metavar="PATTERN",
                    help="allow every checked test to read, probe and list PATTERN "
                         "(repeatable; ini: sandbox_allow_read)")
    group.addoption("--sandbox-backend", choices=BACKENDS, default=None,
                    help="in-process tracing mechanism (ini: sandbox_backend; "
                         "default auto: eBPF when available, else with --sandbox the "
                         "preload shim in the test process, else audit hooks)")
    parser.addini("sandbox", type="bool", default=False,
                  help="check the file accesses of every test")
    parser.addini("sandbox_mode", default="fail", help="fail, warn, enforce or off")
    parser.addini("sandbox_allow", type="linelist", default=[],
                  help="patterns every checked test may touch")
    parser.addini("sandbox_allow_read", type="linelist", default=[],
                  help="patterns every checked test may read, probe and list")
    parser.addini("sandbox_backend", default="auto", help="auto, ebpf, preload or audit")
    parser.addini("sandbox_wait", default="1.0",
                  help="seconds to wait, after a checked test's call, for threads and "
                       "child processes it started and left running")


def _choice(config, name: str, default: str, choices) -> str:
    """The command-line option, else the ini value, checked against choices."""
    value = config.getoption(name) or config.getini(name) or default
    if value not in choices:
        raise pytest.UsageError("%s must be one of %s, not %r"
                                % (name, ", ".join(choices), value))
    return value


def _backend(config) -> str:
    return _choice(config, "sandbox_backend", "auto", BACKENDS)


def _early_choice(config, name: str, default: str, choices) -> str:
    value = getattr(config.known_args_namespace, name, None) or config.getini(name) or default
    return value if value in choices else default


def _shim_wanted(config) -> tuple:
    """(True, "") when this session should be re-executed under the preload
    shim to trace C code in the test process, else (False, why not, or ""
    when tracing does not need it).  Only when the tests will be checked for
    certain (every test: --sandbox, or the preload backend asked for by
    name), nothing better can run (eBPF), and this process is the session
    itself (not pytest.main() called by another program, not a
    pytest-xdist controller or worker)."""
    ns = config.known_args_namespace
    if _early_choice(config, "sandbox_mode", "fail", MODES) == "off":
        return False, ""
    backend = _early_choice(config, "sandbox_backend", "auto", BACKENDS)
    if backend == "ebpf":
        return False, ""
    if backend == "audit":
        return False, "--sandbox-backend=audit was asked for"
    if backend == "auto" and not (getattr(ns, "sandbox", None) or config.getini("sandbox")):
        return False, ""        # markers only: the partly-checked warnings say what to do
    if os.environ.get("PYTEST_XDIST_WORKER") or getattr(ns, "numprocesses", None) or \
            getattr(ns, "dist", "no") not in ("no", None):
        return False, ("pytest-xdist workers are started by the controller and cannot be "
                       "re-executed under it (run without -n, or as root for eBPF)")
    # the session is this program: `pytest ...` or `python -m pytest ...`,
    # not pytest.main() inside a program that would run again from its start
    main = sys.argv[0].replace("\\", "/") if sys.argv else ""
    if list(config.invocation_params.args) != sys.argv[1:] or not (
            os.path.basename(main) in ("pytest", "py.test")
            or main.endswith("pytest/__main__.py")):
        return False, ("pytest was called as pytest.main() by another program, which "
                       "re-executing would run again from its start")
    if backend == "auto":
        from .inprocess import _ebpf_module
        if _ebpf_module()[0] is not None:
            return False, ""
    return True, ""


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """As early as a plugin runs (before conftest files and collection):
    re-execute the session under the preload shim when it needs it
    (sandbox_py/selfshim.py; docs/pytest.md says why), once; in the
    re-executed session, read the log made for it."""
    from . import selfshim
    if selfshim.attach():
        return
    wanted, why_not = _shim_wanted(early_config)
    if not wanted:
        if why_not:
            early_config.stash[_NO_SHIM] = why_not
        return
    # pytest's capture has already put its temporary files on fds 0, 1 and 2
    # (its own hook wraps this one): the exec must get the real ones back,
    # or the session's output goes into a file nobody reads.
    capman = early_config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()
    why = selfshim.reexec()         # returns only when it cannot
    if capman is not None:
        capman.start_global_capturing()
    early_config.stash[_NO_SHIM] = why


def pytest_configure(config):
    # An explicit --sandbox-backend=ebpf that cannot work is one usage error
    # now, not a traceback in every checked test.
    if _backend(config) == "ebpf" and _mode(config) != "off":
        from .inprocess import _ebpf_module
        from ._backends.ebpf import PRIVILEGE
        module, why = _ebpf_module()
        if module is None:
            raise pytest.UsageError(
                "sandbox_backend=ebpf cannot run here: %s.\nTo fix: %s; or use "
                "--sandbox-backend=auto, which falls back to the preload shim in the "
                "test process (with --sandbox) or to audit hooks" % (why, PRIVILEGE))
    if _backend(config) == "preload" and _mode(config) != "off":
        from . import selfshim
        if not selfshim.active():
            raise pytest.UsageError(
                "sandbox_backend=preload cannot run here: %s" % (
                    config.stash.get(_NO_SHIM, None) or selfshim.attach_error()
                    or "this session was not started under the preload shim (it is "
                    "re-executed under it only when it is the program itself, not "
                    "pytest.main() called by another, and not under pytest-xdist)"))
    config.stash[_CHECKED] = {}
    config.addinivalue_line(
        "markers",
        "sandbox(allow=(), allow_read=(), mode=None, breakaway=()): check the test's file "
        "accesses (mode: fail, warn, enforce or off); "
        "allow: patterns it may touch in any way, allow_read: patterns it may only "
        "read/probe/list; {tmp_path}, {basetemp}, {rootdir}, {testdir} are expanded, "
        "relative patterns are below rootdir, ** spans directories; breakaway: programs "
        "(daemons) the test starts whose own accesses are not checked")


def _mode(config) -> str:
    return _choice(config, "sandbox_mode", "fail", MODES)


# -- what a test may touch -------------------------------------------------------

class Pattern:
    """One allowed location.  ``*`` and ``?`` stay inside a path component,
    ``**`` spans any number; a pattern without wildcards allows the path and
    everything below it."""

    def __init__(self, text: str, absolute: str):
        self.text = text
        self.absolute = absolute
        self.regex = re.compile(self._translate(absolute))
        literal = re.split(r"[*?]", absolute, maxsplit=1)[0]
        #: The deepest directory named without wildcards.
        self.literal_dir = absolute if literal == absolute else os.path.dirname(literal)

    @staticmethod
    def _translate(pattern: str) -> str:
        out, i = [], 0
        while i < len(pattern):
            if pattern.startswith("/**", i):
                out.append("(?:/.*)?")
                i += 3
            elif pattern.startswith("**", i):
                out.append(".*")
                i += 2
            elif pattern[i] == "*":
                out.append("[^/]*")
                i += 1
            elif pattern[i] == "?":
                out.append("[^/]")
                i += 1
            else:
                out.append(re.escape(pattern[i]))
                i += 1
        return "".join(out) + "(?:/.*)?\\Z"

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None

    def __repr__(self) -> str:
        return self.text if self.text == self.absolute else "%s (%s)" % (self.absolute, self.text)


#: The Python installation's roots, for the interpreter's prefixes they were found for.
_ROOTS_CACHE: dict = {}


class TestPolicy:
    """Everything one test may touch: its declared patterns plus the
    baseline every test gets (the Python installation, imports, the system,
    pseudo files, this worker's temporary directory).  (Not
    sandbox_py.Policy, the trees of a Sandbox run: patterns and a baseline
    are what a test suite needs; mode="enforce" derives Landlock trees from
    this, see sandbox_py/pytest_enforce.py.)"""

    __test__ = False            # a Test* class, not a test
    def __init__(self, item, mode: str):
        self.item = item
        self.mode = mode
        self.allow: list = []
        self.allow_read: list = []
        self.placeholders = self._placeholders(item)

    @staticmethod
    def _placeholders(item) -> dict:
        config = item.config
        values = {"rootdir": str(config.rootpath), "testdir": str(item.path.parent),
                  "home": os.path.expanduser("~")}
        factory = getattr(config, "_tmp_path_factory", None)
        if factory is not None:
            values["basetemp"] = str(factory.getbasetemp())
        funcargs = getattr(item, "funcargs", {}) or {}
        tmp = funcargs.get("tmp_path") or funcargs.get("tmpdir")
        if tmp is not None:
            values["tmp_path"] = str(tmp)
        return values

    def pattern(self, text) -> Optional[Pattern]:
        text = os.fsdecode(text)
        try:
            expanded = text.format(**self.placeholders)
        except KeyError as e:
            if e.args[0] == "tmp_path":
                return None     # the test has no tmp_path, so nothing lies in it
            raise pytest.UsageError("sandbox pattern %r: unknown placeholder {%s}; known: %s"
                                    % (text, e.args[0], ", ".join(sorted(self.placeholders))))
        expanded = os.path.expanduser(expanded)
        if not os.path.isabs(expanded):
            expanded = os.path.join(self.placeholders["rootdir"], expanded)
        absolute = "/" + os.path.normpath(expanded).lstrip("/")
        return Pattern(text, absolute)

    def add(self, patterns: Iterable, read_only: bool = False) -> None:
        if isinstance(patterns, (str, bytes, os.PathLike)):
            patterns = [patterns]
        target = self.allow_read if read_only else self.allow
        for text in patterns:
            p = self.pattern(text)
            if p is not None:
                target.append(p)

    # -- the baseline ---------------------------------------------------------
    @staticmethod
    def _python_roots() -> set:
        key = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
        if _ROOTS_CACHE.get("key") != key:      # once per interpreter, not per test
            roots = set(key)
            try:
                roots.update(site.getsitepackages())
            except AttributeError:     # old virtualenv's site.py
                pass
            _ROOTS_CACHE.update(key=key, roots={os.path.realpath(r) for r in roots} | roots)
        return _ROOTS_CACHE["roots"]

    def baseline(self) -> dict:
        """Where every checked test may go, computed when its accesses are
        checked (the test may have changed sys.path or PATH)."""
        basetemp = self.placeholders.get("basetemp")
        full = [basetemp] if basetemp else []
        read = sorted(self._python_roots())
        imports = [os.path.abspath(e or ".") for e in sys.path if isinstance(e, str)]
        search = [os.path.abspath(d) for d in os.environ.get("PATH", "").split(os.pathsep) if d]
        # Probing the directories on the way to an allowed place is how one
        # gets there (realpath, makedirs and the loader stat each of them).
        ancestors = set()
        for place in full + read + imports + [p.literal_dir for p in self.allow + self.allow_read]:
            while place not in ("/", ""):
                place = os.path.dirname(place)
                ancestors.add(place)
        return {"full": full, "read": read, "imports": imports,
                "search": set(search), "ancestors": ancestors}

    def baseline_allows(self, category: str, path: str, base: dict) -> bool:
        from .paths import is_pseudo, is_system, under
        if is_pseudo(path) or any(under(path, r) for r in base["full"]):
            return True
        if category not in READ_CATEGORIES:
            return False
        if is_system(path) or any(under(path, r) for r in base["read"]):
            return True
        if path in base["imports"]:
            return True     # the import system stats and lists its path entries
        if any(under(path, entry) for entry in base["imports"]):
            # The import system lists sys.path directories, stats the
            # packages and modules it finds there and reads the modules.
            name = os.path.basename(path)
            if (category == "enumerations" or path.endswith(IMPORT_SUFFIXES)
                    or (category == "probes" and "." not in name)):
                return True
        if category == "probes":
            parent = os.path.dirname(path)
            return (path in base["ancestors"]
                    or parent == "/"                     # /selinux, /nix: harmless
                    or parent in base["search"]          # the PATH search for a program
                    or PYTHON_LANDMARK.match(os.path.basename(path)) is not None)
        return False

    def allows(self, category: str, path: str, base: dict) -> bool:
        patterns = self.allow + (self.allow_read if category in READ_CATEGORIES else [])
        if any(p.matches(path) for p in patterns):
            return True
        return self.baseline_allows(category, path, base)

    def violations(self, result) -> dict:
        """``{path: [operations]}`` for every access the policy does not
        allow, leaving out what the harness itself did (sandbox_py/harness.py:
        bytecode caches, pytest's capture files, interpreter start-up,
        package metadata, sandbox_py's own files)."""
        from .harness import Harness, capture_paths
        out: dict = {}
        base = self.baseline()
        harness = Harness(capture_paths(self.item.config, self.item))
        for category in OPERATION:
            for path in getattr(result, category):
                if self.allows(category, path, base):
                    continue
                if harness.allows(category, path, result, base["imports"]):
                    continue
                out.setdefault(path, []).append(OPERATION[category])
        return out

    def describe(self) -> str:
        parts = [repr(p) for p in self.allow] + ["%r (read-only)" % p for p in self.allow_read]
        return ", ".join(parts) if parts else "nothing beyond the baseline"


class SandboxCheck:
    """The ``sandbox_check`` fixture: extends the running test's policy."""

    def __init__(self, policy: TestPolicy):
        self._policy = policy

    def allow(self, *patterns) -> None:
        """Let the test touch ``patterns`` in any way."""
        self._policy.add(patterns)

    def allow_read(self, *patterns) -> None:
        """Let the test read, probe and list ``patterns``."""
        self._policy.add(patterns, read_only=True)

    @property
    def mode(self) -> str:
        return self._policy.mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError("mode must be one of %s" % ", ".join(MODES))
        self._policy.mode = value


_POLICY = pytest.StashKey[Optional[TestPolicy]]()
#: The traced Result of a checked test's call, for other plugins and hooks.
RESULT = pytest.StashKey[object]()


def _policy_for(item) -> Optional[TestPolicy]:
    """The test's policy, or None when it is not checked (built once)."""
    if _POLICY in item.stash:
        return item.stash[_POLICY]
    config = item.config
    mode = _mode(config)
    markers = list(item.iter_markers("sandbox"))
    suite_wide = config.getoption("sandbox") or config.getini("sandbox")
    wanted = bool(markers) or suite_wide or "sandbox_check" in getattr(item, "fixturenames", ())
    policy = None
    if wanted and mode != "off":
        for m in markers:       # the closest marker wins
            if m.kwargs.get("mode"):
                mode = m.kwargs["mode"]
                if mode not in MODES:
                    raise pytest.UsageError("%s: sandbox marker mode must be one of %s, "
                                            "not %r" % (item.nodeid, ", ".join(MODES), mode))
                break
        policy = TestPolicy(item, mode)
        policy.add(config.getini("sandbox_allow"))
        policy.add(config.getoption("sandbox_allow") or ())
        policy.add(config.getini("sandbox_allow_read"), read_only=True)
        policy.add(config.getoption("sandbox_allow_read") or (), read_only=True)
        for m in markers:
            policy.add(m.kwargs.get("allow", ()))
            policy.add(m.args)
            policy.add(m.kwargs.get("allow_read", ()), read_only=True)
    item.stash[_POLICY] = policy
    return policy


@pytest.fixture
def sandbox_check(request) -> SandboxCheck:
    """Checks the test's file accesses; ``sandbox_check.allow(...)`` and
    ``sandbox_check.allow_read(...)`` declare more at run time."""
    policy = _policy_for(request.node)
    if policy is None:       # --sandbox-mode=off
        policy = TestPolicy(request.node, "off")
    return SandboxCheck(policy)


def _format(item, policy: TestPolicy, result, violations: dict) -> str:
    from .display import printable_path
    lines = ["sandbox_py: %s touched %d path%s it does not declare%s:" % (
        item.name, len(violations), "" if len(violations) == 1 else "s",
        " (mode=enforce: refused by the system where it can; a probe is a refused "
        "call or a stat, which cannot be refused)" if policy.mode == "enforce" else "")]
    for path in sorted(violations)[:LISTED]:
        lines.append("  %-12s %s" % ("+".join(violations[path]), printable_path(path)))
        lines.extend("  %-12s by %s" % ("", who) for who in _makers(result, path))
    if len(violations) > LISTED:
        lines.append("  ... and %d more" % (len(violations) - LISTED))
    lines.append("allowed: %s" % policy.describe())
    lines.append("declare more with @pytest.mark.sandbox(allow=[...]), "
                 "sandbox_check.allow(...) or the sandbox_allow ini option")
    lines.append("traced with: %s (%s)" % (result.backend, "complete" if result.complete
                                            else "incomplete: " + "; ".join(result.warnings)))
    return "\n".join(lines)


#: How much of a process's command line a failure shows.
ARGV_SHOWN = 120


def _makers(result, path: str) -> list:
    """Who touched ``path``: each process of ``result.processes`` whose own
    sets hold it, as "pid N (the test process)" or "pid N: argv"."""
    import shlex
    out = []
    for proc in getattr(result, "processes", ()):
        if not proc.categories(path):
            continue
        if proc.pid == os.getpid():
            out.append("pid %d (the test process)" % proc.pid)
            continue
        argv = " ".join(shlex.quote(a) for a in proc.argv) or (proc.path or "?")
        if len(argv) > ARGV_SHOWN:
            argv = argv[:ARGV_SHOWN - 3] + "..."
        text = "pid %d: %s" % (proc.pid, argv)
        if text not in out:
            out.append(text)
    return out


#: (Landlock ruleset, running trace) of an enforced test's call.
_TRACER = pytest.StashKey[object]()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """mode="enforce": run the test function in a forked child restricted
    to what the test declares (sandbox_py/pytest_enforce.py)."""
    policy = pyfuncitem.stash.get(_POLICY, None)
    if policy is None or policy.mode != "enforce" or _TRACER not in pyfuncitem.stash:
        return None
    from . import pytest_enforce
    if pytest_enforce.IN_CHILD:
        return None             # in the child: pytest runs the function itself
    ruleset, tracer = pyfuncitem.stash[_TRACER]
    pytest_enforce.run_forked(pyfuncitem, ruleset, tracer)
    return True


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item):
    # trylast: innermost wrapper, so pytest's own machinery around the call
    # (capture, logging) is outside the trace.
    policy = _policy_for(item)
    if policy is None or policy.mode == "off":
        return (yield)
    from .inprocess import trace
    backend = _backend(item.config)
    wait = float(item.config.getini("sandbox_wait"))
    ruleset = None
    if policy.mode == "enforce":
        from . import pytest_enforce
        ruleset = pytest_enforce.prepare(item, policy)
    # daemons a test starts and leaves running (sandbox(breakaway=[...]))
    breakaway = [b for m in item.iter_markers("sandbox") for b in m.kwargs.get("breakaway", ())]
    tracer = trace(backend, wait=wait, breakaway=breakaway or None)
    tracer.announce = False         # said per test, below
    tracer.start()
    if ruleset is not None:
        item.stash[_TRACER] = (ruleset, tracer)
    try:
        outcome = yield
    except BaseException as e:
        if _TRACER in item.stash:
            del item.stash[_TRACER]
        if ruleset is not None:
            ruleset.close()
        result = tracer.stop(1)
        item.stash[RESULT] = result
        _partly_checked(item, result)
        violations = policy.violations(result)
        if policy.mode == "enforce" and type(e).__name__ == "ChildFailed":
            # The refusal is usually why the test failed: name it with the
            # failure, not apart from it.
            text = e.text + ("\n\n" + _format(item, policy, result, violations)
                             if violations else "")
            # from None: the child's failure is in the text already
            raise pytest.fail.Exception(text, pytrace=False) from None
        if violations:
            # The test failed on its own; the accesses are context, not the cause.
            item.add_report_section("call", "sandbox", _format(item, policy, result, violations))
        raise
    if _TRACER in item.stash:
        del item.stash[_TRACER]
    if ruleset is not None:
        ruleset.close()
    result = tracer.stop(0)
    item.stash[RESULT] = result
    _partly_checked(item, result)
    violations = policy.violations(result)
    if violations and policy.mode != "off":
        message = _format(item, policy, result, violations)
        if policy.mode == "warn":
            item.add_report_section("call", "sandbox", message)
            warnings.warn(SandboxAccessWarning(message))
        else:
            pytest.fail(message, pytrace=False)
    return outcome


def _partly_checked(item, result) -> None:
    """Count how the test was checked; a test whose mechanism could not see
    part of what it did is said to be partly checked, every time."""
    item.user_properties.append((_PROPERTY, "%s:%s" % (
        result.backend, "full" if result.complete else "partial")))
    if result.complete:
        return
    reasons = list(result.warnings)
    if result.backend == "audit":
        no_shim = item.config.stash.get(_NO_SHIM, None)
        reasons.append("to see C code in the test process without root, run with "
                       "--sandbox (the session is then re-executed under the preload "
                       "shim) or --sandbox-backend=preload" if no_shim is None else
                       "the session was not re-executed under the preload shim: "
                       + no_shim)
    warnings.warn(SandboxIncompleteWarning(
        "sandbox_py: %s was only partly checked (%s): %s" % (
            item.name, MECHANISM.get(result.backend, result.backend), "; ".join(reasons))))


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for name, value in getattr(report, "user_properties", ()):
        if name == _PROPERTY:
            backend, _, how = str(value).partition(":")
            counts = _session_counts(report)
            if counts is not None:
                key = (backend, how == "full")
                counts[key] = counts.get(key, 0) + 1


_CONFIG = []        # the session's config, for the report hook (it gets no config)


def _session_counts(report) -> Optional[dict]:
    return _CONFIG[-1].stash.get(_CHECKED, None) if _CONFIG else None


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    _CONFIG.append(session.config)


def pytest_unconfigure(config):
    if _CONFIG and _CONFIG[-1] is config:
        _CONFIG.pop()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = config.stash.get(_CHECKED, None)
    if not counts:
        return
    total = sum(counts.values())
    full = sum(n for (_, ok), n in counts.items() if ok)
    parts = []
    for (backend, ok), n in sorted(counts.items(), key=lambda kv: (not kv[0][1], kv[0][0])):
        parts.append("%d %s by %s" % (n, "fully" if ok else "partly",
                                      MECHANISM.get(backend, backend)))
    terminalreporter.write_line(
        "sandbox_py: %d test%s checked, %d fully: %s%s" % (
            total, "" if total == 1 else "s", full, ", ".join(parts),
            "" if full == total else " (each partly checked test has a "
            "SandboxIncompleteWarning saying what was not seen)"))
