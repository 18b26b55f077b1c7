"""The command line: ``sandbox-py [options] -- CMD ARGS...``,
``sandbox-py diff OLD.json NEW.json`` and ``sandbox-py memo -- CMD ARGS...``.
See docs/cli.md and docs/memo.md."""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
from typing import Optional

from .display import (CATEGORIES, command_line, printable_path, process_tree_text,
                      summary_text)
from .result import Result

#: Exit statuses of our own failures, as env(1) and timeout(1) use them.
EXIT_TOOL_FAILED = 125
EXIT_NOT_FOUND = 127
#: The command succeeded but touched what the policy (--read/--write/--exec)
#: does not allow: a CI step must not pass silently.
EXIT_DENIED = 3
#: Seconds before the live line appears: short runs would just flicker.
LIVE_AFTER = float(os.environ.get("SANDBOX_PY_LIVE_AFTER", "1.0"))


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sandbox-py",
        usage="%(prog)s [options] -- CMD [ARGS...]\n       %(prog)s diff OLD.json NEW.json"
              "\n       %(prog)s compdb [-o FILE] [--deps FILE] -- CMD [ARGS...]"
              "\n       %(prog)s doctor",
        description="Run CMD, pass its exit status through, and report every file its "
                    "process tree read, wrote, probed and listed (summary on stderr).")
    p.add_argument("--json", action="store_true",
                   help="print the full Result as JSON (docs/json-schema.md) on stderr "
                        "instead of the summary (mixed with the command's own stderr: "
                        "programs should use --json-file)")
    p.add_argument("--json-file", "-o", "--output", dest="output", metavar="FILE",
                   help="also write the Result as JSON to FILE, apart from the "
                        "command's output ('-' for stdout, after the command's own)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary")
    p.add_argument("--processes", action="store_true",
                   help="add the process tree to the summary: each process's argv, pid, "
                        "exit status and counts of what it read, wrote, probed, listed")
    add_filter_options(p)
    p.add_argument("--top", type=int, default=5, metavar="N",
                   help="directories listed per category in the summary (default 5)")
    p.add_argument("--backend", default="auto",
                   help="tracing backend (default auto: the most complete available)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="kill the whole process tree after SECONDS")
    p.add_argument("--live", choices=("auto", "always", "never"), default="auto",
                   help="live progress line on stderr (auto: when stderr is a terminal)")
    p.add_argument("--breakaway", action="append", default=[], metavar="NAME",
                   help="a program (name or absolute path) that leaves the run at its exec: "
                        "a build daemon, neither traced nor waited for; repeatable")
    pol = p.add_argument_group(
        "policy", "limit what the command may touch (docs/enforcement.md); any of "
        "these turns the policy on, with the installed system readable")
    pol.add_argument("--read", action="append", default=[], metavar="PATH",
                     help="a tree the command may read, probe and list (repeatable)")
    pol.add_argument("--write", action="append", default=[], metavar="PATH",
                     help="a tree the command may also create, change and remove in "
                          "(repeatable)")
    pol.add_argument("--exec", action="append", dest="execute", metavar="PATH",
                     help="a tree of programs the command may run (repeatable; default: "
                          "the --read and --write trees and the system)")
    pol.add_argument("--on-violation", choices=("deny", "report"), default="deny",
                     help="deny (default): the system refuses what the policy does not "
                          "allow; report: nothing is refused, violations are listed")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    return p


def add_filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exclude-system", action="store_true",
                   help="drop the installed system (/usr, /lib, /etc, ...)")
    p.add_argument("--exclude-pseudo", action="store_true",
                   help="drop /proc, /sys, /dev, pipes and sockets")
    p.add_argument("--under", action="append", metavar="DIR",
                   help="keep only paths below DIR (repeatable)")
    p.add_argument("--ignore", action="append", metavar="GLOB", default=[],
                   help="drop paths matching GLOB, matched against the whole path, "
                        "'*' also matching '/' (repeatable; e.g. '/tmp/cc*')")


def apply_filters(result: Result, opts) -> Result:
    if not (opts.exclude_system or opts.exclude_pseudo or opts.under or opts.ignore):
        return result
    return result.filtered(pseudo=not opts.exclude_pseudo, system=not opts.exclude_system,
                           under=opts.under, ignore=opts.ignore)


class LiveLine:
    """A spinner with the elapsed time, redrawn on stderr while the command
    runs.  The run API reports events only at the end, so there are no
    counts to show mid-run."""

    FRAMES = "|/-\\"

    def __init__(self, stream, label: str):
        self.stream = stream
        self.label = label
        self.stopped = threading.Event()
        self.drawn = False
        self.thread = threading.Thread(target=self._loop, name="sandbox-py live line",
                                       daemon=True)

    def __enter__(self) -> "LiveLine":
        self.start = time.monotonic()
        self.frames = itertools.cycle(self.FRAMES)
        if LIVE_AFTER <= 0:
            self._draw()
        self.thread.start()
        return self

    def _draw(self) -> None:
        elapsed = time.monotonic() - self.start
        # \r + erase-line: the command's own output may share the terminal.
        self.stream.write("\r\x1b[K%s %6.1fs  tracing %s" % (next(self.frames), elapsed,
                                                             self.label))
        self.stream.flush()
        self.drawn = True

    def _loop(self) -> None:
        if self.stopped.wait(max(LIVE_AFTER, 0)):
            return
        while True:
            self._draw()
            if self.stopped.wait(0.2):
                return

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def exit_status(returncode: int) -> int:
    """A shell's view of a subprocess status: killed by signal N -> 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def _write_json(result: Result, target: str) -> None:
    text = result.to_json(indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with open(target, "w", encoding="ascii") as f:
            f.write(text)


def run_main(argv: list) -> int:
    opts = _run_parser().parse_args(argv)
    command = opts.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        _run_parser().print_usage(sys.stderr)
        sys.stderr.write("sandbox-py: no command given (put it after --)\n")
        return 2

    from . import Policy, Sandbox
    from .errors import SandboxError, TimeoutExpired
    label = command_line(command)
    policy = None
    if opts.read or opts.write or opts.execute:
        policy = Policy(read=opts.read, write=opts.write, execute=opts.execute,
                        on_violation=opts.on_violation)
    live = opts.live == "always" or (opts.live == "auto" and sys.stderr.isatty()
                                     and not opts.json)
    try:
        sandbox = Sandbox(opts.backend)
        if live:
            with LiveLine(sys.stderr, label):
                result = sandbox.run(command, timeout=opts.timeout, policy=policy,
                                     breakaway=opts.breakaway or None)
        else:
            result = sandbox.run(command, timeout=opts.timeout, policy=policy,
                                 breakaway=opts.breakaway or None)
    except FileNotFoundError as e:
        sys.stderr.write("sandbox-py: %s: %s\n" % (label, e.strerror or e))
        return EXIT_NOT_FOUND
    except TimeoutExpired as e:
        sys.stderr.write("sandbox-py: %s: killed after %gs\n" % (label, opts.timeout))
        result = e.result
    except SandboxError as e:
        sys.stderr.write("sandbox-py: %s\n" % e)
        return EXIT_TOOL_FAILED

    result = apply_filters(result, opts)
    if opts.output:
        _write_json(result, opts.output)
    if opts.json:
        sys.stderr.write(result.to_json(indent=2) + "\n")
    elif not opts.quiet:
        sys.stderr.write(summary_text(result, top=opts.top) + "\n")
        if opts.processes:
            sys.stderr.write(process_tree_text(result) + "\n")
    if result.returncode == 0 and result.denied:
        return EXIT_DENIED
    return exit_status(result.returncode)


# -- diff ---------------------------------------------------------------------------

def diff_results(old: Result, new: Result) -> dict:
    """``{category: {"added": [...], "removed": [...]}}`` for the path
    categories and for execs (by program path); only categories that differ."""
    out = {}
    for cat in CATEGORIES:
        a, b = getattr(old, cat), getattr(new, cat)
        added, removed = sorted(b - a), sorted(a - b)
        if added or removed:
            out[cat] = {"added": added, "removed": removed}
    a = {e.path for e in old.execs}
    b = {e.path for e in new.execs}
    if a != b:
        out["execs"] = {"added": sorted(b - a), "removed": sorted(a - b)}
    return out


def format_diff(diff: dict, old_name: str, new_name: str) -> str:
    if not diff:
        return "no difference between %s and %s" % (old_name, new_name)
    lines = ["--- %s" % old_name, "+++ %s" % new_name]
    for cat, change in diff.items():
        lines.append("%s: %d added, %d removed" % (cat, len(change["added"]),
                                                   len(change["removed"])))
        lines.extend("  + %s" % printable_path(p) for p in change["added"])
        lines.extend("  - %s" % printable_path(p) for p in change["removed"])
    return "\n".join(lines)


def diff_main(argv: list) -> int:
    p = argparse.ArgumentParser(
        prog="sandbox-py diff",
        description="Compare two saved results (sandbox-py -o FILE): what the second "
                    "run started or stopped reading, writing, probing, listing and "
                    "executing.  Exit status 0 when they are the same, 1 when they "
                    "differ, 2 on error.")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--json", action="store_true", help="print the difference as JSON")
    add_filter_options(p)
    opts = p.parse_args(argv)
    results = []
    for name in (opts.old, opts.new):
        try:
            with open(name, encoding="utf-8") as f:
                results.append(apply_filters(Result.from_json(f.read()), opts))
        except (OSError, ValueError, KeyError) as e:
            sys.stderr.write("sandbox-py diff: %s: %s\n" % (name, e))
            return 2
    diff = diff_results(*results)
    if opts.json:
        import json
        sys.stdout.write(json.dumps(diff, indent=2, ensure_ascii=True) + "\n")
    else:
        sys.stdout.write(format_diff(diff, opts.old, opts.new) + "\n")
    return 1 if diff else 0


def main(argv: Optional[list] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "diff":
        return diff_main(argv[1:])
    if argv and argv[0] == "doctor":
        from .doctor import main as doctor_main
        return doctor_main(argv[1:])
    if argv and argv[0] == "memo":
        return memo_main(argv[1:])
    if argv and argv[0] == "compdb":
        return compdb_main(argv[1:])
    return run_main(argv)


# -- compdb -------------------------------------------------------------------------
def _add_command_arguments(p: argparse.ArgumentParser) -> None:
    """--backend, --timeout and the command after --: the subcommands that
    run a command take them alike."""
    p.add_argument("--backend", default="auto", help="tracing backend (default auto)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="kill the whole process tree after SECONDS")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")


def _command(p: argparse.ArgumentParser, opts) -> Optional[list]:
    """The command after --, or None after saying on stderr that it is missing."""
    command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    if not command:
        p.print_usage(sys.stderr)
        sys.stderr.write("%s: no command given (put it after --)\n" % p.prog)
        return None
    return command



def compdb_main(argv: list) -> int:
    """``sandbox-py compdb [-o FILE] [--deps FILE] -- CMD``: run a build and
    write the compilation database of what it really compiled."""
    p = argparse.ArgumentParser(
        prog="sandbox-py compdb",
        usage="%(prog)s [-o FILE] [--deps FILE] -- CMD [ARGS...]",
        description="Run a build (make, ninja, cmake --build, a script) and write "
                    "compile_commands.json from the compilers it really ran: each entry "
                    "confirmed by what the compiler read and wrote (docs/compdb.md).  "
                    "Exits with the build's status.")
    p.add_argument("-o", "--output", default="compile_commands.json", metavar="FILE",
                   help="where to write the database (default compile_commands.json; "
                        "'-' for stdout)")
    p.add_argument("--deps", metavar="FILE",
                   help="also write, per output, the sources and headers its compiler "
                        "really read (JSON, docs/compdb.md)")
    _add_command_arguments(p)
    opts = p.parse_args(argv)
    command = _command(p, opts)
    if command is None:
        return 2
    import json

    from . import Sandbox, compdb
    from .errors import SandboxError, TimeoutExpired
    label = command_line(command)
    try:
        result = Sandbox(opts.backend).run(command, timeout=opts.timeout)
    except FileNotFoundError as e:
        sys.stderr.write("sandbox-py compdb: %s: %s\n" % (label, e.strerror or e))
        return EXIT_NOT_FOUND
    except TimeoutExpired as e:
        sys.stderr.write("sandbox-py compdb: %s: killed after %gs\n" % (label, opts.timeout))
        result = e.result
    except SandboxError as e:
        sys.stderr.write("sandbox-py compdb: %s\n" % e)
        return EXIT_TOOL_FAILED
    entries = compdb.entries(result)
    text = json.dumps(entries, indent=2) + "\n"
    if opts.output == "-":
        sys.stdout.write(text)
    else:
        with open(opts.output, "w", encoding="utf-8") as f:
            f.write(text)
    if opts.deps:
        with open(opts.deps, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "outputs": compdb.deps(result)}, f, indent=2)
            f.write("\n")
    sys.stderr.write("sandbox-py compdb: %d entr%s%s (backend %s)\n" % (
        len(entries), "y" if len(entries) == 1 else "ies",
        "" if opts.output == "-" else " in " + opts.output, result.backend))
    for w in result.warnings:
        sys.stderr.write("sandbox-py compdb: warning: %s\n" % printable_path(w))
    return exit_status(result.returncode)


# -- memo ---------------------------------------------------------------------------

def memo_main(argv: list) -> int:
    """``sandbox-py memo [--why] -- CMD``: run CMD or restore its outputs."""
    p = argparse.ArgumentParser(
        prog="sandbox-py memo",
        usage="%(prog)s [options] -- CMD [ARGS...]",
        description="Run CMD, or, when nothing it read, probed or listed has changed "
                    "since an earlier run, restore the files it wrote and replay its "
                    "output and exit status (docs/memo.md).")
    p.add_argument("--why", action="store_true",
                   help="say on stderr whether CMD is restored, and if not which input "
                        "changed")
    p.add_argument("--store", metavar="DIR",
                   default=os.environ.get("SANDBOX_PY_MEMO_DIR", ".sandbox_py-memo"),
                   help="local cache directory (default $SANDBOX_PY_MEMO_DIR or "
                        ".sandbox_py-memo)")
    p.add_argument("--root", metavar="DIR",
                   help="the tree whose paths are stored relative, so that checkouts "
                        "share entries (default: the current directory)")
    p.add_argument("--env", action="append", default=[], metavar="NAME",
                   help="an environment variable that is part of the key (repeatable)")
    p.add_argument("--remote", metavar="URL", default=os.environ.get("SANDBOX_PY_MEMO_REMOTE"),
                   help="shared cache: a Bazel HTTP cache (http://host:8080/cache) or a "
                        "REAPI v2 server (grpc://host:port[/instance], grpcs:// for TLS) "
                        "(default $SANDBOX_PY_MEMO_REMOTE)")
    p.add_argument("--remote-header", action="append", metavar="NAME=VALUE",
                   default=[h for h in os.environ.get("SANDBOX_PY_MEMO_REMOTE_HEADERS",
                                                      "").splitlines() if h.strip()],
                   help="sent with every request to the remote cache, e.g. "
                        "'authorization=Bearer TOKEN' (repeatable; default: the lines of "
                        "$SANDBOX_PY_MEMO_REMOTE_HEADERS, which keeps tokens out of ps)")
    _add_command_arguments(p)
    opts = p.parse_args(argv)
    command = _command(p, opts)
    if command is None:
        return 2

    from .errors import SandboxError, TimeoutExpired
    from .memo import Memo
    label = command_line(command)
    headers = []
    for h in opts.remote_header:
        name, eq, value = h.partition("=")
        if not eq or not name.strip():
            sys.stderr.write("sandbox-py memo: --remote-header wants NAME=VALUE, not %r\n" % h)
            return 2
        headers.append((name.strip(), value.strip()))
    try:
        memo = Memo(opts.store, root=opts.root, env_keys=opts.env, remote=opts.remote,
                    backend=opts.backend, remote_headers=headers)
        result = memo.run(command, timeout=opts.timeout)
    except FileNotFoundError as e:
        sys.stderr.write("sandbox-py memo: %s: %s\n" % (label, e.strerror or e))
        return EXIT_NOT_FOUND
    except TimeoutExpired:
        sys.stderr.write("sandbox-py memo: %s: killed after %gs\n" % (label, opts.timeout))
        return exit_status(-9)
    except (SandboxError, ValueError) as e:
        sys.stderr.write("sandbox-py memo: %s\n" % e)
        return EXIT_TOOL_FAILED
    outcome = result.memo
    if outcome.status == "not cached":
        sys.stderr.write("sandbox-py memo: %s: not cached: %s\n" % (label, outcome.why))
    elif opts.why:
        sys.stderr.write("sandbox-py memo: %s: %s\n" % (
            label, "restored" if outcome.status == "hit" else "ran: " + outcome.why))
    # (the gRPC store has said what happened already, as it happened)
    if memo.remote and memo.remote.down and not getattr(memo.remote, "notes", None):
        sys.stderr.write("sandbox-py memo: remote cache unavailable: %s\n" % memo.remote.down)
    return exit_status(result.returncode)
