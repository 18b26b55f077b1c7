"""Overhead of enforcing a Policy (Landlock) over tracing alone, same run.

    .venv/bin/python bench/bench_enforce.py [--repeat N] [--backends ebpf,preload,ptrace]

For each backend and each workload of bench/bench.py (build, tar, imports),
three modes are run interleaved: traced without a policy, traced with a
policy in ``report`` mode (the check after the run, nothing refused), and
with the same policy in ``deny`` mode (Landlock applied before exec).  The
policy allows exactly what the workloads need: the system, the Python
installation, and the temporary tree they build in (``TMPDIR`` points there
in every mode: the compiler's temporary files).  Reported: median wall
times and the median of the per-pair ratios against trace-only; for
``true`` the milliseconds a policy adds to one warm run (building the
ruleset, the check).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import sandbox_py  # noqa: E402
import sandbox_py._landlock  # noqa: E402
from bench import timed, workloads  # noqa: E402 - the same workloads as bench.py


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="interleaved runs per mode")
    ap.add_argument("--true-runs", type=int, default=200, help="runs of /bin/true per mode")
    ap.add_argument("--backends", default="", help="comma-separated (default: all available "
                                                   "Linux backends)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    avail = {n: ok for n, (ok, _) in sandbox_py.backends().items()}
    names = ([b for b in args.backends.split(",") if b]
             or [n for n in ("ebpf", "preload", "ptrace") if avail.get(n)])
    out = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release,
                       "python": sys.version.split()[0],
                       "landlock_abi": sandbox_py._landlock.abi()[0]}, "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = os.path.realpath(tmp)
        work = workloads(tmp)
        env = dict(os.environ, TMPDIR=tmp)
        trees = dict(read=[sys.prefix, sys.base_prefix, os.path.dirname(HERE)], write=[tmp])
        policies = {"trace": None,
                    "report": sandbox_py.Policy(on_violation="report", **trees),
                    "deny": sandbox_py.Policy(on_violation="deny", **trees)}
        for name in names:
            sb = sandbox_py.Sandbox(name)
            rows = out["backends"][name] = {}
            for wname, (cmd, cwd) in work.items():
                modes = {m: (lambda c=cmd, d=cwd, p=p: sb.run(c, cwd=d, env=env, check=True,
                                                                  policy=p))
                         for m, p in policies.items()}
                r = modes["deny"]()              # warm caches, and prove the policy fits
                if r.denied:
                    print("note: %s %s touched outside the policy: %s"
                          % (name, wname, ", ".join(d.path for d in r.denied[:5])))
                for fn in modes.values():
                    fn()
                times = {m: [] for m in modes}
                order = list(modes)
                for _ in range(args.repeat):
                    order = order[1:] + order[:1]   # rotate: no mode always goes first
                    for m in order:
                        times[m].append(timed(modes[m]))
                row = {}
                for m, ts in times.items():
                    row[m] = {"median_s": statistics.median(ts),
                              "ratio": statistics.median(t / b for t, b in
                                                         zip(ts, times["trace"]))}
                rows[wname] = row
                print("%-8s %-8s " % (name, wname) + "  ".join(
                    "%s %.3fs (%.3fx)" % (m, v["median_s"], v["ratio"]) for m, v in row.items()),
                    flush=True)
            row = {}
            for m, p in policies.items():
                sb.run(["/bin/true"], policy=p)
                row[m] = statistics.median(timed(lambda: sb.run(["/bin/true"], policy=p))
                                           for _ in range(args.true_runs)) * 1e3
            rows["true"] = {m: {"median_ms": v, "added_ms": v - row["trace"]}
                            for m, v in row.items()}
            print("%-8s true     " % name + "  ".join(
                "%s %.2fms (+%.2fms)" % (m, v, v - row["trace"]) for m, v in row.items()),
                flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
