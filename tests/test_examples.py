"""The examples/ as their readers run them: the caching build driver, the
pytest example suite, the notebook (executed), and the README's demo."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox_py

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def tracing_backend():
    try:
        sandbox_py.Sandbox()
    except sandbox_py.SandboxUnavailableError as e:
        if os.environ.get("SANDBOX_PY_REQUIRE_EBPF") == "1":
            pytest.fail("a tracing backend is required here: %s" % e)
        pytest.skip(str(e))


@pytest.fixture
def build_driver(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import build_driver
    return build_driver


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_build_driver_reruns_exactly_what_changed(tmp_path, build_driver):
    if not shutil.which("cc"):
        pytest.skip("no C compiler")
    write(tmp_path / "main.c", '#include <stdio.h>\n#include "config.h"\nint util(void);\n'
          'int main(void) { printf("%d %d\\n", VALUE, util()); return 0; }\n')
    write(tmp_path / "util.c", "int util(void) { return 7; }\n")
    write(tmp_path / "inc2" / "config.h", "#define VALUE 1\n")
    (tmp_path / "inc1").mkdir()
    log = []

    def build():
        log.clear()
        ran = build_driver.build(str(tmp_path), ["inc1", "inc2"], "app", log=log.append)
        output = subprocess.run([str(tmp_path / "app")], capture_output=True, text=True).stdout
        return ran, output

    ran, out = build()
    assert ran == ["compile main.c", "compile util.c", "link app"]
    assert out == "1 7\n"

    # An unchanged tree: every step is restored from the cache, none runs.
    ran, out = build()
    assert ran == []
    assert log == ["hit  compile main.c", "hit  compile util.c", "hit  link app"]

    # A changed header: its compile step and the link rerun, util.c does not.
    write(tmp_path / "inc2" / "config.h", "#define VALUE 2\n")
    ran, out = build()
    assert ran == ["compile main.c", "link app"]
    assert out == "2 7\n"
    assert any("inc2/config.h" in line for line in log)

    # A new file in an include directory searched first: no file the compiler
    # read changed, yet the step must rerun because it would now pick it up.
    write(tmp_path / "inc1" / "config.h", "#define VALUE 3\n")
    ran, out = build()
    assert ran == ["compile main.c", "link app"]
    assert out == "3 7\n"
    assert any("probe inc1/config.h changed: absent -> file" in line for line in log)

    # A deleted output is restored from the cache: its inputs did not change.
    (tmp_path / "util.o").unlink()
    ran, out = build()
    assert ran == [] and (tmp_path / "util.o").exists()
    assert out == "3 7\n"


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_pytest_example_suite(extra):
    if extra:
        pytest.importorskip("xdist")
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                        *extra, str(EXAMPLES / "pytest_suite")],
                       capture_output=True, text=True, cwd=str(EXAMPLES / "pytest_suite"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "4 passed, 1 xfailed" in p.stdout


def test_notebook_executes():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(str(EXAMPLES / "explore_dependencies.ipynb"), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # The first result is displayed richly, with its HTML view.
    html = [o for o in outputs if o.output_type == "execute_result"
            and "text/html" in o.get("data", {})]
    assert html and "<details>" in html[0]["data"]["text/html"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "after creating include/stdio.h: False" in text


def test_trace_build_demo():
    p = subprocess.run([sys.executable, str(EXAMPLES / "trace_build.py")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert out.startswith("make -j2: exit status 0")
    local = {line.split()[0]: line.split()[1:] for line in out.splitlines()
             if line.startswith("  ") and len(line.split()) > 1}
    assert {"pathset.c", "pathset.h", "result.c", "Makefile"} <= set(local["reads"])
    assert {"pathset.o", "result.o", "libsbxcore.a"} <= set(local["writes"])
    assert "programs run" in out and "make" in out
