/* ptrace_launcher.c — sandbox_py/_sbx_ptrace_exec: the first program of a
 * ptrace run.  subprocess.Popen starts it in place of the command (same
 * argv); it
 *   1. waits on the gate fd until the tracer thread has seized it (so the
 *      command's first instruction is already traced),
 *   2. installs the seccomp filter that turns the file system calls into
 *      ptrace stops and lets every other call run at full speed,
 *   3. execs the command with a $PATH search, like subprocess would.
 * Failures print one line naming the cause and exit 127, as a shell does.
 *
 * Keeper mode (SBX_PTRACE_KEEP=pid): see keep().
 *
 * Adopt mode (SBX_PTRACE_ADOPT=1): the preload shim execs this in place of
 * a statically linked program it cannot enter.  The preload reader in the
 * Python process sees the announcement and seizes this process; once
 * traced, the filter goes in and the static program runs under ptrace.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>

#include "elfinterp.h"
#include "landlock.h"
#include "launch_error.h"
#include "ptrace_clone.h"
#include "ptrace_syscalls.h"

#if defined(__x86_64__)
#define SBX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SBX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* The error pipe back to run() (-1: none), with one struct
 * sbx_launch_error (launch_error.h), as CPython's _posixsubprocess reports
 * a child's failure before exec. */
static int g_efd = -1;

static void report(int kind, int err, const char *what)
{
    struct sbx_launch_error le = {kind, err, {0}};
    snprintf(le.what, sizeof le.what, "%s", what);
    if (g_efd >= 0 && write(g_efd, &le, sizeof le) == (ssize_t)sizeof le)
        return;
    fprintf(stderr, "sandbox_py ptrace launcher: %s: %s\n", what, strerror(err));
}

static void die(const char *what)
{
    report(1, errno, what);
    _exit(127);
}

/* 1 once the launcher restricted itself to the run's Policy (Landlock) */
static int g_enforced;

static int build_and_install(unsigned notify_action, unsigned flags)
{
    /* One compare per traced call; mmap only stops when it maps a file. */
    struct sock_filter f[4 + 2 * (SBX_PT_NSYSCALLS + SBX_PT_NNOTIFY) + 48];
    size_t n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    /* another ABI (i386, x32) is decoded nowhere: stop so the tracer can
     * mark the run incomplete */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SBX_AUDIT_ARCH, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    /* No process of the run starts untraced (ptrace_clone.h): a clone with
     * CLONE_UNTRACED stops, and the tracer takes the flag off; clone3,
     * whose flags the filter cannot read, fails with ENOSYS (libc then
     * uses clone).  Any other clone runs without a stop. */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, args[0]));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_UNTRACED, 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
    /* A plain read-only open (the bulk of a build's or an archiver's opens,
     * opendir's included) needs no exit stop: the tracer settles it at its
     * entry and learns its fd when the fd is used or closed.  Opens that
     * create, truncate or write stop at the exit, where their outcome is
     * known.  O_TMPFILE carries O_DIRECTORY's bit: only its own is tested.
     * Under an enforced policy every open stops at its exit: a refused
     * read must be told from an absent name (Result.denied lists it). */
    const unsigned plain_mask = O_ACCMODE | O_CREAT | O_TRUNC | (O_TMPFILE & ~O_DIRECTORY) |
                                O_PATH;
    const struct { int nr; unsigned arg; } opens[] = {
        {SYS_openat, 2},
#ifdef SYS_open
        {SYS_open, 1},
#endif
    };
    for (size_t i = 0; !g_enforced && i < sizeof opens / sizeof opens[0]; i++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, opens[i].nr, 0, 4);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                              offsetof(struct seccomp_data, args[opens[i].arg]));
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, plain_mask, 1, 0);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, notify_action);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    }
    for (size_t i = 0; i < SBX_PT_NSYSCALLS; i++) {
        if (sbx_pt_syscalls[i] < 0)
            continue;               /* a row that does not stop (see the list) */
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                              sbx_pt_syscalls[i], 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    }
    for (size_t i = 0; i < SBX_PT_NNOTIFY; i++) {
        if (sbx_pt_notify_syscalls[i] < 0)
            continue;
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                              sbx_pt_notify_syscalls[i], 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, notify_action);
    }
    /* fcntl only matters when it duplicates an fd */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fcntl, 0, 5);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, args[1]));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD, 2, 0);
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD_CLOEXEC, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, 0, 4);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, args[4]));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 0, 1);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    /* settled at its entry: no exit stop needed */
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, notify_action);
    /* everything else (read, write, ...) runs without a stop */
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {(unsigned short)n, f};
    /* Without CAP_SYS_ADMIN a filter requires no_new_privs (setuid programs
     * then run unprivileged); with it, leave set-uid semantics alone. */
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (r >= 0 || errno != EACCES)
        return (int)r;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* The filter, preferably with a user-notification listener for the calls
 * that need no exit stop.  The listener fd is closed right away with
 * close_range, which stops under ptrace (close itself goes to the listener,
 * which nobody holds yet): the tracer takes its own copy of the fd then
 * (pidfd_getfd), so the command never sees an fd it did not open. */
static int install_filter(void)
{
    /* Only with a tracer that takes listeners (SBX_PTRACE_NOTIFY, set by
     * the same build) and a kernel with pidfd_getfd: a listener nobody
     * holds would make every stat fail with ENOSYS. */
    const char *ok = getenv("SBX_PTRACE_NOTIFY");
    int notify = ok && strcmp(ok, "1") == 0 &&
                 syscall(SYS_pidfd_getfd, -1, 0, 0) < 0 && errno == EBADF;
    unsetenv("SBX_PTRACE_NOTIFY");
    if (notify) {
        int fd = build_and_install(SECCOMP_RET_USER_NOTIF, SECCOMP_FILTER_FLAG_NEW_LISTENER);
        if (fd >= 0) {
            /* a kernel without close_range (before 5.9) still stops at it
             * and fails it: the tracer holds the listener by then */
            if (syscall(SYS_close_range, fd, fd, 0) < 0)
                close(fd);
            return 0;
        }
    }
    return build_and_install(SECCOMP_RET_TRACE, 0);
}

/* The run's Policy, when it is enforced: SBX_LANDLOCK_FD names a Landlock
 * ruleset fd the Python side built from the policy's trees and passed
 * down (pass_fds).  Rules held by an fd cannot be rewritten by the command,
 * as a file or a variable could; restricting here, before exec, puts the
 * whole tree under it.  The fd is closed: the command never sees it. */
static void enforce_policy(void)
{
    const char *v = getenv("SBX_LANDLOCK_FD");
    if (!v)
        return;
    int fd = atoi(v);
    unsetenv("SBX_LANDLOCK_FD");
    if (sbx_landlock_restrict(fd) < 0)
        die("cannot apply the policy (Landlock)");
    g_enforced = 1;
    /* a preload run hands its static programs to this launcher in adopt
     * mode, which must know (it cannot ask Landlock) */
    if (getenv("SBX_PRELOAD_HANDOFF"))
        setenv("SBX_PTRACE_ENFORCED", "1", 1);
    close(fd);
}

static pid_t g_child;

static void forward(int sig) { kill(g_child, sig); }

/* Wait for the command and exit the way it did. */
static int mirror(pid_t child, int efd)
{
    close(efd);
    g_child = child;
    int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], forward);
    int st;
    while (waitpid(child, &st, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (WIFSIGNALED(st)) {
        signal(WTERMSIG(st), SIG_DFL);
        kill(getpid(), WTERMSIG(st));
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 127;
}

static int traced(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/status", "re");
    int pid = 0;
    if (!f)
        return 0;
    while (fgets(buf, sizeof buf, f))
        if (sscanf(buf, "TracerPid: %d", &pid) == 1)
            break;
    fclose(f);
    return pid > 0;
}

/* The dynamic loader's variables, renamed by the shim so that they reach
 * the handed-off program and not this (dynamic) launcher: back in place
 * for the exec (shims/core/shim_core.c, sbx_handoff_env). */
static void restore_loader_env(void)
{
    static const char saved[] = "SBX_LOADER_";
    extern char **environ;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, saved, sizeof saved - 1) == 0)
            *e += sizeof saved - 1;     /* the same string, from "LD_" on */
}

static int adopt(char **argv)
{
    char target[4096];
    snprintf(target, sizeof target, "%s", getenv("SBX_PTRACE_EXE") ? getenv("SBX_PTRACE_EXE") : "");
    unsetenv("SBX_PTRACE_EXE");
    unsetenv("SBX_PTRACE_ADOPT");
    /* The reader polls its log every few milliseconds; give up after 10 s
     * (the run then names this process as unobserved). */
    for (int i = 0; i < 10000 && !traced(); i++)
        usleep(1000);
    /* under an enforced policy (set by the launcher that applied it) */
    g_enforced = getenv("SBX_PTRACE_ENFORCED") != NULL;
    if (traced() && install_filter() < 0)
        die("cannot install the seccomp filter");
    restore_loader_env();
    execv(target, argv);
    die(target);
    return 127;
}

/* exec with $PATH search; on failure errno goes to efd (subprocess's
 * FileNotFoundError on the Python side) and the process exits 127. */
static void exec_or_report(const char *target, char **argv, int efd)
{
    execvp(target, argv);
    g_efd = efd;
    report(0, errno, target);
    _exit(127);
}

/* What execvp(target) would run is a statically linked ELF. */
static int static_target(const char *target)
{
    /* interp must hold a loader's name: sbx_elf_interp answers 0 (as for
     * a static file) when the name does not fit */
    char cand[4096], interp[4096];
    const char *path = getenv("PATH");
    for (const char *p = strchr(target, '/') ? "" : path ? path : "/bin:/usr/bin";; p++) {
        const char *end = strchr(p, ':');
        int dl = end ? (int)(end - p) : (int)strlen(p);
        if (strchr(target, '/'))
            snprintf(cand, sizeof cand, "%s", target);
        else
            if (snprintf(cand, sizeof cand, "%.*s/%s", dl ? dl : 1, dl ? p : ".", target) >= (int)sizeof cand)
                cand[0] = '\0';   /* too long to exist */
        if (access(cand, X_OK) == 0) {
            FILE *f = fopen(cand, "re");
            char magic[4] = {0};
            if (!f)
                return 0;
            size_t n = fread(magic, 1, 4, f);
            fclose(f);
            return n == 4 && memcmp(magic, "\177ELF", 4) == 0 &&
                   sbx_elf_interp(cand, interp, sizeof interp) == 0;
        }
        if (!end || strchr(target, '/'))
            return 0;
        p = end;
    }
}

/* Root mode (preload backend): run the command with the shim loaded (the
 * environment carries LD_PRELOAD).  A static command cannot load it: it is
 * started from a child, whose exec the shim hands to the ptrace backend
 * (the child, unlike this process, is not subprocess.Popen's own). */
static int preload_root(char **argv)
{
    const char *exe = getenv("SBX_PTRACE_EXE"), *errfd = getenv("SBX_PTRACE_ERR");
    char target[4096];
    snprintf(target, sizeof target, "%s", exe && *exe ? exe : argv[0]);
    int efd = errfd ? atoi(errfd) : -1;
    fcntl(efd, F_SETFD, FD_CLOEXEC);
    unsetenv("SBX_PTRACE_ROOT");
    unsetenv("SBX_PTRACE_EXE");
    unsetenv("SBX_PTRACE_ERR");
    unsetenv("SBX_PTRACE_NOTIFY");   /* the shim sets it again for a hand-off */
    g_efd = efd;
    enforce_policy();
    g_efd = -1;
    if (static_target(target)) {
        pid_t child = fork();
        if (child < 0)
            die("fork");
        if (child > 0)
            return mirror(child, efd);
    }
    exec_or_report(target, argv, efd);
    return 127;
}

/* Keeper mode: process `pid_s` left a ptrace run at its exec (a declared
 * breakaway, ptrace_breakaway.c: sbx_pt_leave()).  No process can drop a seccomp
 * filter, and the run's one turns file system calls into ptrace stops
 * (ENOSYS without a tracer) and user notifications (ENOSYS without a
 * listener).  This process, outside the run (its own session), traces the
 * breakaway and its descendants and lets every call run unchanged; once the
 * run is over (fd 4 reaches EOF) it also answers the listener (fd 5, with
 * SBX_PTRACE_KEEP_LISTENER) with "continue".  fd 3 gets its pid (an int),
 * then one byte: 'k' once the breakaway is traced.  It exits with the last
 * of them. */
static int keep(const char *pid_s)
{
    pid_t pid = (pid_t)atoi(pid_s);
    int listener = getenv("SBX_PTRACE_KEEP_LISTENER") ? 5 : -1, go = listener >= 0 ? 4 : -1;
    pid_t c = fork();
    if (c < 0)
        return 1;
    if (c > 0)
        _exit(0);                   /* not the run's child: reparented, never waited for */
    setsid();
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3 && null >= 0; fd++)
        dup2(null, fd);
    /* every tracee stop sends SIGCHLD: one poll waits for stops and the fds */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    long opts = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP;
    /* the run's tracer names this process as the tracee's tracer (Yama),
     * then lets it go: until then the attach fails (EPERM) */
    int me = (int)getpid();
    if (write(3, &me, sizeof me) != (ssize_t)sizeof me)
        return 1;
    char ok = 'f';
    for (int i = 0; i < 10000 && ok != 'k'; i++) {
        if (ptrace(PTRACE_SEIZE, pid, 0, (void *)opts) == 0)
            ok = 'k';
        else if (errno == ESRCH && kill(pid, 0) < 0)
            break;                  /* it is gone */
        else
            usleep(1000);
    }
    if (write(3, &ok, 1) != 1)
        (void)0;
    close(3);
    if (ok != 'k')
        return 1;
    int taking = 0;
    for (;;) {
        int st, busy = 0;
        pid_t t;
        while ((t = waitpid(-1, &st, __WALL | WNOHANG)) > 0) {
            busy = 1;
            if (!WIFSTOPPED(st))
                continue;
            int sig = WSTOPSIG(st), ev = (unsigned)st >> 16;
            if (ev == PTRACE_EVENT_STOP) {
                if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
                    ptrace(PTRACE_LISTEN, t, 0, 0);     /* a group stop: stay stopped */
                    continue;
                }
                sig = 0;
            } else if (ev == PTRACE_EVENT_SECCOMP) {
                /* a clone(CLONE_UNTRACED) stops here: it stays followed */
                struct __ptrace_syscall_info si;
                if (ptrace(PTRACE_GET_SYSCALL_INFO, t, (void *)sizeof si, &si) > 0 &&
                    si.op == PTRACE_SYSCALL_INFO_SECCOMP && si.seccomp.nr == SYS_clone &&
                    (si.seccomp.args[0] & CLONE_UNTRACED))
                    sbx_pt_strip_untraced(t, (unsigned long)si.seccomp.args[0]);
                sig = 0;
            } else if (ev) {
                sig = 0;                /* fork, exec: just go on */
            }
            ptrace(PTRACE_CONT, t, 0, (void *)(long)sig);
        }
        if (t < 0 && errno == ECHILD)
            return 0;                   /* the breakaway's tree is gone */
        struct pollfd pfs[2] = {{sfd, POLLIN, 0}, {taking ? listener : go, POLLIN, 0}};
        /* (a signalfd that could not be made: look again every 10 ms) */
        if (poll(pfs, pfs[1].fd < 0 ? 1 : 2, busy ? 0 : sfd < 0 ? 10 : -1) <= 0)
            continue;
        if (pfs[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0)
                ;
        }
        struct pollfd pf = pfs[1];
        if (pf.fd < 0 || !pf.revents)
            continue;
        if (!taking) {
            char b;
            if (read(go, &b, 1) <= 0)
                taking = 1;             /* the run is over: its notifier is gone */
            continue;
        }
        if (!(pf.revents & POLLIN)) {
            close(listener);            /* nobody uses the filter any more */
            listener = -1;
            continue;
        }
        struct seccomp_notif req;
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
            continue;
        struct seccomp_notif_resp resp;
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    if (getenv("SBX_PTRACE_KEEP"))
        return keep(getenv("SBX_PTRACE_KEEP"));
    if (getenv("SBX_PTRACE_ADOPT"))
        return adopt(argv);
    if (getenv("SBX_PTRACE_ROOT"))
        return preload_root(argv);
    const char *gate = getenv("SBX_PTRACE_GATE");
    const char *exe = getenv("SBX_PTRACE_EXE");
    const char *errfd = getenv("SBX_PTRACE_ERR");
    if (!gate || !exe || !errfd) {
        fprintf(stderr, "sandbox_py ptrace launcher: run by sandbox_py only\n");
        return 127;
    }
    g_efd = atoi(errfd);
    int fd = atoi(gate);
    char go = 0;
    ssize_t r;
    do
        r = read(fd, &go, 1);
    while (r < 0 && errno == EINTR);
    if (r != 1 || go != 'g') {
        errno = r < 0 ? errno : ECHILD;
        die("the tracer did not attach to the launcher");
    }
    close(fd);
    enforce_policy();
    /* exec errors go back to the Python side (FileNotFoundError...) the way
     * subprocess reports them; a successful exec closes this fd */
    int efd = atoi(errfd);
    fcntl(efd, F_SETFD, FD_CLOEXEC);
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child > 0)
        return mirror(child, efd);
    char target[4096];
    snprintf(target, sizeof target, "%s", *exe ? exe : argv[0]);
    unsetenv("SBX_PTRACE_GATE");
    unsetenv("SBX_PTRACE_EXE");
    unsetenv("SBX_PTRACE_ERR");
    if (install_filter() < 0)
        die("cannot install the seccomp filter");
    exec_or_report(target, argv, efd);
    return 127;
}
