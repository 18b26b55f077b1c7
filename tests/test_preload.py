"""The preload backend's own cases: what an LD_PRELOAD shim makes hard
(stdio, fortified and legacy entry points, scrubbed environments, floods,
kills, static binaries) checked the way a user would check them."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import textwrap

import pytest

from conftest import sandbox_for

pytestmark = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")


@pytest.fixture
def sb():
    return sandbox_for("preload")


@pytest.fixture
def work(tmp_path):
    d = os.path.realpath(tmp_path)
    return d


def build(work, name, body, *flags, top=""):
    """Compile a small C program (main's body given, `top` before main)."""
    src = os.path.join(work, name + ".c")
    with open(src, "w") as f:
        f.write(textwrap.dedent("""\
            #define _GNU_SOURCE
            #include <dirent.h>
            #include <fcntl.h>
            #include <signal.h>
            #include <spawn.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <sys/stat.h>
            #include <sys/wait.h>
            #include <unistd.h>
            extern char **environ;
            %s
            int main(int argc, char **argv) {
            %s
            return 0; }
            """) % (textwrap.dedent(top), textwrap.indent(textwrap.dedent(body), "    ")))
    exe = os.path.join(work, name)
    subprocess.run(["cc", "-O1", "-o", exe, src] + list(flags), check=True)
    return exe


def write(path, text="data\n"):
    with open(path, "w") as f:
        f.write(text)


def test_stdio_read_and_append_are_seen(sb, work):
    write(os.path.join(work, "in.txt"))
    write(os.path.join(work, "log.txt"), "old\n")
    exe = build(work, "stdio", r"""
        char buf[64];
        FILE *f = fopen("in.txt", "r"); fgets(buf, sizeof buf, f); fclose(f);
        FILE *g = fopen("log.txt", "a"); fputs("more\n", g);   /* left open: flushed at exit */
        FILE *h = fopen("unread.txt", "r"); if (h) fclose(h);
    """)
    write(os.path.join(work, "unread.txt"))
    r = sb.run([exe], cwd=work)
    assert r.returncode == 0 and r.complete, r.warnings
    assert os.path.join(work, "in.txt") in r.reads
    assert os.path.join(work, "log.txt") in r.writes
    assert os.path.join(work, "log.txt") not in r.reads
    assert os.path.join(work, "unread.txt") in r.probes
    assert os.path.join(work, "unread.txt") not in r.reads


def test_fortified_open_and_stat_entry_points(sb, work):
    write(os.path.join(work, "f.txt"))
    exe = build(work, "fortified", r"""
        struct stat st; char b[8];
        int fd = open("f.txt", O_RDONLY);     /* becomes __open_2 under -D_FORTIFY_SOURCE */
        read(fd, b, sizeof b); close(fd);
        stat("absent", &st);
        struct statx sx; statx(AT_FDCWD, "absent_x", 0, STATX_SIZE, &sx);
        fstatat(AT_FDCWD, "absent_at", &st, 0);
    """, "-O2", "-D_FORTIFY_SOURCE=2")
    r = sb.run([exe], cwd=work)
    assert r.complete, r.warnings
    assert os.path.join(work, "f.txt") in r.reads
    for name in ("absent", "absent_x", "absent_at"):
        assert os.path.join(work, name) in r.probes


def test_scrubbed_environment_is_still_traced(sb, work):
    write(os.path.join(work, "data.txt"))
    r = sb.run(["env", "-i", "/bin/sh", "-c", "cat data.txt > copy.txt"], cwd=work)
    assert r.returncode == 0 and r.complete, r.warnings
    assert os.path.join(work, "data.txt") in r.reads
    assert os.path.join(work, "copy.txt") in r.writes
    assert any(e.argv[:1] == ("cat",) for e in r.execs)


def test_explicit_empty_envp_is_still_traced(sb, work):
    write(os.path.join(work, "data.txt"))
    exe = build(work, "emptyenv", r"""
        char *args[] = {"cat", "data.txt", NULL};
        char *env[] = {NULL};
        execve("/bin/cat", args, env);
        return 99;
    """)
    r = sb.run([exe], cwd=work, capture_output=True)
    assert r.returncode == 0 and r.complete, r.warnings
    assert os.path.join(work, "data.txt") in r.reads


def test_static_child_is_handed_to_ptrace(sb, work):
    """The shim cannot enter a static program: it runs under ptrace instead,
    and its accesses (and its own children's) are in the same Result."""
    import sandbox_py
    if not sandbox_py.backends()["ptrace"][0]:
        pytest.skip("ptrace is not available here")
    write(os.path.join(work, "in.txt"))
    exe = build(work, "static_child", r"""
        FILE *f = fopen("from_static.txt", "w"); fputs("x", f); fclose(f);
        if (fork() == 0) { execl("/bin/cat", "cat", "in.txt", (char *)0); _exit(127); }
        wait(NULL);
    """, "-static")
    r = sb.run(["/bin/sh", "-c", exe + " > /dev/null; exit 3"], cwd=work)
    assert r.returncode == 3
    assert r.complete, r.warnings
    assert os.path.join(work, "from_static.txt") in r.writes
    assert os.path.join(work, "in.txt") in r.reads
    st = [e for e in r.execs if e.path == exe]
    sh = [e for e in r.execs if e.argv[:1] == ("/bin/sh",)]
    assert st and sh and st[0].ppid == sh[0].pid
    assert not any("_sbx_ptrace_exec" in e.path for e in r.execs)


def test_the_loader_run_as_a_program_keeps_its_variables(sb, work):
    """ldd runs the loader itself (static-pie, so handed to ptrace) with
    LD_TRACE_LOADED_OBJECTS=1: the variable is for the loader, not for the
    dynamic launcher in between, which would list its own libraries and
    exit without running the loader."""
    import sandbox_py
    if not sandbox_py.backends()["ptrace"][0]:
        pytest.skip("ptrace is not available here")
    loader = os.path.realpath("/lib64/ld-linux-x86-64.so.2")
    r = sb.run(["sh", "-c", "LD_TRACE_LOADED_OBJECTS=1 %s /bin/ls" % loader], cwd=work,
               capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "libselinux.so.1 =>" in r.stdout       # /bin/ls's, not the launcher's
    assert any(e.path == loader for e in r.execs)
    assert r.complete, r.warnings


def test_null_path_reaches_libc_untouched(sb, work):
    """Rust's standard library probes statx with a NULL path and expects
    EFAULT: the hook must pass NULL on, although libc declares the
    parameter nonnull (the compiler would drop the shim's NULL test)."""
    exe = build(work, "null_statx", r"""
        #include <errno.h>
        struct statx sx;
        errno = 0;
        int r = statx(0, NULL, 0, STATX_ALL, NULL);
        int e1 = errno;
        r += stat(NULL, (struct stat *)&sx);
        printf("%d %d %d\n", r, e1, errno);
    """)
    r = sb.run([exe], cwd=work, capture_output=True, text=True)
    assert r.returncode == 0, r
    assert r.stdout.split() == ["-2", str(errno.EFAULT), str(errno.EFAULT)]


def test_static_root_is_handed_to_ptrace(sb, work):
    import sandbox_py
    if not sandbox_py.backends()["ptrace"][0]:
        pytest.skip("ptrace is not available here")
    exe = build(work, "static_root", r"""
        FILE *f = fopen("from_static.txt", "w"); fputs("x", f); fclose(f);
        return 4;
    """, "-static")
    r = sb.run([exe], cwd=work)
    assert r.returncode == 4
    assert r.complete, r.warnings
    assert os.path.join(work, "from_static.txt") in r.writes
    assert [e.path for e in r.execs] == [exe]


def test_without_ptrace_a_static_program_is_named_as_unobserved(work, monkeypatch):
    """Where ptrace is refused, the static process is named, never missing."""
    from sandbox_py._backends import ptrace
    monkeypatch.setattr(ptrace, "availability", lambda: (False, "refused for this test"))
    exe = build(work, "static_alone", r"""
        FILE *f = fopen("from_static.txt", "w"); fputs("x", f); fclose(f);
    """, "-static")
    sb = sandbox_for("preload")
    for argv in ([exe], ["/bin/sh", "-c", exe]):
        r = sb.run(argv, cwd=work)
        assert r.returncode == 0
        assert not r.complete
        assert any("not observed" in w and exe in w for w in r.warnings), r.warnings


def test_flood_of_events_loses_nothing(sb, work):
    """Hundreds of thousands of records: every one arrives, the program is
    not disturbed."""
    exe = build(work, "flood", r"""
        char p[64]; struct stat st;
        for (int i = 0; i < 200000; i++) {
            snprintf(p, sizeof p, "absent_%d", i);
            stat(p, &st);
        }
    """)
    r = sb.run([exe], cwd=work)
    assert r.returncode == 0 and r.complete, r.warnings
    assert len(r.probes.under(work)) == 200000


def test_killed_process_loses_nothing_written_before(sb, work):
    exe = build(work, "killed", r"""
        struct stat st;
        stat("before_kill", &st);
        kill(getpid(), SIGKILL);
    """)
    r = sb.run([exe], cwd=work)
    assert r.returncode == -9
    assert os.path.join(work, "before_kill") in r.probes


def test_posix_spawnp_and_vfork_children(sb, work):
    write(os.path.join(work, "data.txt"))
    exe = build(work, "spawners", r"""
        pid_t pid; int st;
        char *args[] = {"cat", "data.txt", NULL};
        if (posix_spawnp(&pid, "cat", NULL, NULL, args, environ) != 0) return 1;
        waitpid(pid, &st, 0);
        pid = vfork();
        if (pid == 0) { execl("/bin/mkdir", "mkdir", "made_by_vfork", (char *)0); _exit(127); }
        waitpid(pid, &st, 0);
    """)
    r = sb.run([exe], cwd=work)
    assert r.returncode == 0 and r.complete, r.warnings
    assert os.path.join(work, "data.txt") in r.reads
    assert os.path.join(work, "made_by_vfork") in r.writes
    paths = {e.path for e in r.execs}
    assert "/bin/mkdir" in paths
    assert any(p.endswith("/cat") for p in paths)


def test_signal_handler_and_threads_fork(sb, work):
    """Hooks run inside a signal handler, and fork happens while other
    threads are inside hooks: no locks, no malloc, so no deadlock."""
    write(os.path.join(work, "data.txt"))
    exe = build(work, "async", r"""
        pthread_t th[2];
        signal(SIGALRM, on_alarm);
        for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, reader, NULL);
        for (int i = 0; i < 50; i++) {
            ualarm(50, 0);
            pid_t p = fork();
            if (p == 0) { struct stat st; stat("in_child", &st); _exit(0); }
            waitpid(p, NULL, 0);
        }
        stop = 1;
        for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    """, "-pthread", top=r"""
        #include <pthread.h>
        static volatile int stop;
        static void on_alarm(int s) { (void)s; struct stat st; stat("in_handler", &st); }
        static void *reader(void *arg) {
            (void)arg;
            while (!stop) {
                int fd = open("data.txt", O_RDONLY); char b[4]; read(fd, b, 4); close(fd);
                struct stat st; stat("absent_in_thread", &st);
            }
            return NULL;
        }
    """)
    r = sb.run([exe], cwd=work, timeout=60)
    assert r.returncode == 0 and r.complete, r.warnings
    assert os.path.join(work, "in_child") in r.probes
    assert os.path.join(work, "absent_in_thread") in r.probes
    assert os.path.join(work, "data.txt") in r.reads


def test_redirected_stdin_read_by_the_child_is_a_read(sb, work):
    """The shell opens the file, the exec'd program reads fd 0."""
    write(os.path.join(work, "in.txt"))
    r = sb.run(["/bin/sh", "-c", "tr a-z A-Z < in.txt > count.txt"], cwd=work)
    assert r.returncode == 0 and r.complete, r.warnings
    assert os.path.join(work, "in.txt") in r.reads
    assert os.path.join(work, "count.txt") in r.writes


def test_timeout_kills_the_whole_tree(sb, work):
    import sandbox_py
    with pytest.raises(sandbox_py.TimeoutExpired) as ei:
        sb.run(["/bin/sh", "-c", "sleep 30 & sleep 30; wait"], cwd=work, timeout=1)
    assert ei.value.result is not None and not ei.value.result.complete


def test_missing_program_raises_like_subprocess(sb, work):
    with pytest.raises(FileNotFoundError):
        sb.run(["/nonexistent/program"], cwd=work)


def test_shim_outside_a_run_is_inert(work):
    """A leaked LD_PRELOAD (no run) must not change a program's behaviour."""
    from sandbox_py._backends.preload import SHIM
    env = dict(os.environ, LD_PRELOAD=SHIM)
    env.pop("SBX_PRELOAD_LOG", None)
    out = subprocess.run(["/bin/sh", "-c", "echo ok"], env=env, capture_output=True, text=True)
    assert out.stdout == "ok\n"


def test_the_command_sees_only_its_own_environment_additions(sb, work):
    """The launcher's variables never reach the command; the shim's must
    (children have to stay traced)."""
    r = sb.run(["/usr/bin/env"], cwd=work, capture_output=True, text=True,
               env={"PATH": "/usr/bin:/bin", "KEEP": "1"})
    names = {line.split("=", 1)[0] for line in r.stdout.splitlines()}
    assert "KEEP" in names
    assert not {n for n in names if n.startswith("SBX_PTRACE")}, names
