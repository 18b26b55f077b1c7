/* ptrace_notify.c — the seccomp user-notification listener: the calls
 * whose outcome needs no exit stop (ptrace_syscalls.h) reach a thread of
 * their own, a cheaper round trip than a ptrace stop, and are answered
 * with "continue". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptrace_run.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "access.h"
#include "pathnorm.h"
#include "syscalls.h"

/* <linux/seccomp.h> of older distributions lacks these (Linux 6.6) */
#ifdef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SBX_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOCTL_NOTIF_SET_FLAGS
#else
#define SBX_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, unsigned long long)
#endif
#define SBX_NOTIF_SYNC_WAKE_UP 1UL


static void *notifier_main(void *arg)
{
    struct sbx_ptrace_run *r = arg;
    for (;;) {
        struct pollfd pf = {r->listener, POLLIN, 0};
        int pr = poll(&pf, 1, 50);
        if (__atomic_load_n(&r->notifier_stop, __ATOMIC_ACQUIRE))
            return NULL;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0 || ((pf.revents & (POLLHUP | POLLERR | POLLNVAL)) && !(pf.revents & POLLIN)))
            return NULL;              /* no process uses the filter any more */
        if (pr == 0)
            continue;
        struct seccomp_notif req;
        memset(&req, 0, sizeof req);
        if (ioctl(r->listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
            continue;                 /* the caller died meanwhile */
        const unsigned long *a = (const unsigned long *)req.data.args;
        long nr = req.data.nr;
        char *p = NULL;
        struct sbx_sc_layout l;
        int is_path = req.data.arch == NATIVE_ARCH ? sbx_linux_path_call(nr, &l) : -2;
        if (is_path == 0 && l.op == SBX_OP_OPEN) {
            pthread_mutex_lock(&r->state_mu);
            struct task *t = sbx_pt_task_find(r, (pid_t)req.pid);
            p = t && a[l.p0] ? sbx_pt_resolve(r, t->tid, l.d0 < 0 ? AT_FDCWD : (long)(int)a[l.d0],
                                       a[l.p0]) : NULL;
            if (p && ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0)
                sbx_pt_open_at_entry(r, t, p, (unsigned)a[l.d0 < 0 ? 1 : 2]);
            pthread_mutex_unlock(&r->state_mu);
            free(p);
            p = NULL;
        } else if (is_path == -1) {
            /* an fd call settled at entry: the caller waits in it, so its
             * fd is still open and its offset is the one before the call */
            pthread_mutex_lock(&r->state_mu);
            struct task *t = sbx_pt_task_find(r, (pid_t)req.pid);
            if (t && ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0)
                sbx_pt_settle_fd_call(r, t->pr, t->tid, nr, a);
            pthread_mutex_unlock(&r->state_mu);
        } else if (is_path == 0 && a[l.p0])
            p = sbx_pt_resolve(r, (pid_t)req.pid, l.d0 < 0 ? AT_FDCWD : (long)(int)a[l.d0], a[l.p0]);
        /* the memory read belongs to this very call only if it is still
         * pending (a killed caller's pid could have been reused) */
        int pid = p ? sbx_pt_tgid_of(r, (pid_t)req.pid) : -1;
        if (pid < 0 && p && !r->breakaway)
            /* not met yet (the tracer thread has not seen its first stop) */
            pid = sbx_pt_status_field((pid_t)req.pid, "Tgid:");
        if (p && pid > 0 && !sbx_path_is_fd_alias(p) &&
            ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0) {
            struct sbx_access acc = sbx_access_classify(
                l.op, l.op == SBX_OP_READLINK ? sbx_pt_readlink_ok(p) : 1);
            sbx_pt_record(r, pid, p, acc.first);
        }
        free(p);
        struct seccomp_notif_resp resp;
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(r->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

/* The launcher closes its listener fd right after installing the filter;
 * at that close's stop the tracer copies it (pidfd_getfd). */
void sbx_pt_take_listener(struct sbx_ptrace_run *r, pid_t tid, int fd, const char *name)
{
    char link[64];
    if (sbx_pt_fd_link(tid, fd, link, sizeof link) <= 0 || strcmp(link, "anon_inode:seccomp notify") != 0)
        return;
    int pfd = (int)syscall(SYS_pidfd_open, tid, 0);
    int l = pfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
    if (pfd >= 0)
        close(pfd);
    if (l < 0) {
        /* its stat calls will fail (ENOSYS): say so, never hide it */
        sbx_pt_warn(r, "process %d (%s): the tracer could not take its seccomp listener; "
                    "its stat/access/readlink calls fail and the run is unreliable",
                    tid, name);
        return;
    }
    fcntl(l, F_SETFD, FD_CLOEXEC);
    /* Each notification is a round trip between two tasks that wait for
     * each other: with synchronous wake-ups (Linux 6.6) the kernel switches
     * straight to the woken side on the same CPU instead of waking it on
     * another one.  An older kernel refuses the flag and keeps ordinary
     * wake-ups. */
    ioctl(l, SBX_IOCTL_NOTIF_SET_FLAGS, SBX_NOTIF_SYNC_WAKE_UP);   /* by value */
    r->listener = l;
    if (pthread_create(&r->notifier, NULL, notifier_main, r) == 0)
        r->notifier_started = 1;
}
