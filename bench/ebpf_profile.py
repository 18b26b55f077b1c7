"""Where the eBPF backend's time goes: load cost and per-program run time.

    .venv/bin/python bench/ebpf_profile.py [--object build/gen/sandbox.bpf.o]

Two measurements that timing noise on a shared machine does not move much:

* ``verifier_stats()`` loads the BPF object the extension embeds through
  libbpf (ctypes, the system's libbpf.so) with the verifier's statistics
  log (log level 4) and returns, per program, the verifier's own time, the
  instructions it processed and its peak of states.  The first
  ``Sandbox().run`` of a process pays this, once per program.
* ``BpfStats`` switches on ``kernel.bpf_stats_enabled`` and reads
  run_time_ns / run_cnt of this process's programs before and after a
  workload: what each program cost, not counting the wait around it.

Used by bench/bench.py (``--profile``) and on its own.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OBJECT = os.path.join(ROOT, "build", "gen", "sandbox.bpf.o")

STATS_RE = re.compile(r"verification time (\d+) usec")
INSNS_RE = re.compile(r"processed (\d+) insns .*?total_states (\d+) peak_states (\d+)")


def _libbpf():
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.bpf_object__open.restype = ctypes.c_void_p
    lib.bpf_object__open.argtypes = [ctypes.c_char_p]
    lib.bpf_object__next_program.restype = ctypes.c_void_p
    lib.bpf_object__next_program.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.bpf_program__name.restype = ctypes.c_char_p
    lib.bpf_program__name.argtypes = [ctypes.c_void_p]
    lib.bpf_program__set_log_level.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    lib.bpf_program__set_log_buf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.bpf_object__load.argtypes = [ctypes.c_void_p]
    lib.bpf_object__close.argtypes = [ctypes.c_void_p]
    return lib


def verifier_stats(obj_path: str = DEFAULT_OBJECT) -> dict:
    """{program: {"verify_us", "insns", "peak_states", "total_states"}} plus
    "_open_ms" (libbpf parsing the object and the kernel's BTF) and
    "_load_ms" (the whole load, verifier included)."""
    lib = _libbpf()
    t0 = time.perf_counter()
    obj = lib.bpf_object__open(obj_path.encode())
    if not obj:
        raise OSError(ctypes.get_errno(), "bpf_object__open(%s) failed" % obj_path)
    t1 = time.perf_counter()
    bufs = {}
    prog = lib.bpf_object__next_program(obj, None)
    while prog:
        name = lib.bpf_program__name(prog).decode()
        buf = ctypes.create_string_buffer(1 << 16)
        bufs[name] = buf
        lib.bpf_program__set_log_buf(prog, buf, len(buf))
        lib.bpf_program__set_log_level(prog, 4)        # BPF_LOG_STATS
        prog = lib.bpf_object__next_program(obj, prog)
    rc = lib.bpf_object__load(obj)
    t2 = time.perf_counter()
    out = {"_open_ms": (t1 - t0) * 1e3, "_load_ms": (t2 - t1) * 1e3}
    try:
        if rc:
            for name, buf in bufs.items():     # the refused program's log
                log = buf.value.decode(errors="replace")
                if log and not STATS_RE.search(log):
                    sys.stderr.write("%s:\n%s\n" % (name, log[-3000:]))
            raise OSError(-rc, "bpf_object__load failed")
        for name, buf in bufs.items():
            log = buf.value.decode(errors="replace")
            m, n = STATS_RE.search(log), INSNS_RE.search(log)
            out[name] = {"verify_us": int(m.group(1)) if m else None,
                         "insns": int(n.group(1)) if n else None,
                         "total_states": int(n.group(2)) if n else None,
                         "peak_states": int(n.group(3)) if n else None}
    finally:
        lib.bpf_object__close(obj)
    return out


def print_verifier_stats(st: dict, file=sys.stdout) -> None:
    print("BPF load: libbpf open %.1f ms, load (verifier + maps) %.1f ms"
          % (st["_open_ms"], st["_load_ms"]), file=file)
    print("  %-22s %10s %10s %8s" % ("program", "verify ms", "insns", "states"), file=file)
    for name, v in sorted(st.items()):
        if name.startswith("_") or v.get("verify_us") is None:
            continue
        print("  %-22s %10.1f %10d %8d" % (name, v["verify_us"] / 1e3, v["insns"],
                                           v["peak_states"]), file=file)


def _prog_ids_of_self() -> list:
    """Ids of the BPF programs this process holds (its fds, /proc/self/fdinfo)."""
    ids = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink("/proc/self/fd/" + fd) != "anon_inode:bpf-prog":
                continue
            with open("/proc/self/fdinfo/" + fd) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.append(int(line.split()[1]))
        except OSError:
            pass
    return sorted(set(ids))


class BpfStats:
    """Run time of this process's BPF programs over a stretch of work.

    ``kernel.bpf_stats_enabled`` adds two clock reads per program run, to
    every traced or untraced task alike: it is on only inside ``with``."""

    def __enter__(self):
        self._old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        self.before = self.snapshot()
        return self

    def __exit__(self, *exc):
        self.after = self.snapshot()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(self._old)

    @staticmethod
    def snapshot() -> dict:
        ids = set(_prog_ids_of_self())
        if not ids:
            return {}
        js = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], check=True,
                                       capture_output=True, text=True).stdout)
        return {p["name"]: (p.get("run_time_ns", 0), p.get("run_cnt", 0))
                for p in js if p["id"] in ids}

    def delta(self) -> dict:
        """{program: (ns, runs)} spent between enter and exit."""
        out = {}
        for name, (ns, cnt) in self.after.items():
            ns0, cnt0 = self.before.get(name, (0, 0))
            if cnt - cnt0:
                out[name] = (ns - ns0, cnt - cnt0)
        return out


def print_bpf_stats(delta: dict, per: int = 1, file=sys.stdout) -> None:
    for name, (ns, cnt) in sorted(delta.items(), key=lambda kv: -kv[1][0]):
        print("  %-22s %9.1f ms %10d runs %7.0f ns/run" % (
            name, ns / 1e6 / per, cnt // per, ns / cnt if cnt else 0), file=file)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--object", default=DEFAULT_OBJECT)
    args = ap.parse_args(argv)
    print_verifier_stats(verifier_stats(args.object))
    return 0


if __name__ == "__main__":
    sys.exit(main())
