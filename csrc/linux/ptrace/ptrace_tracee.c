/* ptrace_tracee.c — reading a stopped tracee: its memory (process_vm_readv),
 * its /proc entries, and the names its path arguments stand for. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptrace_run.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "physpath.h"

long sbx_pt_read_mem(pid_t tid, unsigned long addr, void *out, size_t len)
{
    struct iovec l = {out, len}, rm = {(void *)addr, len};
    return process_vm_readv(tid, &l, 1, &rm, 1, 0);
}

/* A NUL-terminated string, read page by page (a string may end right
 * before an unmapped page). */
long sbx_pt_read_str(pid_t tid, unsigned long addr, char *out, size_t cap)
{
    size_t got = 0;
    if (!addr)
        return -1;
    while (got < cap - 1) {
        size_t chunk = 4096 - ((addr + got) & 4095);
        if (chunk > cap - 1 - got)
            chunk = cap - 1 - got;
        long n = sbx_pt_read_mem(tid, addr + got, out + got, chunk);
        if (n <= 0)
            return -1;
        char *z = memchr(out + got, '\0', (size_t)n);
        if (z)
            return z - out;
        got += (size_t)n;
    }
    out[cap - 1] = '\0';
    return -2;       /* truncated */
}

long sbx_pt_proc_link(pid_t tid, const char *what, char *out, size_t cap)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/%s", tid, what);
    long n = readlink(p, out, cap - 1);
    if (n < 0)
        return -1;
    out[n] = '\0';
    return n;
}

long sbx_pt_fd_link(pid_t tid, int fd, char *out, size_t cap)
{
    char w[32];
    snprintf(w, sizeof w, "fd/%d", fd);
    return sbx_pt_proc_link(tid, w, out, cap);
}

/* A small /proc file, NUL-terminated; -1 when unreadable or empty. */
static int read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

int sbx_pt_status_field(pid_t tid, const char *key)
{
    char p[64], buf[2048];
    snprintf(p, sizeof p, "/proc/%d/status", tid);
    if (read_small(p, buf, sizeof buf) < 0)
        return -1;
    char *s = strstr(buf, key);
    return s ? atoi(s + strlen(key)) : -1;
}

/* fdinfo: the file offset and open flags of a tracee's fd. */
int sbx_pt_fd_info(pid_t tid, int fd, long long *pos, int *flags)
{
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/fdinfo/%d", tid, fd);
    if (read_small(p, buf, sizeof buf) < 0)
        return -1;
    char *s = strstr(buf, "pos:");
    char *fl = strstr(buf, "flags:");
    if (pos)
        *pos = s ? strtoll(s + 4, NULL, 10) : 0;
    if (flags)
        *flags = fl ? (int)strtol(fl + 6, NULL, 8) : 0;
    return 0;
}

/* A name the tracer could not make whole (longer than PATH_MAX, or built
 * on a directory whose path is): the access happened, its name is lost. */
static void warn_long(struct sbx_ptrace_run *r, pid_t tid)
{
    pthread_mutex_lock(&r->res_mu);
    sbx_result_warn(r->res, "process %d used a path longer than the tracer can name "
                    "(4096 bytes); that access is not in the Result", tid);
    pthread_mutex_unlock(&r->res_mu);
}

/* Resolve a tracee's path argument against its cwd or dirfd, now (at the
 * system call's entry, when that cwd is the one the kernel uses). */
char *sbx_pt_resolve(struct sbx_ptrace_run *r, pid_t tid, long dirfd, unsigned long addr)
{
    char rel[PMAX], base[PMAX], out[PMAX];
    long rl = sbx_pt_read_str(tid, addr, rel, sizeof rel);
    if (rl == -2) {
        warn_long(r, tid);
        return NULL;
    }
    if (rl <= 0)
        return NULL;         /* "" with AT_EMPTY_PATH acts on the fd, names nothing */
    long bl = 0;
    if (rel[0] != '/') {
        bl = (int)dirfd == AT_FDCWD ? sbx_pt_proc_link(tid, "cwd", base, sizeof base)
                                    : sbx_pt_fd_link(tid, (int)dirfd, base, sizeof base);
        if (bl >= (long)sizeof base - 1) {
            warn_long(r, tid);          /* readlink filled the buffer: cut short */
            return NULL;
        }
        if (bl <= 0 || base[0] != '/')
            return NULL;
    } else {
        /* an absolute name of a chrooted process starts at its root, which
         * /proc shows in our (the host's) terms */
        bl = sbx_pt_proc_link(tid, "root", base, sizeof base);
        if (bl > 1 && base[0] == '/') {
            memmove(rel, rel + 1, (size_t)rl);      /* now relative to the root */
            rl--;
        } else {
            bl = 0;
        }
    }
    if (sbx_path_join_physical(out, sizeof out, base, (size_t)bl, rel, (size_t)rl) < 0) {
        warn_long(r, tid);
        return NULL;
    }
    return strdup(out);
}

void sbx_pt_read_argv(struct task *t, unsigned long av)
{
    size_t cap = 0;
    for (size_t i = 0; av && i < 65536; i++) {
        unsigned long ptr;
        if (sbx_pt_read_mem(t->tid, av + i * sizeof ptr, &ptr, sizeof ptr) != sizeof ptr || !ptr)
            break;
        char buf[PMAX];
        if (sbx_pt_read_str(t->tid, ptr, buf, sizeof buf) == -1)
            break;
        if (t->xargc == cap) {
            cap = cap ? cap * 2 : 8;
            char **n = realloc(t->xargv, cap * sizeof *n);
            if (!n)
                break;
            t->xargv = n;
        }
        t->xargv[t->xargc++] = strdup(buf);
    }
}
