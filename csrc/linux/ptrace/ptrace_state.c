/* ptrace_state.c — the tasks of a ptrace run, their processes and fd
 * tables.  read() and write() do not stop: what an fd did is settled from
 * its offset when it closes, at exec and at exit, and the open-file ledger
 * (an open never used is a probe) is settled then too. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptrace_run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "access.h"

/* The tgid of task `tid` of this run, or -1 (a process that left the run
 * shares the filter, and so the listener, but is not recorded). */
int sbx_pt_tgid_of(struct sbx_ptrace_run *r, pid_t tid)
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
void sbx_pt_record(struct sbx_ptrace_run *r, int pid, const char *p, unsigned fl)
{
    if (!p || !*p || !fl)
        return;
    pthread_mutex_lock(&r->res_mu);
    if (sbx_result_record(r->res, pid, p, strlen(p), fl) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
    pthread_mutex_unlock(&r->res_mu);
}

void sbx_pt_warn(struct sbx_ptrace_run *r, const char *fmt, int pid, const char *name)
{
    pthread_mutex_lock(&r->res_mu);
    sbx_result_warn(r->res, fmt, pid, name);
    pthread_mutex_unlock(&r->res_mu);
}

/* ---- tasks and processes --------------------------------------------------------------*/
struct task *sbx_pt_task_find(struct sbx_ptrace_run *r, pid_t tid)
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
struct proc *sbx_pt_proc_copy(const struct proc *from, int tgid, pid_t tid)
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
            if (sbx_pt_fd_info(tid, from->fds[i].fd, &pos, NULL) < 0)
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

void sbx_pt_proc_unref(struct proc *p)
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

void sbx_pt_task_clear_sys(struct task *t)
{
    free(t->p1);
    free(t->p2);
    t->p1 = t->p2 = NULL;
    t->nr = -1;
}

void sbx_pt_task_clear_exec(struct task *t)
{
    free(t->xpath);
    for (size_t i = 0; i < t->xargc; i++)
        free(t->xargv[i]);
    free(t->xargv);
    t->xpath = NULL;
    t->xargv = NULL;
    t->xargc = 0;
}

struct task *sbx_pt_task_add(struct sbx_ptrace_run *r, pid_t tid, struct proc *pr)
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

void sbx_pt_task_remove(struct sbx_ptrace_run *r, struct task *t)
{
    /* the process is gone without its exit stop (killed): its opens
     * settled at entry and never matched are probes, as unused ones are */
    if (t->pr->refs == 1)
        for (size_t i = 0; i < t->pr->npend; i++)
            if (!t->pr->pend[i].alias)
                sbx_pt_record(r, t->pr->tgid, t->pr->pend[i].path, SBX_PROBE);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i] == t) {
            r->tasks[i] = r->tasks[--r->ntasks];
            break;
        }
    pthread_mutex_unlock(&r->mu);
    sbx_pt_task_clear_sys(t);
    sbx_pt_task_clear_exec(t);
    sbx_pt_proc_unref(t->pr);
    free(t);
}

/* A task we have not seen: a thread of a known process shares its state, a
 * new process starts with a copy of its parent's fd table (fork). */
struct task *sbx_pt_task_new(struct sbx_ptrace_run *r, pid_t tid)
{
    int tgid = sbx_pt_status_field(tid, "Tgid:");
    if (tgid <= 0)
        tgid = tid;
    struct proc *pr = proc_find(r, tgid);
    if (pr) {
        pr->refs++;
    } else {
        int ppid = sbx_pt_status_field(tid, "PPid:");
        pr = sbx_pt_proc_copy(ppid > 0 ? proc_find(r, ppid) : NULL, tgid, tid);
        if (!pr)
            return NULL;
        /* a new process, before its first access */
        pthread_mutex_lock(&r->res_mu);
        if (sbx_result_proc_fork(r->res, tgid, ppid) < 0)
            sbx_result_warn(r->res, "out of memory while recording processes");
        pthread_mutex_unlock(&r->res_mu);
    }
    struct task *t = sbx_pt_task_add(r, tid, pr);
    if (!t)
        sbx_pt_proc_unref(pr);
    return t;
}

/* ---- fds ---------------------------------------------------------------------------*/
struct fdent *sbx_pt_fd_get(struct proc *p, int fd)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->fds[i].fd == fd)
            return &p->fds[i];
    return NULL;
}

void sbx_pt_fd_drop(struct proc *p, int fd)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->fds[i].fd == fd) {
            free(p->fds[i].path);
            free(p->fds[i].real);
            p->fds[i] = p->fds[--p->n];
            return;
        }
}

struct fdent *sbx_pt_fd_put(struct proc *p, int fd, const char *path, unsigned acc)
{
    sbx_pt_fd_drop(p, fd);
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
    struct fdent *e = sbx_pt_fd_get(p, fd);
    *matched = 0;
    if (e)
        return e;
    char name[PMAX];
    int flags = 0;
    long n = sbx_pt_fd_link(tid, fd, name, sizeof name);
    if (p->npend) {
        int named = n > 0 && name[0] == '/' &&
                    !(n > 10 && !strcmp(name + n - 10, " (deleted)"));
        long i = pending_match(p, tid, fd, name, named);
        if (i >= 0 && sbx_pt_fd_info(tid, fd, NULL, &flags) == 0) {
            struct pending *pd = &p->pend[i];
            int acc = flags & O_ACCMODE;
            e = sbx_pt_fd_put(p, fd, pd->path, (acc != O_WRONLY ? 1 : 0) | (acc != O_RDONLY ? 2 : 0));
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
        (n > 10 && !strcmp(name + n - 10, " (deleted)")) || sbx_pt_fd_info(tid, fd, NULL, &flags) < 0)
        return NULL;
    int acc = flags & O_ACCMODE;
    e = sbx_pt_fd_put(p, fd, name, (acc != O_WRONLY ? 1 : 0) | (acc != O_RDONLY ? 2 : 0));
    if (e)
        e->dir = (flags & O_DIRECTORY) != 0;
    return e;
}

struct fdent *sbx_pt_fd_learn(struct proc *p, pid_t tid, int fd)
{
    int matched;
    return fd_learn_m(p, tid, fd, &matched);
}

/* Process `p` used fd entry `e` this way. */
void sbx_pt_fd_use(struct sbx_ptrace_run *r, struct proc *p, struct fdent *e, unsigned kind)
{
    if (!e || (e->mine & kind))
        return;
    e->done |= kind;
    e->mine |= kind;
    sbx_pt_record(r, p->tgid, e->path, kind);
    if (kind == SBX_READ && e->real)
        sbx_pt_record(r, p->tgid, e->real, SBX_READ);   /* a read through a symlink: its target too */
}

/* read()/write() do not stop: settle from the offset what the fd did (what
 * it did before this image had it is not counted).  Returns the offset,
 * or -1 when it could not be read. */
long long sbx_pt_fd_settle(struct sbx_ptrace_run *r, struct proc *p, struct fdent *e, pid_t tid)
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
    if (sbx_pt_fd_info(tid, e->fd, &pos, NULL) < 0)
        return -1;
    if (kind && pos > e->pos0)
        sbx_pt_fd_use(r, p, e, kind);
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

void sbx_pt_fd_close(struct sbx_ptrace_run *r, struct proc *p, pid_t tid, int fd)
{
    struct fdent *e = sbx_pt_fd_get(p, fd);
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
    sbx_pt_fd_settle(r, p, e, tid);
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
    sbx_pt_fd_drop(p, fd);
}

/* Every fd the process holds now that came from an open settled at entry:
 * matched to that open. */
void sbx_pt_learn_all(struct proc *p, pid_t tid)
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
            if (sbx_pt_fd_get(p, fd))
                continue;
            int matched;
            struct fdent *e = fd_learn_m(p, tid, fd, &matched);
            if (e && !matched)
                /* inherited: left to its use or close, as before (its
                 * offset may come from before the run) */
                sbx_pt_fd_drop(p, fd);
        }
    }
    close(dfd);
}

#define PENDING_MAX 128

void sbx_pt_pending_add(struct sbx_ptrace_run *r, struct task *t, struct pending *pd)
{
    struct proc *pr = t->pr;
    if (pr->npend >= PENDING_MAX)
        /* many opens not matched yet: most failed; list the fds once */
        sbx_pt_pending_settle(r, pr, t->tid, pr->refs == 1 ? 0 : t->tid);
    if (pr->npend == pr->cappend) {
        size_t nc = pr->cappend ? pr->cappend * 2 : 8;
        struct pending *np = realloc(pr->pend, nc * sizeof *np);
        if (!np) {
            free(pd->path);
            free(pd->key);
            return;
        }
        pr->pend = np;
        pr->cappend = nc;
    }
    pr->pend[pr->npend++] = *pd;
}

/* The opens settled at entry that no fd of the process matches failed (a
 * failed open is a probe).  Only those of `tid` (0: all), whose opens have
 * returned: another thread may be inside its open right now. */
void sbx_pt_pending_settle(struct sbx_ptrace_run *r, struct proc *p, pid_t lister, pid_t tid)
{
    if (!p->npend)
        return;
    sbx_pt_learn_all(p, lister);
    for (size_t i = p->npend; i-- > 0;)
        if (!tid || p->pend[i].tid == tid) {
            if (!p->pend[i].alias)
                sbx_pt_record(r, p->tgid, p->pend[i].path, SBX_PROBE);
            pending_drop(p, i);
        }
}

void sbx_pt_fd_close_all(struct sbx_ptrace_run *r, struct proc *p, pid_t tid)
{
    while (p->n)
        sbx_pt_fd_close(r, p, tid, p->fds[p->n - 1].fd);
}

/* A copy of an fd (dup family): the original carries the probe. */
void sbx_pt_fd_copied(struct proc *p, pid_t tid, int from, int to)
{
    struct fdent *e = sbx_pt_fd_learn(p, tid, from);
    if (!e || to == e->fd)
        return;
    struct fdent c = *e;
    char *path = strdup(c.path);
    struct fdent *n = path ? sbx_pt_fd_put(p, to, path, c.acc) : NULL;
    if (n) {
        n->real = c.real ? strdup(c.real) : NULL;
        n->done = c.done;
        n->mine = c.mine;
        n->dir = c.dir;
        n->noprobe = 1;
    }
    free(path);
}
