"""Overhead of tracing, as ratios against the bare command in the same run.

    .venv/bin/python bench/bench.py [--repeat N] [--backends ebpf,preload,...] [--json FILE]

Workloads (each run bare, under every available backend, and under
``strace -f`` as the peer, interleaved so that drift affects all alike):

  build    a clean ``make -j2`` of this project's own C core
  tar      ``tar -cf - /usr/include /usr/share/perl | cksum``: a storm of opens
           and reads (~10k files)
  imports  a Python process importing a few dozen stdlib modules
  true     ``/bin/true`` repeated in one warm Sandbox: the fixed cost per run

Reported per workload: the median wall time of each mode, and the median of
the per-pair ratios mode/bare with their quartiles; then the same for CPU
time (the command, its tracer and the BPF programs, which the kernel charges
to the traced tasks), which competing jobs on a shared machine move far
less than wall time.  For ``true`` the figure is milliseconds added per run.
Times vary with the machine; ratios measured in one run much less.
eBPF-specific modes and sections (floor, opensnoop, external build,
profile, first run, path storm): bench/ebpf_bench.py.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import sandbox_py  # noqa: E402

sys.path.insert(0, HERE)
import ebpf_bench  # noqa: E402


def build_tree(dst: str) -> list:
    """Copy the C sources (core, Linux, Python bindings) into dst, flat, with
    a Makefile that compiles each; returns the command."""
    for sub in ("core", "linux", os.path.join("linux", "ebpf"), "python"):
        folder = os.path.join(ROOT, "csrc", sub)
        for name in os.listdir(folder):
            if name.endswith((".c", ".h", ".def")):
                shutil.copy(os.path.join(folder, name), dst)
    # the eBPF extension's sources (module_unpriv.c belongs to the other one)
    sources = sorted(n for n in os.listdir(dst) if n.endswith(".c") and n != "module_unpriv.c")
    incs = ["-I.", "-I" + os.path.join(ROOT, "bpf"), "-I" + os.path.join(ROOT, "build", "gen"),
            "-I" + sysconfig.get_paths()["include"]]
    objs = " ".join(s[:-2] + ".o" for s in sources)
    with open(os.path.join(dst, "Makefile"), "w") as f:
        f.write("CFLAGS=-O2 -fPIC %s\nall: %s\nclean:\n\trm -f *.o\n" % (" ".join(incs), objs))
    return ["sh", "-c", "make -s clean && make -s -j2"]


def workloads(tmp: str) -> dict:
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    imports = ("import json, decimal, email.parser, asyncio, http.client, xml.dom.minidom, "
               "unittest, argparse, logging, sqlite3, csv, zipfile, tarfile, difflib, "
               "statistics, fractions, pathlib, shutil, tempfile, textwrap, html.parser")
    return {
        "build": (build_tree(src), src),
        "tar": (["sh", "-c", "tar -cf - /usr/include /usr/share/perl 2>/dev/null "
                 "| cksum >/dev/null"], tmp),
        "imports": ([sys.executable, "-c", imports], tmp),
    }


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def cpu_now() -> float:
    """CPU seconds of this process and its reaped children: the command, its
    tracer (strace, our reader thread) and the BPF programs, which run in the
    traced tasks' system time.  Unlike wall time, other jobs competing for
    the CPUs barely move it."""
    # getrusage, not os.times(): the latter counts in 10 ms clock ticks
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="paired runs per workload")
    ap.add_argument("--true-runs", type=int, default=300, help="runs of /bin/true per mode")
    ap.add_argument("--backends", default="", help="comma-separated (default: all available)")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--json", help="also write the figures to this file")
    ebpf_bench.add_args(ap)
    args = ap.parse_args(argv)

    avail = {n: ok for n, (ok, _) in sandbox_py.backends().items()}
    names = [b for b in args.backends.split(",") if b] or [n for n, ok in avail.items() if ok]
    sandboxes = {n: sandbox_py.Sandbox(n) for n in names}
    strace = None if args.no_strace else shutil.which("strace")

    out = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release,
                       "python": sys.version.split()[0]}, "workloads": {}}
    with tempfile.TemporaryDirectory() as tmp:
        state = {"tmp": tmp}
        loads = workloads(tmp)
        if args.external_build:
            ext = ebpf_bench.external_build(tmp)
            if ext:
                loads["brotli"] = ext
        for wname, (cmd, cwd) in loads.items():
            modes = {"bare": lambda c=cmd, d=cwd: subprocess.run(c, cwd=d, check=True)}
            for n, sb in sandboxes.items():
                modes[n] = lambda c=cmd, d=cwd, sb=sb: sb.run(c, cwd=d, check=True)
            if strace:
                modes["strace -f"] = lambda c=cmd, d=cwd: subprocess.run(
                    [strace, "-f", "-qq", "-o", "/dev/null"] + c, cwd=d, check=True)
            hooks = {}      # mode -> context it runs in, entered outside the timing
            ebpf_bench.extend_modes(modes, hooks, args, cmd, cwd, sandboxes, state)
            for m, fn in modes.items():         # warm caches once
                with hooks.get(m, contextlib.nullcontext)():
                    fn()
            times = {m: [] for m in modes}
            cpus = {m: [] for m in modes}
            order = list(modes)
            for i in range(args.repeat):
                order = order[1:] + order[:1]   # rotate: no mode always goes first
                for m in order:
                    with hooks.get(m, contextlib.nullcontext)():
                        c = cpu_now()
                        times[m].append(timed(modes[m]))
                        cpus[m].append(cpu_now() - c)
            row = {}
            for m, ts in times.items():
                ratios = [t / b for t, b in zip(ts, times["bare"])]
                q1, _, q3 = ebpf_bench.quartiles(ratios)
                cr = [c / b for c, b in zip(cpus[m], cpus["bare"])]
                c1, cmed, c3 = ebpf_bench.quartiles(cr)
                row[m] = {"median_s": statistics.median(ts),
                          "ratio": statistics.median(ratios), "ratio_q1": q1, "ratio_q3": q3,
                          "cpu_s": statistics.median(cpus[m]), "cpu_ratio": cmed,
                          "cpu_ratio_q1": c1, "cpu_ratio_q3": c3}
            out["workloads"][wname] = row
            print("%-8s " % wname + "  ".join(
                "%s %.3fs (%.3fx [%.3f-%.3f])" % (m, v["median_s"], v["ratio"], v["ratio_q1"],
                                                  v["ratio_q3"]) for m, v in row.items()),
                flush=True)
            print("%-8s " % "  cpu" + "  ".join(
                "%s %.3fs (%.3fx [%.3f-%.3f])" % (m, v["cpu_s"], v["cpu_ratio"],
                                                  v["cpu_ratio_q1"], v["cpu_ratio_q3"])
                for m, v in row.items()), flush=True)
            if args.profile:
                row["profile"] = ebpf_bench.profile(wname, cmd, cwd, sandboxes)

        # fixed cost per run, warm
        n = args.true_runs
        row = {}
        with (ebpf_bench.detached() if "ebpf" in sandboxes else contextlib.nullcontext()):
            bare = statistics.median(timed(lambda: subprocess.run(["/bin/true"]))
                                     for _ in range(n))
        row["bare"] = {"median_ms": bare * 1e3}
        for name, sb in sandboxes.items():
            sb.run(["/bin/true"])
            t = statistics.median(timed(lambda: sb.run(["/bin/true"])) for _ in range(n))
            row[name] = {"median_ms": t * 1e3, "added_ms": (t - bare) * 1e3}
        out["workloads"]["true"] = row
        print("true     " + "  ".join(
            "%s %.2fms%s" % (m, v["median_ms"],
                             " (+%.2fms)" % v["added_ms"] if "added_ms" in v else "")
            for m, v in row.items()), flush=True)
        ebpf_bench.extra_sections(args, sandboxes, state, out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
