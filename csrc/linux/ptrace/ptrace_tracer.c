/* ptrace_tracer.c — see ptrace_tracer.h: the tracer thread and the API.
 * The rest of the backend is described in ptrace_run.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptrace_tracer.h"
#include "ptrace_run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A process that entered another mount namespace (unshare, setns) may
 * have seen files where the host has none, or others: its names are its
 * own.  Checked as it exits, which every traced process does. */
static void check_mount_namespace(struct sbx_ptrace_run *r, struct task *t)
{
    char p[64];
    struct stat mine, theirs;
    snprintf(p, sizeof p, "/proc/%d/ns/mnt", t->tid);
    if (stat("/proc/self/ns/mnt", &mine) == 0 && stat(p, &theirs) == 0 &&
        mine.st_ino != theirs.st_ino)
        sbx_pt_warn(r, "process %d (%s) runs in another mount namespace: its paths are as "
                       "it sees them and may not be where the host has those files",
                    t->pr->tgid, t->pr->name);
}

/* ---- the tracer thread --------------------------------------------------------------------*/
static void handle_stop(struct sbx_ptrace_run *r, pid_t tid, int st)
{
    struct task *t = sbx_pt_task_find(r, tid);
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
        /* the leader is reported last, with the process's status */
        if (t && t->pr->tgid == tid) {
            pthread_mutex_lock(&r->res_mu);
            sbx_result_proc_exit(r->res, tid, WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
            pthread_mutex_unlock(&r->res_mu);
        }
        if (t)
            sbx_pt_task_remove(r, t);
        return;
    }
    if (!WIFSTOPPED(st))
        return;
    if (!t && !(t = sbx_pt_task_new(r, tid))) {
        PT(PTRACE_CONT, tid, 0, 0);
        return;
    }
    int sig = WSTOPSIG(st), ev = (unsigned)st >> 16;
    int req = PTRACE_CONT, inject = 0;
    if (tid == r->root && ev == PTRACE_EVENT_FORK && !r->adopted) {
        /* The launcher forked the command's process (now traced from its
         * first instruction).  The launcher itself is subprocess.Popen's
         * child: while this thread traces it, a waitpid() in any thread of
         * this process would consume its ptrace stops.  Let it go. */
        PT(PTRACE_DETACH, tid, 0, 0);
        sbx_pt_task_remove(r, t);
        return;
    }
    if (sig == (SIGTRAP | 0x80) && t->leaving) {
        sbx_pt_leave(r, t);                  /* a declared breakaway: gone from the run */
        return;
    } else if (sig == (SIGTRAP | 0x80)) {
        sbx_pt_on_exit(r, t);
    } else if (ev == PTRACE_EVENT_SECCOMP) {
        if (sbx_pt_on_entry(r, t))
            req = PTRACE_SYSCALL;     /* see the result too */
    } else if (ev == PTRACE_EVENT_EXEC) {
        /* the launcher may be seized while its own exec completes */
        if (tid != r->root || r->adopted)
            sbx_pt_on_exec(r, t);
        req = PTRACE_SYSCALL;         /* the execve exit stop follows */
        t->nr = -1;
    } else if (ev == PTRACE_EVENT_EXIT) {
        if (t->pr->refs == 1) {       /* the last thread: its fds close now */
            sbx_pt_pending_settle(r, t->pr, tid, 0);
            sbx_pt_fd_close_all(r, t->pr, tid);
        }
        check_mount_namespace(r, t);
    } else if (ev == PTRACE_EVENT_STOP) {
        if (t->fresh || sig == SIGTRAP) {
            t->fresh = 0;
        } else {
            /* group stop (SIGSTOP, SIGTSTP...): stay stopped, like untraced */
            PT(PTRACE_LISTEN, tid, 0, 0);
            return;
        }
    } else if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK ||
               ev == PTRACE_EVENT_CLONE || ev == PTRACE_EVENT_VFORK_DONE) {
        /* the child reports its own first stop; it is set up then */
    } else if (ev == 0) {
        inject = sig;                 /* signal-delivery stop: deliver it */
    }
    PT(req, tid, 0, inject);
}

static void *tracer_main(void *arg)
{
    struct sbx_ptrace_run *r = arg;
    long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP |
                PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL;
    int ok = PT(PTRACE_SEIZE, r->root, 0, opts) == 0;
    int err = errno;
    struct task *t = NULL;
    if (ok) {
        struct proc *pr = sbx_pt_proc_copy(NULL, r->root, r->root);
        if (pr) {
            snprintf(pr->name, sizeof pr->name, "%s", r->root_argv0);
            t = sbx_pt_task_add(r, r->root, pr);
        }
    }
    pthread_mutex_lock(&r->mu);
    r->attach_state = ok && t ? 1 : -1;
    if (!ok)
        snprintf(r->attach_err, sizeof r->attach_err,
                 "cannot trace process %d: ptrace(PTRACE_SEIZE) failed: %s", r->root,
                 strerror(err));
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->attach_state > 0) {
        for (;;) {
            int st;
            pid_t tid = waitpid(-1, &st, __WALL | __WNOTHREAD);
            if (tid < 0) {
                if (errno == EINTR)
                    continue;
                break;                /* ECHILD: no tracee left */
            }
            pthread_mutex_lock(&r->state_mu);
            handle_stop(r, tid, st);
            pthread_mutex_unlock(&r->state_mu);
        }
    }
    pthread_mutex_lock(&r->state_mu);
    pthread_mutex_lock(&r->mu);
    while (r->ntasks) {               /* vanished without an exit report */
        struct task *x = r->tasks[0];
        pthread_mutex_unlock(&r->mu);
        sbx_pt_task_remove(r, x);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->state_mu);
    r->done = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- API ---------------------------------------------------------------------------------*/
int sbx_ptrace_available(char *why, size_t len)
{
    static int cached = -1;
    static char reason[256];
    if (cached < 0) {
        pid_t c = fork();
        if (c == 0) {
            if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
                _exit(2);
            if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0)
                _exit(3);
            raise(SIGSTOP);
            getpid();
            _exit(0);
        }
        int st = 0;
        cached = 0;
        if (c < 0) {
            snprintf(reason, sizeof reason, "cannot fork to test ptrace: %s", strerror(errno));
        } else if (waitpid(c, &st, __WALL) == c && WIFSTOPPED(st)) {
            struct ptrace_syscall_info si;
            long n = PT(PTRACE_GET_SYSCALL_INFO, c, sizeof si, &si);
            kill(c, SIGKILL);
            waitpid(c, &st, __WALL);
            if (n > 0) {
                cached = 1;
                snprintf(reason, sizeof reason,
                         "seccomp-filtered ptrace: sees every program, static or dynamic, "
                         "and direct system calls");
            } else {
                snprintf(reason, sizeof reason, "the kernel lacks PTRACE_GET_SYSCALL_INFO "
                         "(Linux 5.3 or newer is needed)");
            }
        } else {
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            snprintf(reason, sizeof reason, "%s",
                     code == 2 ? "ptrace is not permitted here (a container's seccomp "
                                 "profile or kernel.yama.ptrace_scope=3)"
                     : code == 3 ? "seccomp is not available in this kernel"
                                 : "a traced test child did not stop");
        }
    }
    snprintf(why, len, "%s", reason);
    return cached;
}

struct sbx_ptrace_run *sbx_ptrace_begin(char *err, size_t errlen)
{
    struct sbx_ptrace_run *r = calloc(1, sizeof *r);
    if (!r || !(r->res = sbx_result_new())) {
        snprintf(err, errlen, "out of memory");
        free(r);
        return NULL;
    }
    if (pipe2(r->gate, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot create the ptrace gate pipe: %s", strerror(errno));
        sbx_result_free(r->res);
        free(r);
        return NULL;
    }
    /* Never 0, 1 or 2: a caller whose stdin is closed would get the gate
     * there, and the child's own stdin would then replace it. */
    for (int i = 0; i < 2; i++)
        if (r->gate[i] < 3) {
            int moved = fcntl(r->gate[i], F_DUPFD_CLOEXEC, 3);
            if (moved >= 0) {
                close(r->gate[i]);
                r->gate[i] = moved;
            }
        }
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->res_mu, NULL);
    pthread_mutex_init(&r->state_mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->listener = -1;
    r->keep_go[0] = r->keep_go[1] = -1;
    return r;
}

int sbx_ptrace_set_breakaway(struct sbx_ptrace_run *r, const char *decl, const char *keeper)
{
    free(r->breakaway);
    r->breakaway = decl && *decl ? strdup(decl) : NULL;
    snprintf(r->keeper, sizeof r->keeper, "%s", keeper ? keeper : "");
    return decl && *decl && !r->breakaway ? -1 : 0;
}

int sbx_ptrace_gate_fd(const struct sbx_ptrace_run *r) { return r->gate[0]; }

int sbx_ptrace_attach(struct sbx_ptrace_run *r, pid_t pid, const char *argv0, char *err,
                      size_t errlen)
{
    r->root = pid;
    snprintf(r->root_argv0, sizeof r->root_argv0, "%s", argv0);
    if (pthread_create(&r->thread, NULL, tracer_main, r) != 0) {
        snprintf(err, errlen, "cannot start the tracer thread");
        close(r->gate[1]);
        r->gate[1] = -1;
        return -1;
    }
    r->thread_started = 1;
    pthread_mutex_lock(&r->mu);
    while (r->attach_state == 0)
        pthread_cond_wait(&r->cv, &r->mu);
    int ok = r->attach_state > 0;
    pthread_mutex_unlock(&r->mu);
    if (ok && write(r->gate[1], "g", 1) != 1)
        ok = 0;
    if (!ok)
        snprintf(err, errlen, "%s", r->attach_err[0] ? r->attach_err : "cannot open the gate");
    close(r->gate[1]);            /* EOF tells a waiting launcher to give up */
    close(r->gate[0]);
    r->gate[0] = r->gate[1] = -1;
    return ok ? 0 : -1;
}

struct sbx_ptrace_run *sbx_ptrace_adopt(pid_t pid, const char *launcher, char *err,
                                        size_t errlen)
{
    struct sbx_ptrace_run *r = sbx_ptrace_begin(err, errlen);
    if (!r)
        return NULL;
    r->adopted = 1;
    if (!realpath(launcher, r->skip_exe))
        snprintf(r->skip_exe, sizeof r->skip_exe, "%s", launcher);
    char name[64];
    snprintf(name, sizeof name, "static program (pid %d)", pid);
    if (sbx_ptrace_attach(r, pid, name, err, errlen) < 0) {
        sbx_result_free(sbx_ptrace_end(r));
        return NULL;
    }
    return r;
}

int sbx_ptrace_wait(struct sbx_ptrace_run *r, double timeout)
{
    if (!r->thread_started)
        return 1;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout >= 0) {
        dl.tv_sec += (time_t)timeout;
        dl.tv_nsec += (long)((timeout - (time_t)timeout) * 1e9);
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        if (timeout < 0)
            pthread_cond_wait(&r->cv, &r->mu);
        else if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT)
            break;
    }
    int done = r->done;
    pthread_mutex_unlock(&r->mu);
    return done;
}

void sbx_ptrace_kill(struct sbx_ptrace_run *r)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->ntasks; i++)
        kill(r->tasks[i]->pr->tgid, SIGKILL);
    pthread_mutex_unlock(&r->mu);
}

struct sbx_result *sbx_ptrace_end(struct sbx_ptrace_run *r)
{
    if (r->thread_started) {
        if (!sbx_ptrace_wait(r, 5.0)) {
            sbx_ptrace_kill(r);
            sbx_ptrace_wait(r, -1);
        }
        pthread_join(r->thread, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (r->gate[i] >= 0)
            close(r->gate[i]);
    if (r->notifier_started) {
        __atomic_store_n(&r->notifier_stop, 1, __ATOMIC_RELEASE);
        pthread_join(r->notifier, NULL);
    }
    /* keepers of processes that left the run answer the listener now */
    for (int i = 0; i < 2; i++)
        if (r->keep_go[i] >= 0)
            close(r->keep_go[i]);
    free(r->breakaway);
    if (r->listener >= 0)
        close(r->listener);
    pthread_mutex_destroy(&r->res_mu);
    pthread_mutex_destroy(&r->state_mu);
    struct sbx_result *res = r->res;
    free(r->tasks);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return res;
}
