"""A Result as a pandas DataFrame or a graphviz graph (the ``notebook``
extra: ``pip install sandbox_py[notebook]``).

What a Result knows, and so what these show: per process record
(``Result.processes``) the sets of paths per category, and each exec.  It
does not record the errno of a failed call (a probe is "checked without
reading": a stat that succeeded or any call that failed).  So in the long
table:

- one row per (process record, category, path), with the record's ``pid``,
  its program's name in ``process`` and its index in ``Result.processes``
  in ``record``; a Result without process records (a document written
  before they existed) gives one row per (category, path) with these empty;
- one row per exec (category ``exec``);
- ``ok`` is True for reads, writes and enumerations (they record what
  succeeded), True for execs, and ``<NA>`` for probes; ``errno`` is ``<NA>``.
"""
from __future__ import annotations

import os

from .display import CATEGORIES, printable_path

COLUMNS = ["path", "category", "pid", "process", "ok", "errno", "record"]

EXTRA_HINT = "install the notebook extra: pip install 'sandbox_py[notebook]'"


def _require(module: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError("Result.%s needs the %r package, which is not installed; %s"
                          % ("to_pandas" if module == "pandas" else "to_graphviz",
                             module, EXTRA_HINT)) from e


def _singular(cat: str) -> str:
    return cat[:-1] if cat != "enumerations" else "enumeration"


def to_pandas(result):
    """Long format: one row per (process, category, path), plus one per exec."""
    pd = _require("pandas")
    rows = []
    for cat in CATEGORIES:
        known_ok = None if cat == "probes" else True
        if result.processes:
            for i, proc in enumerate(result.processes):
                for path in getattr(proc, cat):
                    rows.append((path, _singular(cat), proc.pid, proc.name, known_ok,
                                 None, i))
        else:
            for path in getattr(result, cat):
                rows.append((path, _singular(cat), None, None, known_ok, None, None))
    for e in result.execs:
        name = os.path.basename(os.fsdecode(e.argv[0])) if e.argv else os.path.basename(e.path)
        rows.append((e.path, "exec", e.pid, name, True, None, None))
    df = pd.DataFrame.from_records(rows, columns=COLUMNS)
    return df.astype({"path": "string", "category": "category", "pid": "Int64",
                      "process": "string", "ok": "boolean", "errno": "Int64",
                      "record": "Int64"})


def to_graphviz(result, *, max_files: int = 60, categories=("reads", "writes"),
                by: str = "run"):
    """A ``graphviz.Digraph``: the process tree and the files the tree
    touched.  ``by="run"`` draws the exec tree (parent -> child by pid) with
    file edges from one node for the whole command; ``by="process"`` draws
    one node per process record (``Result.processes``) with each file edge
    from the process that made the access.  Beyond ``max_files`` files, one
    node per directory (with a count) stands for them.  Rendering needs the
    ``dot`` program; ``.source`` does not."""
    if by not in ("run", "process"):
        raise ValueError("by must be 'run' or 'process', not %r" % (by,))
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

    touched = []            # (source node, category, path)
    if by == "process" and result.processes:
        for i, proc in enumerate(result.processes):
            label = "%s\\npid %d" % (printable_path(proc.name or "?"), proc.pid)
            g.node(_node_id("proc", i), label, shape="box")
        for i, proc in enumerate(result.processes):
            parent = result.parent_of(i)
            g.edge(root if parent is None else _node_id("proc", parent), _node_id("proc", i))
            for cat in categories:
                touched.extend((_node_id("proc", i), cat, p) for p in getattr(proc, cat))
    else:
        pids = {e.pid for e in result.execs}
        for e in result.execs:
            label = "%s\\npid %d" % (printable_path(os.path.basename(e.path)), e.pid)
            g.node(_node_id("pid", e.pid), label, shape="box")
        for e in result.execs:
            parent = _node_id("pid", e.ppid) if e.ppid in pids and e.ppid != e.pid else root
            g.edge(parent, _node_id("pid", e.pid))
        for cat in categories:
            touched.extend((root, cat, p) for p in getattr(result, cat))

    by_file = len({p for _, _, p in touched}) <= max_files
    edges: dict = {}
    for src, cat, path in touched:
        target = path if by_file else (os.path.dirname(path) or path)
        edges[(src, cat, target)] = edges.get((src, cat, target), 0) + 1
    counts: dict = {}
    for (_, _, t), c in edges.items():
        counts[t] = counts.get(t, 0) + c
    for target in sorted(counts):
        label = printable_path(target)
        if not by_file:
            label = "%s/ (%d)" % (label, counts[target])
        g.node(_node_id("file", target), label, shape="note" if by_file else "folder")
    style = {"reads": "solid", "writes": "bold", "probes": "dotted", "enumerations": "dashed"}
    for (src, cat, target), _ in sorted(edges.items()):
        g.edge(src, _node_id("file", target), label=cat[:-1] if cat != "enumerations"
               else "list", style=style.get(cat, "solid"))
    return g
