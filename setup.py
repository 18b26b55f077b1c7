"""Build: the C core as the CPython extension ``sandbox_py._core``.

On Linux the eBPF programs in bpf/ are compiled with clang and embedded in the
extension as a libbpf skeleton (bpftool gen skeleton), so the installed
package is one shared object with no data files to find at run time.
"""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_GEN = os.path.join(HERE, "build", "gen")

# Portable core: compiled for every target (also by the Windows launcher).
# Layout: csrc/core (shared by every backend and system), csrc/linux/<mechanism>,
# csrc/win, csrc/python (the CPython bindings).
CORE_SOURCES = ["csrc/core/pathset.c", "csrc/core/pathnorm.c", "csrc/core/result.c",
                "csrc/core/keyed_table.c", "csrc/core/access.c", "csrc/core/ledger.c",
                "csrc/python/pyresult.c"]
LINUX_COMMON = ["csrc/linux/elfinterp.c", "csrc/linux/exec_reads.c", "csrc/linux/syscalls.c",
                "csrc/linux/physpath.c", "csrc/linux/landlock.c"]
LINUX_SOURCES = ["csrc/python/module_ebpf.c", "csrc/linux/ebpf/ebpf.c",
                 "csrc/linux/ebpf/io_uring.c"] + LINUX_COMMON
INCLUDE_DIRS = ["csrc/core", "csrc/linux", "csrc/python"]

APT_HINT = ("on Debian/Ubuntu: apt-get install clang llvm libbpf-dev libelf-dev "
            "zlib1g-dev bpftool linux-libc-dev")


#: Where Debian and others put admin tools, absent from a normal user's PATH.
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class Missing(Exception):
    """A piece the eBPF backend needs is not on this machine."""


def need(tool):
    """The tool's path: $SANDBOX_PY_<TOOL>, else PATH, else the sbin dirs."""
    path = (os.environ.get("SANDBOX_PY_" + tool.upper())
            or shutil.which(tool) or shutil.which(tool, path=os.pathsep.join(SBIN)))
    if not path:
        raise Missing("'%s' not found (looked in PATH and %s)" % (tool, ", ".join(SBIN)))
    return path


def multiarch():
    """The multiarch include folder's name (x86_64-linux-gnu on Debian)."""
    import sysconfig
    return sysconfig.get_config_var("MULTIARCH") or "%s-linux-gnu" % os.uname().machine


# What the BPF object is compiled from: its own folder, the access model's
# operations and the syscall table it generates its dispatch from.
BPF_INPUTS = ["bpf", "csrc/core/access_ops.h", "csrc/linux/syscalls.def"]


def _newer_than_sources(path):
    sources = []
    for rel in BPF_INPUTS:
        p = os.path.join(HERE, rel)
        sources += [os.path.join(p, f) for f in os.listdir(p)] if os.path.isdir(p) else [p]
    return os.path.exists(path) and all(os.path.getmtime(path) >= os.path.getmtime(f)
                                        for f in sources)


def run(cmd, **kw):
    print(" ".join(cmd), flush=True)
    subprocess.check_call(cmd, **kw)


class BuildWithBpf(build_ext):
    """Compile bpf/*.bpf.c and generate the skeleton headers before the C core."""

    def run(self):
        skipped = None
        if any(e.name == "sandbox_py._core" for e in self.extensions):
            try:
                self.build_bpf()
            except (Missing, subprocess.CalledProcessError) as e:
                if os.environ.get("SANDBOX_PY_REQUIRE_EBPF_BUILD") == "1":
                    sys.exit("sandbox_py build: the eBPF backend cannot be built: %s (%s)"
                             % (e, APT_HINT))
                # The unprivileged backends need none of this: build them,
                # and say once what the eBPF backend lacks.
                skipped = "%s; %s, or point SANDBOX_PY_BPF_OBJECT at a prebuilt " \
                          "sandbox.bpf.o, then reinstall" % (e, APT_HINT)
                print("sandbox_py build: WARNING: leaving out the eBPF backend: " + skipped,
                      file=sys.stderr, flush=True)
                self.extensions = [x for x in self.extensions if x.name != "sandbox_py._core"]
        super().run()
        self.write_build_info(skipped)
        # the unprivileged backends' programs: the LD_PRELOAD shim, the loader
        # audit module and the ptrace launcher
        if sys.platform.startswith("linux") and any(e.name == "sandbox_py._unpriv"
                                                    for e in self.extensions):
            self.build_unpriv_programs()
        if sys.platform == "darwin" and any(e.name == "sandbox_py._unpriv"
                                            for e in self.extensions):
            self.build_interpose()

    def build_interpose(self):
        """macOS: the interpose dylib and its launcher, universal (arm64 and
        x86_64), with the system clang (shims/macos/machobuild.py)."""
        sys.path.insert(0, os.path.join(HERE, "shims", "macos"))
        import machobuild
        where = os.path.dirname(self.get_ext_fullpath("sandbox_py._unpriv"))
        machobuild.build(where, cc=os.environ.get("CC") or "clang")

    def build_unpriv_programs(self):
        """The preload shim and the ptrace launcher, next to _unpriv (inside
        the source tree for --inplace and editable installs)."""
        where = os.path.dirname(self.get_ext_fullpath("sandbox_py._unpriv"))
        cc = os.environ.get("CC") or "cc"
        flags = ["-O2", "-Wall", "-D_GNU_SOURCE"] + ["-I" + d for d in INCLUDE_DIRS +
                                                      ["csrc/linux/ptrace", "shims/core"]]
        loader = dynamic_loader()
        if loader:
            # linked against nothing but the dynamic loader: no second libc
            # in the audit module's namespace (shims/linux/audit_nolibc.c)
            audit = (LOADER_AUDIT, SHIM_FLAGS + AUDIT_NOLIBC_FLAGS,
                     LOADER_AUDIT_SOURCES + ["shims/linux/audit_nolibc.c", loader])
        else:
            audit = (LOADER_AUDIT, SHIM_FLAGS, LOADER_AUDIT_SOURCES + ["-ldl"])
        for name, extra, sources in (
                (PRELOAD_SHIM, SHIM_FLAGS, PRELOAD_SHIM_SOURCES + ["-ldl"]),
                audit,
                (PTRACE_LAUNCHER, [], ["csrc/linux/ptrace/ptrace_launcher.c",
                                       "csrc/linux/elfinterp.c", "csrc/linux/landlock.c"])):
            out = os.path.join(where, name)
            run([cc] + flags + extra + ["-o", out + ".tmp"] + sources, cwd=HERE)
            os.replace(out + ".tmp", out)

    def write_build_info(self, ebpf_skipped):
        """sandbox_py/_build_info.json: what this build left out and why, so
        that the backend's "unavailable" message can say it at run time."""
        import json
        where = os.path.dirname(self.get_ext_fullpath("sandbox_py._unpriv"))
        os.makedirs(where, exist_ok=True)
        with open(os.path.join(where, "_build_info.json"), "w") as f:
            json.dump({"ebpf_left_out": ebpf_skipped}, f)

    def build_bpf(self):
        """The libbpf skeleton header (build/gen/sandbox.skel.h) that embeds
        the BPF object: compiled with clang, or from a prebuilt object
        ($SANDBOX_PY_BPF_OBJECT), or a skeleton already generated from the
        current sources.  Raises Missing when none can be had."""
        if not os.path.exists("/usr/include/bpf/libbpf.h"):
            raise Missing("libbpf headers not found (/usr/include/bpf/libbpf.h)")
        skeleton = os.path.join(BUILD_GEN, "sandbox.skel.h")
        prebuilt = os.environ.get("SANDBOX_PY_BPF_OBJECT")
        try:
            bpftool = need("bpftool")
            clang = None if prebuilt else need("clang")
        except Missing:
            if not prebuilt and _newer_than_sources(skeleton):
                print("sandbox_py build: using the existing %s" % skeleton, flush=True)
                return
            raise
        os.makedirs(BUILD_GEN, exist_ok=True)
        if prebuilt:
            obj = os.path.abspath(prebuilt)
            if not os.path.exists(obj):
                raise Missing("SANDBOX_PY_BPF_OBJECT=%s does not exist" % prebuilt)
            self.skeleton(bpftool, obj)
            return
        vmlinux = os.path.join(BUILD_GEN, "vmlinux.h")
        if not os.path.exists(vmlinux):
            btf = "/sys/kernel/btf/vmlinux"
            if not os.path.exists(btf):
                raise Missing("%s is missing; the kernel must be built with "
                              "CONFIG_DEBUG_INFO_BTF=y" % btf)
            with open(vmlinux + ".tmp", "w") as f:
                subprocess.check_call([bpftool, "btf", "dump", "file", btf, "format", "c"],
                                      stdout=f)
            os.replace(vmlinux + ".tmp", vmlinux)
        obj = os.path.join(BUILD_GEN, "sandbox.bpf.o")
        run([clang, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
             "-I", BUILD_GEN, "-I", os.path.join(HERE, "bpf"),
             "-I", os.path.join(HERE, "csrc", "core"), "-I", os.path.join(HERE, "csrc", "linux"),
             # asm/unistd_64.h (syscall numbers) lives in the multiarch folder
             "-idirafter", "/usr/include/%s" % multiarch(),
             "-c", os.path.join(HERE, "bpf", "sandbox.bpf.c"), "-o", obj])
        self.skeleton(bpftool, obj)

    def skeleton(self, bpftool, obj):
        with open(os.path.join(BUILD_GEN, "sandbox.skel.h.tmp"), "w") as f:
            subprocess.check_call([bpftool, "gen", "skeleton", obj, "name", "sandbox_bpf"],
                                  stdout=f)
        os.replace(os.path.join(BUILD_GEN, "sandbox.skel.h.tmp"),
                   os.path.join(BUILD_GEN, "sandbox.skel.h"))


# SANDBOX_PY_ONLY=name[,name] builds only those extensions (development aid:
# lets one backend be rebuilt while another's sources are being edited).
ONLY = [n for n in os.environ.get("SANDBOX_PY_ONLY", "").split(",") if n]

# Every header under csrc/ and bpf/: a change to one rebuilds the extensions.
C_HEADERS = [os.path.relpath(os.path.join(d, f), HERE)
             for base in ("csrc", "bpf", "shims/core", "shims/linux", "shims/macos")
             for d, _, files in os.walk(os.path.join(HERE, base))
             for f in files if f.endswith((".h", ".def"))]

ext_modules = []
if sys.platform.startswith("linux") and (not ONLY or "_core" in ONLY):
    ext_modules.append(Extension(
        "sandbox_py._core",
        sources=CORE_SOURCES + LINUX_SOURCES,
        include_dirs=INCLUDE_DIRS + ["csrc/linux/ebpf", "bpf", BUILD_GEN],
        # the skeleton embeds the BPF object: a change there must relink
        depends=[os.path.join(BUILD_GEN, "sandbox.skel.h"), "bpf/sandbox_event.h"]
                + C_HEADERS,
        libraries=["bpf", "elf", "z", "pthread"],
        extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wno-missing-braces"],
    ))

# --- unprivileged backends: preload reader + ptrace tracer ---
PRELOAD_SHIM = "_sbx_preload.so"
LOADER_AUDIT = "_sbx_audit.so"
PTRACE_LAUNCHER = "_sbx_ptrace_exec"
SHIM_FLAGS = ["-shared", "-fPIC", "-fvisibility=hidden", "-U_FORTIFY_SOURCE",
              "-fno-delete-null-pointer-checks", "-Wno-nonnull-compare"]
# The shim: the portable core (shims/core) with the Linux glue (shims/linux).
SHIM_CORE_SOURCES = ["shims/core/shim_core.c", "csrc/core/pathnorm.c", "csrc/core/access.c"]
SHIM_LINUX_SOURCES = ["shims/linux/shim_os_linux.c", "csrc/linux/syscalls.c"]
# the loader audit module shares the shim's record writer, not its hooks
LOADER_AUDIT_SOURCES = ["shims/linux/loader_audit.c"] + SHIM_CORE_SOURCES + SHIM_LINUX_SOURCES
# ... and links no C library: -z defs makes a libc call that slips in a
# build error, not a module the loader refuses at run time
AUDIT_NOLIBC_FLAGS = ["-nostdlib", "-fno-stack-protector", "-fno-tree-loop-distribute-patterns",
                      "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections",
                      "-Wl,-z,defs"]


def dynamic_loader():
    """The dynamic loader this interpreter was linked for (its PT_INTERP),
    or None: the audit module links against it alone."""
    import struct
    try:
        with open(os.path.realpath(sys.executable), "rb") as f:
            eh = f.read(64)
            if eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
                return None
            phoff, = struct.unpack_from("<Q", eh, 32)
            phentsize, phnum = struct.unpack_from("<HH", eh, 54)
            f.seek(phoff)
            ph = f.read(phentsize * phnum)
            for i in range(phnum):
                p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
                    "<IIQQQQ", ph, i * phentsize)
                if p_type == 3:
                    f.seek(p_offset)
                    path = f.read(p_filesz).rstrip(b"\0").decode()
                    return path if os.path.exists(path) else None
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None
# the ptrace backend's tracer, by concern (csrc/linux/ptrace/ptrace_run.h)
PTRACE_TRACER_SOURCES = ["csrc/linux/ptrace/" + f for f in (
    "ptrace_tracer.c", "ptrace_state.c", "ptrace_tracee.c", "ptrace_decode.c",
    "ptrace_notify.c", "ptrace_breakaway.c")]
PRELOAD_SHIM_SOURCES = (SHIM_CORE_SOURCES + ["shims/core/hooks_posix.c"] + SHIM_LINUX_SOURCES
                        + ["shims/linux/hooks_linux.c", "shims/linux/glibc_internal.c",
                           "shims/linux/raw_syscalls.c"])
if sys.platform.startswith("linux") and (not ONLY or "_unpriv" in ONLY):
    ext_modules.append(Extension(
        "sandbox_py._unpriv",
        sources=CORE_SOURCES + ["csrc/python/module_unpriv.c",
                                "csrc/linux/preload/preload_reader.c",
                                "csrc/linux/preload/reader_os_linux.c"]
        + PTRACE_TRACER_SOURCES + LINUX_COMMON,
        include_dirs=INCLUDE_DIRS + ["csrc/linux/preload", "csrc/linux/ptrace", "shims/core"],
        depends=C_HEADERS,
        libraries=["pthread"],
        extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wno-missing-braces"],
    ))

# --- macOS: the interpose backend's reader (the same shim-log reader as
# Linux's preload backend, with kqueue process watching); the dylib and its
# launcher are built next to it by BuildWithBpf.build_interpose ---
if sys.platform == "darwin" and (not ONLY or "_unpriv" in ONLY):
    sys.path.insert(0, os.path.join(HERE, "shims", "macos"))
    import machobuild
    ext_modules.append(Extension(
        "sandbox_py._unpriv",
        sources=machobuild.READER_SOURCES,
        include_dirs=machobuild.READER_INCLUDES,
        depends=C_HEADERS,
        extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wno-missing-braces"],
    ))

ext_modules = [e for e in ext_modules
               if not ONLY or e.name.rsplit(".", 1)[-1] in ONLY]


class BuildWithReapi(build_py):
    """Generate the REAPI modules of sandbox_py._reapi (the gRPC store of
    sandbox_py.memo) from the vendored official protos, with grpcio-tools
    (a build requirement).  Without it the package still builds: only
    ``Memo(remote="grpc://...")`` is unavailable, and says so."""

    def run(self):
        sys.path.insert(0, os.path.join(HERE, "sandbox_py", "_reapi"))
        try:
            import generate
            if not generate.up_to_date():
                generate.generate()
        except Exception as e:      # grpcio-tools missing, or protoc failed
            print("sandbox_py build: WARNING: not generating the REAPI modules (%s): "
                  "Memo(remote='grpc://...') will be unavailable" % e,
                  file=sys.stderr, flush=True)
        finally:
            sys.path.pop(0)
        super().run()


setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildWithBpf, "build_py": BuildWithReapi})
