"""The unprivileged backends (preload, ptrace) against the bare command and
the loader's floor, in one run: paired, alternated, medians and quartiles.

    .venv/bin/python bench/bench_unpriv.py [--repeat N] [--true-runs N] [--json FILE]

Workloads:

  tar    ``tar -cf - /usr/include /usr/share/perl | cksum`` (about 10k files:
         per file a stat, an open, two fstat, reads, a close)
  build  a clean ``make -j2`` of this project's C core (bench.build_tree)
  true   ``/bin/true`` in a warm Sandbox: the fixed cost per run

Modes: ``bare``; ``ld-floor``, the bare command with an empty LD_PRELOAD
library and an LD_AUDIT module whose hooks return at once (what the dynamic
loader's two mechanisms cost by themselves, compiled here with cc);
``shim-floor``, the bare command with sandbox_py's own shim and audit module
in LD_PRELOAD/LD_AUDIT but no run (no log: every hook calls straight
through, nothing is patched or recorded), the floor under ``preload``;
``preload``; ``ptrace``.  Each pair of runs
rotates the order of the modes so that no mode always goes first.

Reported per workload and mode: median wall time, first and third
quartiles, and the median of the per-pair ratios mode/bare (for ``true``,
milliseconds added per run).  Tests never assert times; these figures are.
A separate file from bench.py so that each can change without the other.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import sandbox_py  # noqa: E402
from bench import build_tree  # noqa: E402

TAR = "tar -cf - /usr/include /usr/share/perl 2>/dev/null | cksum >/dev/null"

_EMPTY_PRELOAD = "int sbx_bench_floor_marker;\n"
_EMPTY_AUDIT = r"""
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
unsigned la_version(unsigned v) { return v; }
char *la_objsearch(const char *name, uintptr_t *cookie, unsigned flag)
{ (void)cookie; (void)flag; return (char *)name; }
unsigned la_objopen(struct link_map *m, Lmid_t l, uintptr_t *c)
{ (void)m; (void)l; (void)c; return 0; }
"""


def build_ld_floor(tmp: str) -> dict | None:
    """The environment of the ld floor: an empty preload library and a
    no-op audit module, both linking nothing (as the shim's would at best)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    out = {}
    for name, src in (("floor_preload", _EMPTY_PRELOAD), ("floor_audit", _EMPTY_AUDIT)):
        c, so = os.path.join(tmp, name + ".c"), os.path.join(tmp, name + ".so")
        with open(c, "w") as f:
            f.write(src)
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-nostdlib", "-o", so, c], check=True)
        out[name] = so
    env = dict(os.environ)
    env["LD_PRELOAD"] = out["floor_preload"]
    env["LD_AUDIT"] = out["floor_audit"]
    return env


def shim_floor_env() -> dict | None:
    """The environment of the shim floor: the real shim and audit module,
    inert because no run's log is named."""
    from sandbox_py._backends import preload  # noqa: PLC0415
    if not os.path.exists(preload.SHIM):
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBX_")}
    env["LD_PRELOAD"] = preload.SHIM
    if os.path.exists(preload.AUDIT):
        env["LD_AUDIT"] = preload.AUDIT
    return env


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def quartiles(xs: list) -> tuple:
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def measure(modes: dict, repeat: int) -> dict:
    """Paired, alternated runs; every mode once per pair."""
    for fn in modes.values():           # warm caches once
        fn()
    times = {m: [] for m in modes}
    order = list(modes)
    for _ in range(repeat):
        order = order[1:] + order[:1]
        for m in order:
            times[m].append(timed(modes[m]))
    return times


def summarize(times: dict, per_run_ms: bool) -> dict:
    row = {}
    bare = times["bare"]
    for m, ts in times.items():
        q1, q3 = quartiles(ts)
        r = {"median_s": statistics.median(ts), "q1_s": q1, "q3_s": q3, "n": len(ts)}
        if per_run_ms:
            r["added_ms"] = statistics.median(t - b for t, b in zip(ts, bare)) * 1e3
        else:
            r["ratio"] = statistics.median(t / b for t, b in zip(ts, bare))
        row[m] = r
    return row


def show(name: str, row: dict, per_run_ms: bool) -> None:
    for m, v in row.items():
        if per_run_ms:
            fig = "" if m == "bare" else "  +%.2f ms per run" % v["added_ms"]
            print("%-6s %-10s median %7.2f ms  q1 %7.2f  q3 %7.2f%s" % (
                name, m, v["median_s"] * 1e3, v["q1_s"] * 1e3, v["q3_s"] * 1e3, fig))
        else:
            print("%-6s %-10s median %7.3f s  q1 %7.3f  q3 %7.3f  %6.2fx" % (
                name, m, v["median_s"], v["q1_s"], v["q3_s"], v["ratio"]))
    sys.stdout.flush()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="paired runs per workload")
    ap.add_argument("--true-runs", type=int, default=100, help="paired runs of /bin/true")
    ap.add_argument("--backends", default="preload,ptrace")
    ap.add_argument("--workloads", default="tar,build,true")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    avail = {n: ok for n, (ok, _) in sandbox_py.backends().items()}
    names = [b for b in args.backends.split(",") if b and avail.get(b)]
    sandboxes = {n: sandbox_py.Sandbox(n) for n in names}
    out = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release,
                       "python": sys.version.split()[0]}, "workloads": {}}
    with tempfile.TemporaryDirectory() as tmp:
        floor_env = build_ld_floor(tmp)
        shim_env = shim_floor_env() if "preload" in sandboxes else None
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        cmds = {"tar": (["sh", "-c", TAR], tmp), "build": (build_tree(src), src),
                "true": (["/bin/true"], tmp)}
        for wname in args.workloads.split(","):
            cmd, cwd = cmds[wname]
            check = wname != "true"
            modes = {"bare": lambda c=cmd, d=cwd: subprocess.run(c, cwd=d, check=check)}
            if floor_env:
                modes["ld-floor"] = lambda c=cmd, d=cwd: subprocess.run(
                    c, cwd=d, check=check, env=floor_env)
            if shim_env:
                modes["shim-floor"] = lambda c=cmd, d=cwd: subprocess.run(
                    c, cwd=d, check=check, env=shim_env)
            for n, sb in sandboxes.items():
                modes[n] = lambda c=cmd, d=cwd, sb=sb: sb.run(c, cwd=d, check=check)
            per_run = wname == "true"
            times = measure(modes, args.true_runs if per_run else args.repeat)
            row = summarize(times, per_run)
            out["workloads"][wname] = row
            show(wname, row, per_run)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
