"""How a Result looks to a person: one-line paths, a text summary (the CLI,
``_repr_pretty_``, examples) and an HTML view for Jupyter (``_repr_html_``).

Paths are ``str`` decoded with surrogateescape, so they may hold lone
surrogates (bytes that are not UTF-8) and control characters (a newline is a
legal byte in a file name).  Printing those raw breaks terminals, JSON-less
logs and HTML, so everything shown goes through :func:`printable_path`.
"""
from __future__ import annotations

import html
import os
import shlex
from collections import Counter
from typing import Iterable

#: Category attributes of a Result, in the order they are shown.
CATEGORIES = ("reads", "writes", "probes", "enumerations")

#: Per category, how many paths the HTML view renders before "show more",
#: and how many it renders at all (a notebook page with 10^5 nodes hangs).
HTML_SHOWN = 100
HTML_MAX = 2000


def printable_path(path: str) -> str:
    """``path`` as one line of valid text: bytes that are not UTF-8 become
    ``\\xNN`` and control characters become escapes such as ``\\n``."""
    raw = os.fsencode(path) if isinstance(path, str) else bytes(path)
    text = raw.decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            # repr() gives the familiar \n, \t, \x1b forms; strip its quotes.
            out.append(repr(ch)[1:-1])
    return "".join(out)


def parent_dir(path: str) -> str:
    head = path.rsplit("/", 1)[0] if "/" in path else path
    return head or "/"


def top_directories(paths: Iterable[str], n: int = 5) -> list:
    """``[(directory, count)]``: the ``n`` parent directories holding most of
    ``paths``, most first, ties by name."""
    counts = Counter(parent_dir(p) for p in paths)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def command_line(args) -> str:
    if not args:
        return "(in-process trace)"
    return " ".join(shlex.quote(printable_path(os.fsdecode(a))) for a in args)


def summary_text(result, *, top: int = 5) -> str:
    """A readable multi-line summary: status, counts per category and the
    directories that hold most of each category."""
    state = "complete" if result.complete else "INCOMPLETE"
    lines = ["%s: exit status %s in %.2fs (backend %s, %s)" % (
        command_line(result.args), result.returncode, result.duration,
        result.backend or "?", state)]
    width = max(len(c) for c in CATEGORIES + ("execs",))
    for cat in CATEGORIES:
        paths = getattr(result, cat)
        line = "  %-*s %6d" % (width, cat, len(paths))
        dirs = top_directories(paths, top)
        if dirs:
            line += "   " + ", ".join("%s (%d)" % (printable_path(d), c) for d, c in dirs)
        lines.append(line)
    lines.append("  %-*s %6d%s" % (width, "execs", len(result.execs), (
        "   " + ", ".join(sorted({os.path.basename(e.path) for e in result.execs})[:8])
        if result.execs else "")))
    for w in result.warnings:
        lines.append("  warning: %s" % printable_path(w))
    lines.extend(_policy_lines(result, top))
    return "\n".join(lines)


def _policy_lines(result, top: int) -> list:
    """Denied accesses and breakaway processes, for the text summary."""
    lines = []
    if result.denied:
        # Not every listed access was refused: a stat, or a write through an
        # fd opened before the policy, cannot be (docs/enforcement.md).
        verb = ("outside the policy (refused where the system can)"
                if result.policy is None or result.policy.on_violation == "deny"
                else "outside the policy (not refused: report mode)")
        lines.append("  denied: %d %s" % (len(result.denied), verb))
        for d in result.denied[:top]:
            lines.append("    %s %s%s" % (d.category, printable_path(d.path),
                                          "" if d.pid is None else " (pid %d)" % d.pid))
        if len(result.denied) > top:
            lines.append("    ... %d more" % (len(result.denied) - top))
    for b in result.breakaways:
        lines.append("  breakaway: pid %d %s (left the run; its accesses are not listed)"
                     % (b.pid, command_line(b.argv) if b.argv else printable_path(b.path)))
    return lines


def process_label(proc, width: int = 100) -> str:
    """``argv`` of a Process as one printable line, cut at ``width``."""
    text = command_line(proc.argv) if proc.argv else printable_path(proc.path or "?")
    return text if len(text) <= width else text[: width - 3] + "..."


def process_counts(proc) -> str:
    return " ".join("%s%d" % (c[0], len(getattr(proc, c))) for c in CATEGORIES)


def process_status(proc) -> str:
    return ("pid %d" % proc.pid) + ("" if proc.returncode is None
                                    else ", exit %d" % proc.returncode)


def process_tree_text(result, *, width: int = 100, limit: int = 500) -> str:
    """The process tree, one line per record: argv, pid, exit status and
    counts (r reads, w writes, p probes, e enumerations)."""
    kids = result.tree()
    lines = ["processes: %d" % len(result.processes)]

    def walk(i: int, prefix: str, last: bool, top: bool) -> None:
        if len(lines) > limit:
            return
        p = result.processes[i]
        branch = "" if top else ("`- " if last else "|- ")
        lines.append("  %s%s%s  [%s]  %s" % (prefix, branch, process_label(p, width),
                                             process_status(p), process_counts(p)))
        children = kids.get(i, [])
        inner = prefix + ("" if top else ("   " if last else "|  "))
        for k, c in enumerate(children):
            walk(c, inner, k == len(children) - 1, False)

    for i in kids.get(None, []):
        walk(i, "", True, True)
    if len(lines) > limit:
        lines = lines[:limit] + ["  ... %d more" % (len(result.processes) - limit + 1)]
    return "\n".join(lines)


def repr_pretty(result, p, cycle: bool) -> None:
    """IPython's plain-text display."""
    if cycle:
        p.text("Result(...)")
    else:
        p.text(summary_text(result))


# -- HTML ---------------------------------------------------------------------

def _tree(paths: list) -> dict:
    """Nested dicts, one level per path component; files map to None."""
    root: dict = {}
    for p in paths:
        node = root
        parts = [c for c in p.split("/") if c] or [""]
        for comp in parts[:-1]:
            child = node.get(comp)
            if not isinstance(child, dict):
                child = node[comp] = {}
            node = child
        node.setdefault(parts[-1], None)
    return root


def _count(node) -> int:
    return 1 if node is None else sum(_count(v) for v in node.values())


def _render_tree(node: dict, out: list, prefix: str = "/") -> None:
    out.append('<ul class="sbx-tree">')
    for name in sorted(node):
        child = node[name]
        label = prefix + name
        # Collapse chains of single-child directories (/usr/include/x86_64...)
        # so deep trees do not need a click per component.
        while isinstance(child, dict) and len(child) == 1:
            (only, grandchild), = child.items()
            if grandchild is None:
                break
            label += "/" + only
            child = grandchild
        esc = html.escape(printable_path(label))
        if child is None:
            out.append("<li><code>%s</code></li>" % esc)
        else:
            out.append("<li><details><summary><code>%s/</code> (%d)</summary>"
                       % (esc, _count(child)))
            _render_tree(child, out, "")
            out.append("</details></li>")
    out.append("</ul>")


def _render_paths(paths: list, out: list) -> None:
    # Anonymous objects (pipe:[123], anon_inode:...) have no directory.
    anonymous = [p for p in paths if not p.startswith("/")]
    if anonymous:
        out.append('<ul class="sbx-tree">%s</ul>' % "".join(
            "<li><code>%s</code></li>" % html.escape(printable_path(p)) for p in anonymous))
    _render_tree(_tree([p for p in paths if p.startswith("/")]), out)


def _render_category(name: str, paths: list, shown: int, maximum: int) -> str:
    out = ["<details><summary><b>%s</b> (%d)</summary>" % (name, len(paths))]
    head, rest = paths[:shown], paths[shown:maximum]
    _render_paths(head, out)
    if rest:
        out.append("<details><summary>show %d more</summary>" % len(rest))
        _render_paths(rest, out)
        out.append("</details>")
    hidden = len(paths) - len(head) - len(rest)
    if hidden > 0:
        out.append("<p>%d more not shown (see <code>Result.to_pandas()</code>)</p>" % hidden)
    out.append("</details>")
    return "".join(out)


def to_html(result, *, shown: int = HTML_SHOWN, maximum: int = HTML_MAX) -> str:
    """The Jupyter view: counts, then one collapsible directory tree per
    category; at most ``shown`` paths open, up to ``maximum`` behind a
    "show more", the rest counted."""
    e = html.escape
    state = ("complete" if result.complete
             else '<span style="color:#b00">incomplete</span>')
    out = ['<div class="sbx-result">',
           "<p><code>%s</code> &rarr; exit status %s in %.2fs, backend %s, %s</p>"
           % (e(command_line(result.args)), e(str(result.returncode)),
              result.duration, e(result.backend or "?"), state),
           "<table><tr>%s</tr><tr>%s</tr></table>" % (
               "".join("<th>%s</th>" % c for c in CATEGORIES + ("execs",)),
               "".join("<td>%d</td>" % len(getattr(result, c)) for c in CATEGORIES)
               + "<td>%d</td>" % len(result.execs))]
    if result.warnings:
        out.append("<ul>%s</ul>" % "".join(
            "<li>warning: %s</li>" % e(printable_path(w)) for w in result.warnings))
    for cat in CATEGORIES:
        paths = list(getattr(result, cat))
        if paths:
            out.append(_render_category(cat, paths, shown, maximum))
    if result.denied:
        rows = "".join("<tr><td>%s</td><td><code>%s</code></td><td>%s</td></tr>" % (
            e(d.category), e(printable_path(d.path)), "" if d.pid is None else d.pid)
            for d in result.denied[:maximum])
        out.append("<details open><summary><b style=\"color:#b00\">denied</b> (%d)</summary>"
                   "<table><tr><th>category</th><th>path</th><th>pid</th></tr>%s</table>"
                   "</details>" % (len(result.denied), rows))
    if result.breakaways:
        rows = "".join("<tr><td>%d</td><td><code>%s</code></td></tr>" % (
            b.pid, e(command_line(b.argv) if b.argv else printable_path(b.path)))
            for b in result.breakaways[:maximum])
        out.append("<details><summary><b>breakaways</b> (%d, not traced)</summary><table>"
                   "<tr><th>pid</th><th>argv</th></tr>%s</table></details>"
                   % (len(result.breakaways), rows))
    if result.processes:
        out.append(_render_processes(result, maximum))
    if result.execs:
        rows = "".join("<tr><td>%d</td><td>%d</td><td><code>%s</code></td></tr>" % (
            x.pid, x.ppid, e(command_line(x.argv) if x.argv else printable_path(x.path)))
            for x in result.execs[:maximum])
        out.append("<details><summary><b>execs</b> (%d)</summary><table>"
                   "<tr><th>pid</th><th>ppid</th><th>argv</th></tr>%s</table></details>"
                   % (len(result.execs), rows))
    out.append("</div>")
    return "".join(out)


def _render_processes(result, maximum: int) -> str:
    """The process tree as nested <details>: each node its argv, pid, exit
    status and counts; opened, its own paths per category and its children."""
    e = html.escape
    kids = result.tree()
    budget = [maximum]

    def node(i: int) -> str:
        budget[0] -= 1
        p = result.processes[i]
        head = "<code>%s</code> <small>%s &middot; %s</small>" % (
            e(process_label(p)), e(process_status(p)), e(process_counts(p)))
        body = []
        for cat in CATEGORIES:
            paths = list(getattr(p, cat))
            if paths:
                body.append("<div>%s (%d): %s%s</div>" % (
                    cat, len(paths), ", ".join("<code>%s</code>" % e(printable_path(x))
                                               for x in paths[:20]),
                    " ..." if len(paths) > 20 else ""))
        for c in kids.get(i, []):
            if budget[0] <= 0:
                body.append("<div>... more processes</div>")
                break
            body.append(node(c))
        return ('<details style="margin-left:1em"><summary>%s</summary>%s</details>'
                % (head, "".join(body)))

    return ("<details><summary><b>processes</b> (%d)</summary>%s</details>"
            % (len(result.processes), "".join(node(i) for i in kids.get(None, []))))


def mimebundle(result) -> dict:
    return {"text/html": to_html(result), "text/plain": summary_text(result)}
