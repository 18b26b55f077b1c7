"""The interpose backend on a Mac (skipped elsewhere; run by
.github/workflows/macos.yml on macos-14 arm64 and macos-15-intel x86_64).

A scenario corpus like Linux's: one C program built here (so dyld may
enter it) doing each kind of access, checked the way a user checks the
Result; plus the documented SIP behaviour: a protected program is named
in the warnings and the Result is incomplete, never silently so."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import sandbox_py

pytestmark = pytest.mark.skipif(sys.platform != "darwin", reason="macOS only")

# Also built for Linux (the cases outside __APPLE__): tests/test_macos_emulated.py
# compares its Result under preload with the Darwin build's.
SCENARIO = r"""
#ifdef __APPLE__
#include <copyfile.h>
#include <sys/attr.h>
#include <sys/clonefile.h>
#if __has_include(<removefile.h>)
#include <removefile.h>
#else   /* zig's copy of the headers lacks it: Apple's prototype */
#include <stdint.h>
typedef struct _removefile_state *removefile_state_t;
#define REMOVEFILE_RECURSIVE (1 << 0)
int removefile(const char *, removefile_state_t, uint32_t);
#endif
#endif
#include <dirent.h>
#include <ftw.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;

#ifdef __APPLE__
static int visited;
static int count_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)path, (void)sb, (void)type, (void)ftw;
    visited++;
    return 0;
}
#endif

int main(int argc, char **argv)
{
    const char *what = argv[1];
    char buf[64];
    struct stat sb;
    if (!strcmp(what, "read")) {
        int fd = open("in.txt", O_RDONLY);
        return read(fd, buf, sizeof buf) < 0;
    }
    if (!strcmp(what, "fopen-read")) {
        FILE *f = fopen("in.txt", "r");
        return !fgets(buf, sizeof buf, f);
    }
    if (!strcmp(what, "write")) {
        FILE *f = fopen("out.txt", "w");
        fputs("x\n", f);
        return fclose(f);
    }
    if (!strcmp(what, "rdwr-only-read")) {
        int fd = open("in.txt", O_RDWR);
        return read(fd, buf, sizeof buf) < 0;
    }
    if (!strcmp(what, "probe-absent"))
        return stat("absent.txt", &sb) == 0 || access("absent2.txt", F_OK) == 0;
    if (!strcmp(what, "list")) {
        DIR *d = opendir("dir");
        while (readdir(d))
            ;
        return closedir(d);
    }
    if (!strcmp(what, "rename"))
        return rename("in.txt", "moved.txt");
    if (!strcmp(what, "unlink-mkdir"))
        return unlink("in.txt") || mkdir("newdir", 0755);
#ifdef __APPLE__
    if (!strcmp(what, "clonefile"))
        return clonefile("in.txt", "clone.txt", 0);
    if (!strcmp(what, "copyfile"))
        return copyfile("in.txt", "copy.txt", NULL, COPYFILE_ALL);
    if (!strcmp(what, "getattrlist")) {
        struct attrlist al = {ATTR_BIT_MAP_COUNT, 0, ATTR_CMN_OBJTYPE, 0, 0, 0, 0};
        char out[64];
        return getattrlist("absent3.txt", &al, out, sizeof out, 0) == 0;
    }
    if (!strcmp(what, "getattrlistbulk")) {
        /* how Foundation's enumerators list a directory */
        struct attrlist al = {ATTR_BIT_MAP_COUNT, 0,
                              ATTR_CMN_RETURNED_ATTRS | ATTR_CMN_NAME, 0, 0, 0, 0};
        char out[4096];
        int fd = open("dir", O_RDONLY), n;
        while ((n = getattrlistbulk(fd, &al, out, sizeof out, 0)) > 0)
            ;
        return n < 0 || close(fd);
    }
    if (!strcmp(what, "removefile-tree"))
        return removefile("tree", NULL, REMOVEFILE_RECURSIVE);
    if (!strcmp(what, "copyfile-tree"))
        return copyfile("tree", "copy", NULL, COPYFILE_ALL | COPYFILE_RECURSIVE);
    if (!strcmp(what, "nftw-tree"))
        return nftw("tree", count_entry, 8, FTW_PHYS) || visited != 4;
#endif
    if (!strcmp(what, "spawn-child")) {
        char *args[] = {argv[0], "read", NULL};
        pid_t pid;
        int st;
        if (posix_spawn(&pid, argv[0], NULL, NULL, args, environ))
            return 1;
        waitpid(pid, &st, 0);
        return WEXITSTATUS(st);
    }
    if (!strcmp(what, "fork-exec-scrubbed")) {
        pid_t pid = fork();
        if (pid == 0) {
            char *args[] = {argv[0], "read", NULL};
            char *none[] = {NULL};
            execve(argv[0], args, none);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        return WEXITSTATUS(st);
    }
    if (!strcmp(what, "start-daemon")) {
        /* a build starting a daemon (./sbx-mac-daemon, a copy of this
         * program): double fork, the grandchild execs it, then out.txt */
        pid_t pid = fork();
        if (pid == 0) {
            setsid();
            if (fork() == 0) {
                char *args[] = {"sbx-mac-daemon", "serve", NULL};
                execv("./sbx-mac-daemon", args);
                _exit(127);
            }
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        FILE *f = fopen("out.txt", "w");
        fputs("built\n", f);
        return fclose(f);
    }
    if (!strcmp(what, "serve")) {
        /* the daemon: a file of its own, whether dyld gave it the dylib,
         * then it outlives the build */
        const char *dyld = getenv("DYLD_INSERT_LIBRARIES");
        FILE *f = fopen("daemon_state.txt", "w");
        fprintf(f, "started %d dyld=%s\n", (int)getpid(), dyld && *dyld ? dyld : "none");
        fclose(f);
        sleep(8);
        f = fopen("daemon_state.txt", "a");
        fputs("done\n", f);
        return fclose(f);
    }
    return 2;
}
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    d = tmp_path_factory.mktemp("bin")
    src = d / "scenario.c"
    src.write_text(SCENARIO)
    exe = str(d / "scenario")
    subprocess.run(["cc", "-O1", "-o", exe, str(src)], check=True)
    return exe


@pytest.fixture
def work(tmp_path):
    d = os.path.realpath(str(tmp_path))     # /var -> /private/var
    with open(os.path.join(d, "in.txt"), "w") as f:
        f.write("data\n")
    os.mkdir(os.path.join(d, "dir"))
    open(os.path.join(d, "dir", "a"), "w").close()
    make_tree(d)
    return d


TREE_DIRS, TREE_FILES = ["tree", "tree/sub"], ["tree/a.txt", "tree/sub/b.txt"]


def make_tree(d):
    os.makedirs(os.path.join(d, "tree", "sub"))
    for n in TREE_FILES:
        with open(os.path.join(d, n), "w") as f:
            f.write(n)


CATEGORIES = ("reads", "writes", "probes", "enumerations")


def tree_results(sets, work):
    """{name: the categories it is in} for the tree and its copy;
    `sets`: {category: paths} (a Result's or the reader's)."""
    return {n: {c for c in CATEGORIES if os.path.join(work, n) in sets[c]}
            for n in TREE_DIRS + TREE_FILES + [t.replace("tree", "copy", 1)
                                               for t in TREE_DIRS + TREE_FILES]}


def removefile_tree_ok(cats):
    """removefile(REMOVEFILE_RECURSIVE): every name removed is a write, each
    directory listed, nothing read (docs/macos.md, What the walkers report)."""
    return (all("writes" in cats[n] and "reads" not in cats[n] for n in TREE_DIRS + TREE_FILES)
            and all("enumerations" in cats[n] for n in TREE_DIRS))


def copyfile_tree_ok(cats):
    """copyfile(COPYFILE_RECURSIVE): source directories listed, source files
    read, nothing of the source written; every copy written, none read."""
    copies = [n.replace("tree", "copy", 1) for n in TREE_DIRS + TREE_FILES]
    return (all("enumerations" in cats[n] and "reads" not in cats[n] for n in TREE_DIRS)
            and all("reads" in cats[n] for n in TREE_FILES)
            and all("writes" not in cats[n] for n in TREE_DIRS + TREE_FILES)
            and all("writes" in cats[n] and "reads" not in cats[n] for n in copies))


def walk_ok(cats):
    """nftw: each directory an enumeration, nothing read or written."""
    return (all("enumerations" in cats[n] for n in TREE_DIRS)
            and all(not {"reads", "writes"} & cats[n] for n in TREE_DIRS + TREE_FILES))


WALKERS = {"removefile-tree": removefile_tree_ok, "copyfile-tree": copyfile_tree_ok,
           "nftw-tree": walk_ok}


def run(scenario, work, what):
    r = sandbox_py.Sandbox("interpose").run([scenario, what], cwd=work)
    assert r.backend == "interpose"
    assert r.returncode == 0, (what, r.stderr, r.warnings)
    return r


def test_interpose_is_available():
    ok, why = sandbox_py.backends()["interpose"]
    assert ok, why
    assert sandbox_py.Sandbox().backend == "interpose"


@pytest.mark.parametrize("what", ["read", "fopen-read", "rdwr-only-read"])
def test_reads(scenario, work, what):
    r = run(scenario, work, what)
    p = os.path.join(work, "in.txt")
    assert p in r.reads and p not in r.writes
    assert r.complete, r.warnings


def test_write_is_not_a_read(scenario, work):
    r = run(scenario, work, "write")
    p = os.path.join(work, "out.txt")
    assert p in r.writes and p not in r.reads


def test_absent_files_are_probes(scenario, work):
    r = run(scenario, work, "probe-absent")
    assert os.path.join(work, "absent.txt") in r.probes
    assert os.path.join(work, "absent2.txt") in r.probes


def test_listing_is_an_enumeration_not_a_read(scenario, work):
    r = run(scenario, work, "list")
    d = os.path.join(work, "dir")
    assert d in r.enumerations and d not in r.reads


def test_rename_writes_both_names(scenario, work):
    r = run(scenario, work, "rename")
    assert os.path.join(work, "in.txt") in r.writes
    assert os.path.join(work, "moved.txt") in r.writes


def test_unlink_and_mkdir_are_writes(scenario, work):
    r = run(scenario, work, "unlink-mkdir")
    assert os.path.join(work, "in.txt") in r.writes
    assert os.path.join(work, "newdir") in r.writes


@pytest.mark.parametrize("what,dst", [("clonefile", "clone.txt"), ("copyfile", "copy.txt")])
def test_copies_read_the_source_and_write_the_copy(scenario, work, what, dst):
    r = run(scenario, work, what)
    assert os.path.join(work, "in.txt") in r.reads
    assert os.path.join(work, dst) in r.writes


def test_getattrlist_of_an_absent_file_is_a_probe(scenario, work):
    r = run(scenario, work, "getattrlist")
    assert os.path.join(work, "absent3.txt") in r.probes


def test_getattrlistbulk_listing_is_an_enumeration(scenario, work):
    r = run(scenario, work, "getattrlistbulk")
    d = os.path.join(work, "dir")
    assert d in r.enumerations and d not in r.reads


@pytest.mark.parametrize("what", sorted(WALKERS))
def test_tree_walkers_report_what_the_docs_say(scenario, work, what):
    r = run(scenario, work, what)
    cats = tree_results({c: set(getattr(r, c)) for c in CATEGORIES}, work)
    assert WALKERS[what](cats), cats
    assert r.complete, r.warnings


@pytest.mark.parametrize("what", ["spawn-child", "fork-exec-scrubbed"])
def test_children_are_followed(scenario, work, what):
    """posix_spawn and an exec with an empty environment: the child still
    loads the dylib (the shim puts DYLD_INSERT_LIBRARIES back)."""
    r = run(scenario, work, what)
    assert len([e for e in r.execs if e.path == scenario]) == 2, r.execs
    assert os.path.join(work, "in.txt") in r.reads
    assert r.complete, r.warnings


def test_sip_protected_shell_is_named_and_the_result_incomplete(work):
    """The documented SIP behaviour: /bin/sh never loads the dylib, nor does
    anything it starts; the Result says so instead of looking empty."""
    r = sandbox_py.Sandbox("interpose").run(["/bin/sh", "-c", "cat in.txt"], cwd=work)
    assert r.returncode == 0
    assert r.complete is False
    assert any("/bin/sh" in w and "SIP" in w for w in r.warnings), r.warnings
    assert any(e.path == "/bin/sh" for e in r.execs), r.execs


def test_tool_outside_sip_is_observed(scenario, work):
    """The way around: a program outside the protected folders (here the
    scenario itself, exec'd by path) is fully observed."""
    r = sandbox_py.Sandbox("interpose").run([scenario, "read"], cwd=work)
    assert r.complete, r.warnings
    assert os.path.join(work, "in.txt") in r.reads


def test_dylib_links_only_libsystem():
    from sandbox_py._backends import interpose
    out = subprocess.run(["otool", "-L", interpose.DYLIB], capture_output=True, text=True,
                         check=True).stdout
    libs = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
    assert [x for x in libs if not x.startswith("@rpath/")] == ["/usr/lib/libSystem.B.dylib"]


@pytest.mark.skipif(not shutil.which("lipo"), reason="needs lipo")
def test_dylib_is_universal():
    from sandbox_py._backends import interpose
    out = subprocess.run(["lipo", "-archs", interpose.DYLIB], capture_output=True, text=True,
                         check=True).stdout.split()
    assert set(out) == {"arm64", "x86_64"}


def test_missing_program_raises_file_not_found(work):
    with pytest.raises(FileNotFoundError):
        sandbox_py.Sandbox("interpose").run(["/nonexistent/prog"], cwd=work)


def test_breakaway_daemon_runs_without_the_dylib(scenario, work):
    """run(breakaway=[...]) on a Mac: the declared daemon is exec'd without
    DYLD_INSERT_LIBRARIES, the build returns while it lives, its own file is
    not in the Result, and it finishes after the run."""
    import time
    shutil.copy2(scenario, os.path.join(work, "sbx-mac-daemon"))
    start = time.monotonic()
    r = sandbox_py.Sandbox("interpose").run([scenario, "start-daemon"], cwd=work,
                                            breakaway=["sbx-mac-daemon"], timeout=60)
    assert r.returncode == 0, r.warnings
    assert time.monotonic() - start < 8
    assert [os.path.basename(b.path) for b in r.breakaways] == ["sbx-mac-daemon"]
    assert os.path.join(work, "out.txt") in r.writes
    paths = set(r.reads) | set(r.writes) | set(r.probes) | set(r.enumerations)
    assert not [p for p in paths if "daemon_state" in p]
    state = os.path.join(work, "daemon_state.txt")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
            os.path.exists(state) and "done" in open(state).read()):
        time.sleep(0.2)
    text = open(state).read()
    assert "dyld=none" in text and "done" in text, text
