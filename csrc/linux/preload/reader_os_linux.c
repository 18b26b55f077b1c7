/* reader_os_linux.c — reader_os.h on Linux: a pidfd per process (exit is
 * readability; signals cannot reach a recycled pid). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "reader_os.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
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
        ? "it is statically linked, so the preload shim cannot load into it and its file "
          "accesses are missing; use backend='ptrace'"
        : "the preload shim did not start in it (statically linked, setuid/setcap, or not "
          "a dynamically linked program of this architecture); use backend='ptrace'";
}
