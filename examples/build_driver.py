"""A small caching build driver: a step is skipped when nothing it *really*
depended on has changed.

Each step runs under ``Sandbox()``.  Its Result (what the whole process
tree read, probed and listed) and ``Result.fingerprint()`` are stored in a
cache file.  Next time, the stored Result is fingerprinted again against
the tree as it is now: same fingerprint, same inputs, skip.  Because probes
are part of it, a header *created* in an include directory searched before
the one that was used also reruns the step -- the case mtime-based tools
miss.

    python examples/build_driver.py PROJECT [-I DIR]... [-o PROGRAM]

compiles PROJECT/*.c into PROJECT/PROGRAM, printing "run" or "skip" per step.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from dataclasses import dataclass, field

from sandbox_py import Result, Sandbox
from sandbox_py.fingerprint import input_states

CACHE_NAME = ".sandbox_py-cache.json"


@dataclass
class Step:
    name: str
    argv: list
    outputs: list = field(default_factory=list)


class Driver:
    def __init__(self, root: str, sandbox: Sandbox | None = None, log=print):
        self.root = os.path.abspath(root)
        self.sandbox = sandbox or Sandbox()
        self.log = log
        self.cache_path = os.path.join(self.root, CACHE_NAME)
        try:
            with open(self.cache_path) as f:
                self.cache = json.load(f)
        except (OSError, ValueError):
            self.cache = {}

    def why_stale(self, step: Step) -> str | None:
        """None when ``step`` is up to date, else the reason it must run."""
        entry = self.cache.get(step.name)
        if entry is None:
            return "never built"
        if entry["argv"] != step.argv:
            return "command changed"
        missing = [o for o in step.outputs if not os.path.exists(os.path.join(self.root, o))]
        if missing:
            return "output missing: %s" % missing[0]
        recorded = Result.from_json(entry["result"])
        if recorded.fingerprint() == entry["fingerprint"]:
            return None
        # Say which input moved: compare with the states stored at build time.
        before = {(c, p): s for c, p, s in entry["states"]}
        for category, path, state in input_states(recorded):
            if before.get((category, path)) != state:
                return "%s input changed: %s (%s -> %s)" % (
                    category, os.path.relpath(path, self.root),
                    before.get((category, path), "?")[:12], state[:12])
        return "inputs changed"

    def run(self, step: Step) -> bool:
        """Run ``step`` unless it is up to date; True when it ran."""
        reason = self.why_stale(step)
        if reason is None:
            self.log("skip %s" % step.name)
            return False
        self.log("run  %s (%s)" % (step.name, reason))
        result = self.sandbox.run(step.argv, cwd=self.root, check=True)
        # Pseudo files are never inputs; dropping them keeps the cache small.
        result = result.filtered(pseudo=False)
        self.cache[step.name] = {
            "argv": step.argv, "result": result.to_json(),
            "fingerprint": result.fingerprint(),
            "states": [list(s) for s in input_states(result)],
        }
        tmp = self.cache_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.cache, f)
        os.replace(tmp, self.cache_path)
        return True


def c_program_steps(root: str, include_dirs=(), program: str = "app", cc: str = "cc") -> list:
    """Compile each ``root/*.c`` to an object, then link them."""
    sources = sorted(os.path.basename(p) for p in glob.glob(os.path.join(root, "*.c")))
    flags = [f for d in include_dirs for f in ("-I", d)]
    steps = [Step("compile " + s, [cc, *flags, "-c", s, "-o", s[:-2] + ".o"], [s[:-2] + ".o"])
             for s in sources]
    objects = [s[:-2] + ".o" for s in sources]
    steps.append(Step("link " + program, [cc, *objects, "-o", program], [program]))
    return steps


def build(root: str, include_dirs=(), program: str = "app", log=print) -> list:
    """Build ``root``; returns the names of the steps that ran."""
    driver = Driver(root, log=log)
    return [s.name for s in c_program_steps(root, include_dirs, program) if driver.run(s)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("project")
    ap.add_argument("-I", dest="include", action="append", default=[], metavar="DIR")
    ap.add_argument("-o", dest="program", default="app")
    opts = ap.parse_args(argv)
    ran = build(opts.project, opts.include, opts.program)
    print("%d step(s) ran" % len(ran))
    return 0


if __name__ == "__main__":
    sys.exit(main())
