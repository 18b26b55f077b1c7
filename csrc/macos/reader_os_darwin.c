/* reader_os_darwin.c — reader_os.h on macOS: one kqueue per run with an
 * EVFILT_PROC/NOTE_EXIT filter per process.  The filter is tied to the
 * process, not its pid number, so a pid recycled after the exit is never
 * mistaken for the watched process.  (SIGKILL goes by pid: macOS has no
 * pidfd; a process is only killed while its filter has not fired.)
 *
 * The ptrace adoption of static programs is Linux's: macOS programs all
 * start under dyld, so the shim never hands one off; the stubs say so.
 */
#include "reader_os.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/sysctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>


struct sbx_watchset {
    int kq;
    int *exited;                  /* open addressing set of pids whose NOTE_EXIT fired */
    size_t nexited, cap;
};

struct sbx_watchset *sbx_watchset_new(void)
{
    struct sbx_watchset *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->kq = kqueue();
    if (ws->kq < 0) {
        free(ws);
        return NULL;
    }
    fcntl(ws->kq, F_SETFD, FD_CLOEXEC);
    return ws;
}

void sbx_watchset_free(struct sbx_watchset *ws)
{
    if (!ws)
        return;
    close(ws->kq);
    free(ws->exited);
    free(ws);
}

static void mark_exited(struct sbx_watchset *ws, int pid)
{
    if ((ws->nexited + 1) * 2 > ws->cap) {
        size_t nc = ws->cap ? ws->cap * 2 : 256;
        int *n = calloc(nc, sizeof *n);
        if (!n)
            return;
        for (size_t i = 0; i < ws->cap; i++)
            if (ws->exited[i]) {
                size_t j = (size_t)ws->exited[i] * 2654435761u & (nc - 1);
                while (n[j])
                    j = (j + 1) & (nc - 1);
                n[j] = ws->exited[i];
            }
        free(ws->exited);
        ws->exited = n;
        ws->cap = nc;
    }
    size_t j = (size_t)pid * 2654435761u & (ws->cap - 1);
    while (ws->exited[j] && ws->exited[j] != pid)
        j = (j + 1) & (ws->cap - 1);
    if (!ws->exited[j]) {
        ws->exited[j] = pid;
        ws->nexited++;
    }
}

static int take_exited(struct sbx_watchset *ws, int pid)
{
    if (!ws->cap)
        return 0;
    size_t j = (size_t)pid * 2654435761u & (ws->cap - 1);
    while (ws->exited[j]) {
        if (ws->exited[j] == pid)
            return 1;
        j = (j + 1) & (ws->cap - 1);
    }
    return 0;
}

int sbx_watch_open(struct sbx_watchset *ws, int pid)
{
    struct kevent ev;
    EV_SET(&ev, (uintptr_t)pid, EVFILT_PROC, EV_ADD | EV_ONESHOT, NOTE_EXIT, 0, NULL);
    if (kevent(ws->kq, &ev, 1, NULL, 0, NULL) < 0)
        return -1;                 /* ESRCH: already gone */
    return pid;
}

int sbx_watch_exited(struct sbx_watchset *ws, int handle, int pid)
{
    (void)handle;
    struct kevent evs[64];
    struct timespec zero = {0, 0};
    int n;
    while ((n = kevent(ws->kq, NULL, 0, evs, 64, &zero)) > 0)
        for (int i = 0; i < n; i++)
            if (evs[i].filter == EVFILT_PROC && (evs[i].fflags & NOTE_EXIT))
                mark_exited(ws, (int)evs[i].ident);
    return take_exited(ws, pid);
}

int sbx_watch_kill(struct sbx_watchset *ws, int handle, int pid)
{
    if (sbx_watch_exited(ws, handle, pid))
        return -1;
    return kill(pid, SIGKILL) == 0 ? 0 : -1;
}

void sbx_watch_close(struct sbx_watchset *ws, int handle)
{
    (void)ws;
    (void)handle;                  /* EV_ONESHOT: the filter is gone once it fired */
}

/* F_PUNCHHOLE frees whole file-system blocks: round inwards to 64 KiB. */
int sbx_log_anonymous(void)
{
    return -1;      /* no memfd: a file in $TMPDIR, removed at the end */
}

int sbx_log_anonymous_name(int fd, char *name, size_t cap)
{
    (void)fd;
    (void)name;
    (void)cap;
    return -1;
}

void sbx_log_punch(int fd, off_t off, off_t len)
{
    off_t a = (off + 65535) & ~(off_t)65535, b = (off + len) & ~(off_t)65535;
    if (b <= a)
        return;
    fpunchhole_t ph;
    memset(&ph, 0, sizeof ph);
    ph.fp_offset = a;
    ph.fp_length = b - a;
    fcntl(fd, F_PUNCHHOLE, &ph);
}

void sbx_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_cond_init(c, NULL);
}

void sbx_cond_wait_us(pthread_cond_t *c, pthread_mutex_t *mu, long us)
{
    /* relative: immune to wall-clock changes, as CLOCK_MONOTONIC is on Linux */
    struct timespec rel = {us / 1000000L, (us % 1000000L) * 1000L};
    pthread_cond_timedwait_relative_np(c, mu, &rel);
}

const char *sbx_unobserved_reason(int is_static)
{
    (void)is_static;
    return "the interpose dylib did not start in it: macOS strips DYLD_INSERT_LIBRARIES "
           "from programs under /bin, /sbin, /usr/bin, /usr/sbin, /usr/libexec and /System "
           "(SIP) and from hardened-runtime binaries without the "
           "allow-dyld-environment-variables entitlement, and so from all their children; "
           "run a copy from outside those folders (e.g. Homebrew's) or see docs/macos.md";
}

/* no hand-off of static programs: macOS has no ptrace backend */
const struct sbx_adopter *sbx_os_adopter(void) { return NULL; }

int sbx_proc_lineage(int pid, int *ppid, unsigned long long *start)
{
    /* the kernel's process table: parent and start time */
    struct kinfo_proc kp;
    size_t len = sizeof kp;
    int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, pid};
    if (sysctl(mib, 4, &kp, &len, NULL, 0) < 0 || len == 0)
        return -1;
    *ppid = kp.kp_eproc.e_ppid;
    *start = (unsigned long long)kp.kp_proc.p_starttime.tv_sec * 1000000ULL +
             (unsigned long long)kp.kp_proc.p_starttime.tv_usec;
    return 0;
}

unsigned long long sbx_proc_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (unsigned long long)tv.tv_sec * 1000000ULL + (unsigned long long)tv.tv_usec;
}

int sbx_proc_has_env(int pid, const char *entry)
{
    /* KERN_PROCARGS2: argc, the executable path, NUL padding, argv, then
     * the environment, as the process was started.  A hardened process
     * refuses it: then 0 (not shown to be the run's). */
    int argmax = 0;
    size_t sz = sizeof argmax;
    int mib_max[2] = {CTL_KERN, KERN_ARGMAX};
    if (sysctl(mib_max, 2, &argmax, &sz, NULL, 0) < 0 || argmax <= 0)
        return 0;
    char *buf = malloc((size_t)argmax);
    if (!buf)
        return 0;
    size_t len = (size_t)argmax;
    int mib[3] = {CTL_KERN, KERN_PROCARGS2, pid};
    int found = 0;
    if (sysctl(mib, 3, buf, &len, NULL, 0) == 0 && len > sizeof(int)) {
        int argc;
        memcpy(&argc, buf, sizeof argc);
        char *p = buf + sizeof argc, *end = buf + len;
        p += strnlen(p, (size_t)(end - p));           /* the executable path */
        while (p < end && *p == '\0')
            p++;
        for (int i = 0; i < argc && p < end; i++)
            p += strnlen(p, (size_t)(end - p)) + 1;
        size_t wl = strlen(entry);
        while (p < end && *p) {
            size_t l = strnlen(p, (size_t)(end - p));
            if (l == wl && memcmp(p, entry, wl) == 0) {
                found = 1;
                break;
            }
            p += l + 1;
        }
    }
    free(buf);
    return found;
}

int sbx_kill_by_env(const char *entry)
{
    /* Reading another process's environment needs KERN_PROCARGS2, which
     * hardened processes refuse: the interpose backend relies on its
     * records and kqueue watches alone (docs/macos.md). */
    (void)entry;
    return 0;
}
