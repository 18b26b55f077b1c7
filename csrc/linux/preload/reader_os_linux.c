/* reader_os_linux.c — reader_os.h on Linux: a pidfd per process (exit is
 * readability; signals cannot reach a recycled pid). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "reader_os.h"
#include "ptrace_tracer.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct sbx_watchset {
    int unused;
};

struct sbx_watchset *sbx_watchset_new(void) { return calloc(1, sizeof(struct sbx_watchset)); }
void sbx_watchset_free(struct sbx_watchset *ws) { free(ws); }

int sbx_watch_open(struct sbx_watchset *ws, int pid)
{
    (void)ws;
    /* ESRCH: it is already gone, nothing to wait for */
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int sbx_watch_exited(struct sbx_watchset *ws, int handle, int pid)
{
    (void)ws;
    (void)pid;
    struct pollfd pf = {handle, POLLIN, 0};
    return poll(&pf, 1, 0) > 0;
}

int sbx_watch_kill(struct sbx_watchset *ws, int handle, int pid)
{
    (void)ws;
    (void)pid;
    return syscall(SYS_pidfd_send_signal, handle, SIGKILL, NULL, 0) == 0 ? 0 : -1;
}

void sbx_watch_close(struct sbx_watchset *ws, int handle)
{
    (void)ws;
    close(handle);
}

int sbx_log_anonymous(void)
{
    /* Reopened by the traced processes through /proc: the kernel allows
     * that to processes of the same user while this one is dumpable (a
     * set-id or setcap interpreter is not: then a named file it is). */
    if (prctl(PR_GET_DUMPABLE) != 1)
        return -1;
    return (int)syscall(SYS_memfd_create, "sandbox_py-preload", MFD_CLOEXEC);
}

int sbx_log_anonymous_name(int fd, char *name, size_t cap)
{
    int n = snprintf(name, cap, "/proc/%d/task/%d/fd/%d", (int)getpid(),
                     (int)syscall(SYS_gettid), fd);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

void sbx_log_punch(int fd, off_t off, off_t len)
{
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
}

void sbx_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

void sbx_cond_wait_us(pthread_cond_t *c, pthread_mutex_t *mu, long us)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += us * 1000L;
    dl.tv_sec += dl.tv_nsec / 1000000000L;
    dl.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(c, mu, &dl);
}

const char *sbx_unobserved_reason(int is_static)
{
    return is_static
        ? "it is statically linked or 32-bit, so the preload shim cannot load into it and "
          "its file accesses are missing; use backend='ptrace'"
        : "the preload shim did not start in it (statically linked, setuid/setcap, or not "
          "a dynamically linked program of this architecture); use backend='ptrace'";
}

int sbx_proc_lineage(int pid, int *ppid, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');      /* the command name may hold anything */
    if (!p)
        return -1;
    /* after ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime priority nice num_threads
     * itrealvalue starttime (field 22 of the line) */
    char *save = NULL;
    int field = 2;
    for (char *t = strtok_r(p + 1, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        field++;
        if (field == 4)
            *ppid = atoi(t);
        else if (field == 22) {
            *start = strtoull(t, NULL, 10);
            return 0;
        }
    }
    return -1;
}

unsigned long long sbx_proc_now(void)
{
    /* /proc's start times are clock ticks since boot (CLOCK_BOOTTIME) */
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    long hz = sysconf(_SC_CLK_TCK);
    return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
           (unsigned long long)ts.tv_nsec * (unsigned long long)hz / 1000000000ULL;
}

/* 1 when the environment of pid holds `entry` exactly. */
static int env_holds(int pid, const char *entry, size_t wl)
{
    enum { CAP = 1 << 16 };
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char *env = malloc(CAP);
    ssize_t n = env ? read(fd, env, CAP - 1) : -1;
    close(fd);
    int found = 0;
    for (ssize_t i = 0; n > (ssize_t)wl && i + (ssize_t)wl <= n;) {
        if (memcmp(env + i, entry, wl) == 0 && (i + (ssize_t)wl == n || env[i + wl] == '\0')) {
            found = 1;
            break;
        }
        const char *z = memchr(env + i, '\0', (size_t)(n - i));
        if (!z)
            break;
        i = z - env + 1;
    }
    free(env);
    return found;
}

int sbx_proc_has_env(int pid, const char *entry)
{
    return env_holds(pid, entry, strlen(entry));
}

int sbx_kill_by_env(const char *entry)
{
    size_t wl = strlen(entry);
    int killed = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);   /* pin it first */
        if (pidfd < 0)
            continue;
        if (env_holds(pid, entry, wl) &&
            syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0)
            killed++;
        close(pidfd);
    }
    closedir(d);
    return killed;
}

/* ---- static programs: the ptrace backend adopts them --------------------------*/
static void *ptrace_adopt(pid_t pid, const char *launcher, char *err, size_t errlen)
{
    return sbx_ptrace_adopt(pid, launcher, err, errlen);
}
static int ptrace_wait(void *run, double timeout) { return sbx_ptrace_wait(run, timeout); }
static void ptrace_kill(void *run) { sbx_ptrace_kill(run); }
static struct sbx_result *ptrace_end(void *run) { return sbx_ptrace_end(run); }

const struct sbx_adopter *sbx_os_adopter(void)
{
    static const struct sbx_adopter ptrace = {ptrace_adopt, ptrace_wait, ptrace_kill,
                                              ptrace_end};
    return &ptrace;
}
