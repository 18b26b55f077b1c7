"""``mode="enforce"`` of the pytest plugin (docs/pytest.md): the test's call
runs in a forked child that restricts itself with Landlock to what the test
declares, so an undeclared access is refused by the kernel, not only found
afterwards.

Landlock cannot be lifted from a process once applied, and the pytest
process must go on to run other tests: hence the fork.  Fixtures are set up
and torn down in the pytest process as usual; the child inherits them, runs
the test function, and sends its outcome back.  The trace still runs (the
eBPF backend follows the child from the pytest process; under audit hooks
the child sends what its hooks recorded), and the check of the test's
declarations is the same as in ``fail`` mode.

Imported only when a test is enforced.
"""
from __future__ import annotations

import os
import pickle
import sys
import warnings

import pytest

#: Set in the forked child: the plugin's pytest_pyfunc_call then lets
#: pytest's own implementation run the test function.
IN_CHILD = False


class ChildFailed(Exception):
    """The test failed in the enforced child; ``text`` is pytest's report
    of it, as the child rendered it."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


#: Import files granted one by one below an import-path entry (the project)
#: before the whole entry is made readable instead (and a warning says so):
#: each is a rule, added for every enforced test.
IMPORT_FILES_MAX = 5000
_import_files: dict = {}


def _import_rules(entry: str) -> tuple:
    """([(path, kind)], note) letting the import system use ``entry`` as
    the trace check allows it (docs/pytest.md): list every directory, read
    *.py, *.pyc, *.so, *.pth files -- and not the project's data files."""
    from ._landlock import LIST, READ
    from .harness import IMPORT_SUFFIXES
    if entry not in _import_files:
        files, note = [], ""
        for d, dirs, names in os.walk(entry):
            dirs[:] = [n for n in dirs if not n.startswith(".")]
            files.extend(os.path.join(d, n) for n in names if n.endswith(IMPORT_SUFFIXES))
            if len(files) > IMPORT_FILES_MAX:
                files, note = [], ("%s holds more than %d importable files: enforced as "
                                   "readable as a whole" % (entry, IMPORT_FILES_MAX))
                break
        rules = [(entry, READ)] if note else [(entry, LIST)] + [(f, READ) for f in files]
        _import_files[entry] = (rules, note)
    return _import_files[entry]


def landlock_policy(test_policy) -> tuple:
    """(a sandbox_py.Policy of the Landlock trees for a test's declarations,
    further [(path, kind)] rules, notes): what ``allow`` names may be
    written; what ``allow_read`` names and the Python installation may be
    read; the import path may be listed and its modules read.  A pattern
    with wildcards is enforced on its deepest literal directory (Landlock
    knows trees, not patterns); the trace check keeps the exact pattern."""
    from .paths import under
    from .policy import Policy
    base = test_policy.baseline()
    write = list(base["full"]) + [p.literal_dir for p in test_policy.allow]
    read = list(base["read"]) + [p.literal_dir for p in test_policy.allow_read]
    policy = Policy(read=read, write=write, system=True).resolved("/")
    rules, notes = [], []
    for entry in base["imports"]:
        entry = os.path.realpath(entry)
        if not os.path.isdir(entry) or any(under(entry, t) for t in policy.read + policy.write):
            continue
        more, note = _import_rules(entry)
        rules += more
        if note:
            notes.append(note)
    return policy, rules, notes


def own_files() -> list:
    """Files sandbox_py itself needs inside the child: the preload shim when
    the audit backend follows the test's child processes, the ptrace
    launcher for a test that runs Sandbox() itself."""
    from ._landlock import EXECUTE, READ
    kinds = {"read": READ, "execute": READ | EXECUTE}
    own = []
    try:
        from ._backends import preload, ptrace
        own += [(path, kinds[kind]) for backend in (preload, ptrace)
                for path, kind in backend.own_files()]
    except ImportError:
        pass
    return [(p, k) for p, k in own if os.path.exists(p)]


def _send(fd: int, payload: dict) -> None:
    data = pickle.dumps(payload)
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _portable(w) -> tuple:
    """A caught warning as (category, message, filename, lineno), its
    category replaced by UserWarning when it cannot be pickled."""
    category = w.category
    try:
        pickle.loads(pickle.dumps(category))
    except Exception:              # noqa: BLE001
        category = UserWarning
    return category, str(w.message), w.filename, w.lineno


def _child(pyfuncitem, ruleset, tracer, w: int) -> None:
    """In the forked child: restrict, run the test function, report."""
    global IN_CHILD
    IN_CHILD = True
    payload = {}
    caught: list = []
    try:
        ruleset.preexec()
        with warnings.catch_warnings(record=True) as caught:
            pyfuncitem.ihook.pytest_pyfunc_call(pyfuncitem=pyfuncitem)
    except BaseException as e:     # noqa: BLE001 - everything goes to the parent
        excinfo = pytest.ExceptionInfo.from_exception(e)
        try:
            payload["text"] = str(pyfuncitem.repr_failure(excinfo))
        except Exception:          # noqa: BLE001
            payload["text"] = "%s: %s" % (type(e).__name__, e)
        # a skip, an xfail or pytest.exit is raised again as itself in the
        # pytest process (pytest's outcome exceptions do not pickle)
        for kind, cls in (("skip", pytest.skip.Exception), ("xfail", pytest.xfail.Exception),
                          ("exit", pytest.exit.Exception)):
            if isinstance(e, cls):
                payload["outcome"] = (kind, getattr(e, "msg", None) or str(e))
                break
    payload["warnings"] = [_portable(w) for w in caught]
    impl = getattr(tracer, "_impl", None)
    if hasattr(impl, "_sets"):     # audit hooks: what they recorded here
        payload["audit"] = ({c: set(s) for c, s in impl._sets.items()},
                            list(impl._execs), list(impl._unseen))
    _send(w, payload)


def prepare(item, test_policy):
    """The test's Landlock ruleset, built before its trace starts (resolving
    and opening the trees is the harness's doing, not the test's)."""
    from . import _landlock
    if not sys.platform.startswith("linux"):
        pytest.fail("sandbox mode 'enforce' is implemented on Linux only (docs/pytest.md)",
                    pytrace=False)
    version, why = _landlock.abi()
    if not version:
        pytest.fail("sandbox mode 'enforce' needs Landlock: %s" % why, pytrace=False)
    policy, rules, notes = landlock_policy(test_policy)
    if notes:
        import warnings
        from .errors import SandboxIncompleteWarning
        warnings.warn(SandboxIncompleteWarning("sandbox_py: %s is enforced only in part: %s"
                                               % (item.name, "; ".join(notes))))
    return _landlock.Ruleset(policy, own_files() + rules)


def run_forked(pyfuncitem, ruleset, tracer) -> None:
    """Run the test function in a child restricted to ``ruleset``; raise
    what it raised (skips and xfails as themselves, failures as
    ChildFailed).  ``ruleset`` is closed here."""
    from ._landlock import READ, WRITE
    impl = getattr(tracer, "_impl", None)
    if hasattr(impl, "_follow_children"):
        # Audit hooks: start following child processes here, in the pytest
        # process (its reader must outlive the child), and let the child's
        # processes write the shim's log.
        impl._follow_children(named=True)
        children = getattr(impl, "_children", None)
        if children is not None:
            ruleset.allow(children.log_path, READ | WRITE)
    r, w = os.pipe()
    # Audit hooks see os.fork and note that a forked process is not
    # followed: this one is (it sends its records back).
    unseen = list(getattr(impl, "_unseen", ()))
    try:
        pid = os.fork()
    except BaseException:
        ruleset.close()
        os.close(r)
        os.close(w)
        raise
    if hasattr(impl, "_unseen"):
        impl._unseen[:] = unseen
    if pid == 0:
        status = 1
        try:
            os.close(r)
            _child(pyfuncitem, ruleset, tracer, w)
            status = 0
        finally:
            os._exit(status)
    ruleset.close()
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    try:
        payload = pickle.loads(b"".join(chunks)) if chunks else None
    except Exception:              # noqa: BLE001
        payload = None
    if payload is None:
        raise ChildFailed("the test's enforced process ended without a report (%s)"
                          % _status(status))
    for category, message, filename, lineno in payload.get("warnings", ()):
        # raised again here, where pytest's warning capture sees them
        warnings.warn_explicit(message, category, filename, lineno)
    if "audit" in payload and hasattr(impl, "_sets"):
        sets, execs, unseen = payload["audit"]
        for c, s in sets.items():
            impl._sets[c] |= s
        impl._execs.extend(execs)
        impl._unseen.extend(u for u in unseen if u not in impl._unseen)
    if "outcome" in payload:
        kind, msg = payload["outcome"]
        if kind == "skip":
            try:    # reported at the test, as a skip inside it would be
                raise pytest.skip.Exception(msg, _use_item_location=True)
            except TypeError:
                pass
        getattr(pytest, kind)(msg)
    if "text" in payload:
        raise ChildFailed(payload["text"])


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return "killed by signal %d" % os.WTERMSIG(status)
    return "exit status %d" % os.WEXITSTATUS(status)
