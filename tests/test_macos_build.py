"""The macOS interpose dylib, checked from the Mach-O itself on any system:
cross-built for arm64 and x86_64 with zig (real macOS headers and
libSystem.tbd), then read back with the LLVM tools.  What only a Mac can
check (that dyld loads it and the hooks report) is in
.github/workflows/macos.yml; docs/macos.md says which is which."""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys

import pytest

from test_shim_hooks import hook_list, hooks_for, ROOT

sys.path.insert(0, os.path.join(ROOT, "shims", "macos"))
import machobuild  # noqa: E402

pytest.importorskip("ziglang")


def tool(name):
    for cand in (name, name + "-19", name + "-16", name + "-15", name + "-14"):
        if shutil.which(cand):
            return shutil.which(cand)
    pytest.skip("needs %s (Debian package llvm)" % name)


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("macho"))
    return machobuild.build(out)


def objdump(*args):
    return subprocess.run([tool("llvm-objdump"), "--macho"] + list(args), capture_output=True,
                          text=True, check=True).stdout


def interpose_pairs(path):
    """[(replacement symbol, replacee symbol, dylib)] read from the file:
    the section's place from the load commands, each pair's first pointer
    from the section bytes (a rebased address, named by the symbol table),
    the second from the bind table (a libSystem import)."""
    heads = objdump("--private-headers", path)
    m = re.search(r"sectname __interpose\s+segname __DATA\s+addr (0x[0-9a-f]+)\s+"
                  r"size (0x[0-9a-f]+)\s+offset (\d+)", heads)
    assert m, "no __DATA,__interpose section"
    addr, size, off = int(m.group(1), 16), int(m.group(2), 16), int(m.group(3))
    binds = {}
    for line in objdump("--bind", path).splitlines():
        f = line.split()
        if len(f) >= 7 and f[1] == "__interpose":
            binds[int(f[2], 16)] = (f[6], f[5])
    syms = {}
    out = subprocess.run([tool("llvm-nm"), path], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3:
            syms[int(f[0], 16)] = f[2]
    with open(path, "rb") as fh:
        fh.seek(off)
        raw = fh.read(size)
    pairs = []
    for i in range(size // 16):
        target = struct.unpack_from("<Q", raw, 16 * i)[0]
        replacee, dylib = binds.get(addr + 16 * i + 8, (None, None))
        pairs.append((syms.get(target), replacee, dylib))
    return pairs


def darwin_hooks(arch):
    """The hooks.def entries interposed in the `arch` slice."""
    return hooks_for("DARWIN") | ({n for n, w in hook_list() if w == "DARWIN_X86_64"}
                                  if arch == "x86_64" else set())


def client_symbols(arch, tmp_path, names):
    """{C name: symbol} for each function as a program compiled against the
    same headers for `arch` binds it: what the interpose pair must replace.
    Read from the client object's relocations: entry i of its table at
    offset 8*i names the symbol that C name became."""
    src = tmp_path / ("client_%s.c" % arch)
    with open(os.path.join(ROOT, "shims", "macos", "interpose.c")) as f:
        includes = "".join(line for line in f if line.startswith("#include <"))
    order = sorted(names)
    src.write_text(includes + '#include "darwin_decls.h"\nvoid *sbx_client[] = {\n'
                   + "".join("    (void *)&%s,\n" % n for n in order) + "};\n")
    obj = str(tmp_path / ("client_%s.o" % arch))
    subprocess.run(machobuild.zig_cc(arch) + ["-Wno-deprecated-declarations", "-I",
                   os.path.join(ROOT, "shims", "macos"), "-c", "-o", obj, str(src)],
                   check=True, cwd=ROOT)
    out = {}
    section = None
    for line in objdump("-r", obj).splitlines():
        if line.startswith("Relocation information"):
            section = line.split("(")[1].split(")")[0]
            continue
        # address pcrel length extern type scattered symbol (arm64 prints
        # the length as "?( 3)")
        m = re.match(r"([0-9a-f]+)\s+\S+\s+(?:\?\(\s*\d+\)|\S+)\s+True\s+\S+\s+\S+\s+(\S+)$",
                     line)
        if section == "__DATA,__data" and m:
            out[order[int(m.group(1), 16) // 8]] = m.group(2)
    return out


@pytest.mark.parametrize("arch", machobuild.ARCHS)
def test_every_darwin_hook_has_an_interpose_pair(built, arch, tmp_path):
    path = built["%s.%s" % (machobuild.DYLIB, arch)]
    pairs = interpose_pairs(path)
    want = darwin_hooks(arch)
    got = {}
    for repl, replacee, dylib in pairs:
        assert repl and repl.startswith("_sbx_hook_"), (repl, replacee)
        assert dylib == "libSystem", (replacee, dylib)
        got[repl[len("_sbx_hook_"):]] = replacee
    assert len(pairs) == len(want)
    assert set(got) == want
    client = client_symbols(arch, tmp_path, want)
    wrong = {n: (got[n], client.get(n)) for n in want if got[n] != client.get(n)}
    assert not wrong, "interposed symbol differs from what programs call: %s" % wrong
    # one pair per libSystem symbol: no symbol is replaced twice
    assert len(set(got.values())) == len(got)


def test_variant_symbols_per_architecture(built):
    """The binding the issue names, stated outright: x86_64 libSystem
    exports the 64-bit-inode and UNIX03 variants under suffixed names."""
    x86 = {r[len("_sbx_hook_"):]: s for r, s, _ in
           interpose_pairs(built[machobuild.DYLIB + ".x86_64"])}
    arm = {r[len("_sbx_hook_"):]: s for r, s, _ in
           interpose_pairs(built[machobuild.DYLIB + ".arm64"])}
    for name in ("stat", "lstat", "fstatat", "opendir", "readdir", "statfs"):
        assert x86[name] == "_%s$INODE64" % name
        assert arm[name] == "_" + name
    # realpath(3)'s POSIX-conforming entry point carries the suffix on
    # both architectures (sys/cdefs.h: __DARWIN_EXTSN is unconditional)
    assert x86["realpath"] == arm["realpath"] == "_realpath$DARWIN_EXTSN"
    assert x86["open"] == arm["open"] == "_open"


@pytest.mark.parametrize("name", [machobuild.DYLIB, machobuild.LAUNCHER])
@pytest.mark.parametrize("arch", machobuild.ARCHS)
def test_links_nothing_beyond_libsystem(built, arch, name):
    path = built["%s.%s" % (name, arch)]
    heads = objdump("--private-headers", path)
    dylibs = re.findall(r"cmd LC_LOAD(?:_WEAK)?_DYLIB\s+cmdsize \d+\s+name (\S+)", heads)
    assert dylibs == ["/usr/lib/libSystem.B.dylib"]
    filetype = re.search(r"MH_MAGIC_64\s+\S+\s+\S+\s+\S+\s+(\w+)", heads).group(1)
    assert filetype == ("DYLIB" if name == machobuild.DYLIB else "EXECUTE")


@pytest.mark.parametrize("name", [machobuild.DYLIB, machobuild.LAUNCHER])
def test_universal_files_carry_both_slices(built, name):
    """llvm-lipo joins the slices as a Mac build ships them."""
    if name not in built:
        pytest.skip("needs llvm-lipo (Debian package llvm)")
    out = subprocess.run([machobuild._lipo(), "-archs", built[name]], capture_output=True,
                         text=True, check=True).stdout.split()
    assert sorted(out) == sorted(machobuild.ARCHS)


@pytest.mark.parametrize("arch", machobuild.ARCHS)
def test_dylib_exports_no_hook(built, arch):
    """A hook exported under its libc name would interpose by two-level
    namespace accident; the table is the only way in."""
    out = subprocess.run([tool("llvm-nm"), "-gU", built["%s.%s" % (machobuild.DYLIB, arch)]],
                         capture_output=True, text=True, check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert exported <= {"___dso_handle", "__mh_dylib_header"}, exported


# What the reader relies on in sbx_log.h: sizes, offsets, constants.
LAYOUT = ["sizeof(struct sbx_log_hdr)", "offsetof(struct sbx_log_hdr, head)",
          "offsetof(struct sbx_log_hdr, dropped)", "offsetof(struct sbx_log_hdr, next_id)",
          "sizeof(struct sbx_rec)", "offsetof(struct sbx_rec, type)",
          "offsetof(struct sbx_rec, flags)", "offsetof(struct sbx_rec, pid)",
          "offsetof(struct sbx_rec, aux)", "offsetof(struct sbx_rec, id)",
          "SBX_LOG_HDR", "SBX_LOG_CAP", "SBX_REC_START", "SBX_REC_WARN", "SBX_REC_LIVE",
          "SBX_REC_EXEC_SPAWNED"]
@pytest.mark.parametrize("arch", machobuild.ARCHS)
def test_core_never_calls_libc_that_reenters_hooks(built, arch):
    """The core resolves every relative path with the cwd; libsystem_c's
    getcwd reaches libsystem_kernel's open and fcntl across an image
    boundary, i.e. through our own hooks, which resolve paths again: calling
    it from the dylib would recurse.  (realpath is imported, by its own
    hook only, which passes the result through.)"""
    path = built["%s.%s" % (machobuild.DYLIB, arch)]
    imports = set()
    for kind in ("--bind", "--lazy-bind"):
        for line in objdump(kind, path).splitlines():
            f = line.split()
            if len(f) >= 5 and f[0].startswith("__") and "__interpose" not in f[1]:
                imports.add(f[-1].split("$")[0])
    assert imports, "no imports read"
    assert "_getcwd" not in imports, sorted(imports)


LAYOUT_HEAD = "#include <stddef.h>\n#include <stdio.h>\n#include \"sbx_log.h\"\n"


def test_record_layout_matches_the_linux_reader(built, tmp_path):
    """The Linux reader's decoder is compiled with this machine's layout of
    sbx_log.h; the Darwin build of the same header must agree field by
    field (checked by the compiler for both architectures)."""
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("needs a C compiler")
    src = tmp_path / "probe.c"
    src.write_text(LAYOUT_HEAD + "int main(void) {\n" + "".join(
        '    printf("%%llu\\n", (unsigned long long)(%s));\n' % e for e in LAYOUT)
        + "    return 0;\n}\n")
    exe = str(tmp_path / "probe")
    subprocess.run([cc, "-I", os.path.join(ROOT, "shims", "core"), "-o", exe, str(src)],
                   check=True)
    values = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()
    assert len(values) == len(LAYOUT), values
    asserts = tmp_path / "asserts.c"
    asserts.write_text(LAYOUT_HEAD + "".join(
        '_Static_assert((%s) == %sull, "%s");\n' % (e, v, e) for e, v in zip(LAYOUT, values)))
    for arch in machobuild.ARCHS:
        subprocess.run(machobuild.zig_cc(arch) + ["-c", "-o", str(tmp_path / ("a_%s.o" % arch)),
                       "-I", os.path.join(ROOT, "shims", "core"), str(asserts)], check=True,
                       cwd=ROOT)


@pytest.mark.parametrize("arch", machobuild.ARCHS)
def test_reader_extension_links_for_macos(arch, tmp_path):
    """The Python-side reader (Linux's preload reader with the kqueue
    watcher) links as a Mach-O bundle: everything but the Python C API
    binds to libSystem, the kqueue watcher is in, no Linux-only call is."""
    import sysconfig
    path = machobuild.cross_link_reader(str(tmp_path), arch, sysconfig.get_paths()["include"])
    binds = {}
    for line in objdump("--bind", path).splitlines() + objdump("--lazy-bind", path).splitlines():
        f = line.split()
        if len(f) >= 5 and f[-1].startswith("_"):
            binds[f[-1]] = f[-2]
    undefined = subprocess.run([tool("llvm-nm"), "-u", path], capture_output=True, text=True,
                               check=True).stdout.split()
    system = [s for s in undefined if not s.startswith(("_Py", "__Py"))]
    assert {"_kqueue", "_kevent", "_pthread_cond_timedwait_relative_np"} <= set(system)
    assert not {"_fallocate", "_syscall", "_poll", "_pthread_condattr_setclock"} & set(system)
    heads = objdump("--private-headers", path)
    assert re.findall(r"cmd LC_LOAD(?:_WEAK)?_DYLIB\s+cmdsize \d+\s+name (\S+)", heads) == \
        ["/usr/lib/libSystem.B.dylib"]
    unbound = [s for s in system if s != "dyld_stub_binder" and binds.get(s) != "libSystem"]
    assert not unbound, unbound


@pytest.mark.parametrize("arch", machobuild.ARCHS)
def test_mac_scenario_program_builds(arch, tmp_path):
    """The scenario program tests/test_macos.py runs on a Mac compiles
    against the real macOS headers here, so that job fails only on what it
    observes."""
    import test_macos
    src = tmp_path / "scenario.c"
    src.write_text(test_macos.SCENARIO)
    subprocess.run(machobuild.zig_cc(arch) + ["-Wall", "-Werror", "-o",
                   str(tmp_path / "scenario"), str(src)], check=True, cwd=ROOT)
