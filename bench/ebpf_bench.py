"""The eBPF parts of bench/bench.py, kept apart so that the other backends'
benchmark work merges without touching them.

* Honest "bare": when the eBPF backend is measured, every mode but ``ebpf``
  runs with the backend's programs detached (``_core.ebpf_set_attached``),
  so a bare command does not pay for the syscall-exit tracepoint either.
* ``ebpf floor`` (``--floor``): the same attach points with programs that
  return at once (bench/floor.bpf.c), our programs detached.  Our ratio
  minus the floor's is the part that is the backend's own work.
* ``opensnoop`` (``--opensnoop``): libbpf-tools' opensnoop tracing the whole
  machine while the bare command runs, a peer beside ``strace -f``.
* ``--external-build``: a clean ``make -j2`` of Brotli's C library (the
  PyPI sdist, fetched into build/sdists like scripts/setup.sh's sdists).
* ``--profile``: per workload, BPF run time per program (bpf_stats), the
  tracer process's CPU (the reader thread and run bookkeeping) and the
  command's own CPU, per run.
* ``--first-run N``: the first ``Sandbox().run`` of N fresh processes, and
  the verifier's statistics per program (bench/ebpf_profile.py).
* ``--storm SIZES``: one process opening SIZES paths (2 % of them existing)
  bare, under the floor and under ebpf: the growth table, with the peak
  memory the tracer process added and its bytes per distinct path.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import ebpf_profile  # noqa: E402

BROTLI = "brotli==1.1.0"


def add_args(ap) -> None:
    g = ap.add_argument_group("eBPF (bench/ebpf_bench.py)")
    g.add_argument("--floor", action="store_true",
                   help="add the 'ebpf floor' mode: no-op programs on the same attach points")
    g.add_argument("--opensnoop", action="store_true",
                   help="add libbpf-tools' opensnoop as a peer (mounts tracefs if needed)")
    g.add_argument("--external-build", action="store_true",
                   help="add a clean make -j2 of Brotli's C library (PyPI sdist)")
    g.add_argument("--profile", action="store_true",
                   help="print BPF run time per program, tracer and command CPU per run")
    g.add_argument("--first-run", type=int, default=0, metavar="N",
                   help="time the first Sandbox().run of N fresh processes")
    g.add_argument("--storm", default="", metavar="SIZES",
                   help="path storm sizes, e.g. 1000,10000,100000,1000000")
    g.add_argument("--storm-repeat", type=int, default=3, help="paired runs per storm size")


def quartiles(xs) -> tuple:
    """(q1, median, q3) of xs."""
    xs = sorted(xs)
    if len(xs) < 2:
        return (xs[0], xs[0], xs[0])
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return (q[0], q[1], q[2])


# ---- attach control ---------------------------------------------------------

def _core():
    from sandbox_py import _core
    return _core


@contextlib.contextmanager
def detached():
    """Our programs off for the duration (outside the timed call)."""
    _core().ebpf_set_attached(False)
    try:
        yield
    finally:
        _core().ebpf_set_attached(True)


class Floor:
    """bench/floor.bpf.c compiled, loaded and attached on demand."""

    def __init__(self, tmp: str):
        obj = os.path.join(tmp, "floor.bpf.o")
        subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-idirafter",
                        "/usr/include/%s" % _multiarch(), "-c",
                        os.path.join(HERE, "floor.bpf.c"), "-o", obj], check=True)
        self.lib = ebpf_profile._libbpf()
        import ctypes
        self.lib.bpf_program__attach.restype = ctypes.c_void_p
        self.lib.bpf_program__attach.argtypes = [ctypes.c_void_p]
        self.lib.bpf_link__destroy.argtypes = [ctypes.c_void_p]
        self.obj = self.lib.bpf_object__open(obj.encode())
        if not self.obj or self.lib.bpf_object__load(self.obj):
            raise OSError("loading bench/floor.bpf.c failed")
        self.links = []

    def programs(self):
        p = self.lib.bpf_object__next_program(self.obj, None)
        while p:
            yield p
            p = self.lib.bpf_object__next_program(self.obj, p)

    @contextlib.contextmanager
    def attached(self):
        """The floor on, ours off."""
        with detached():
            self.links = [self.lib.bpf_program__attach(p) for p in self.programs()]
            try:
                if not all(self.links):
                    raise OSError("attaching the floor programs failed")
                yield
            finally:
                for link in self.links:
                    if link:
                        self.lib.bpf_link__destroy(link)
                self.links = []


def _multiarch() -> str:
    try:
        return subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True,
                              check=True).stdout.strip() or "x86_64-linux-gnu"
    except (OSError, subprocess.CalledProcessError):
        return "x86_64-linux-gnu"


# ---- opensnoop --------------------------------------------------------------

def opensnoop_path():
    return shutil.which("opensnoop") or (os.path.exists("/usr/sbin/opensnoop")
                                         and "/usr/sbin/opensnoop") or None


def _ensure_tracefs() -> None:
    if not os.path.exists("/sys/kernel/tracing/events"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=False)


@contextlib.contextmanager
def opensnoop_running(tmp: str):
    """opensnoop tracing the machine (our programs off), its output in a file,
    ready once it holds its BPF links."""
    exe = opensnoop_path()
    with detached():
        out = open(os.path.join(tmp, "opensnoop.out"), "w")
        p = subprocess.Popen([exe], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while _bpf_links(p.pid) < 2:
                if p.poll() is not None or time.monotonic() > deadline:
                    raise OSError("opensnoop did not start (see %s)" % out.name)
                time.sleep(0.01)
            yield
        finally:
            p.terminate()
            p.wait()
            out.close()


def _bpf_links(pid: int) -> int:
    n = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:bpf_link":
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


# ---- modes ------------------------------------------------------------------

def extend_modes(modes: dict, hooks: dict, args, cmd, cwd, sandboxes: dict, state: dict) -> None:
    """Add the eBPF peers and floors to `modes` (name -> timed function) and
    the context each mode runs in to `hooks` (name -> context factory)."""
    if "ebpf" not in sandboxes:
        return
    for m in modes:
        if m != "ebpf":
            hooks[m] = detached
    bare = lambda c=cmd, d=cwd: subprocess.run(c, cwd=d, check=True)  # noqa: E731
    if args.floor:
        if "floor" not in state:
            state["floor"] = Floor(state["tmp"])
        modes["ebpf floor"] = bare
        hooks["ebpf floor"] = state["floor"].attached
    if args.opensnoop and opensnoop_path():
        _ensure_tracefs()
        modes["opensnoop"] = bare
        hooks["opensnoop"] = lambda: opensnoop_running(state["tmp"])


def external_build(tmp: str):
    """(command, cwd) of a clean make -j2 of Brotli's C library, or None."""
    sdists = os.path.join(ROOT, "build", "sdists")
    found = glob.glob(os.path.join(sdists, "[Bb]rotli-1.1.0.tar.gz"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:",
                        "--no-deps", "-d", sdists, BROTLI], check=False)
        found = glob.glob(os.path.join(sdists, "[Bb]rotli-1.1.0.tar.gz"))
    if not found:
        print("external build: the Brotli sdist could not be fetched; skipped", flush=True)
        return None
    dst = os.path.join(tmp, "brotli")
    with tarfile.open(found[0]) as t:
        t.extractall(dst)
    top = glob.glob(os.path.join(dst, "*", "c"))[0]
    sources = sorted(os.path.relpath(p, top) for sub in ("common", "dec", "enc")
                     for p in glob.glob(os.path.join(top, sub, "*.c")))
    objs = " ".join(s[:-2] + ".o" for s in sources)
    with open(os.path.join(top, "Makefile.bench"), "w") as f:
        f.write("CFLAGS=-O2 -Iinclude\nall: %s\nclean:\n\trm -f */*.o\n" % objs)
    return (["sh", "-c", "make -s -f Makefile.bench clean && make -s -f Makefile.bench -j2"],
            top)


# ---- profile ----------------------------------------------------------------

def profile(name: str, cmd, cwd, sandboxes: dict, runs: int = 3) -> dict:
    """BPF run time per program and CPU per run of the ebpf mode (untimed:
    bpf_stats costs two clock reads per program run)."""
    sb = sandboxes.get("ebpf")
    if sb is None:
        return {}
    def usage():
        s = resource.getrusage(resource.RUSAGE_SELF)
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime
    with ebpf_profile.BpfStats() as st:
        s0, c0 = usage()
        w0 = time.perf_counter()
        for _ in range(runs):
            sb.run(cmd, cwd=cwd, check=True)
        w1 = time.perf_counter()
        s1, c1 = usage()
    out = {"bpf": {k: {"ms_per_run": v[0] / 1e6 / runs, "runs_per_run": v[1] // runs,
                       "ns_per_call": v[0] / v[1]} for k, v in st.delta().items()},
           "tracer_cpu_ms": (s1 - s0) * 1e3 / runs,
           "command_cpu_ms": (c1 - c0) * 1e3 / runs,
           "wall_ms": (w1 - w0) * 1e3 / runs}
    print("  profile of %s under ebpf, per run: wall %.1f ms, command CPU %.1f ms, "
          "tracer process CPU %.1f ms (reader thread, run bookkeeping); BPF programs "
          "(whole machine while it ran):" % (name, out["wall_ms"], out["command_cpu_ms"],
                                              out["tracer_cpu_ms"]), flush=True)
    ebpf_profile.print_bpf_stats(st.delta(), per=runs)
    return out


# ---- first run --------------------------------------------------------------

FIRST_RUN = ("import time; t = time.perf_counter(); import sandbox_py; "
             "sandbox_py.Sandbox('ebpf').run(['/bin/true']); "
             "print(time.perf_counter() - t)")


def first_run(n: int) -> dict:
    times = []
    for _ in range(n):
        p = subprocess.run([sys.executable, "-c", FIRST_RUN], cwd=ROOT, check=True,
                           capture_output=True, text=True)
        times.append(float(p.stdout.split()[-1]))
    q1, med, q3 = quartiles(times)
    print("first run (import + load + /bin/true) in %d fresh processes: median %.0f ms "
          "(quartiles %.0f-%.0f ms)" % (n, med * 1e3, q1 * 1e3, q3 * 1e3), flush=True)
    st = ebpf_profile.verifier_stats()
    ebpf_profile.print_verifier_stats(st)
    return {"median_ms": med * 1e3, "q1_ms": q1 * 1e3, "q3_ms": q3 * 1e3, "verifier": st}


# ---- path storm -------------------------------------------------------------

STORM = r"""
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    try:
        os.close(os.open("%s/d%d/f%d" % (root, i // 1000, i), os.O_RDONLY))
    except FileNotFoundError:
        pass
"""


def _make_storm_tree(root: str, n: int) -> None:
    """Directories d0..d(n/1000); file i exists when i % 50 == 0."""
    for d in range((n + 999) // 1000):
        os.makedirs(os.path.join(root, "d%d" % d), exist_ok=True)
    for i in range(0, n, 50):
        with open(os.path.join(root, "d%d" % (i // 1000), "f%d" % i), "w"):
            pass


# The ebpf side of the storm runs in a fresh process: in this one, memory
# freed by earlier runs is reused, and its resident size says nothing.  The
# child loads the programs, runs /bin/true once, then the storm, and reports
# the run's wall time, the peak resident memory the run added (the reader's
# tables and the Result) and the distinct paths.
STORM_EBPF = r"""
import json, resource, sys, time
import sandbox_py
def kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
sb = sandbox_py.Sandbox("ebpf")
sb.run(["/bin/true"])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                    # the high-water mark starts again from here
rss0 = kib("VmRSS")
def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime
c = cpu()
t = time.perf_counter()
r = sb.run(sys.argv[1:], check=True)
t = time.perf_counter() - t
c = cpu() - c
print(json.dumps({"wall": t, "cpu": c, "peak_kib": kib("VmHWM") - rss0,
                  "paths": len(r.reads | r.writes | r.probes | r.enumerations)}))
"""


def _cpu_children() -> float:
    c = resource.getrusage(resource.RUSAGE_CHILDREN)     # not os.times(): 10 ms ticks
    return c.ru_utime + c.ru_stime


def storm(sizes, sandboxes: dict, state: dict, repeat: int) -> dict:
    if "ebpf" not in sandboxes:
        return {}
    root = os.path.join(state["tmp"], "storm")
    _make_storm_tree(root, max(sizes))
    script = os.path.join(state["tmp"], "storm.py")
    with open(script, "w") as f:
        f.write(STORM)
    if "floor" not in state:
        state["floor"] = Floor(state["tmp"])
    floor = state["floor"]
    out = {}
    print("path storm: one process opening N paths (2 % existing); ratios are medians of "
          "paired runs against bare", flush=True)
    print("  (floor and ebpf: wall ratio / CPU ratio)")
    print("  %9s %9s %15s %15s %10s %9s %11s" % ("N", "bare s", "floor", "ebpf", "paths",
                                                   "peak MiB", "bytes/path"), flush=True)
    for n in sizes:
        cmd = [sys.executable, script, root, str(n)]
        t = {"bare": [], "floor": [], "ebpf": []}
        cpu = {"bare": [], "floor": [], "ebpf": []}
        peak = 0
        npaths = 0
        with detached():
            # once untimed: the first run of a size creates the kernel's
            # (negative) dentries for its names, which later runs find cached
            subprocess.run(cmd, check=True)
        for i in range(repeat):
            order = ["bare", "floor", "ebpf"]
            order = order[i % 3:] + order[:i % 3]
            for m in order:
                if m in ("bare", "floor"):
                    with (detached() if m == "bare" else floor.attached()):
                        c0 = _cpu_children()
                        t0 = time.perf_counter()
                        subprocess.run(cmd, check=True)
                        t[m].append(time.perf_counter() - t0)
                        cpu[m].append(_cpu_children() - c0)
                else:
                    with detached():        # only the child's programs
                        p = subprocess.run([sys.executable, "-c", STORM_EBPF] + cmd, cwd=ROOT,
                                           check=True, capture_output=True, text=True)
                    r = json.loads(p.stdout.splitlines()[-1])
                    t["ebpf"].append(r["wall"])
                    cpu["ebpf"].append(r["cpu"])
                    peak = max(peak, r["peak_kib"])
                    npaths = r["paths"]
        ratio = {m: statistics.median(a / b for a, b in zip(t[m], t["bare"]))
                 for m in ("floor", "ebpf")}
        cratio = {m: statistics.median(a / b for a, b in zip(cpu[m], cpu["bare"]))
                  for m in ("floor", "ebpf")}
        out[n] = {"bare_s": statistics.median(t["bare"]), "floor": ratio["floor"],
                  "ebpf": ratio["ebpf"], "floor_cpu": cratio["floor"],
                  "ebpf_cpu": cratio["ebpf"], "paths": npaths, "peak_mib": peak / 1024,
                  "bytes_per_path": peak * 1024 / max(npaths, 1)}
        print("  %9d %9.3f %6.3fx/%.3fx %6.3fx/%.3fx %10d %9.1f %11.0f" % (
            n, out[n]["bare_s"], ratio["floor"], cratio["floor"], ratio["ebpf"],
            cratio["ebpf"], npaths, peak / 1024, out[n]["bytes_per_path"]), flush=True)
    return out


def extra_sections(args, sandboxes: dict, state: dict, out: dict) -> None:
    if args.first_run:
        out["first_run"] = first_run(args.first_run)
    if args.storm:
        sizes = [int(s) for s in args.storm.split(",") if s]
        out["storm"] = storm(sizes, sandboxes, state, args.storm_repeat)
