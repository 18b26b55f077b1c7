/* ptrace_breakaway.c — a process that exec'd a declared breakaway
 * (csrc/core/breakaway.h) leaves the run: a keeper outside it (the launcher
 * in keeper mode) traces it from then on and lets its calls through. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptrace_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>


/* An fd at 10 or above (close-on-exec): posix_spawn's dup2 onto 3..5 must
 * never meet a source fd that is itself one of the targets. */
static int high_fd(int fd)
{
    if (fd < 0 || fd >= 10)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return h;
}

/* A keeper for process `pid`, which left the run (the launcher in keeper
 * mode, see ptrace_launcher.c).  0 once it runs: its pid in *keeper_pid,
 * and *ready_fd, which delivers 'k' once it traces `pid`. */
static int start_keeper(struct sbx_ptrace_run *r, pid_t pid, pid_t *keeper_pid, int *ready_fd)
{
    int ready[2] = {-1, -1}, l = -1, ok = -1;
    if (!r->keeper[0] || pipe2(ready, O_CLOEXEC) < 0)
        return -1;
    ready[0] = high_fd(ready[0]);
    ready[1] = high_fd(ready[1]);
    if (r->keep_go[0] < 0 && pipe2(r->keep_go, O_CLOEXEC) == 0) {
        r->keep_go[0] = high_fd(r->keep_go[0]);
        r->keep_go[1] = high_fd(r->keep_go[1]);
    }
    if (r->listener >= 0)
        l = fcntl(r->listener, F_DUPFD_CLOEXEC, 10);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, ready[1], 3);
    if (r->keep_go[0] >= 0)
        posix_spawn_file_actions_adddup2(&fa, r->keep_go[0], 4);
    if (l >= 0)
        posix_spawn_file_actions_adddup2(&fa, l, 5);
    char keep[32];
    snprintf(keep, sizeof keep, "SBX_PTRACE_KEEP=%d", (int)pid);
    char *env[] = {keep, l >= 0 && r->keep_go[0] >= 0 ? "SBX_PTRACE_KEEP_LISTENER=1" : NULL,
                   NULL};
    char *argv[] = {"sandbox_py-breakaway-keeper", NULL};
    pid_t k;
    if (ready[0] >= 0 && ready[1] >= 0 &&
        posix_spawn(&k, r->keeper, &fa, NULL, argv, env) == 0) {
        close(ready[1]);
        ready[1] = -1;
        waitpid(k, NULL, __WALL);     /* it forks the keeper and exits at once */
        struct pollfd pf = {ready[0], POLLIN, 0};
        int kp = 0;
        if (poll(&pf, 1, 5000) == 1 && read(ready[0], &kp, sizeof kp) == (ssize_t)sizeof kp &&
            kp > 0) {
            *keeper_pid = kp;
            *ready_fd = ready[0];     /* 'k' comes once it traces `pid` */
            ready[0] = -1;
            ok = 0;
        }
    }
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++)
        if (ready[i] >= 0)
            close(ready[i]);
    if (l >= 0)
        close(l);
    return ok;
}

/* Yama (ptrace_scope 1, Ubuntu's default) lets a process trace only its
 * descendants, unless the tracee names its tracer: make the stopped tracee
 * call prctl(PR_SET_PTRACER, keeper).  At its execve exit stop a `syscall`
 * instruction is put where it stands, the call is made, and its code and
 * registers are put back.  Without Yama the call fails (EINVAL), harmlessly. */
static void name_the_keeper(pid_t tid, pid_t keeper)
{
#if defined(__x86_64__)
    struct user_regs_struct saved, regs;
    if (PT(PTRACE_GETREGS, tid, 0, &saved) < 0)
        return;
    errno = 0;
    long word = PT(PTRACE_PEEKTEXT, tid, saved.rip, 0);
    if (errno)
        return;
    if (PT(PTRACE_POKETEXT, tid, saved.rip, (word & ~0xffffL) | 0x050f) < 0)
        return;
    regs = saved;
    regs.rax = SYS_prctl;
    regs.rdi = PR_SET_PTRACER;
    regs.rsi = (unsigned long)keeper;
    int st, stops = 0;
    if (PT(PTRACE_SETREGS, tid, 0, &regs) == 0) {
        /* its entry stop, then its exit stop */
        while (stops < 2 && PT(PTRACE_SYSCALL, tid, 0, 0) == 0 &&
               waitpid(tid, &st, __WALL) == tid && WIFSTOPPED(st) &&
               WSTOPSIG(st) == (SIGTRAP | 0x80))
            stops++;
    }
    PT(PTRACE_POKETEXT, tid, saved.rip, word);
    PT(PTRACE_SETREGS, tid, 0, &saved);
#else
    (void)tid;
    (void)keeper;
#endif
}

/* Process `t` exec'd a declared breakaway and is at that execve's exit
 * stop: it leaves the run here.  The seccomp filter cannot be taken from
 * it, and without a tracer its traced calls would fail (ENOSYS): a keeper
 * outside the run takes it over (and its children) and lets every call
 * through without recording.  Held stopped in between. */
void sbx_pt_leave(struct sbx_ptrace_run *r, struct task *t)
{
    pid_t pid = t->pr->tgid;
    char name[256];
    snprintf(name, sizeof name, "%s", t->pr->name);
    pid_t keeper = 0;
    int ready = -1;
    int started = start_keeper(r, pid, &keeper, &ready) == 0;
    if (started)
        name_the_keeper(t->tid, keeper);
    kill(pid, SIGSTOP);               /* held until the keeper traces it */
    PT(PTRACE_DETACH, t->tid, 0, 0);
    sbx_pt_task_remove(r, t);
    char c = 0;
    struct pollfd pf = {ready, POLLIN, 0};
    int kept = started && poll(&pf, 1, 10000) == 1 && read(ready, &c, 1) == 1 && c == 'k';
    if (ready >= 0)
        close(ready);
    if (!kept)
        sbx_pt_warn(r, "process %d (%s) left the run (breakaway), but no keeper could trace "
                       "it: under the run's seccomp filter its file system calls fail "
                       "(ENOSYS)", pid, name);
    kill(pid, SIGCONT);
}
