"""A small caching build driver on ``sandbox_py.memo``: a step is restored,
not rerun, when nothing it *really* depended on has changed.

Every step goes through ``Memo.run``: the first time it runs under the
tracer and its outputs are stored; afterwards, while every file it read has
the same content, every path it probed is still there or still absent, and
every directory it listed has the same names, its outputs are restored from
the cache instead.  Because probes count, a header *created* in an include
directory searched before the one that was used reruns the step -- the
case mtime- and declared-dependency-based tools miss.  Compiles run in
parallel (``run_many``), then the link.

    python examples/build_driver.py PROJECT [-I DIR]... [-o PROGRAM] [-j N]

compiles PROJECT/*.c into PROJECT/PROGRAM, printing per step whether it
ran (and why) or was restored.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

from sandbox_py.memo import Memo

CACHE_NAME = ".sandbox_py-memo"


def c_program_steps(root: str, include_dirs=(), program: str = "app", cc: str = "cc") -> list:
    """``(name, argv)`` pairs: compile each ``root/*.c`` to an object, then link."""
    sources = sorted(os.path.basename(p) for p in glob.glob(os.path.join(root, "*.c")))
    flags = [f for d in include_dirs for f in ("-I", d)]
    steps = [("compile " + s, [cc, *flags, "-c", s, "-o", s[:-2] + ".o"]) for s in sources]
    steps.append(("link " + program, [cc, *[s[:-2] + ".o" for s in sources], "-o", program]))
    return steps


def build(root: str, include_dirs=(), program: str = "app", log=print, jobs: int = 2) -> list:
    """Build ``root``; returns the names of the steps that ran."""
    root = os.path.abspath(root)
    # The cache lives in the tree and paths are stored relative to it, so a
    # copy of the tree elsewhere (with its cache) is up to date too.
    memo = Memo(os.path.join(root, CACHE_NAME), root=root, env_keys=["CC"])
    steps = c_program_steps(root, include_dirs, program)
    compiles, link = steps[:-1], steps[-1]
    # The compiles are independent of each other; the link needs them all.
    results = memo.run_many([{"argv": argv, "cwd": root} for _, argv in compiles],
                            jobs=jobs, check=True)
    results.append(memo.run(link[1], cwd=root, check=True))
    ran = []
    for (name, _), r in zip(steps, results):
        if r.memo.status == "hit":
            log("hit  %s" % name)
        else:
            log("run  %s (%s)" % (name, r.memo.why or r.memo.status))
            ran.append(name)
    return ran


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("project")
    ap.add_argument("-I", dest="include", action="append", default=[], metavar="DIR")
    ap.add_argument("-o", dest="program", default="app")
    ap.add_argument("-j", dest="jobs", type=int, default=2)
    opts = ap.parse_args(argv)
    ran = build(opts.project, opts.include, opts.program, jobs=opts.jobs)
    print("%d step(s) ran" % len(ran))
    return 0


if __name__ == "__main__":
    sys.exit(main())
