"""Trace a real build and show what it depended on.

Copies sandbox_py's own portable C core (pathset, pathnorm, result) into a
temporary directory with a small Makefile, runs ``make -j2`` under
``Sandbox()``, and prints what the whole process tree (make, the compiler
driver, cc1, as, ar) read, wrote, probed and listed.

    .venv/bin/python examples/trace_build.py [--keep] [--json FILE]
"""
import argparse
import os
import shutil
import sys
import tempfile

from sandbox_py import Sandbox
from sandbox_py.display import printable_path, summary_text

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(os.path.dirname(HERE), "csrc", "core")
SOURCES = ["pathset.c", "pathnorm.c", "result.c"]
HEADERS = ["pathset.h", "pathnorm.h", "result.h", "access.h", "access_ops.h"]

MAKEFILE = """\
CFLAGS = -O2 -Wall -std=gnu11
OBJS = pathset.o pathnorm.o result.o

libsbxcore.a: $(OBJS)
\tar rcs $@ $^

%.o: %.c
\t$(CC) $(CFLAGS) -c $< -o $@
"""


def prepare(workdir: str) -> None:
    for name in SOURCES + HEADERS:
        shutil.copy(os.path.join(CSRC, name), workdir)
    with open(os.path.join(workdir, "Makefile"), "w") as f:
        f.write(MAKEFILE)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the build directory")
    ap.add_argument("--json", metavar="FILE", help="also save the Result as JSON")
    opts = ap.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="sandbox_py-build-")
    try:
        prepare(workdir)
        print("building %s with make -j2 under Sandbox() ..." % workdir, file=sys.stderr)
        result = Sandbox().run(["make", "-j2"], cwd=workdir, capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            print("make failed with status %d" % result.returncode, file=sys.stderr)
            return result.returncode
        if opts.json:
            with open(opts.json, "w") as f:
                f.write(result.to_json(indent=2))

        print(summary_text(result.filtered(pseudo=False)))
        local = result.filtered(under=workdir)
        print("\nin the build directory (%s):" % workdir)
        for category in ("reads", "writes", "probes", "enumerations"):
            names = [os.path.relpath(p, workdir) for p in getattr(local, category)]
            print("  %-13s %s" % (category, " ".join(printable_path(n) for n in names) or "-"))
        programs = sorted({os.path.basename(e.path) for e in result.execs})
        print("\nprograms run (%d execs): %s" % (len(result.execs), ", ".join(programs)))
        headers = sorted(p for p in result.reads if p.endswith(".h")
                         and not p.startswith(workdir + "/"))
        print("system headers read: %d (e.g. %s)" % (
            len(headers), ", ".join(os.path.basename(h) for h in headers[:5]) or "-"))
        absent = [p for p in result.filtered(system=True).probes
                  if p.endswith(".h") and not os.path.exists(p)]
        print("headers looked for but absent: %d (a cache must rerun if one appears)"
              % len(absent))
        print("fingerprint of the build's inputs: %s" % result.fingerprint())
        return 0
    finally:
        if opts.keep:
            print("kept %s" % workdir, file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
