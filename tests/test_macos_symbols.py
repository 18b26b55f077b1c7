"""Every libSystem entry that names, opens or lists a file is interposed or
declared, proven from the SDK here (no Mac needed).

The symbols come from the SDK's own export list, zig's `libSystem.tbd`
(the `ziglang` test dependency), for each architecture: every symbol, with
all its `$` variants (`$NOCANCEL`, `$INODE64`, `$DARWIN_EXTSN`, `$NFTS`
...), whose base name is

  - an entry point of the shared hook list (shims/core/hooks.def, as the
    cross-built dylib interposes it), or
  - the system call stub under one of them (`___open_nocancel`, which
    `_open$NOCANCEL` calls, exported to libSystem's other libraries), or
  - a file or directory entry of the declared set: the names issue 27 lists
    and every function Apple's public headers for these calls declare
    (sys/attr.h with the attribute-list calls of unistd.h, sys/clonefile.h,
    copyfile.h, removefile.h, fts.h, ftw.h, dirent.h, spawn.h), read from
    zig's copy of those headers.

Each must be interposed in that architecture's slice (read back from its
`__DATA,__interpose` section, as tests/test_macos_build.py does) or named
in docs/macos.md's table of entries not interposed, with the reason and
what covers a file a program could reach through it.

    python tests/test_macos_symbols.py [DYLIB_DIR]   prints the listing
"""
from __future__ import annotations

import fnmatch
import os
import re
import sys

import pytest

from test_macos_build import built  # noqa: F401 - the session build, a fixture

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARCH_TARGETS = {"arm64": ("arm64-macos", "arm64e-macos"), "x86_64": ("x86_64-macos",)}
DOC = os.path.join(ROOT, "docs", "macos.md")
DOC_SECTION = "### libSystem entries not interposed"

# What issue 27 names, beyond the hook list's own variants.
ISSUE_NAMES = {"getdirentries", "getattrlistbulk", "openbyid_np", "open_dprotected_np",
               "openx_np", "exchangedata", "fsgetpath", "searchfs"}
# The headers of the declared set; fts.h includes fts_compat.h in zig's copy
# (fts_new.h, the SDK's other branch, declares the same names); removefile.h
# is not in zig's copy: its declarations are Apple's documented ones.
HEADERS = ("sys/clonefile.h", "copyfile.h", "fts.h", "fts_compat.h", "ftw.h", "dirent.h",
           "spawn.h")
# fts.h's branch for today's targets, fts_new.h, is not in zig's copy
# either: the calls it declares beyond fts_compat.h's
FTS_NEW_H = {"fts_get_clientptr", "fts_set_clientptr", "fts_get_stream"}
REMOVEFILE_H = {"removefile", "removefileat", "removefile_state_alloc", "removefile_state_free",
                "removefile_state_get", "removefile_state_set", "removefile_cancel"}


def zig_lib():
    ziglang = pytest.importorskip("ziglang")
    return os.path.join(os.path.dirname(ziglang.__file__), "lib", "libc")


def base(symbol: str) -> str:
    """`_open$NOCANCEL` -> `open`"""
    return symbol[1:].split("$")[0]


def _flow_lists(text: str):
    """(key, [items]) of each YAML flow list `key: [ a, 'b$c', ... ]`."""
    for m in re.finditer(r"([\w-]+):\s*\[([^\]]*)\]", text):
        yield m.group(1), [t.strip().strip("'\"") for t in m.group(2).split(",") if t.strip()]


def libsystem_exports(arch: str, path: str = None) -> set:
    """Every symbol libSystem.B.dylib exports for `arch`: its own and those
    of the libraries it re-exports (TAPI text stub, version 4)."""
    path = path or os.path.join(zig_lib(), "darwin", "libSystem.tbd")
    with open(path, encoding="utf-8") as f:
        docs = [d for d in f.read().split("--- !tapi-tbd") if "install-name:" in d]
    umbrella = docs[0]
    assert "'/usr/lib/libSystem.B.dylib'" in umbrella
    libs = {"/usr/lib/libSystem.B.dylib"}
    m = re.search(r"^reexported-libraries:\n((?:  .*\n)+)", umbrella, re.M)
    for key, items in _flow_lists(m.group(1)):
        if key == "libraries":
            libs.update(items)
    want = ARCH_TARGETS[arch]
    out = set()
    for doc in docs:
        name = re.search(r"install-name:\s*'([^']+)'", doc).group(1)
        if name not in libs:
            continue
        for sec in re.finditer(r"^(?:exports|reexports):\n((?:  .*\n?)+)", doc, re.M):
            for entry in re.split(r"^  - ", sec.group(1), flags=re.M)[1:]:
                lists = dict(_flow_lists(entry))
                if not set(lists.get("targets", ())) & set(want):
                    continue
                for key in ("symbols", "weak-symbols"):
                    out.update(s for s in lists.get(key, ()) if s.startswith("_"))
    return out


def _declared_names(path: str) -> set:
    """Identifiers called in a header's declarations (comments removed)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", text))


def header_functions(exported_bases: set) -> dict:
    """{header: the libSystem functions it declares}.  Macros and types
    fall out: only names libSystem exports are kept."""
    inc = os.path.join(zig_lib(), "include", "any-darwin-any")
    out = {}
    for h in HEADERS:
        out[h] = _declared_names(os.path.join(inc, h)) & exported_bases
    # sys/attr.h declares no function: its calls are declared in unistd.h
    # and sys/unistd.h; the attribute-list ones, and those attr.h itself
    # names as its users (searchfs, exchangedata ...)
    with open(os.path.join(inc, "sys", "attr.h"), encoding="utf-8") as f:
        mentioned = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", f.read()))
    unistd = (_declared_names(os.path.join(inc, "unistd.h"))
              | _declared_names(os.path.join(inc, "sys", "unistd.h"))) & exported_bases
    out["sys/attr.h"] = {n for n in unistd if "attr" in n} | (mentioned & unistd)
    out["removefile.h (Apple's, not in zig's headers)"] = REMOVEFILE_H & exported_bases
    out["fts_new.h (Apple's, not in zig's headers)"] = FTS_NEW_H & exported_bases
    return out


def declared_in_doc(path: str = DOC) -> list:
    """[(name patterns, reason, cover)] from the table in docs/macos.md."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert DOC_SECTION in text, "docs/macos.md has no section %r" % DOC_SECTION
    section = text.split(DOC_SECTION, 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[1], cells[2]))
    return rows


def _matches(pattern: str, symbol: str) -> bool:
    """A doc name covers a symbol: `fts_open` every variant of that base,
    `_open$X` (with its underscore and suffix) that symbol only, a `*`
    pattern every base it matches."""
    if pattern.startswith("_") and "$" in pattern:
        return pattern == symbol
    return fnmatch.fnmatchcase(base(symbol), pattern)


def check(interposed: dict, exports: dict) -> dict:
    """The listing for each architecture: {arch: {"interposed": [...],
    "declared": {row: [...]}, "missing": [...], "bases": set}}.
    `interposed`/`exports`: {arch: set of symbols}."""
    bases_hooked = {base(s) for a in interposed for s in interposed[a]}
    exported_bases = {base(s) for a in exports for s in exports[a]}
    headers = header_functions(exported_bases)
    # libsystem_kernel's system call stubs under the hooked entry points
    # (`___open_nocancel` ...: what `open$NOCANCEL` calls; exported)
    stubs = {"__%s_nocancel" % b for b in bases_hooked} & exported_bases
    considered = bases_hooked | stubs | ISSUE_NAMES | set().union(*headers.values())
    rows = declared_in_doc()
    out = {}
    for arch in exports:
        listing = {"interposed": [], "declared": {}, "missing": [], "headers": headers,
                   "considered": considered}
        for s in sorted(x for x in exports[arch] if base(x) in considered):
            if s in interposed[arch]:
                listing["interposed"].append(s)
                continue
            row = next((r for r in rows if any(_matches(p, s) for p in r[0])), None)
            if row:
                listing["declared"].setdefault(" ".join(row[0]), []).append(s)
            else:
                listing["missing"].append(s)
        out[arch] = listing
    return out


def render(result: dict) -> str:
    lines = []
    for arch, li in result.items():
        nd = sum(len(v) for v in li["declared"].values())
        lines.append("%s: %d symbols checked: %d interposed, %d declared in docs/macos.md, "
                     "%d missing" % (arch, len(li["interposed"]) + nd + len(li["missing"]),
                                     len(li["interposed"]), nd, len(li["missing"])))
        lines.append("  interposed: " + " ".join(li["interposed"]))
        for row, syms in li["declared"].items():
            lines.append("  declared (%s): %s" % (row, " ".join(syms)))
        if li["missing"]:
            lines.append("  MISSING: " + " ".join(li["missing"]))
    return "\n".join(lines)


def dylib_interposed(path: str) -> set:
    from test_macos_build import interpose_pairs
    return {replacee for _, replacee, _ in interpose_pairs(path)}


# ---- the checks -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def listing(built):  # noqa: F811 - the session build of test_macos_build
    import machobuild
    interposed = {a: dylib_interposed(built["%s.%s" % (machobuild.DYLIB, a)])
                  for a in ARCH_TARGETS}
    exports = {a: libsystem_exports(a) for a in ARCH_TARGETS}
    return interposed, exports, check(interposed, exports)


def test_tbd_is_read_for_both_architectures():
    """The parse finds what is known to be there, per architecture."""
    arm, x86 = libsystem_exports("arm64"), libsystem_exports("x86_64")
    assert {"_open", "_open$NOCANCEL", "_getattrlistbulk", "_copyfile", "_removefile",
            "_fts_open$NFTS", "_realpath$DARWIN_EXTSN"} <= arm & x86
    assert "_stat$INODE64" in x86 and "_stat$INODE64" not in arm
    assert len(arm) > 3000 and len(x86) > 3000


def test_the_declared_set_holds_the_headers_calls():
    """The headers are read, not recalled: each yields its calls."""
    exported = {base(s) for s in libsystem_exports("arm64") | libsystem_exports("x86_64")}
    h = header_functions(exported)
    assert {"clonefile", "clonefileat", "fclonefileat"} == h["sys/clonefile.h"]
    assert {"copyfile", "fcopyfile"} <= h["copyfile.h"]
    assert {"fts_open", "fts_read", "fts_children", "fts_close"} <= h["fts_compat.h"]
    assert {"ftw", "nftw"} == h["ftw.h"]
    assert {"opendir", "readdir", "getdirentries", "scandir_b", "__opendir2"} <= h["dirent.h"]
    assert {"posix_spawn", "posix_spawn_file_actions_addchdir_np"} <= h["spawn.h"]
    assert {"getattrlist", "getattrlistbulk", "searchfs", "exchangedata",
            "fgetattrlist"} <= h["sys/attr.h"]


@pytest.mark.parametrize("arch", sorted(ARCH_TARGETS))
def test_every_file_entry_is_interposed_or_declared(listing, arch):
    interposed, exports, result = listing
    li = result[arch]
    print("\n" + render({arch: li}))
    assert not li["missing"], (
        "libSystem symbols (%s) neither interposed nor declared in docs/macos.md (%s): %s"
        % (arch, DOC_SECTION, li["missing"]))
    # the issue's own list, by name
    for s in ("_open$NOCANCEL", "_openat$NOCANCEL", "_creat$NOCANCEL", "_read$NOCANCEL",
              "_pread$NOCANCEL", "_write$NOCANCEL", "_close$NOCANCEL", "_fcntl$NOCANCEL",
              "_fopen$DARWIN_EXTSN", "_getdirentries", "_getattrlistbulk", "_openbyid_np",
              "_open_dprotected_np", "_openx_np", "_exchangedata", "_fsgetpath", "_searchfs",
              "___open_nocancel", "___read_nocancel", "___close_nocancel"):
        assert s in li["interposed"], s
    if arch == "x86_64":
        for s in ("_stat", "_stat$INODE64", "_lstat", "_opendir", "_readdir$INODE64"):
            assert s in li["interposed"], s


@pytest.mark.parametrize("arch", sorted(ARCH_TARGETS))
def test_every_replacee_is_a_libsystem_export(listing, arch):
    """A replacee libSystem does not export would never be bound: a symbol
    spelt wrong (an asm label, a suffix) is caught here."""
    interposed, exports, _ = listing
    assert interposed[arch] <= exports[arch], sorted(interposed[arch] - exports[arch])


def test_every_declaration_names_something_and_says_why(listing):
    """No stale row: each name in the doc's table matches a symbol checked
    on some architecture and is not interposed there; each row gives a
    reason and what covers the files reachable through it."""
    interposed, exports, result = listing
    rows = declared_in_doc()
    assert rows
    for names, reason, cover in rows:
        assert len(reason) > 20 and cover, (names, reason, cover)
        for p in names:
            hits = [(a, s) for a in exports for s in exports[a]
                    if base(s) in result[a]["considered"] and _matches(p, s)]
            assert hits, "docs/macos.md declares %s, which libSystem does not export" % p
            assert any(s not in interposed[a] for a, s in hits), \
                "docs/macos.md declares %s, which is interposed wherever it exists" % p


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(ROOT, "shims", "macos"))
    import machobuild
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "macho")
    got = {a: dylib_interposed(os.path.join(d, "%s.%s" % (machobuild.DYLIB, a)))
           for a in ARCH_TARGETS}
    print(render(check(got, {a: libsystem_exports(a) for a in ARCH_TARGETS})))
