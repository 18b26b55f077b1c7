"""A/B of two built trees on one workload, alternated, for a noisy machine.

    .venv/bin/python bench/ebpf_ab.py TREE_A TREE_B [COMMAND...]
    ROUNDS=4 (default 5)

Each round starts one process per tree (in alternating order); each process
imports sandbox_py from its tree, warms up, then times 3 pairs: the command
bare (the tree's programs detached, _core.ebpf_set_attached) and under
Sandbox("ebpf").  Printed per tree: the median and quartiles of the per-pair
CPU ratios (the command, the tracer process and the BPF time charged to the
traced tasks; getrusage) and wall ratios.  Both trees need the
ebpf_set_attached hook.  Default command: the tar storm of bench/bench.py.
"""
import json
import os
import statistics
import subprocess
import sys

CHILD = r'''
import json, resource, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import sandbox_py
from sandbox_py import _core
def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime
cmd = sys.argv[2:]
sb = sandbox_py.Sandbox("ebpf")
sb.run(cmd)
out = []
for i in range(3):
    _core.ebpf_set_attached(False)
    c, t = cpu(), time.perf_counter()
    subprocess.run(cmd)
    t, c = time.perf_counter() - t, cpu() - c
    _core.ebpf_set_attached(True)
    c2, t2 = cpu(), time.perf_counter()
    sb.run(cmd)
    t2, c2 = time.perf_counter() - t2, cpu() - c2
    out.append((c2 / c, t2 / t))
print(json.dumps(out))
'''

TAR = ["sh", "-c", "tar -cf - /usr/include /usr/share/perl 2>/dev/null | cksum >/dev/null"]


def main(argv) -> int:
    a, b = os.path.abspath(argv[0]), os.path.abspath(argv[1])
    cmd = argv[2:] or TAR
    res = {a: [], b: []}
    for i in range(int(os.environ.get("ROUNDS", "5"))):
        for tree in (a, b) if i % 2 == 0 else (b, a):
            p = subprocess.run([sys.executable, "-c", CHILD, tree] + cmd, capture_output=True,
                               text=True, cwd=tree, check=True)
            res[tree] += json.loads(p.stdout.strip().splitlines()[-1])
    for tree, rs in res.items():
        c = [r[0] for r in rs]
        w = [r[1] for r in rs]
        qc = statistics.quantiles(c, n=4, method="inclusive")
        qw = statistics.quantiles(w, n=4, method="inclusive")
        print("%s: CPU ratio %.3f (%.3f-%.3f), wall ratio %.3f (%.3f-%.3f), %d pairs" % (
            tree, statistics.median(c), qc[0], qc[2], statistics.median(w), qw[0], qw[2],
            len(rs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
