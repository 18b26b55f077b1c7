"""Who did what, on the Python side: Process records, steps(), who(), the
JSON form, the process views, and the compilation database's reading of a
process tree.  The backends' own attribution of real runs is tested in
tests/test_process_tree.py."""
from __future__ import annotations

import json

import pytest

from sandbox_py import Result
from sandbox_py.compdb import entries, is_compiler
from sandbox_py.display import process_tree_text, to_html
from sandbox_py.result import Exec, PathSet, Process


def proc(pid, ppid, path, argv, parent, cwd="/src", rc=0, **sets):
    return Process(pid, ppid, path, tuple(argv), cwd, rc, parent,
                   **{k: PathSet(v) for k, v in sets.items()})


def build() -> Result:
    """make -> (cc -c x.c -> cc1, as), (cc -c y.c -> cc1, as), ar."""
    ps = (
        proc(10, 9, "/usr/bin/make", ["make"], None, reads=["/src/Makefile"]),
        proc(11, 10, "/usr/bin/cc", ["cc", "-O2", "-c", "x.c", "-o", "x.o"], 0,
             probes=["/usr/local/include/x.h"]),
        proc(12, 11, "/usr/lib/gcc/cc1", ["cc1", "x.c"], 1,
             reads=["/src/x.c", "/src/x.h", "/usr/include/stdio.h"],
             writes=["/tmp/cc1.s"]),
        proc(13, 11, "/usr/bin/as", ["as", "-o", "x.o", "/tmp/cc1.s"], 1,
             reads=["/tmp/cc1.s"], writes=["/src/x.o"]),
        proc(14, 10, "/usr/bin/cc", ["cc", "-c", "y.c"], 0),
        proc(15, 14, "/usr/lib/gcc/cc1", ["cc1", "y.c"], 4,
             reads=["/src/y.c", "/src/x.h"], writes=["/tmp/cc2.s"]),
        proc(16, 14, "/usr/bin/as", ["as", "/tmp/cc2.s"], 4,
             reads=["/tmp/cc2.s"], writes=["/src/y.o"]),
        proc(17, 10, "/usr/bin/ar", ["ar", "rcs", "lib.a", "x.o", "y.o"], 0,
             reads=["/src/x.o", "/src/y.o"], writes=["/src/lib.a"]),
    )
    union = {c: PathSet(set().union(*(getattr(p, c) for p in ps)))
             for c in ("reads", "writes", "probes", "enumerations")}
    return Result(0, ["make"], processes=ps, backend="ebpf",
                  execs=tuple(Exec(p.pid, p.ppid, p.path, p.argv) for p in ps), **union)


def test_steps_roll_a_compile_up_to_its_driver():
    r = build()
    steps = r.steps("cc")
    assert [s.process.pid for s in steps] == [11, 14]
    x = steps[0]
    assert [p.pid for p in x.processes] == [11, 12, 13]
    assert {"/src/x.c", "/src/x.h"} <= x.reads and "/src/y.c" not in x.reads
    assert "/src/x.o" in x.writes and "/usr/local/include/x.h" in x.probes
    assert x.argv == ("cc", "-O2", "-c", "x.c", "-o", "x.o") and x.cwd == "/src"
    # an absolute path, and a callable
    assert [s.process.pid for s in r.steps("/usr/bin/ar")] == [17]
    assert [s.process.pid for s in r.steps(lambda p: p.name == "as")] == [13, 16]
    # a match below another match is part of the outer step, not a step
    assert [s.process.pid for s in r.steps(lambda p: p.name in ("make", "cc"))] == [10]
    with pytest.raises(ValueError):
        r.steps("bin/cc")
    with pytest.raises(TypeError):
        r.steps(3)


def test_who_names_each_process_and_how():
    r = build()
    who = r.who("/src/x.h")
    assert [(p.pid, cats) for p, cats in who] == [(12, ("read",)), (15, ("read",))]
    assert [(p.pid, cats) for p, cats in r.who("/tmp/cc1.s")] == [
        (12, ("write",)), (13, ("read",))]
    assert r.who("/nowhere") == ()


def test_json_round_trip_and_schema():
    jsonschema = pytest.importorskip("jsonschema")
    from sandbox_py.result import json_schema
    r = build()
    doc = json.loads(r.to_json())
    jsonschema.validate(doc, json_schema())
    assert doc["processes"][2]["parent"] == 1 and doc["processes"][0]["parent"] is None
    back = Result.from_json(r.to_json())
    assert back == r and back.processes == r.processes
    assert back.steps("cc")[1].writes == r.steps("cc")[1].writes
    # a document written before processes existed still reads
    del doc["processes"]
    assert Result.from_dict(doc).processes == ()


def test_filtered_applies_to_each_process():
    r = build().filtered(system=False)
    assert all(not p.startswith("/usr/") for pr in r.processes for p in pr.reads)
    assert "/src/x.c" in r.processes[2].reads


def test_process_views():
    r = build()
    text = process_tree_text(r)
    lines = text.splitlines()
    assert lines[0] == "processes: 8"
    assert lines[1].startswith("  make  [pid 10, exit 0]")
    assert any("cc1 x.c" in line and "r3 w1 p0 e0" in line for line in lines)
    html = to_html(r)
    assert "<b>processes</b> (8)" in html and "cc -O2 -c x.c -o x.o" in html


def test_to_pandas_one_row_per_process_category_path():
    pytest.importorskip("pandas")
    df = build().to_pandas()
    rows = df[df.path == "/src/x.h"]
    assert sorted(rows.pid.tolist()) == [12, 15]
    assert set(rows.category) == {"read"} and set(rows.process) == {"cc1"}


def test_graphviz_by_process_draws_edges_from_the_process():
    pytest.importorskip("graphviz")
    src = build().to_graphviz(by="process").source
    ids = {}
    for line in src.splitlines():
        line = line.strip()
        if "[label=" in line and "->" not in line:
            ids[line.split(" ", 1)[0]] = line
    ar = next(k for k, v in ids.items() if "ar\\npid 17" in v)
    lib = next(k for k, v in ids.items() if '"/src/lib.a"' in v)
    assert "%s -> %s" % (ar, lib) in src
    with pytest.raises(ValueError):
        build().to_graphviz(by="file")


def test_compiler_names():
    def p(path, argv0):
        return proc(1, 0, path, [argv0], None)
    for name in ("gcc", "g++", "cc", "c++", "clang", "clang++", "gcc-12", "clang-19",
                 "x86_64-linux-gnu-gcc-12", "x86_64-w64-mingw32-g++", "clang++-14.0"):
        assert is_compiler(p("/usr/bin/" + name, name)), name
    for name in ("cc1", "as", "ld", "gcc-ar", "x86_64-linux-gnu-gcc-ar-12", "ccache",
                 "distcc", "make", "collect2"):
        assert not is_compiler(p("/usr/bin/" + name, name)), name


def test_compdb_entries_are_confirmed_by_the_step():
    r = build()
    es = entries(r)
    assert es == [
        {"directory": "/src", "file": "/src/x.c",
         "arguments": ["cc", "-O2", "-c", "x.c", "-o", "x.o"], "output": "/src/x.o"},
        {"directory": "/src", "file": "/src/y.c", "arguments": ["cc", "-c", "y.c"],
         "output": "/src/y.o"},
    ]
    # a compile that never read its source (it failed first) is no entry
    ps = list(r.processes)
    ps[5] = proc(15, 14, "/usr/lib/gcc/cc1", ["cc1", "y.c"], 4, probes=["/src/y.c"])
    ps[6] = proc(16, 14, "/usr/bin/as", ["as"], 4)
    assert [e["file"] for e in entries(Result(1, ["make"], processes=tuple(ps)))] == [
        "/src/x.c"]


def test_cli_processes_prints_the_tree(tmp_path):
    import subprocess
    import sys
    f = tmp_path / "in.txt"
    f.write_text("x")
    p = subprocess.run([sys.executable, "-m", "sandbox_py", "--processes", "--exclude-system",
                        "--exclude-pseudo", "--", "/bin/sh", "-c",
                        '/bin/cat "$0" >/dev/null; true', str(f)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    i = lines.index("processes: 2")
    assert lines[i + 1].startswith("  /bin/sh -c ")
    assert lines[i + 2].startswith("  `- /bin/cat %s  [pid " % f)
    assert lines[i + 2].endswith("r1 w0 p0 e0") and ", exit 0]" in lines[i + 2]
