"""What a notebook user sees: the HTML and plain-text views of a Result,
and the pandas/graphviz exports."""
import html.parser
import os
import subprocess
import sys

import pytest

from sandbox_py import Exec, PathSet, Result
from sandbox_py.display import HTML_MAX, HTML_SHOWN, printable_path


def make(**kw):
    base = dict(returncode=0, args=["gcc", "-c", "x.c"], backend="ebpf", duration=0.5)
    base.update(kw)
    for cat in ("reads", "writes", "probes", "enumerations"):
        base[cat] = PathSet(base.get(cat, ()))
    return Result(**base)


class TextAndTags(html.parser.HTMLParser):
    """Collects the visible text and checks the tags balance."""

    VOID = {"br", "hr", "img", "meta", "input"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.stack, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, "unbalanced </%s>" % tag
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(markup):
    p = TextAndTags()
    p.feed(markup)
    p.close()
    assert not p.stack, "unclosed tags: %s" % p.stack
    return "".join(p.text), p.tags


def test_html_escapes_markup_and_undecodable_bytes():
    hostile = "/tmp/<img src=x onerror=alert(1)>&amp;x"
    odd = os.fsdecode(b"/tmp/caf\xe9/\x1b[31mred")
    r = make(reads=[hostile, odd], writes=["/tmp/out.o"],
             execs=(Exec(10, 9, "/usr/bin/gcc", ("gcc", "<b>")),))
    markup = r._repr_html_()
    text, tags = parse(markup)
    assert "img" not in tags and "<img" not in markup
    # The path is shown, escaped: the reader sees the literal characters.
    assert "<img src=x onerror=alert(1)>&amp;x" in text
    assert "caf\\xe9" in text and "\\x1b[31mred" in text
    assert "\udce9" not in markup and "\x1b" not in markup
    assert "gcc '<b>'" in text


def test_html_counts_and_collapsible_trees():
    r = make(reads=["/src/a.h", "/src/b.h", "/usr/include/stdio.h"], writes=["/src/x.o"],
             probes=["/src/missing.h"], enumerations=["/src"])
    text, tags = parse(r._repr_html_())
    assert "details" in tags and "summary" in tags
    assert "reads (3)" in text and "writes (1)" in text and "probes (1)" in text
    # A directory node shows how many paths it holds.
    assert "/src/ (2)" in text
    assert "stdio.h" in text


def test_html_truncates_with_show_more():
    n = HTML_MAX + 50
    r = make(reads=["/data/f%05d" % i for i in range(n)])
    markup = r._repr_html_()
    text, _ = parse(markup)
    assert "reads (%d)" % n in text
    assert "show %d more" % (HTML_MAX - HTML_SHOWN) in text
    assert "50 more not shown" in text
    assert "f%05d" % (HTML_MAX - 1) in text          # last one rendered
    assert "f%05d" % HTML_MAX not in text             # first one beyond the cap


def test_mimebundle_and_pretty():
    r = make(reads=["/a"], complete=False, warnings=("events dropped",))
    bundle = r._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    assert "incomplete" in bundle["text/html"]
    assert "warning: events dropped" in bundle["text/plain"]

    class Printer:
        def __init__(self):
            self.out = []

        def text(self, s):
            self.out.append(s)

    p = Printer()
    r._repr_pretty_(p, False)
    assert p.out[0].splitlines()[0] == \
        "gcc -c x.c: exit status 0 in 0.50s (backend ebpf, INCOMPLETE)"
    assert "reads" in p.out[0] and "/ (1)" in p.out[0]


def test_printable_path():
    assert printable_path("/plain/ü") == "/plain/ü"
    assert printable_path(os.fsdecode(b"/x\xff")) == "/x\\xff"
    assert printable_path("/a\nb\tc") == "/a\\nb\\tc"


def test_to_pandas_long_format():
    pd = pytest.importorskip("pandas")
    r = make(reads=["/src/a.h"], writes=["/src/x.o"], probes=["/src/gone.h"],
             enumerations=["/src"], execs=(Exec(10, 9, "/usr/bin/gcc", ("gcc", "-c")),))
    df = r.to_pandas()
    assert list(df.columns) == ["path", "category", "pid", "process", "ok", "errno",
                                "record"]
    assert len(df) == 5
    rows = {row.category: row for row in df.itertuples()}
    assert rows["read"].path == "/src/a.h" and bool(rows["read"].ok)
    assert pd.isna(rows["probe"].ok)
    assert rows["exec"].pid == 10 and rows["exec"].process == "gcc"
    assert pd.isna(rows["write"].pid)
    assert df.groupby("category", observed=True).size()["enumeration"] == 1


def test_to_graphviz_source():
    pytest.importorskip("graphviz")
    r = make(reads=["/src/a.h"], writes=["/src/x.o"],
             execs=(Exec(10, 9, "/usr/bin/gcc", ("gcc",)), Exec(11, 10, "/usr/lib/cc1", ("cc1",))))
    src = r.to_graphviz().source
    assert "digraph" in src
    assert "/src/a.h" in src and "/src/x.o" in src
    assert "cc1\\npid 11" in src
    # The gcc -> cc1 edge exists: find node ids by label.
    ids = {}
    for line in src.splitlines():
        line = line.strip()
        if "[label=" in line and "->" not in line:
            ids[line.split(" ", 1)[0]] = line
    gcc = next(k for k, v in ids.items() if "gcc\\npid 10" in v)
    cc1 = next(k for k, v in ids.items() if "cc1\\npid 11" in v)
    assert "%s -> %s" % (gcc, cc1) in src
    # Many files collapse into directory nodes.
    big = make(reads=["/d%d/f%d" % (i % 3, i) for i in range(100)])
    assert "/d1/ (33)" in big.to_graphviz(max_files=10).source


def test_missing_extra_gives_a_clear_message():
    code = ("import sys; sys.modules['pandas'] = None\n"
            "from sandbox_py import Result\n"
            "try:\n"
            "    Result(0, []).to_pandas()\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "needs the 'pandas' package" in out
    assert "pip install 'sandbox_py[notebook]'" in out
