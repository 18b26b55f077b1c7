/* result.c — see result.h. */
#include "result.h"

#include "access.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sbx_result *sbx_result_new(void)
{
    struct sbx_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->paths = sbx_pathset_new();
    if (!r->paths) {
        free(r);
        return NULL;
    }
    r->complete = 1;
    return r;
}

static void proc_clear(struct sbx_process *p)
{
    free(p->path);
    for (size_t j = 0; j < p->argc; j++)
        free(p->argv[j]);
    free(p->argv);
    free(p->cwd);
    sbx_pathset_free(p->paths);
}

void sbx_result_free(struct sbx_result *r)
{
    if (!r)
        return;
    sbx_pathset_free(r->paths);
    for (size_t i = 0; i < r->nprocs; i++)
        proc_clear(&r->procs[i]);
    free(r->procs);
    free(r->pid_index);
    for (size_t i = 0; i < r->nexecs; i++) {
        free(r->execs[i].path);
        for (size_t j = 0; j < r->execs[i].argc; j++)
            free(r->execs[i].argv[j]);
        free(r->execs[i].argv);
    }
    free(r->execs);
    for (size_t i = 0; i < r->nwarnings; i++)
        free(r->warnings[i]);
    free(r->warnings);
    free(r);
}

/* Room for one more element in a growable array (doubling from `first`).
 * Returns 0, or -1 when memory ran out (the array is left as it was). */
static int room_for_one(void **items, size_t n, size_t *cap, size_t first, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : first;
    void *grown = realloc(*items, ncap * size);
    if (!grown)
        return -1;
    *items = grown;
    *cap = ncap;
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

static char **dup_argv(const char *const *argv, size_t argc, size_t *out)
{
    char **v = calloc(argc ? argc : 1, sizeof *v);
    *out = 0;
    if (!v)
        return NULL;
    for (size_t i = 0; i < argc; i++) {
        if (!(v[i] = dup_str(argv[i] ? argv[i] : "")))
            break;
        (*out)++;
    }
    return v;
}

void sbx_result_warn(struct sbx_result *r, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    r->complete = 0;
    for (size_t i = 0; i < r->nwarnings; i++)
        if (strcmp(r->warnings[i], buf) == 0)
            return;
    if (room_for_one((void **)&r->warnings, r->nwarnings, &r->cap_warnings, 4,
                     sizeof *r->warnings) < 0)
        return;
    char *c = dup_str(buf);
    if (c)
        r->warnings[r->nwarnings++] = c;
}

static int exec_append(struct sbx_result *r, int64_t pid, int64_t ppid,
                       const char *path, const char *const *argv, size_t argc);
static int proc_exec(struct sbx_result *r, int64_t pid, int64_t ppid, const char *path,
                     const char *const *argv, size_t argc);

int sbx_result_add_exec(struct sbx_result *r, int64_t pid, int64_t ppid,
                        const char *path, const char *const *argv, size_t argc)
{
    if (exec_append(r, pid, ppid, path, argv, argc) < 0)
        return -1;
    return proc_exec(r, pid, ppid, path, argv, argc);
}

static int exec_append(struct sbx_result *r, int64_t pid, int64_t ppid,
                       const char *path, const char *const *argv, size_t argc)
{
    if (room_for_one((void **)&r->execs, r->nexecs, &r->cap_execs, 16, sizeof *r->execs) < 0)
        return -1;
    struct sbx_exec *e = &r->execs[r->nexecs];
    memset(e, 0, sizeof *e);
    e->pid = pid;
    e->ppid = ppid;
    e->path = dup_str(path);
    e->argv = dup_argv(argv, argc, &e->argc);
    if (!e->path || !e->argv) {
        free(e->path);
        free(e->argv);
        return -1;
    }
    r->nexecs++;
    return 0;
}

int sbx_result_add_breakaway(struct sbx_result *r, int64_t pid, int64_t ppid,
                             const char *path, const char *const *argv, size_t argc)
{
    /* no process record: the process left the run, its accesses are not ours */
    if (exec_append(r, pid, ppid, path, argv, argc) < 0)
        return -1;
    r->execs[r->nexecs - 1].breakaway = 1;
    return 0;
}

void sbx_result_drop_last_exec(struct sbx_result *r)
{
    if (!r->nexecs)
        return;
    struct sbx_exec *e = &r->execs[--r->nexecs];
    free(e->path);
    for (size_t j = 0; j < e->argc; j++)
        free(e->argv[j]);
    free(e->argv);
}

/* ---- per-process records ---------------------------------------------- */

/* pid -> index of its current record: open addressing, key 0 = empty
 * (pid 0 is never a process of a run). */
struct sbx_pid_slot {
    int64_t pid;
    size_t index;
};

static struct sbx_pid_slot *pid_slot(const struct sbx_result *r, int64_t pid)
{
    if (!r->pid_cap || pid == 0)
        return NULL;
    size_t mask = r->pid_cap - 1, i = ((uint64_t)pid * 0x9E3779B97F4A7C15ull) >> 32 & mask;
    while (r->pid_index[i].pid && r->pid_index[i].pid != pid)
        i = (i + 1) & mask;
    return &r->pid_index[i];
}

static int pid_set(struct sbx_result *r, int64_t pid, size_t index)
{
    if ((r->pid_count + 1) * 2 > r->pid_cap) {
        size_t ncap = r->pid_cap ? r->pid_cap * 2 : 64;
        struct sbx_pid_slot *old = r->pid_index;
        size_t ocap = r->pid_cap;
        r->pid_index = calloc(ncap, sizeof *r->pid_index);
        if (!r->pid_index) {
            r->pid_index = old;
            return -1;
        }
        r->pid_cap = ncap;
        r->pid_count = 0;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].pid) {
                *pid_slot(r, old[i].pid) = old[i];
                r->pid_count++;
            }
        free(old);
    }
    struct sbx_pid_slot *s = pid_slot(r, pid);
    if (!s)
        return -1;
    if (!s->pid)
        r->pid_count++;
    s->pid = pid;
    s->index = index;
    return 0;
}

int64_t sbx_result_proc_index(const struct sbx_result *r, int64_t pid)
{
    struct sbx_pid_slot *s = pid_slot(r, pid);
    return s && s->pid ? (int64_t)s->index : -1;
}


/* A new record for `pid`, made its current one.  Returns its index or -1. */
static int64_t proc_new(struct sbx_result *r, int64_t pid, int64_t ppid, int64_t parent)
{
    if (room_for_one((void **)&r->procs, r->nprocs, &r->cap_procs, 16, sizeof *r->procs) < 0)
        return -1;
    struct sbx_process *p = &r->procs[r->nprocs];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->ppid = ppid;
    p->parent = parent;
    p->current = 1;
    if (!(p->paths = sbx_pathset_new_sized(8)))
        return -1;
    int64_t old = sbx_result_proc_index(r, pid);
    if (pid_set(r, pid, r->nprocs) < 0) {
        sbx_pathset_free(p->paths);
        return -1;
    }
    if (old >= 0)
        r->procs[old].current = 0;
    return (int64_t)r->nprocs++;
}

int sbx_result_proc_fork(struct sbx_result *r, int64_t pid, int64_t ppid)
{
    /* a pid that exited and is given again (pid_max is 32768 on many
     * machines: a large build wraps) is a new process */
    int64_t known = sbx_result_proc_index(r, pid);
    if (known >= 0 && !r->procs[known].has_status)
        return 0;
    int64_t parent = sbx_result_proc_index(r, ppid);
    int64_t i = proc_new(r, pid, ppid, parent);
    if (i < 0)
        return -1;
    if (parent >= 0) {
        struct sbx_process *p = &r->procs[i], *pp = &r->procs[parent];
        if (pp->path && !(p->path = dup_str(pp->path)))
            return -1;
        if (pp->cwd && !(p->cwd = dup_str(pp->cwd)))
            return -1;
        p->argv = dup_argv((const char *const *)pp->argv, pp->argc, &p->argc);
        if (!p->argv)
            return -1;
    }
    return 0;
}

static int proc_exec(struct sbx_result *r, int64_t pid, int64_t ppid, const char *path,
                     const char *const *argv, size_t argc)
{
    /* the new image hangs where the pid was forked from */
    int64_t old = sbx_result_proc_index(r, pid), parent;
    if (old >= 0 && !r->procs[old].exec && !r->procs[old].path && r->procs[old].parent < 0) {
        /* a process whose image and parent nobody knew (the run's root
         * between its fork and its exec: the launcher's or subprocess's
         * $PATH search): what it did leads up to this exec, which is its
         * record */
        struct sbx_process *p = &r->procs[old];
        int64_t pp = sbx_result_proc_index(r, ppid);
        p->exec = 1;
        p->ppid = ppid;
        /* a child whose first sign was an access (a posix_spawn'ed image's
         * loader, before its start record): it hangs under its parent */
        if (pp >= 0 && pp < old)
            p->parent = pp;
        if (!(p->path = dup_str(path)) || !(p->argv = dup_argv(argv, argc, &p->argc)))
            return -1;
        return 0;
    }
    if (old >= 0)
        parent = r->procs[old].parent;
    else
        parent = sbx_result_proc_index(r, ppid);
    int64_t i = proc_new(r, pid, ppid, parent);
    if (i < 0)
        return -1;
    struct sbx_process *p = &r->procs[i];
    p->exec = 1;
    if (old >= 0 && r->procs[old].cwd && !(p->cwd = dup_str(r->procs[old].cwd)))
        return -1;
    if (!(p->path = dup_str(path)) || !(p->argv = dup_argv(argv, argc, &p->argc)))
        return -1;
    return 0;
}

int64_t sbx_result_proc_before_exec(struct sbx_result *r, int64_t pid, int64_t ppid)
{
    int64_t i = sbx_result_proc_index(r, pid);
    if (i < 0) {
        if (sbx_result_proc_fork(r, pid, ppid) < 0)
            return -1;
        return sbx_result_proc_index(r, pid);
    }
    if (!r->procs[i].exec)
        return i;                   /* still before its exec */
    /* the record its exec replaced: between the exec and where it hangs */
    for (int64_t k = i - 1; k >= 0 && k > r->procs[i].parent; k--)
        if (r->procs[k].pid == pid && !r->procs[k].exec && !r->procs[k].current)
            return k;
    /* none (the exec was told first): one put right before it, with the
     * image of the record the exec hangs under */
    if (room_for_one((void **)&r->procs, r->nprocs, &r->cap_procs, 16, sizeof *r->procs) < 0)
        return -1;
    struct sbx_process f;
    memset(&f, 0, sizeof f);
    f.pid = pid;
    f.ppid = r->procs[i].ppid;
    f.parent = r->procs[i].parent;
    if (!(f.paths = sbx_pathset_new_sized(8)))
        return -1;
    if (f.parent >= 0) {
        const struct sbx_process *pp = &r->procs[f.parent];
        f.path = pp->path ? dup_str(pp->path) : NULL;
        f.cwd = pp->cwd ? dup_str(pp->cwd) : NULL;
        f.argv = dup_argv((const char *const *)pp->argv, pp->argc, &f.argc);
        if ((pp->path && !f.path) || (pp->cwd && !f.cwd) || !f.argv) {
            proc_clear(&f);
            return -1;
        }
    }
    memmove(&r->procs[i + 1], &r->procs[i], (r->nprocs - (size_t)i) * sizeof *r->procs);
    r->procs[i] = f;
    r->nprocs++;
    for (size_t k = 0; k < r->nprocs; k++)
        if (r->procs[k].parent >= i)
            r->procs[k].parent++;
    for (size_t k = 0; k < r->pid_cap; k++)
        if (r->pid_index[k].pid && r->pid_index[k].index >= (size_t)i)
            r->pid_index[k].index++;
    return i;
}

int sbx_result_proc_cwd(struct sbx_result *r, int64_t pid, const char *cwd)
{
    int64_t i = sbx_result_proc_index(r, pid);
    if (i < 0 || !cwd)
        return 0;
    char *c = dup_str(cwd);
    if (!c)
        return -1;
    free(r->procs[i].cwd);
    r->procs[i].cwd = c;
    return 0;
}

void sbx_result_proc_exit(struct sbx_result *r, int64_t pid, int status)
{
    int64_t i = sbx_result_proc_index(r, pid);
    if (i < 0)
        return;
    r->procs[i].has_status = 1;
    r->procs[i].status = status;
}

static struct sbx_process *proc_of(struct sbx_result *r, int64_t pid)
{
    int64_t i = sbx_result_proc_index(r, pid);
    if (i < 0)
        i = proc_new(r, pid, 0, -1);
    return i < 0 ? NULL : &r->procs[i];
}

int sbx_result_record(struct sbx_result *r, int64_t pid, const char *path, size_t len,
                      unsigned flags)
{
    struct sbx_process *p = proc_of(r, pid);
    if (!p) {
        sbx_pathset_add(r->paths, path, len, flags);
        return -1;          /* no record for the process: out of memory */
    }
    /* the process's set refers to the run's copy of the path */
    return sbx_pathset_add_both(r->paths, p->paths, path, len, flags);
}

int sbx_result_settle(struct sbx_result *r, int64_t pid, const char *path, size_t len,
                      int used)
{
    if (sbx_ledger_settle(r->paths, path, len, used) < 0)
        return -1;
    struct sbx_process *p = proc_of(r, pid);
    return p ? sbx_ledger_settle(p->paths, path, len, used) : -1;
}

void sbx_result_settle_processes(struct sbx_result *r)
{
    size_t n = r->nprocs;
    if (!n)
        return;
    unsigned char *keep = calloc(n, 1);
    int64_t *renum = malloc(n * sizeof *renum);
    if (!keep || !renum) {
        free(keep);
        free(renum);
        return;                     /* nothing pruned: still a true tree */
    }
    /* children come after their parent: walk backwards */
    for (size_t k = n; k-- > 0;) {
        struct sbx_process *p = &r->procs[k];
        if (p->exec || sbx_pathset_count(p->paths) || keep[k] == 2)
            keep[k] = 1;
        if (keep[k] && p->parent >= 0 && (size_t)p->parent < k && !keep[p->parent])
            keep[p->parent] = 2;
    }
    size_t j = 0;
    for (size_t k = 0; k < n; k++) {
        if (!keep[k]) {
            renum[k] = -1;
            proc_clear(&r->procs[k]);
            continue;
        }
        renum[k] = (int64_t)j;
        struct sbx_process p = r->procs[k];
        /* a kept record's parent is kept (marked above), and comes first */
        if (p.parent >= 0)
            p.parent = renum[p.parent];
        r->procs[j++] = p;
    }
    r->nprocs = j;
    /* rebuild the pid index over what is left */
    memset(r->pid_index, 0, r->pid_cap * sizeof *r->pid_index);
    r->pid_count = 0;
    for (size_t k = 0; k < j; k++)
        if (r->procs[k].current)
            pid_set(r, r->procs[k].pid, k);
    free(keep);
    free(renum);
}
