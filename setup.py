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

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_GEN = os.path.join(HERE, "build", "gen")

# Portable core: compiled for every target (also by the Windows launcher).
CORE_SOURCES = ["csrc/pathset.c", "csrc/pathnorm.c", "csrc/result.c", "csrc/pyresult.c",
                "csrc/keyed_table.c"]
LINUX_SOURCES = ["csrc/module.c", "csrc/ebpf.c", "csrc/elfinterp.c"]

APT_HINT = ("on Debian/Ubuntu: apt-get install clang llvm libbpf-dev libelf-dev "
            "zlib1g-dev bpftool linux-libc-dev")


def need(tool):
    path = shutil.which(tool)
    if not path:
        sys.exit("sandbox_py build: '%s' not found; it is needed to build the eBPF "
                 "backend (%s)" % (tool, APT_HINT))
    return path


def run(cmd, **kw):
    print(" ".join(cmd), flush=True)
    subprocess.check_call(cmd, **kw)


class BuildWithBpf(build_ext):
    """Compile bpf/*.bpf.c and generate the skeleton headers before the C core."""

    def run(self):
        if any(e.name == "sandbox_py._core" for e in self.extensions):
            self.build_bpf()
        super().run()
        # --- unprivileged backends (issue 3): the LD_PRELOAD shim ---
        if any(e.name == "sandbox_py._unpriv" for e in self.extensions):
            self.build_unpriv_programs()

    def build_unpriv_programs(self):
        """The preload shim and the ptrace launcher, next to _unpriv (inside
        the source tree for --inplace and editable installs)."""
        where = os.path.dirname(self.get_ext_fullpath("sandbox_py._unpriv"))
        cc = os.environ.get("CC") or "cc"
        flags = ["-O2", "-Wall", "-D_GNU_SOURCE", "-Icsrc"]
        for name, extra, sources in (
                (PRELOAD_SHIM, ["-shared", "-fPIC", "-fvisibility=hidden", "-U_FORTIFY_SOURCE",
                                "-fno-delete-null-pointer-checks", "-Wno-nonnull-compare"],
                 PRELOAD_SHIM_SOURCES + ["-ldl"]),
                (PTRACE_LAUNCHER, [], ["csrc/ptrace_launcher.c", "csrc/elfinterp.c"])):
            out = os.path.join(where, name)
            run([cc] + flags + extra + ["-o", out + ".tmp"] + sources, cwd=HERE)
            os.replace(out + ".tmp", out)

    def build_bpf(self):
        if not os.path.exists("/usr/include/bpf/libbpf.h"):
            sys.exit("sandbox_py build: libbpf headers not found (%s)" % APT_HINT)
        clang = need("clang")
        bpftool = need("bpftool")
        os.makedirs(BUILD_GEN, exist_ok=True)
        vmlinux = os.path.join(BUILD_GEN, "vmlinux.h")
        if not os.path.exists(vmlinux):
            btf = "/sys/kernel/btf/vmlinux"
            if not os.path.exists(btf):
                sys.exit("sandbox_py build: %s is missing; the kernel must be built "
                         "with CONFIG_DEBUG_INFO_BTF=y" % btf)
            with open(vmlinux + ".tmp", "w") as f:
                subprocess.check_call([bpftool, "btf", "dump", "file", btf, "format", "c"],
                                      stdout=f)
            os.replace(vmlinux + ".tmp", vmlinux)
        obj = os.path.join(BUILD_GEN, "sandbox.bpf.o")
        run([clang, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
             "-I", BUILD_GEN, "-I", os.path.join(HERE, "bpf"),
             "-c", os.path.join(HERE, "bpf", "sandbox.bpf.c"), "-o", obj])
        with open(os.path.join(BUILD_GEN, "sandbox.skel.h.tmp"), "w") as f:
            subprocess.check_call([bpftool, "gen", "skeleton", obj, "name", "sandbox_bpf"],
                                  stdout=f)
        os.replace(os.path.join(BUILD_GEN, "sandbox.skel.h.tmp"),
                   os.path.join(BUILD_GEN, "sandbox.skel.h"))


# SANDBOX_PY_ONLY=name[,name] builds only those extensions (development aid:
# lets one backend be rebuilt while another's sources are being edited).
ONLY = [n for n in os.environ.get("SANDBOX_PY_ONLY", "").split(",") if n]

ext_modules = []
if sys.platform.startswith("linux") and (not ONLY or "_core" in ONLY):
    ext_modules.append(Extension(
        "sandbox_py._core",
        sources=CORE_SOURCES + LINUX_SOURCES,
        include_dirs=["csrc", "bpf", BUILD_GEN],
        # the skeleton embeds the BPF object: a change there must relink
        depends=[os.path.join(BUILD_GEN, "sandbox.skel.h"), "bpf/sandbox_event.h"]
                + [os.path.join("csrc", f) for f in os.listdir(os.path.join(HERE, "csrc"))
                   if f.endswith(".h")],
        libraries=["bpf", "elf", "z", "pthread"],
        extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wno-missing-braces"],
    ))

# --- unprivileged backends (issue 3): preload reader + ptrace tracer ---
PRELOAD_SHIM = "_sbx_preload.so"
PTRACE_LAUNCHER = "_sbx_ptrace_exec"
PRELOAD_SHIM_SOURCES = ["shims/preload/shim_core.c", "shims/preload/shim_hooks.c",
                        "csrc/pathnorm.c"]
if sys.platform.startswith("linux") and (not ONLY or "_unpriv" in ONLY):
    ext_modules.append(Extension(
        "sandbox_py._unpriv",
        sources=CORE_SOURCES + ["csrc/module_unpriv.c", "csrc/preload_reader.c",
                                "csrc/ptrace_tracer.c", "csrc/elfinterp.c"],
        include_dirs=["csrc", "shims/preload"],
        libraries=["pthread"],
        extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wno-missing-braces"],
    ))

ext_modules = [e for e in ext_modules
               if not ONLY or e.name.rsplit(".", 1)[-1] in ONLY]

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildWithBpf})
