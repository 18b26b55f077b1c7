/* ptrace_tracer.c — see ptrace_tracer.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptrace_tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/ptrace.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>
#include <linux/audit.h>

#include "access.h"
#include "breakaway.h"
#include "exec_reads.h"
#include "pathnorm.h"
#include "physpath.h"
#include "ptrace_clone.h"
#include "syscalls.h"

/* <sys/ptrace.h> and <linux/ptrace.h> clash; the few calls we need: */
long ptrace(int req, ...);
#define PT(req, tid, addr, data) ptrace((req), (pid_t)(tid), (void *)(long)(addr), (void *)(long)(data))

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

#define PMAX 4096

/* ---- per-process state (shared by its threads) -------------------------------*/
struct fdent {
    int fd;
    char *path;        /* as the opener named it, absolute and clean */
    char *real;        /* the kernel's name for it when different (a symlink on
                        * the way), taken at the open: symlink targets count as
                        * they were at the access, not after the run */
    unsigned acc;      /* 1 read, 2 write */
    unsigned done;     /* categories used through this fd (the ledger: an open
                        * never used is a probe) */
    unsigned mine;     /* of those, recorded for the current image of this
                        * process (a forked child or a new exec records its
                        * own use again) */
    int dir, noprobe;
    int chr;           /* a character device: reading it moves no offset */
    long long pos0;    /* its offset when this image got it (fork, exec): what
                        * the offset says was read or written before is not
                        * this image's doing */
};

/* An open settled at its entry (through the listener, without an exit
 * stop): its fd is not known yet.  It is matched to an fd when the fd is
 * first met (its use, its close, the process's exit); an open that no fd
 * ever matches failed. */
struct pending {
    char *path;        /* the name to record, as for an open seen at its exit */
    char *key;         /* the kernel's name of the fd it would give */
    dev_t dev;
    ino_t ino;
    int has_ino;       /* dev/ino of the file at the open's entry */
    int alias;         /* a reopen of an fd: a failure records nothing, as
                        * at an exit stop */
    pid_t tid;         /* the task whose open it is */
};

struct proc {
    int refs;
    int tgid;
    struct fdent *fds;
    size_t n, cap;
    struct pending *pend;
    size_t npend, cappend;
    char name[256];
    int warned_arch, warned_uring;
};

struct task {
    pid_t tid;
    struct proc *pr;
    int fresh;                    /* auto-attached, first stop not seen yet */
    /* the system call between its seccomp stop and its exit stop */
    long nr;
    unsigned long args[6];
    char *p1, *p2;
    int existed;
    int leaving;                  /* exec'd a declared breakaway: leaves at the exit stop */
    /* exec announced at entry */
    char *xpath;
    char **xargv;
    size_t xargc;
};

struct sbx_ptrace_run {
    int gate[2];
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int attach_state;             /* 0 waiting, 1 attached, -1 failed */
    char attach_err[256];
    pid_t root;
    char root_argv0[256];
    int adopted;                  /* sbx_ptrace_adopt: root is not Popen's child */
    char skip_exe[PMAX];          /* the launcher's own exec is machinery */
    int done;

    struct task **tasks;
    size_t ntasks, captasks;
    struct sbx_result *res;
    pthread_mutex_t res_mu;       /* res, shared with the notifier */

    /* The tasks, their processes and fd tables: the tracer thread holds it
     * while it handles a stop, the notifier while it settles an fd call
     * (close, mmap, pread, getdents) that reached it instead of a stop. */
    pthread_mutex_t state_mu;

    int listener;                 /* seccomp user-notification fd, or -1 */
    pthread_t notifier;
    int notifier_started, notifier_stop;

    /* breakaway (sbx_ptrace_set_breakaway) */
    char *breakaway;              /* the declaration, one entry per line, or NULL */
    char keeper[PMAX];            /* the launcher, run in keeper mode */
    int keep_go[2];               /* keepers hold the read end: EOF = the run is over */
};

/* The tgid of task `tid` of this run, or -1 (a process that left the run
 * shares the filter, and so the listener, but is not recorded). */
static int tgid_of(struct sbx_ptrace_run *r, pid_t tid)
{
    pthread_mutex_lock(&r->mu);
    int tgid = -1;
    for (size_t i = 0; i < r->ntasks && tgid < 0; i++)
        if (r->tasks[i]->tid == tid)
            tgid = r->tasks[i]->pr->tgid;
    pthread_mutex_unlock(&r->mu);
    return tgid;
}

/* Record an access of process `pid` (its tgid).  The tracer thread and the
 * notification thread both record. */
static void add(struct sbx_ptrace_run *r, int pid, const char *p, unsigned fl)
{
    if (!p || !*p || !fl)
        return;
    pthread_mutex_lock(&r->res_mu);
    if (sbx_result_record(r->res, pid, p, strlen(p), fl) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
    pthread_mutex_unlock(&r->res_mu);
}

static void locked_warn(struct sbx_ptrace_run *r, const char *fmt, int pid, const char *name)
{
    pthread_mutex_lock(&r->res_mu);
    sbx_result_warn(r->res, fmt, pid, name);
    pthread_mutex_unlock(&r->res_mu);
}

/* ---- tracee memory and /proc ------------------------------------------------------*/
static long read_mem(pid_t tid, unsigned long addr, void *out, size_t len)
{
    struct iovec l = {out, len}, rm = {(void *)addr, len};
    return process_vm_readv(tid, &l, 1, &rm, 1, 0);
}

/* A NUL-terminated string, read page by page (a string may end right
 * before an unmapped page). */
static long read_str(pid_t tid, unsigned long addr, char *out, size_t cap)
{
    size_t got = 0;
    if (!addr)
        return -1;
    while (got < cap - 1) {
        size_t chunk = 4096 - ((addr + got) & 4095);
        if (chunk > cap - 1 - got)
            chunk = cap - 1 - got;
        long n = read_mem(tid, addr + got, out + got, chunk);
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

static long proc_link(pid_t tid, const char *what, char *out, size_t cap)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/%s", tid, what);
    long n = readlink(p, out, cap - 1);
    if (n < 0)
        return -1;
    out[n] = '\0';
    return n;
}

static long fd_link(pid_t tid, int fd, char *out, size_t cap)
{
    char w[32];
    snprintf(w, sizeof w, "fd/%d", fd);
    return proc_link(tid, w, out, cap);
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

static int status_field(pid_t tid, const char *key)
{
    char p[64], buf[2048];
    snprintf(p, sizeof p, "/proc/%d/status", tid);
    if (read_small(p, buf, sizeof buf) < 0)
        return -1;
    char *s = strstr(buf, key);
    return s ? atoi(s + strlen(key)) : -1;
}

/* fdinfo: the file offset and open flags of a tracee's fd. */
static int fd_info(pid_t tid, int fd, long long *pos, int *flags)
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

/* Resolve a tracee's path argument against its cwd or dirfd, now (at the
 * system call's entry, when that cwd is the one the kernel uses). */
/* A name the tracer could not make whole (longer than PATH_MAX, or built
 * on a directory whose path is): the access happened, its name is lost. */
static void warn_long(struct sbx_ptrace_run *r, pid_t tid)
{
    pthread_mutex_lock(&r->res_mu);
    sbx_result_warn(r->res, "process %d used a path longer than the tracer can name "
                    "(4096 bytes); that access is not in the Result", tid);
    pthread_mutex_unlock(&r->res_mu);
}

static char *resolve(struct sbx_ptrace_run *r, pid_t tid, long dirfd, unsigned long addr)
{
    char rel[PMAX], base[PMAX], out[PMAX];
    long rl = read_str(tid, addr, rel, sizeof rel);
    if (rl == -2) {
        warn_long(r, tid);
        return NULL;
    }
    if (rl <= 0)
        return NULL;         /* "" with AT_EMPTY_PATH acts on the fd, names nothing */
    long bl = 0;
    if (rel[0] != '/') {
        bl = (int)dirfd == AT_FDCWD ? proc_link(tid, "cwd", base, sizeof base)
                                    : fd_link(tid, (int)dirfd, base, sizeof base);
        if (bl >= (long)sizeof base - 1) {
            warn_long(r, tid);          /* readlink filled the buffer: cut short */
            return NULL;
        }
        if (bl <= 0 || base[0] != '/')
            return NULL;
    } else {
        /* an absolute name of a chrooted process starts at its root, which
         * /proc shows in our (the host's) terms */
        bl = proc_link(tid, "root", base, sizeof base);
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

/* ---- tasks and processes --------------------------------------------------------------*/
static struct task *task_find(struct sbx_ptrace_run *r, pid_t tid)
{
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->tid == tid)
            return r->tasks[i];
    return NULL;
}

static struct proc *proc_find(struct sbx_ptrace_run *r, int tgid)
{
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->pr->tgid == tgid)
            return r->tasks[i]->pr;
    return NULL;
}

/* A new process `tgid` (its first task `tid`, stopped before its first
 * instruction), with a copy of the fd table of `from` (its parent, or
 * NULL).  The fds it inherited are not its opens (no probe of its own) and
 * what their offsets say was done before it had them is its parent's. */
static struct proc *proc_copy(const struct proc *from, int tgid, pid_t tid)
{
    struct proc *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->refs = 1;
    p->tgid = tgid;
    if (from) {
        snprintf(p->name, sizeof p->name, "%s", from->name);
        p->fds = calloc(from->n ? from->n : 1, sizeof *p->fds);
        size_t n = 0;
        for (size_t i = 0; p->fds && i < from->n; i++) {
            long long pos = 0;
            if (fd_info(tid, from->fds[i].fd, &pos, NULL) < 0)
                continue;       /* closed by the parent before the fork */
            struct fdent *e = &p->fds[n];
            *e = from->fds[i];
            e->path = strdup(from->fds[i].path);
            e->real = from->fds[i].real ? strdup(from->fds[i].real) : NULL;
            if (!e->path) {
                free(e->real);
                continue;
            }
            e->mine = 0;
            e->noprobe = 1;
            e->pos0 = pos;
            n++;
        }
        p->n = n;
        p->cap = p->fds ? from->n : 0;
        /* Opens settled at entry and not matched yet stay the parent's:
         * the child is copied at its first stop, when the parent may have
         * made more opens since the fork.  An fd the child inherited from
         * one of them is learnt as inherited when the child uses it, and
         * the parent still matches its own copy (same offset). */
    }
    return p;
}

static void proc_unref(struct proc *p)
{
    if (--p->refs > 0)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->fds[i].path);
        free(p->fds[i].real);
    }
    free(p->fds);
    for (size_t i = 0; i < p->npend; i++) {
        free(p->pend[i].path);
        free(p->pend[i].key);
    }
    free(p->pend);
    free(p);
}

static void task_clear_sys(struct task *t)
{
    free(t->p1);
    free(t->p2);
    t->p1 = t->p2 = NULL;
    t->nr = -1;
}

static void task_clear_exec(struct task *t)
{
    free(t->xpath);
    for (size_t i = 0; i < t->xargc; i++)
        free(t->xargv[i]);
    free(t->xargv);
    t->xpath = NULL;
    t->xargv = NULL;
    t->xargc = 0;
}

static struct task *task_add(struct sbx_ptrace_run *r, pid_t tid, struct proc *pr)
{
    struct task *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->tid = tid;
    t->pr = pr;
    t->nr = -1;
    pthread_mutex_lock(&r->mu);
    if (r->ntasks == r->captasks) {
        size_t nc = r->captasks ? r->captasks * 2 : 64;
        struct task **nt = realloc(r->tasks, nc * sizeof *nt);
        if (!nt) {
            pthread_mutex_unlock(&r->mu);
            free(t);
            return NULL;
        }
        r->tasks = nt;
        r->captasks = nc;
    }
    r->tasks[r->ntasks++] = t;
    pthread_mutex_unlock(&r->mu);
    return t;
}

static void task_remove(struct sbx_ptrace_run *r, struct task *t)
{
    /* the process is gone without its exit stop (killed): its opens
     * settled at entry and never matched are probes, as unused ones are */
    if (t->pr->refs == 1)
        for (size_t i = 0; i < t->pr->npend; i++)
            if (!t->pr->pend[i].alias)
                add(r, t->pr->tgid, t->pr->pend[i].path, SBX_PROBE);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i] == t) {
            r->tasks[i] = r->tasks[--r->ntasks];
            break;
        }
    pthread_mutex_unlock(&r->mu);
    task_clear_sys(t);
    task_clear_exec(t);
    proc_unref(t->pr);
    free(t);
}

/* A task we have not seen: a thread of a known process shares its state, a
 * new process starts with a copy of its parent's fd table (fork). */
static struct task *task_new(struct sbx_ptrace_run *r, pid_t tid)
{
    int tgid = status_field(tid, "Tgid:");
    if (tgid <= 0)
        tgid = tid;
    struct proc *pr = proc_find(r, tgid);
    if (pr) {
        pr->refs++;
    } else {
        int ppid = status_field(tid, "PPid:");
        pr = proc_copy(ppid > 0 ? proc_find(r, ppid) : NULL, tgid, tid);
        if (!pr)
            return NULL;
        /* a new process, before its first access */
        pthread_mutex_lock(&r->res_mu);
        if (sbx_result_proc_fork(r->res, tgid, ppid) < 0)
            sbx_result_warn(r->res, "out of memory while recording processes");
        pthread_mutex_unlock(&r->res_mu);
    }
    struct task *t = task_add(r, tid, pr);
    if (!t)
        proc_unref(pr);
    return t;
}

/* ---- fds ---------------------------------------------------------------------------*/
static struct fdent *fd_get(struct proc *p, int fd)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->fds[i].fd == fd)
            return &p->fds[i];
    return NULL;
}

static void fd_drop(struct proc *p, int fd)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->fds[i].fd == fd) {
            free(p->fds[i].path);
            free(p->fds[i].real);
            p->fds[i] = p->fds[--p->n];
            return;
        }
}

static struct fdent *fd_put(struct proc *p, int fd, const char *path, unsigned acc)
{
    fd_drop(p, fd);
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 16;
        struct fdent *nf = realloc(p->fds, nc * sizeof *nf);
        if (!nf)
            return NULL;
        p->fds = nf;
        p->cap = nc;
    }
    struct fdent *e = &p->fds[p->n++];
    memset(e, 0, sizeof *e);
    e->fd = fd;
    e->path = strdup(path);
    e->acc = acc;
    return e;
}

static void pending_drop(struct proc *p, size_t i)
{
    free(p->pend[i].path);
    free(p->pend[i].key);
    p->pend[i] = p->pend[--p->npend];
}

/* The open settled at its entry that gave fd (kernel name `name`, or none
 * when the file has no name any more): the same name first, else the same
 * file.  Returns its index or -1. */
static long pending_match(struct proc *p, pid_t tid, int fd, const char *name, int named)
{
    if (!p->npend)
        return -1;
    for (size_t i = 0; named && i < p->npend; i++)
        if (p->pend[i].key && !strcmp(p->pend[i].key, name))
            return (long)i;
    char link[64];
    struct stat sb;
    snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, fd);
    if (stat(link, &sb) < 0)
        return -1;
    for (size_t i = 0; i < p->npend; i++)
        if (p->pend[i].has_ino && p->pend[i].dev == sb.st_dev && p->pend[i].ino == sb.st_ino)
            return (long)i;
    return -1;
}

/* An fd opened where we could not see it (inherited, or opened by a call
 * settled at its entry): ask the kernel.  *matched says whether it came
 * from an open of this process settled at its entry. */
static struct fdent *fd_learn_m(struct proc *p, pid_t tid, int fd, int *matched)
{
    struct fdent *e = fd_get(p, fd);
    *matched = 0;
    if (e)
        return e;
    char name[PMAX];
    int flags = 0;
    long n = fd_link(tid, fd, name, sizeof name);
    if (p->npend) {
        int named = n > 0 && name[0] == '/' &&
                    !(n > 10 && !strcmp(name + n - 10, " (deleted)"));
        long i = pending_match(p, tid, fd, name, named);
        if (i >= 0 && fd_info(tid, fd, NULL, &flags) == 0) {
            struct pending *pd = &p->pend[i];
            int acc = flags & O_ACCMODE;
            e = fd_put(p, fd, pd->path, (acc != O_WRONLY ? 1 : 0) | (acc != O_RDONLY ? 2 : 0));
            if (e) {
                struct stat sb;
                e->dir = (flags & O_DIRECTORY) != 0;
                e->chr = stat(pd->path, &sb) == 0 && S_ISCHR(sb.st_mode);
                if (named && strcmp(name, pd->path) != 0)
                    e->real = strdup(name);
                *matched = 1;
            }
            pending_drop(p, (size_t)i);
            return e;
        }
    }
    /* no name: a pipe or socket, or a file without one (O_TMPFILE,
     * deleted), which is never reported under an invented name */
    if (n <= 0 || name[0] != '/' ||
        (n > 10 && !strcmp(name + n - 10, " (deleted)")) || fd_info(tid, fd, NULL, &flags) < 0)
        return NULL;
    int acc = flags & O_ACCMODE;
    e = fd_put(p, fd, name, (acc != O_WRONLY ? 1 : 0) | (acc != O_RDONLY ? 2 : 0));
    if (e)
        e->dir = (flags & O_DIRECTORY) != 0;
    return e;
}

static struct fdent *fd_learn(struct proc *p, pid_t tid, int fd)
{
    int matched;
    return fd_learn_m(p, tid, fd, &matched);
}

/* Process `p` used fd entry `e` this way. */
static void fd_use(struct sbx_ptrace_run *r, struct proc *p, struct fdent *e, unsigned kind)
{
    if (!e || (e->mine & kind))
        return;
    e->done |= kind;
    e->mine |= kind;
    add(r, p->tgid, e->path, kind);
    if (kind == SBX_READ && e->real)
        add(r, p->tgid, e->real, SBX_READ);   /* a read through a symlink: its target too */
}

/* read()/write() do not stop: settle from the offset what the fd did (what
 * it did before this image had it is not counted).  Returns the offset,
 * or -1 when it could not be read. */
static long long fd_settle(struct sbx_ptrace_run *r, struct proc *p, struct fdent *e, pid_t tid)
{
    unsigned kind = 0;
    if (e->dir || (e->done & SBX_ENUM))
        /* a listed directory: getdents moved its offset, nothing was read */
        kind = (e->mine & SBX_ENUM) ? 0 : SBX_ENUM;
    else if ((e->acc & 1) && !(e->mine & (SBX_READ | SBX_WRITE)))
        kind = SBX_READ;
    else if (e->acc == 2 && !(e->mine & SBX_WRITE))
        kind = SBX_WRITE;
    long long pos = 0;
    if (fd_info(tid, e->fd, &pos, NULL) < 0)
        return -1;
    if (kind && pos > e->pos0)
        fd_use(r, p, e, kind);
    return pos;
}

/* Another fd of `p` that is a copy (dup) of entry `e`'s open, or NULL.
 * Both fds are still open (a close is settled at its entry). */
static struct fdent *fd_twin(struct proc *p, pid_t tid, const struct fdent *e)
{
    for (size_t i = 0; i < p->n; i++) {
        struct fdent *o = &p->fds[i];
        if (o == e || strcmp(o->path, e->path) != 0)
            continue;
        long same = syscall(SYS_kcmp, tid, tid, 0 /* KCMP_FILE */, e->fd, o->fd);
        if (same == 0 || (same < 0 && errno == ENOSYS))
            return o;
    }
    return NULL;
}

static void fd_close(struct sbx_ptrace_run *r, struct proc *p, pid_t tid, int fd)
{
    struct fdent *e = fd_get(p, fd);
    if (!e) {
        /* an fd this process did not open where we saw it (inherited,
         * received over a unix socket): its reads did not stop, so its
         * offset is asked now; it was not opened here, so no probe.  Or
         * one of its opens settled at entry: that one is ledgered. */
        int matched;
        e = fd_learn_m(p, tid, fd, &matched);
        if (!e)
            return;
        if (!matched)
            e->noprobe = 1;
    }
    fd_settle(r, p, e, tid);
    pthread_mutex_lock(&r->res_mu);
    if (e->chr && (e->acc & 1) && !(e->done & SBX_READ) && strcmp(e->path, "/dev/null") != 0)
        /* read() does not stop under this backend and a device has no
         * offset to tell afterwards: say so rather than guess */
        sbx_result_warn(r->res, "whether the character device %s was read is not seen "
                        "by the ptrace backend (reads do not stop); it is recorded as a "
                        "probe", e->path);
    struct fdent *twin = e->done || e->noprobe ? NULL : fd_twin(p, tid, e);
    if (twin)
        /* the open lives on in a copy (a shell moves a script's fd to 10
         * and closes the first): it is settled when the copy goes */
        twin->noprobe = 0;
    else if (sbx_result_settle(r->res, p->tgid, e->path, strlen(e->path),
                               e->done || e->noprobe) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
    pthread_mutex_unlock(&r->res_mu);
    fd_drop(p, fd);
}

/* Every fd the process holds now that came from an open settled at entry:
 * matched to that open. */
static void learn_all(struct proc *p, pid_t tid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", tid);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    char buf[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type;
                     char name[]; } *d = (void *)(buf + off);
            off += d->reclen;
            if (d->name[0] < '0' || d->name[0] > '9')
                continue;
            int fd = atoi(d->name);
            if (fd_get(p, fd))
                continue;
            int matched;
            struct fdent *e = fd_learn_m(p, tid, fd, &matched);
            if (e && !matched)
                /* inherited: left to its use or close, as before (its
                 * offset may come from before the run) */
                fd_drop(p, fd);
        }
    }
    close(dfd);
}

/* The opens settled at entry that no fd of the process matches failed (a
 * failed open is a probe).  Only those of `tid` (0: all), whose opens have
 * returned: another thread may be inside its open right now. */
static void pending_settle(struct sbx_ptrace_run *r, struct proc *p, pid_t lister, pid_t tid)
{
    if (!p->npend)
        return;
    learn_all(p, lister);
    for (size_t i = p->npend; i-- > 0;)
        if (!tid || p->pend[i].tid == tid) {
            if (!p->pend[i].alias)
                add(r, p->tgid, p->pend[i].path, SBX_PROBE);
            pending_drop(p, i);
        }
}

static void fd_close_all(struct sbx_ptrace_run *r, struct proc *p, pid_t tid)
{
    while (p->n)
        fd_close(r, p, tid, p->fds[p->n - 1].fd);
}

/* ---- system calls -----------------------------------------------------------------------*/
static int get_info(pid_t tid, struct ptrace_syscall_info *si)
{
    memset(si, 0, sizeof *si);
    return PT(PTRACE_GET_SYSCALL_INFO, tid, sizeof *si, si) > 0 ? 0 : -1;
}

static int path_exists(const char *p)
{
    return p && faccessat(AT_FDCWD, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static void read_argv(struct task *t, unsigned long av)
{
    size_t cap = 0;
    for (size_t i = 0; av && i < 65536; i++) {
        unsigned long ptr;
        if (read_mem(t->tid, av + i * sizeof ptr, &ptr, sizeof ptr) != sizeof ptr || !ptr)
            break;
        char buf[PMAX];
        if (read_str(t->tid, ptr, buf, sizeof buf) == -1)
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

/* ---- seccomp user notifications (calls that need no exit stop) ----------*/
/* <linux/seccomp.h> of older distributions lacks these (Linux 6.6) */
#ifdef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SBX_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOCTL_NOTIF_SET_FLAGS
#else
#define SBX_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, unsigned long long)
#endif
#define SBX_NOTIF_SYNC_WAKE_UP 1UL

/* A name that is a symlink is read by readlink; anything else (absent, not
 * a link) only probed.  One lstat in the tracer costs less than a stop at
 * the call's exit. */
static int readlink_ok(const char *p)
{
    struct stat sb;
    return p && lstat(p, &sb) == 0 && S_ISLNK(sb.st_mode);
}

static int settle_fd_call(struct sbx_ptrace_run *r, struct proc *p, pid_t tid, long nr,
                          const unsigned long *a);

#define PENDING_MAX 128

/* A plain read-only open (no O_CREAT, O_TRUNC, O_TMPFILE, O_PATH: the
 * launcher's filter sends only those here) at its entry.  Its outcome
 * changes what is recorded only when it succeeds and the fd is then used,
 * and the fd tells that when it is met: the open is remembered, not
 * stopped at its exit.  The caller holds state_mu. */
static void open_at_entry(struct sbx_ptrace_run *r, struct task *t, char *p, unsigned flags)
{
    struct proc *pr = t->pr;
    struct pending pd = {0};
    pd.tid = t->tid;
    if (sbx_path_is_fd_alias(p)) {
        /* a reopen through /proc/self/fd/N or /dev/stdin: the file behind
         * the descriptor is what is opened, named as the kernel names it */
        char canon[PMAX], behind[PMAX];
        const char *rest = NULL;
        int n = -1;
        if (!strcmp(p, "/dev/stdin") || !strcmp(p, "/dev/stdout") || !strcmp(p, "/dev/stderr"))
            n = p[5] == 'i' ? 0 : p[8] == 'o' ? 1 : 2;
        else if (!strncmp(p, "/dev/fd/", 8))
            n = atoi(p + 8);
        if (n >= 0)
            snprintf(canon, sizeof canon, "/proc/%d/fd/%d", t->tid, n);
        else if (!strncmp(p, "/proc/self/", 11) && (rest = p + 10))
            snprintf(canon, sizeof canon, "/proc/%d%s", pr->tgid, rest);
        else if (!strncmp(p, "/proc/thread-self/", 18) && (rest = p + 17))
            snprintf(canon, sizeof canon, "/proc/%d/task/%d%s", pr->tgid, t->tid, rest);
        else
            snprintf(canon, sizeof canon, "%s", p);
        long bl = readlink(canon, behind, sizeof behind - 1);
        if (bl <= 0)
            return;
        behind[bl] = '\0';
        if (behind[0] != '/' || strstr(behind, " (deleted)"))
            return;                 /* no name: nothing is recorded either way */
        pd.path = strdup(behind);
        pd.key = strdup(behind);
        pd.alias = 1;
    } else if (!strncmp(p, "/proc/", 6)) {
        /* /proc/self names this process: the kernel names the fd by pid */
        char canon[PMAX];
        if (!strncmp(p, "/proc/self/", 11))
            snprintf(canon, sizeof canon, "/proc/%d%s", pr->tgid, p + 10);
        else if (!strncmp(p, "/proc/thread-self/", 18))
            snprintf(canon, sizeof canon, "/proc/%d/task/%d%s", pr->tgid, t->tid, p + 17);
        else
            snprintf(canon, sizeof canon, "%s", p);
        pd.path = strdup(p);
        pd.key = strdup(canon);
    } else {
        struct stat sb;
        int rc = (flags & O_NOFOLLOW) ? lstat(p, &sb) : stat(p, &sb);
        if (rc < 0 && (errno == ENOENT || errno == ENOTDIR) && strncmp(p, "/dev/", 5) != 0) {
            /* compilers try many include directories: an open of an absent
             * name is a probe */
            add(r, pr->tgid, p, SBX_PROBE);
            return;
        }
        pd.path = strdup(p);
        pd.key = strdup(p);
        if (rc == 0) {
            pd.dev = sb.st_dev;
            pd.ino = sb.st_ino;
            pd.has_ino = 1;
        }
    }
    if (!pd.path || !pd.key) {
        free(pd.path);
        free(pd.key);
        return;
    }
    if (pr->npend >= PENDING_MAX)
        /* many opens not matched yet: most failed; list the fds once */
        pending_settle(r, pr, t->tid, pr->refs == 1 ? 0 : t->tid);
    if (pr->npend == pr->cappend) {
        size_t nc = pr->cappend ? pr->cappend * 2 : 8;
        struct pending *np = realloc(pr->pend, nc * sizeof *np);
        if (!np) {
            free(pd.path);
            free(pd.key);
            return;
        }
        pr->pend = np;
        pr->cappend = nc;
    }
    pr->pend[pr->npend++] = pd;
}

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
            struct task *t = task_find(r, (pid_t)req.pid);
            p = t && a[l.p0] ? resolve(r, t->tid, l.d0 < 0 ? AT_FDCWD : (long)(int)a[l.d0],
                                       a[l.p0]) : NULL;
            if (p && ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0)
                open_at_entry(r, t, p, (unsigned)a[l.d0 < 0 ? 1 : 2]);
            pthread_mutex_unlock(&r->state_mu);
            free(p);
            p = NULL;
        } else if (is_path == -1) {
            /* an fd call settled at entry: the caller waits in it, so its
             * fd is still open and its offset is the one before the call */
            pthread_mutex_lock(&r->state_mu);
            struct task *t = task_find(r, (pid_t)req.pid);
            if (t && ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0)
                settle_fd_call(r, t->pr, t->tid, nr, a);
            pthread_mutex_unlock(&r->state_mu);
        } else if (is_path == 0 && a[l.p0])
            p = resolve(r, (pid_t)req.pid, l.d0 < 0 ? AT_FDCWD : (long)(int)a[l.d0], a[l.p0]);
        /* the memory read belongs to this very call only if it is still
         * pending (a killed caller's pid could have been reused) */
        int pid = p ? tgid_of(r, (pid_t)req.pid) : -1;
        if (pid < 0 && p && !r->breakaway)
            /* not met yet (the tracer thread has not seen its first stop) */
            pid = status_field((pid_t)req.pid, "Tgid:");
        if (p && pid > 0 && !sbx_path_is_fd_alias(p) &&
            ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0) {
            struct sbx_access acc = sbx_access_classify(
                l.op, l.op == SBX_OP_READLINK ? readlink_ok(p) : 1);
            add(r, pid, p, acc.first);
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
static void take_listener(struct sbx_ptrace_run *r, pid_t tid, int fd, const char *name)
{
    char link[64];
    if (fd_link(tid, fd, link, sizeof link) <= 0 || strcmp(link, "anon_inode:seccomp notify") != 0)
        return;
    int pfd = (int)syscall(SYS_pidfd_open, tid, 0);
    int l = pfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
    if (pfd >= 0)
        close(pfd);
    if (l < 0) {
        /* its stat calls will fail (ENOSYS): say so, never hide it */
        locked_warn(r, "process %d (%s): the tracer could not take its seccomp listener; "
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

/* Record what a path call did to its names (the access model decides):
 * ok 1 succeeded, 0 failed, -1 refused by the system (EACCES, EPERM). */
static void path_done(struct sbx_ptrace_run *r, struct task *t, enum sbx_op op, int ok)
{
    struct sbx_access a = ok < 0 ? sbx_access_refused(op, 0) : sbx_access_classify(op, ok);
    /* /proc/self/fd/N and /dev/fd/N name a descriptor, not a file */
    if (t->p1 && !sbx_path_is_fd_alias(t->p1))
        add(r, t->pr->tgid, t->p1, a.first);
    if (t->p2 && !sbx_path_is_fd_alias(t->p2))
        add(r, t->pr->tgid, t->p2, a.second);
}

/* The names of path call `nr` (its row in syscalls.def), resolved against
 * the tracee's cwd or dirfd now, before the call can change them. */
static void resolve_names(struct sbx_ptrace_run *r, struct task *t,
                          const struct sbx_sc_layout *l)
{
    const unsigned long *a = t->args;
    long d0 = l->d0 < 0 ? AT_FDCWD : (long)(int)a[l->d0];
    if (a[l->p0])
        t->p1 = resolve(r, t->tid, d0, a[l->p0]);
    if (l->npath > 1 && a[l->p1]) {
        long d1 = l->d1 < 0 ? AT_FDCWD : (long)(int)a[l->d1];
        t->p2 = resolve(r, t->tid, d1, a[l->p1]);
    }
}

static unsigned open_flags(struct task *t)
{
    const unsigned long *a = t->args;
    switch (t->nr) {
#ifdef SYS_open
    case SYS_open: return (unsigned)a[1];
    case SYS_creat: return O_CREAT | O_WRONLY | O_TRUNC;
#endif
    case SYS_openat: return (unsigned)a[2];
    case SYS_openat2: {
        uint64_t how = 0;          /* struct open_how: flags first */
        read_mem(t->tid, a[2], &how, sizeof how);
        return (unsigned)how;
    }
    }
    return 0;
}

/* The fd calls settled at their entry, without an exit: close (the ledger
 * settles the fd while it is still open), mmap of a file, and the fd calls
 * that read or list.  They reach the tracer as a ptrace stop without a
 * listener, else as a user notification (a cheaper round trip: the caller
 * continues without the tracer touching its registers).  Returns 1 when
 * `nr` is one of them.  The caller holds state_mu. */
static int settle_fd_call(struct sbx_ptrace_run *r, struct proc *p, pid_t tid, long nr,
                          const unsigned long *a)
{
    enum sbx_use use;
    int fdarg, hot;
    switch (nr) {
    case SYS_close:
        fd_close(r, p, tid, (int)a[0]);
        return 1;
    case SYS_mmap: {
        struct fdent *e = fd_learn(p, tid, (int)a[4]);
        if (a[2] & (PROT_READ | PROT_EXEC))
            fd_use(r, p, e, SBX_READ);
        if ((a[2] & PROT_WRITE) && (a[3] & MAP_SHARED))
            fd_use(r, p, e, SBX_WRITE);
        return 1;
    }
    }
    /* reading and listing are settled here (half the stops of a tree
     * walk); changes wait for the exit, where success is known */
    if (sbx_linux_fd_call(nr, &use, &fdarg, &hot) && use != SBX_USE_WRITE) {
        fd_use(r, p, fd_learn(p, tid, (int)a[fdarg]), sbx_access_use(use));
        return 1;
    }
    return 0;
}

/* The entry of a stopped call: resolve names now, settle fds that are
 * about to go away.  Returns 1 when the exit must be seen too. */
static int on_entry(struct sbx_ptrace_run *r, struct task *t)
{
    struct ptrace_syscall_info si;
    if (get_info(t->tid, &si) < 0 || si.op != PTRACE_SYSCALL_INFO_SECCOMP)
        return 0;
    struct proc *p = t->pr;
    if (si.arch != NATIVE_ARCH) {
        if (!p->warned_arch++)
            locked_warn(r, "process %d (%s) made system calls of another ABI "
                            "(32-bit or x32), which the ptrace backend does not decode",
                            p->tgid, p->name);
        return 0;
    }
    task_clear_sys(t);
    long nr = (long)si.seccomp.nr;
    unsigned long *a = (unsigned long *)si.seccomp.args;
    memcpy(t->args, a, sizeof t->args);
    t->nr = nr;
    pid_t tid = t->tid;

    /* the open-file ledger's own calls */
    switch (nr) {
    case SYS_clone:
        /* the filter stops only a clone(CLONE_UNTRACED): its child would
         * run unfollowed (ptrace_clone.h) */
        if ((a[0] & CLONE_UNTRACED) && sbx_pt_strip_untraced(tid, a[0]) < 0)
            locked_warn(r, "process %d (%s) started a process with CLONE_UNTRACED that the "
                           "tracer could not follow: its file accesses are not in the Result",
                        p->tgid, p->name);
        task_clear_sys(t);
        return 0;
    case SYS_close:
        if (r->listener < 0)
            take_listener(r, tid, (int)a[0], p->name);
        break;
    case SYS_close_range:
        /* the launcher closes its listener with close_range: a close stops
         * only when there is no listener */
        if (r->listener < 0 && a[0] == a[1])
            take_listener(r, tid, (int)a[0], p->name);
        if (p->npend)
            learn_all(p, tid);      /* fds of opens settled at entry among them */
        if (!(a[2] & 4 /* CLOSE_RANGE_CLOEXEC */))
            for (size_t i = p->n; i-- > 0;)
                if ((unsigned)p->fds[i].fd >= (unsigned)a[0] &&
                    (unsigned)p->fds[i].fd <= (unsigned)a[1])
                    fd_close(r, p, tid, p->fds[i].fd);
        return 0;
#ifdef SYS_dup2
    case SYS_dup2:
        if (a[0] != a[1])
            fd_close(r, p, tid, (int)a[1]);
        return 1;
#endif
    case SYS_dup3:
        fd_close(r, p, tid, (int)a[1]);
        return 1;
    case SYS_dup: case SYS_fcntl:
        return 1;
    }
    if (settle_fd_call(r, p, tid, nr, a)) {
        task_clear_sys(t);
        return 0;
    }
    enum sbx_use use;
    int fdarg, hot;
    if (sbx_linux_fd_call(nr, &use, &fdarg, &hot))
        return 1;                   /* a change: at the exit, where success is known */

    struct sbx_sc_layout l;
    if (sbx_linux_path_call(nr, &l) < 0)
        return 1;                   /* FD2 and UNSEEN rows: at the exit */
    resolve_names(r, t, &l);
    switch (l.op) {
    case SBX_OP_EXEC:
        task_clear_exec(t);
        t->xpath = t->p1;
        t->p1 = NULL;
        read_argv(t, nr == SYS_execve ? a[1] : a[2]);
        /* close-on-exec fds vanish with the exec: settle everything now */
        pending_settle(r, p, tid, p->refs == 1 ? 0 : tid);
        for (size_t i = 0; i < p->n; i++)
            fd_settle(r, p, &p->fds[i], tid);
        return 1;
    case SBX_OP_PROBE:
        /* without a listener these stop here; the outcome changes nothing */
        path_done(r, t, l.op, 1);
        task_clear_sys(t);
        return 0;
    case SBX_OP_READLINK:
        path_done(r, t, l.op, readlink_ok(t->p1));
        task_clear_sys(t);
        return 0;
    case SBX_OP_REMOVE: case SBX_OP_RENAME: case SBX_OP_CREATE: case SBX_OP_LINK:
    case SBX_OP_MODIFY:
        /* Reads do not stop: what an open fd of this name read so far is
         * settled before the name changes, so that the order the precision
         * rules depend on ("read, then replaced") is the real one. */
        if (p->npend)
            learn_all(p, tid);
        for (size_t i = 0; i < p->n; i++) {
            const struct fdent *e = &p->fds[i];
            if ((t->p1 && (!strcmp(e->path, t->p1) || (e->real && !strcmp(e->real, t->p1)))) ||
                (t->p2 && (!strcmp(e->path, t->p2) || (e->real && !strcmp(e->real, t->p2)))))
                fd_settle(r, p, &p->fds[i], tid);
        }
        return 1;
    case SBX_OP_OPEN: {
        unsigned fl = open_flags(t);
        /* compilers try many include directories: an open of an absent
         * name is a probe, known now (the exit is only needed for the fd) */
        if (t->p1 && !(fl & O_CREAT) && strncmp(t->p1, "/proc/", 6) != 0 &&
            strncmp(t->p1, "/dev/", 5) != 0 &&      /* these resolve per process */
            access(t->p1, F_OK) < 0 &&
            (errno == ENOENT || errno == ENOTDIR)) {
            add(r, p->tgid, t->p1, SBX_PROBE);
            task_clear_sys(t);
            return 0;
        }
        /* creation is judged against the name's existence before the call */
        if (fl & O_CREAT)
            t->existed = path_exists(t->p1);
        return 1;
    }
    default:
        return 1;
    }
}

static void opened(struct sbx_ptrace_run *r, struct task *t, unsigned flags, long fd)
{
    if (!t->p1)
        return;
    int alias = sbx_path_is_fd_alias(t->p1);
    if (fd < 0) {
        /* refused (fd is -errno): what it asked for is kept */
        if (!alias)
            add(r, t->pr->tgid, t->p1, sbx_access_refusal((int)-fd)
                              ? sbx_access_refused(SBX_OP_OPEN,
                                                   sbx_linux_open_intent(flags)).first
                              : SBX_PROBE);
        return;
    }
    if (alias) {
        /* a reopen through /proc/self/fd/N: the file behind the descriptor
         * is what is opened (nothing, when it has no name) */
        char behind[PMAX];
        free(t->p1);
        t->p1 = NULL;
        if (fd_link(t->tid, (int)fd, behind, sizeof behind) <= 0 || behind[0] != '/' ||
            strstr(behind, " (deleted)"))
            return;
        t->p1 = strdup(behind);
        if (!t->p1)
            return;
    }
    int used, tracked;
    unsigned now = sbx_access_open(sbx_linux_open_intent(flags),
                                   (flags & O_CREAT) && !t->existed, &used, &tracked);
    add(r, t->pr->tgid, t->p1, now);
    if (!tracked)
        return;
    int acc = flags & O_ACCMODE;
    unsigned ac = (acc != O_WRONLY ? 1 : 0) | (acc != O_RDONLY ? 2 : 0);
    struct fdent *e = fd_put(t->pr, (int)fd, t->p1, ac);
    if (!e)
        return;
    e->dir = (flags & O_DIRECTORY) != 0;
    struct stat sb;
    e->chr = stat(t->p1, &sb) == 0 && S_ISCHR(sb.st_mode);
    char real[PMAX];
    if (fd_link(t->tid, (int)fd, real, sizeof real) > 0 && real[0] == '/' &&
        strcmp(real, t->p1) != 0 && !strstr(real, " (deleted)"))
        e->real = strdup(real);
    if (used) {
        e->done |= SBX_WRITE;
        e->mine |= SBX_WRITE;
        e->noprobe = 1;
    }
}

/* A copy of an fd (dup family): the original carries the probe. */
static void fd_copied(struct proc *p, pid_t tid, int from, int to)
{
    struct fdent *e = fd_learn(p, tid, from);
    if (!e || to == e->fd)
        return;
    struct fdent c = *e;
    char *path = strdup(c.path);
    struct fdent *n = path ? fd_put(p, to, path, c.acc) : NULL;
    if (n) {
        n->real = c.real ? strdup(c.real) : NULL;
        n->done = c.done;
        n->mine = c.mine;
        n->dir = c.dir;
        n->noprobe = 1;
    }
    free(path);
}

static void on_exit_stop(struct sbx_ptrace_run *r, struct task *t)
{
    struct ptrace_syscall_info si;
    if (t->nr < 0 || get_info(t->tid, &si) < 0 || si.op != PTRACE_SYSCALL_INFO_EXIT) {
        task_clear_sys(t);
        return;
    }
    long rv = (long)si.exit.rval;
    int ok = !si.exit.is_error;
    unsigned long *a = t->args;
    struct proc *p = t->pr;
    pid_t tid = t->tid;
    long nr = t->nr;
    enum sbx_use use;
    int fdarg, hot;
    struct sbx_sc_layout l;

    switch (nr) {
#ifdef SYS_dup2
    case SYS_dup2:
#endif
    case SYS_dup: case SYS_dup3: case SYS_fcntl:
        if (ok && (nr != SYS_fcntl || a[1] == F_DUPFD || a[1] == F_DUPFD_CLOEXEC))
            fd_copied(p, tid, (int)a[0], (int)rv);
        break;
    case SYS_sendfile:
        if (ok) {
            fd_use(r, p, fd_learn(p, tid, (int)a[1]), SBX_READ);
            fd_use(r, p, fd_learn(p, tid, (int)a[0]), SBX_WRITE);
        }
        break;
    case SYS_copy_file_range: case SYS_splice:
        if (ok) {
            fd_use(r, p, fd_learn(p, tid, (int)a[0]), SBX_READ);
            fd_use(r, p, fd_learn(p, tid, (int)a[2]), SBX_WRITE);
        }
        break;
    case SYS_io_uring_setup: case SYS_open_by_handle_at:
        if ((ok || nr == SYS_open_by_handle_at) && !p->warned_uring++)
            locked_warn(r, nr == SYS_io_uring_setup
                               ? "process %d (%s) uses io_uring: file accesses submitted "
                                 "through the ring are not seen by the ptrace backend"
                               : "process %d (%s) called open_by_handle_at: files opened "
                                 "by handle are not named by the ptrace backend",
                        p->tgid, p->name);
        break;
    default:
        if (sbx_linux_fd_call(nr, &use, &fdarg, &hot)) {
            if (ok)
                fd_use(r, p, fd_learn(p, tid, (int)a[fdarg]), sbx_access_use(use));
            break;
        }
        if (sbx_linux_path_call(nr, &l) < 0)
            break;
        switch (l.op) {
        case SBX_OP_OPEN:
            opened(r, t, open_flags(t), rv);   /* on failure: -errno */
            break;
        case SBX_OP_EXEC:
            if (!ok && t->xpath) {      /* success was handled at the exec event */
                add(r, p->tgid, t->xpath, SBX_PROBE);
                task_clear_exec(t);
            }
            break;
        default:
            if (!t->p1 && !t->p2 && l.op == SBX_OP_MODIFY) {
                /* utimensat/futimesat with no name act on the fd */
                if (ok)
                    fd_use(r, p, fd_learn(p, tid, (int)a[0]), SBX_WRITE);
                break;
            }
            path_done(r, t, l.op, ok ? 1 : sbx_access_refusal((int)-rv) ? -1 : 0);
        }
    }
    task_clear_sys(t);
}

/* The script's interpreter from its #! line, or "". */
static void shebang(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 2 || buf[0] != '#' || buf[1] != '!')
        return;
    buf[n] = '\0';
    char *s = buf + 2;
    s += strspn(s, " \t");
    size_t l = strcspn(s, " \t\n");
    if (l < cap) {
        memcpy(out, s, l);
        out[l] = '\0';
    }
}

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
static void leave(struct sbx_ptrace_run *r, struct task *t)
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
    task_remove(r, t);
    char c = 0;
    struct pollfd pf = {ready, POLLIN, 0};
    int kept = started && poll(&pf, 1, 10000) == 1 && read(ready, &c, 1) == 1 && c == 'k';
    if (ready >= 0)
        close(ready);
    if (!kept)
        locked_warn(r, "process %d (%s) left the run (breakaway), but no keeper could trace "
                       "it: under the run's seccomp filter its file system calls fail "
                       "(ENOSYS)", pid, name);
    kill(pid, SIGCONT);
}

static int on_exec(struct sbx_ptrace_run *r, struct task *t)
{
    unsigned long former = 0;
    PT(PTRACE_GETEVENTMSG, t->tid, 0, &former);
    if ((pid_t)former != t->tid) {
        /* a non-leader thread exec'd: it now wears the leader's tid */
        struct task *old = task_find(r, (pid_t)former);
        if (old) {
            task_clear_exec(t);
            t->xpath = old->xpath;
            t->xargv = old->xargv;
            t->xargc = old->xargc;
            old->xpath = NULL;
            old->xargv = NULL;
            old->xargc = 0;
            task_remove(r, old);
        }
    }
    struct proc *p = t->pr;
    /* exec closed the close-on-exec fds: keep only what is still open.
     * The new image records its own use of the others (its reads from
     * the offset they have now on). */
    for (size_t i = p->n; i-- > 0;) {
        long long pos = 0;
        if (fd_info(t->tid, p->fds[i].fd, &pos, NULL) < 0) {
            fd_drop(p, p->fds[i].fd);
        } else {
            p->fds[i].mine = 0;
            p->fds[i].pos0 = pos;
        }
    }
    char exe[PMAX], sb[PMAX];
    if (proc_link(t->tid, "exe", exe, sizeof exe) < 0)
        exe[0] = '\0';
    if (r->skip_exe[0] && strcmp(exe, r->skip_exe) == 0) {
        task_clear_exec(t);
        return 0;
    }
    const char *path = t->xpath ? t->xpath : exe;
    int ppid = status_field(t->tid, "PPid:");
    if (r->breakaway &&
        sbx_breakaway_matches(r->breakaway, path, exe[0] ? exe : NULL,
                              t->xargc ? t->xargv[0] : NULL)) {
        /* it leaves at this execve's exit stop (leave()), recording nothing */
        pthread_mutex_lock(&r->res_mu);
        sbx_result_add_breakaway(r->res, p->tgid, ppid, path, (const char *const *)t->xargv,
                                 t->xargc);
        pthread_mutex_unlock(&r->res_mu);
        snprintf(p->name, sizeof p->name, "%s", path);
        task_clear_exec(t);
        t->leaving = 1;
        return 0;
    }
    char cwd[PMAX];
    if (proc_link(t->tid, "cwd", cwd, sizeof cwd) < 0 || cwd[0] != '/')
        cwd[0] = '\0';
    shebang(path, sb, sizeof sb);
    pthread_mutex_lock(&r->res_mu);
    /* the exec opens the process's new record: what the image reads is its */
    if (sbx_result_add_exec(r->res, p->tgid, ppid, path, (const char *const *)t->xargv,
                            t->xargc) < 0 ||
        (cwd[0] && sbx_result_proc_cwd(r->res, p->tgid, cwd) < 0) ||
        sbx_exec_reads_record(r->res, p->tgid, path, exe[0] ? exe : NULL, sb[0] ? sb : NULL) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
    pthread_mutex_unlock(&r->res_mu);
    snprintf(p->name, sizeof p->name, "%s", path);
    task_clear_exec(t);
    return 0;
}

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
        locked_warn(r, "process %d (%s) runs in another mount namespace: its paths are as "
                       "it sees them and may not be where the host has those files",
                    t->pr->tgid, t->pr->name);
}

/* ---- the tracer thread --------------------------------------------------------------------*/
static void handle_stop(struct sbx_ptrace_run *r, pid_t tid, int st)
{
    struct task *t = task_find(r, tid);
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
        /* the leader is reported last, with the process's status */
        if (t && t->pr->tgid == tid) {
            pthread_mutex_lock(&r->res_mu);
            sbx_result_proc_exit(r->res, tid, WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
            pthread_mutex_unlock(&r->res_mu);
        }
        if (t)
            task_remove(r, t);
        return;
    }
    if (!WIFSTOPPED(st))
        return;
    if (!t && !(t = task_new(r, tid))) {
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
        task_remove(r, t);
        return;
    }
    if (sig == (SIGTRAP | 0x80) && t->leaving) {
        leave(r, t);                  /* a declared breakaway: gone from the run */
        return;
    } else if (sig == (SIGTRAP | 0x80)) {
        on_exit_stop(r, t);
    } else if (ev == PTRACE_EVENT_SECCOMP) {
        if (on_entry(r, t))
            req = PTRACE_SYSCALL;     /* see the result too */
    } else if (ev == PTRACE_EVENT_EXEC) {
        /* the launcher may be seized while its own exec completes */
        if (tid != r->root || r->adopted)
            on_exec(r, t);
        req = PTRACE_SYSCALL;         /* the execve exit stop follows */
        t->nr = -1;
    } else if (ev == PTRACE_EVENT_EXIT) {
        if (t->pr->refs == 1) {       /* the last thread: its fds close now */
            pending_settle(r, t->pr, tid, 0);
            fd_close_all(r, t->pr, tid);
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
        struct proc *pr = proc_copy(NULL, r->root, r->root);
        if (pr) {
            snprintf(pr->name, sizeof pr->name, "%s", r->root_argv0);
            t = task_add(r, r->root, pr);
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
        task_remove(r, x);
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
