"""A Result as a pandas DataFrame or a graphviz graph (the ``notebook``
extra: ``pip install sandbox_py[notebook]``).

What a Result knows, and so what these show: the *sets* of paths per
category for the whole process tree, and each exec with its pid and parent.
It does not record which process made each access, nor the errno of a
failed call (a probe is "checked without reading": a stat that succeeded or
any call that failed).  So in the long table:

- ``pid`` and ``process`` are filled for exec rows and empty (``<NA>``/None)
  for path rows;
- ``ok`` is True for reads, writes and enumerations (they record what
  succeeded), True for execs, and ``<NA>`` for probes; ``errno`` is ``<NA>``.
"""
from __future__ import annotations

import os

from .display import CATEGORIES, printable_path

COLUMNS = ["path", "category", "pid", "process", "ok", "errno"]

EXTRA_HINT = "install the notebook extra: pip install 'sandbox_py[notebook]'"


def _require(module: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError("Result.%s needs the %r package, which is not installed; %s"
                          % ("to_pandas" if module == "pandas" else "to_graphviz",
                             module, EXTRA_HINT)) from e


def to_pandas(result):
    """Long format: one row per (path, category), plus one per exec."""
    pd = _require("pandas")
    rows = []
    for cat in CATEGORIES:
        known_ok = None if cat == "probes" else True
        for path in getattr(result, cat):
            rows.append((path, cat[:-1] if cat != "enumerations" else "enumeration",
                         None, None, known_ok, None))
    for e in result.execs:
        name = os.path.basename(os.fsdecode(e.argv[0])) if e.argv else os.path.basename(e.path)
        rows.append((e.path, "exec", e.pid, name, True, None))
    df = pd.DataFrame.from_records(rows, columns=COLUMNS)
    return df.astype({"path": "string", "category": "category", "pid": "Int64",
                      "process": "string", "ok": "boolean", "errno": "Int64"})


def to_graphviz(result, *, max_files: int = 60, categories=("reads", "writes")):
    """A ``graphviz.Digraph``: the process tree (exec parent -> child) and
    the files the tree touched.  Per-access processes are not in a Result,
    so file edges start at the node for the whole traced command.  Beyond
    ``max_files`` files, one node per directory (with a count) stands for
    them.  Rendering needs the ``dot`` program; ``.source`` does not."""
    graphviz = _require("graphviz")
    ids: dict = {}

    def _node_id(kind: str, key) -> str:
        # Plain generated ids: graphviz reads "a:b" in an edge as node a, port b.
        return ids.setdefault((kind, key), "n%d" % len(ids))

    g = graphviz.Digraph("sandbox_py", graph_attr={"rankdir": "LR"},
                         node_attr={"fontsize": "10"})
    root = _node_id("run", "root")
    title = " ".join(printable_path(os.fsdecode(a)) for a in result.args) or "traced block"
    g.node(root, title, shape="box", style="bold")

    pids = {e.pid for e in result.execs}
    for e in result.execs:
        label = "%s\\npid %d" % (printable_path(os.path.basename(e.path)), e.pid)
        g.node(_node_id("pid", e.pid), label, shape="box")
    for e in result.execs:
        parent = _node_id("pid", e.ppid) if e.ppid in pids and e.ppid != e.pid else root
        g.edge(parent, _node_id("pid", e.pid))

    touched = []
    for cat in categories:
        touched.extend((cat, p) for p in getattr(result, cat))
    by_file = len({p for _, p in touched}) <= max_files
    edges = {}
    for cat, path in touched:
        target = path if by_file else (os.path.dirname(path) or path)
        edges.setdefault((cat, target), 0)
        edges[(cat, target)] += 1
    for target in sorted({t for _, t in edges}):
        label = printable_path(target)
        if not by_file:
            n = sum(c for (_, t), c in edges.items() if t == target)
            label = "%s/ (%d)" % (label, n)
        g.node(_node_id("file", target), label, shape="note" if by_file else "folder")
    style = {"reads": "solid", "writes": "bold", "probes": "dotted", "enumerations": "dashed"}
    for (cat, target), _ in sorted(edges.items()):
        g.edge(root, _node_id("file", target), label=cat[:-1] if cat != "enumerations"
               else "list", style=style.get(cat, "solid"))
    return g
