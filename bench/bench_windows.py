"""Overhead of the Windows backend under Wine: bare vs traced, same run.

    .venv/bin/python bench/bench_windows.py [--files 5000] [--pairs 11] [--runs 5] [--enforce]

Builds sbx-trace.exe, sbx_hook.dll and tests/windows/read_many.c with
mingw-w64, creates COUNT files of 10 KB, and runs `read_many.exe DIR COUNT`
(open, read to the end, close, for every file) bare and under sbx-trace, in
pairs (which one goes first alternates) with one warm wineserver.  For each
of RUNS repetitions of the PAIRS pairs it prints the median ratio of the
paired runs for the whole command (process start, injection, result
included), for the program's own timing of its loop, and for the CPU time of
the program's process (the hooks' per-access cost); then, per measure, the
median over all pairs, the quartiles of all pairs and the range of the
per-run medians — on a shared machine one run's median alone says little.
Last, the fixed cost of a traced run (the program opening no file, in as
many pairs) and the per-file cost that remains once it is taken away.
Wine is not Windows: absolute times and even ratios differ there
(docs/windows.md).

With --enforce the pair is "traced" (the first column) against "traced and
enforced": the same sbx-trace run with a deny Policy allowing the data, the
program and the system baseline (sandbox_py/policy.py), so every open is
also checked against the policy (docs/enforcement.md).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--pairs", type=int, default=11)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--enforce", action="store_true",
                    help="compare traced with traced under a deny policy")
    opts = ap.parse_args()

    sys.path.insert(0, os.path.join(ROOT, "shims", "windows"))
    import winbuild as build  # noqa: PLC0415  (shims/windows/winbuild.py)
    import wineprefix as wine  # noqa: PLC0415  (shims/windows/wineprefix.py)
    winpath = wine.winpath

    with tempfile.TemporaryDirectory(prefix="sbx-bench-win-") as tmp:
        tools = build.build(os.path.join(tmp, "bin"))
        prog = os.path.join(tmp, "bin", "read_many.exe")
        subprocess.run([build.CC, "-O2", "-municode", "-o", prog,
                        os.path.join(ROOT, "tests", "windows", "read_many.c")], check=True)
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        block = b"x" * 10240
        for i in range(opts.files):
            with open(os.path.join(data, "f%d.txt" % i), "wb") as f:
                f.write(block)
        with wine.WinePrefix(os.path.join(tmp, "prefix")) as w:
            out_json = os.path.join(tmp, "result.json")
            bare_cmd = [prog, winpath(data), str(opts.files)]
            traced_cmd = [tools["exe"], "-o", winpath(out_json), "--",
                          winpath(prog), winpath(data), str(opts.files)]
            if opts.enforce:
                sys.path.insert(0, ROOT)
                from sandbox_py import Policy  # noqa: PLC0415
                from sandbox_py._backends.detours import policy_text  # noqa: PLC0415
                policy = Policy(read=[winpath(data), winpath(os.path.dirname(prog))])
                policy_file = os.path.join(tmp, "policy.txt")
                with open(policy_file, "w", encoding="utf-8") as f:
                    f.write(policy_text(policy.resolved("C:\\", platform="win32")))
                bare_cmd = traced_cmd
                traced_cmd = traced_cmd[:3] + ["--policy", winpath(policy_file)] + traced_cmd[3:]

            def run(cmd):
                t0 = time.perf_counter()
                p = w.run(cmd, capture_output=True, text=True)
                if p.returncode:
                    # say why: a traced run that fails is a finding, not noise
                    raise SystemExit("%s exited with %d:\n%s%s" % (
                        " ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
                loop_s, cpu_s = p.stdout.split()[:2]
                return time.perf_counter() - t0, float(loop_s), float(cpu_s)

            run(bare_cmd), run(traced_cmd)         # warm the page cache and the prefix
            # The fixed cost of a traced run (injection, the hook DLL's start,
            # writing the result), apart from the per-file cost: the same
            # program told to open no file, in pairs like the rest.
            empty_bare = [prog, winpath(data), "0"]
            empty_traced = traced_cmd[:-1] + ["0"]
            fixed = []
            for k in range(opts.pairs * opts.runs):
                b, t = ((run(empty_bare), run(empty_traced)) if k % 2 == 0 else
                        tuple(reversed((run(empty_traced), run(empty_bare)))))
                fixed.append((b[0], t[0]))
            runs = []
            for _ in range(opts.runs):
                rows = []
                for k in range(opts.pairs):
                    # alternate which one goes first, so a drift in the machine's
                    # load does not always favour the same side
                    if k % 2:
                        traced = run(traced_cmd)
                        rows.append(run(bare_cmd) + traced)
                    else:
                        rows.append(run(bare_cmd) + run(traced_cmd))
                runs.append(rows)
            res = json.load(open(out_json, encoding="utf-8"))
            seen = sum(1 for p in res["reads"] if p.startswith(winpath(data) + "\\"))

    med = statistics.median
    print("%sfiles: %d x 10 KB, pairs: %d per run, runs: %d, wine %s, load average %.1f" % (
        "traced vs traced and enforced (read as: bare = traced, traced = enforced); "
        if opts.enforce else "", opts.files, opts.pairs, opts.runs,
        subprocess.run([wine.binaries()[0], "--version"], capture_output=True,
                       text=True).stdout.strip(), os.getloadavg()[0]))
    labels = (("whole command", 0), ("loop only    ", 1), ("process CPU  ", 2))

    def ratios(rows, i):
        # CPU time has a 15.6 ms tick: a short bare run may show 0
        return [r[3 + i] / r[i] for r in rows if r[i] > 0] or [float("nan")]

    for n, rows in enumerate(runs, 1):
        print("run %d: " % n + "  ".join(
            "%s %.3fx" % (label.strip(), med(ratios(rows, i))) for label, i in labels))
    every = [r for rows in runs for r in rows]
    for label, i in labels:
        allr = ratios(every, i)
        q = statistics.quantiles(allr, n=4) if len(allr) > 1 else [allr[0]] * 3
        per_run = [med(ratios(rows, i)) for rows in runs]
        print("%s: bare %.3fs  traced %.3fs  median ratio %.3fx  (quartiles of all pairs "
              "%.3f-%.3f; run medians %.3f-%.3f)" % (
                  label, med([r[i] for r in every]), med([r[3 + i] for r in every]),
                  med(allr), q[0], q[2], min(per_run), max(per_run)))
    fixed_s = med([t - b for b, t in fixed])
    whole = med([r[3] - r[0] for r in every])
    print("fixed cost per traced run (no file opened, %d pairs): %.1f ms (bare %.1f ms, "
          "traced %.1f ms); per file: %.1f us (median whole-command difference %.1f ms "
          "minus the fixed cost, over %d files)" % (
              len(fixed), 1000 * fixed_s, 1000 * med([b for b, _ in fixed]),
              1000 * med([t for _, t in fixed]), 1e6 * (whole - fixed_s) / max(1, opts.files),
              1000 * whole, opts.files))
    print("reads recorded in the last traced run: %d of %d files, complete=%s" % (
        seen, opts.files, res["complete"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
