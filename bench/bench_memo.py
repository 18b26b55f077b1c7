"""A memoizing build driver against the one users reach for today.

    .venv/bin/python bench/bench_memo.py --src /tmp/lua [--fabricate /tmp/fabricate/fabricate.py]
                                         [--repeat N] [--header lgc.h] [--json FILE] [--remote]

Builds a real C code base (Lua: ``--src`` is a checkout with its .c files at
the top) step by step -- one ``gcc -c`` per file, then the link -- three
ways, interleaved in the same run, each build in a fresh Python process as a
build driver would be:

  bare       every step with subprocess.run (no memo: everything runs)
  fabricate  fabricate.Builder(runner="strace_runner").run(...) per step
  memo       sandbox_py.memo.Memo(...).run(...) per step

and three situations per way, in a fresh copy of the tree each repetition:
cold (empty cache), warm (nothing changed), one header edited (a comment
appended to ``--header``, so its content changes).  Reported: the median
wall time of each, its ratio against the bare build of the same situation
and repetition, and how many steps ran.

With ``--remote``, a second table: the same build through a shared cache,
``memo`` with the Bazel HTTP store (nginx) against the REAPI gRPC store
(BuildGrid), both started here on 127.0.0.1 from the repository's
configurations (nginx-light and build/buildgrid-venv, which scripts/setup.sh
installs), and bare: cold (empty caches), warm from the remote (a second
checkout with an empty local store), one header edited in that checkout.

Then a correctness table over the cases sandbox_py.memo is meant to get
right, for both tools: after the change, is the tree what running the step
for real gives, and did the step run?  The fabricate column is skipped when
``--fabricate`` is not given.  Neither Lua nor fabricate is part of this
repository: fetch them (docs/memo.md says how).
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
PY = sys.executable

CFLAGS = ["-Wall", "-O2", "-std=c99", "-DLUA_USE_LINUX", "-fno-stack-protector",
          "-fno-common"]


def lua_steps(tree: str) -> list:
    """One compile per .c file (all but the amalgamation), then the link."""
    sources = sorted(f for f in os.listdir(tree) if f.endswith(".c") and f != "onelua.c")
    steps = [["gcc", *CFLAGS, "-c", s, "-o", s[:-2] + ".o"] for s in sources]
    steps.append(["gcc", "-Wl,-E", "-o", "lua", *[s[:-2] + ".o" for s in sources],
                  "-lm", "-ldl"])
    return steps


# -- the three drivers, each run as `bench_memo.py --driver MODE DIR STEPS.json` ------

def driver(mode: str, tree: str, steps_file: str, fabricate_py: str) -> None:
    """Run the steps in ``tree``; print how many ran as the last line."""
    with open(steps_file) as f:
        steps = json.load(f)
    os.chdir(tree)
    ran = 0
    if mode == "bare":
        for s in steps:
            subprocess.run(s, check=False, stdin=subprocess.DEVNULL)
            ran += 1
    elif mode == "fabricate":
        sys.path.insert(0, os.path.dirname(os.path.abspath(fabricate_py)))
        import fabricate
        b = fabricate.Builder(runner="strace_runner", quiet=True)
        for s in steps:
            # fabricate returns deps/outputs only for a step it ran.
            _, deps, outputs = b.run(*s)
            ran += deps is not None or outputs is not None
        b.write_deps()
    else:
        sys.path.insert(0, ROOT)
        from sandbox_py.memo import Memo
        # memo-http / memo-grpc: through the shared cache; the nonce keeps
        # each repetition's cold build cold on a server that outlives it.
        remote = os.environ.get("BENCH_MEMO_REMOTE") if mode != "memo" else None
        m = Memo(".memo", root=tree, remote=remote, env_keys=["BENCH_MEMO_NONCE"])
        for s in steps:
            ran += m.run(s).memo.status != "hit"
    print("ran", ran)


def timed_build(mode: str, tree: str, steps: list, fabricate_py: str, env=None):
    steps_file = os.path.join(tree, "..", "steps-%s.json" % mode)
    with open(steps_file, "w") as f:
        json.dump(steps, f)
    t = time.monotonic()
    p = subprocess.run([PY, os.path.abspath(__file__), "--driver", mode, tree, steps_file,
                        fabricate_py or ""], capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})))
    elapsed = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit("%s build failed:\n%s%s" % (mode, p.stdout, p.stderr))
    return elapsed, int(p.stdout.split()[-1])


def speed(src: str, fabricate_py: str, repeat: int, header: str) -> dict:
    modes = ["bare"] + (["fabricate"] if fabricate_py else []) + ["memo"]
    situations = ["cold", "warm", "one header"]
    times = {(m, s): [] for m in modes for s in situations}
    ratios = {(m, s): [] for m in modes for s in situations}
    ran = {}
    for rep in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-memo-") as tmp:
            trees = {}
            for m in modes:
                trees[m] = os.path.join(tmp, m, "lua")
                shutil.copytree(src, trees[m], ignore=shutil.ignore_patterns(".git"))
            steps = lua_steps(trees["bare"])
            for s in situations:
                if s == "one header":
                    for m in modes:
                        with open(os.path.join(trees[m], header), "a") as f:
                            f.write("/* edited by bench_memo.py */\n")
                # Rotate the order so that drift and cache warmth hit all alike.
                order = modes[rep % len(modes):] + modes[:rep % len(modes)]
                got = {}
                for m in order:
                    got[m] = timed_build(m, trees[m], steps, fabricate_py)
                for m in modes:
                    times[(m, s)].append(got[m][0])
                    ratios[(m, s)].append(got[m][0] / got["bare"][0])
                    ran[(m, s)] = got[m][1]
                sys.stderr.write("rep %d %-10s %s\n" % (rep + 1, s, "  ".join(
                    "%s %.2fs (%d ran)" % (m, got[m][0], got[m][1]) for m in modes)))
    return {"modes": modes, "situations": situations, "steps": len(steps),
            "median_s": {"%s/%s" % k: statistics.median(v) for k, v in times.items()},
            "ratio": {"%s/%s" % k: statistics.median(v) for k, v in ratios.items()},
            "ran": {"%s/%s" % k: v for k, v in ran.items()}}


# -- through a shared cache: HTTP (nginx) against gRPC (BuildGrid) ------------------------

NGINX_CONF = """daemon off; master_process off; worker_processes 1;
pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {d}/body;
  server {{ listen 127.0.0.1:{port};
    location /cache/ {{ root {d}/www; dav_methods PUT; create_full_put_path on;
                        client_max_body_size 0; }} }} }}
"""


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc, timeout: float = 60) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited with status %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("nothing listens on 127.0.0.1:%d" % port)


def start_servers(tmp: str):
    """nginx (the documented minimal HTTP cache) and BuildGrid (the tests'
    configuration, tests/buildgrid/memo.yml), on 127.0.0.1."""
    procs = []
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    d = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(d, "www", "cache"))
    port = _free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port))
    procs.append(subprocess.Popen([nginx, "-p", d, "-e", os.path.join(d, "error.log"),
                                   "-c", os.path.join(d, "nginx.conf")]))
    _wait_port(port, procs[-1])
    http_url = "http://127.0.0.1:%d/cache" % port
    bgd = os.path.join(ROOT, "build", "buildgrid-venv", "bin", "bgd")
    if not os.path.exists(bgd):
        raise SystemExit("BuildGrid is not installed in build/buildgrid-venv "
                         "(bash scripts/setup.sh)")
    gport = _free_port()
    with open(os.path.join(ROOT, "tests", "buildgrid", "memo.yml")) as f:
        conf = f.read().format(address="127.0.0.1:%d" % gport,
                               storage=os.path.join(tmp, "buildgrid"), allow_updates="true")
    with open(os.path.join(tmp, "buildgrid.yml"), "w") as f:
        f.write(conf)
    procs.append(subprocess.Popen([bgd, "server", "start", os.path.join(tmp, "buildgrid.yml")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    _wait_port(gport, procs[-1])
    time.sleep(2)       # the port opens before the services answer
    return http_url, "grpc://127.0.0.1:%d/memo" % gport, procs


def remote_speed(src: str, repeat: int, header: str) -> dict:
    modes = ["bare", "memo-http", "memo-grpc"]
    situations = ["cold", "warm from remote", "one header"]
    times = {(m, s): [] for m in modes for s in situations}
    ratios = {(m, s): [] for m in modes for s in situations}
    ran = {}
    with tempfile.TemporaryDirectory(prefix="bench-memo-remote-") as servers_dir:
        http_url, grpc_url, procs = start_servers(servers_dir)
        urls = {"bare": "", "memo-http": http_url, "memo-grpc": grpc_url}
        try:
            for rep in range(repeat):
                nonce = "%d-%d" % (os.getpid(), rep)
                with tempfile.TemporaryDirectory(prefix="bench-memo-") as tmp:
                    trees = {}
                    for m in modes:
                        for checkout in ("first", "second"):
                            trees[m, checkout] = os.path.join(tmp, m, checkout, "lua")
                            shutil.copytree(src, trees[m, checkout],
                                            ignore=shutil.ignore_patterns(".git"))
                    steps = lua_steps(trees["bare", "first"])
                    for s in situations:
                        checkout = "first" if s == "cold" else "second"
                        if s == "one header":
                            for m in modes:
                                with open(os.path.join(trees[m, checkout], header), "a") as f:
                                    f.write("/* edited by bench_memo.py */\n")
                        order = modes[rep % len(modes):] + modes[:rep % len(modes)]
                        got = {}
                        for m in order:
                            got[m] = timed_build(m, trees[m, checkout], steps, "", env={
                                "BENCH_MEMO_REMOTE": urls[m], "BENCH_MEMO_NONCE": nonce})
                        for m in modes:
                            times[(m, s)].append(got[m][0])
                            ratios[(m, s)].append(got[m][0] / got["bare"][0])
                            ran[(m, s)] = got[m][1]
                        sys.stderr.write("remote rep %d %-16s %s\n" % (rep + 1, s, "  ".join(
                            "%s %.2fs (%d ran)" % (m, got[m][0], got[m][1]) for m in modes)))
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)
    return {"modes": modes, "situations": situations, "steps": len(steps),
            "median_s": {"%s/%s" % k: statistics.median(v) for k, v in times.items()},
            "ratio": {"%s/%s" % k: statistics.median(v) for k, v in ratios.items()},
            "ran": {"%s/%s" % k: v for k, v in ran.items()}}


# -- correctness ---------------------------------------------------------------------

def _w(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


CASES = [
    # (name, files before, the step, the change between the two builds)
    ("header created in an include dir searched earlier",
     {"main.c": '#include "config.h"\nint main(void) { return VALUE; }\n',
      "inc2/config.h": "#define VALUE 1\n", "inc1/.keep": ""},
     ["gcc", "-Iinc1", "-Iinc2", "-c", "main.c", "-o", "main.o"],
     lambda d: _w(os.path.join(d, "inc1/config.h"), "#define VALUE 2\n")),
    ("file added to a globbed directory",
     {"src/a.txt": "a\n"},
     ["sh", "-c", "cat src/*.txt > all.txt"],
     lambda d: _w(os.path.join(d, "src/b.txt"), "b\n")),
    ("file added to a directory copied with cp -r",
     {"src/a.txt": "a\n"},
     ["sh", "-c", "rm -rf out; cp -r src out"],
     lambda d: _w(os.path.join(d, "src/b.txt"), "b\n")),
    ("tool reads and rewrites its own cache (nothing changed)",
     {"in.txt": "abc\n"},
     ["sh", "-c", "n=$(cat tool.cache 2>/dev/null || echo 0); echo $((n+1)) > tool.cache; "
      "tr a-z A-Z < in.txt > out.txt"],
     lambda d: None),
    ("step deletes a file, which reappears",
     {"stale.txt": "old\n"},
     ["sh", "-c", "rm -f stale.txt; echo done > out.txt"],
     lambda d: _w(os.path.join(d, "stale.txt"), "old\n")),
]

# Not compared: the tools' own state, and the private cache of the "own cache" tool
# (what it holds is the tool's business; what it produces is out.txt).
TOOL_FILES = (".deps", ".memo", "steps-", "tool.cache")


def tree_state(d: str) -> dict:
    out = {}
    for base, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if x not in (".memo",)]
        for f in files:
            p = os.path.join(base, f)
            rel = os.path.relpath(p, d)
            if not rel.startswith(TOOL_FILES):
                with open(p, "rb") as fh:
                    out[rel] = fh.read()
    return out


def correctness(fabricate_py: str) -> list:
    tools = (["fabricate"] if fabricate_py else []) + ["memo"]
    rows = []
    for name, files, step, change in CASES:
        row = {"case": name}
        with tempfile.TemporaryDirectory(prefix="bench-memo-case-") as tmp:
            for tool in tools:
                d = os.path.join(tmp, tool, "t")
                for rel, text in files.items():
                    _w(os.path.join(d, rel), text)
                timed_build(tool, d, [step], fabricate_py)
                change(d)
                # The truth: the step run for real on the changed tree.
                truth = os.path.join(tmp, tool + "-bare", "t")
                shutil.copytree(d, truth, ignore=shutil.ignore_patterns(".memo", ".deps"))
                subprocess.run(step, cwd=truth, stdin=subprocess.DEVNULL,
                               capture_output=True)
                _, ran = timed_build(tool, d, [step], fabricate_py)
                row[tool] = {"correct": tree_state(d) == tree_state(truth), "ran": bool(ran)}
        rows.append(row)
    return rows


# -- report --------------------------------------------------------------------------

def speed_table(speed_doc: dict) -> list:
    modes, sits = speed_doc["modes"], speed_doc["situations"]
    lines = ["Lua, %d steps (one gcc -c per file, then the link); median wall time, "
             "ratio to bare of the same situation, steps that ran" % speed_doc["steps"], "",
             "| situation | " + " | ".join(modes) + " |",
             "|---|" + "---|" * len(modes)]
    for s in sits:
        cells = []
        for m in modes:
            k = "%s/%s" % (m, s)
            t, r, n = speed_doc["median_s"][k], speed_doc["ratio"][k], speed_doc["ran"][k]
            cells.append("%.2f s" % t if m == "bare" else "%.2f s, %.3f×, %d ran" % (t, r, n))
        lines.append("| %s | %s |" % (s, " | ".join(cells)))
    return lines


def report(speed_doc: dict, rows: list, argv: list, remote_doc=None) -> str:
    lines = ["command: %s" % " ".join(argv), ""] + speed_table(speed_doc)
    if remote_doc:
        lines += ["", "Through a shared cache on 127.0.0.1 (memo-http: nginx, Bazel HTTP "
                  "cache protocol; memo-grpc: BuildGrid, REAPI v2). Warm from remote: a "
                  "second checkout, empty local store.", ""] + speed_table(remote_doc)
    tools = [t for t in ("fabricate", "memo") if t in rows[0]] if rows else []
    lines += ["", "Correctness: tree after the second build equals a real run of the "
              "step? (did the step run?)", "",
              "| case | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools)]
    for row in rows:
        lines.append("| %s | %s |" % (row["case"], " | ".join(
            "%s (%s)" % ("correct" if row[t]["correct"] else "**WRONG**",
                         "ran" if row[t]["ran"] else "skipped") for t in tools)))
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--driver"]:
        driver(*argv[1:5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", required=True, help="a Lua source tree (its .c files at the top)")
    ap.add_argument("--fabricate", help="path of fabricate.py (else no fabricate column)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--header", default="lgc.h", help="the header edited (default lgc.h)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--remote", action="store_true",
                    help="also build through nginx (HTTP) and BuildGrid (gRPC) caches")
    opts = ap.parse_args(argv)
    if opts.fabricate and not shutil.which("strace"):
        raise SystemExit("fabricate's strace mode needs strace (apt-get install strace)")
    rows = correctness(opts.fabricate)
    doc = speed(os.path.abspath(opts.src), opts.fabricate and os.path.abspath(opts.fabricate),
                opts.repeat, opts.header)
    remote_doc = remote_speed(os.path.abspath(opts.src), opts.repeat, opts.header) \
        if opts.remote else None
    print(report(doc, rows, ["bench/bench_memo.py"] + argv, remote_doc))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"speed": doc, "correctness": rows, "remote": remote_doc}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
