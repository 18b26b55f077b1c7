/* preload_reader.c — see preload_reader.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "preload_reader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "keyed_table.h"
#include "reader_os.h"
#include "sbx_log.h"

#define PUNCH_CHUNK (4u << 20)    /* free consumed log memory in 4 MiB steps */

struct linkres {
    char dir[PATH_MAX], realdir[PATH_MAX];
    int valid, ok;
};

static int link_target(struct linkres *lr, const char *p, char *out, size_t cap);

/* One exec the log announced: strings owned by the entry. */
struct exec_info {
    char *path, *interp;          /* interp: #! (EXEC) or ELF PT_INTERP (START) */
    char *exe;                    /* START only: /proc/self/exe */
    char *cwd;                    /* START only: the cwd the image started in */
    char **argv;
    size_t argc;
    int ppid;
    unsigned flags;
    int set;
};

/* A read name resolved once for the run: its hash (0: empty slot) and the
 * file it names when that differs (NULL: the name is the file's own). */
struct link_memo {
    uint64_t hash;
    char *target;
};

struct proc {
    int pid;                      /* 0: empty slot */
    int watch;                    /* reader_os.h handle; -1 once the process is gone */
    int seen_start;               /* the shim ran in some image of it */
    struct exec_info pending;     /* EXEC not yet confirmed by a START */
    int image_started;            /* the shim started in the current image */
    int seen_any;                 /* some record came from this process */
    int left;                     /* exec'd a declared breakaway: no longer watched */
    /* Its next image's record is not open yet: an exec announced and not
     * started, or a process not yet known to the result (the root, a
     * spawned child) that has not started.  What it does meanwhile (the
     * loader's search, reported by the audit module before the START
     * record) goes into `pre`, for that image's record. */
    int awaiting;
    sbx_pathset *pre;
    int stranger;                 /* in windows: not this process, nor started in the window */
};


struct sbx_preload_run {
    char path[256];
    int fd;
    int anonymous;                /* the log has no name to remove (sbx_log_anonymous) */
    int named;                    /* the reader thread wrote path (anonymous log; under mu) */
    struct sbx_log_hdr *hdr;
    char *recs;
    uint64_t tail, punched;
    int skipped_dead;             /* records abandoned by killed writers */

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t wake;          /* end() -> reader thread */
    int stop;

    struct sbx_result *res;
    struct proc *procs;
    size_t nprocs, capprocs;
    size_t live;
    struct sbx_keyed_table ids;   /* open id -> name it was opened under */

    char env_mark[300];           /* "SBX_PRELOAD_LOG=<path>": the run's own */
    int root_pid;
    unsigned long long root_start;  /* the root's start time (sbx_proc_lineage units) */
    unsigned long long began;       /* when the run began, in the same units */
    char root_argv0[512];
    int warned_stranger;

    struct linkres *links;        /* reads' symlink targets, resolved as they come */
    struct link_memo *readset;    /* read names resolved so far, with their targets */
    size_t nread, capread;
    char launcher[4096];          /* "" when static programs are not handed off */
    void **adopted;               /* static programs traced by the adopter */
    size_t nadopted;
    struct sbx_watchset *watches;
    /* The log of this very process (sbx_preload_attach): records count only
     * inside a window, and only those of this process and of the processes
     * started in the window. */
    int inprocess;
};

/* ---- small tables (open addressing, grow at 50%) -------------------------------*/

static struct proc *proc_get(struct sbx_preload_run *r, int pid, int create);

/* Records are written by the traced programs themselves, so a pid in a
 * record is a claim.  Only a process the kernel shows to be a descendant
 * of the run is waited for or killed:
 *   - the root (Popen's child: the kernel's word);
 *   - a process whose parent, as the kernel gives it, is a live process of
 *     the run already shown to be one (its watch handle pins it, and it is
 *     asked after the child's parent was read: a reused pid cannot pass);
 *   - a process whose parent is gone (a double-forked daemon, reparented to
 *     init or a subreaper) that carries the run's log name in the
 *     environment it was started with: every exec of the run has it (the
 *     shim puts it back), and the name is this run's own (the reader
 *     thread's id is in it), so no process outside the run has it unless
 *     the run had one started with it (a service it asked).
 * And whatever the claim, nothing older than the run.  A claim about any
 * other process (a parallel job of the same user) is recorded but never
 * acted on.  The watch handle first, then the lineage: the handle pins the
 * process, so a reused pid cannot pass the check in its place. */
static int provably_ours(struct sbx_preload_run *r, int pid)
{
    int ppid = 0;
    unsigned long long start = 0;
    if (sbx_proc_lineage(pid, &ppid, &start) < 0)
        return 0;
    if (pid == r->root_pid)
        return 1;
    unsigned long long since = r->root_pid && r->root_start ? r->root_start : r->began;
    if (!since || start < since)
        return 0;
    struct proc *parent = ppid > 0 && ppid != pid ? proc_get(r, ppid, 0) : NULL;
    if (parent && parent->watch >= 0 && !parent->left &&
        sbx_watch_exited(r->watches, parent->watch, parent->pid) == 0)
        return 1;
    /* An execve in progress shows an empty environment for a moment (the
     * old memory is gone, the new one not yet set up): ask again, briefly,
     * while the process lives.  A process outside the run never has the
     * mark, so this only ever delays saying no, by at most ~50 ms. */
    for (int i = 0; i < 25; i++) {
        if (sbx_proc_has_env(pid, r->env_mark))
            return 1;
        if (sbx_proc_lineage(pid, &ppid, &start) < 0)
            return 0;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static struct proc *proc_get(struct sbx_preload_run *r, int pid, int create)
{
    if (create && (r->nprocs + 1) * 2 > r->capprocs) {
        size_t ncap = r->capprocs ? r->capprocs * 2 : 256;
        struct proc *n = calloc(ncap, sizeof *n);
        if (!n)
            return NULL;
        for (size_t i = 0; i < r->capprocs; i++) {
            if (!r->procs[i].pid)
                continue;
            size_t j = (size_t)r->procs[i].pid * 2654435761u & (ncap - 1);
            while (n[j].pid)
                j = (j + 1) & (ncap - 1);
            n[j] = r->procs[i];
        }
        free(r->procs);
        r->procs = n;
        r->capprocs = ncap;
    }
    if (!r->capprocs)
        return NULL;
    size_t j = (size_t)pid * 2654435761u & (r->capprocs - 1);
    while (r->procs[j].pid) {
        if (r->procs[j].pid == pid)
            return &r->procs[j];
        j = (j + 1) & (r->capprocs - 1);
    }
    if (!create)
        return NULL;
    struct proc *p = &r->procs[j];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->awaiting = sbx_result_proc_index(r->res, pid) < 0;
    /* Watch it until it exits (-1: it is already gone).  The handle pins
     * the process (a pidfd on Linux): its lineage is checked after.  This
     * process itself (its own records, in-process) is never waited for. */
    p->watch = pid == getpid() ? -1 : sbx_watch_open(r->watches, pid);
    if (r->inprocess && pid != getpid()) {
        /* A window holds what this process and the processes started in
         * it do; one that ran before (a server a session fixture started)
         * is not the window's, nor are the children it starts.  One gone
         * already wrote while the window was open: it is counted. */
        int ppid = 0;
        unsigned long long start = 0;
        struct proc *parent;
        if (sbx_proc_lineage(pid, &ppid, &start) == 0 &&
            (start < r->began ||
             ((parent = proc_get(r, ppid, 0)) != NULL && parent->stranger))) {
            p->stranger = 1;
            if (p->watch >= 0)
                sbx_watch_close(r->watches, p->watch);
            p->watch = -1;
        }
        if (p->watch >= 0)
            r->live++;
        r->nprocs++;
        return p;
    }
    if (p->watch >= 0 && !provably_ours(r, pid)) {
        /* a process that exited between the two (its /proc entry gone,
         * the handle still open) is no stranger: nothing to wait or kill */
        int gone = sbx_watch_exited(r->watches, p->watch, pid) == 1;
        sbx_watch_close(r->watches, p->watch);
        p->watch = -1;
        if (!gone && !r->warned_stranger++)
            sbx_result_warn(r->res, "a record of the run named process %d, which is not "
                            "part of the run: it is neither waited for nor killed", pid);
    }
    if (p->watch >= 0)
        r->live++;
    r->nprocs++;
    return p;
}


/* ---- exec bookkeeping ------------------------------------------------------------*/
static void exec_clear(struct exec_info *e)
{
    free(e->path);
    free(e->interp);
    free(e->exe);
    free(e->cwd);
    for (size_t i = 0; i < e->argc; i++)
        free(e->argv[i]);
    free(e->argv);
    memset(e, 0, sizeof *e);
}

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

/* Strings of a record: s[0..nfixed) then argc argv strings. */
static int exec_load(struct exec_info *e, const struct sbx_rec *rec, const char *end,
                     int nfixed, int ppid)
{
    exec_clear(e);
    const char *s = (const char *)(rec + 1);
    const char *fixed[4] = {"", "", "", ""};
    for (int i = 0; i < nfixed; i++) {
        size_t l = strnlen(s, (size_t)(end - s));
        if (s + l >= end)
            return -1;
        fixed[i] = s;
        s += l + 1;
    }
    size_t argc = (size_t)rec->id;
    e->argv = calloc(argc + 1, sizeof *e->argv);
    if (!e->argv)
        return -1;
    for (size_t i = 0; i < argc && s < end; i++) {
        size_t l = strnlen(s, (size_t)(end - s));
        e->argv[e->argc++] = strndup(s, l);
        s += l + 1;
    }
    e->path = dup_or_null(fixed[0]);
    if (nfixed == 4) {
        e->exe = dup_or_null(fixed[1]);
        e->interp = dup_or_null(fixed[2]);
        e->cwd = dup_or_null(fixed[3]);
    } else {
        e->interp = dup_or_null(fixed[1]);
    }
    e->ppid = ppid;
    e->flags = rec->flags;
    e->set = 1;
    return 0;
}

/* The file the read name `p` resolves to, when it is not `p` itself (the
 * targets of the links on the way, the loader's /lib/x86_64-linux-gnu/libc.so.6
 * is /usr/lib/x86_64-linux-gnu/libc.so.6): asked of the file system once per
 * name for the whole run (every compiler reads stdio.h), given to every
 * process image that reads the name.  64-bit hashes: a collision is as
 * likely as none in a run. */
static const char *read_target(struct sbx_preload_run *r, const char *p)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *c = p; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    h |= 1;
    if ((r->nread + 1) * 2 > r->capread) {
        size_t nc = r->capread ? r->capread * 2 : 4096;
        struct link_memo *n = calloc(nc, sizeof *n);
        if (!n)
            return NULL;
        for (size_t i = 0; i < r->capread; i++)
            if (r->readset[i].hash) {
                size_t j = (r->readset[i].hash >> 7) & (nc - 1);
                while (n[j].hash)
                    j = (j + 1) & (nc - 1);
                n[j] = r->readset[i];
            }
        free(r->readset);
        r->readset = n;
        r->capread = nc;
    }
    size_t j = (h >> 7) & (r->capread - 1);
    while (r->readset[j].hash) {
        if (r->readset[j].hash == h)
            return r->readset[j].target;
        j = (j + 1) & (r->capread - 1);
    }
    char real[PATH_MAX];
    r->readset[j].hash = h;
    r->readset[j].target = link_target(r->links, p, real, sizeof real) ? strdup(real) : NULL;
    r->nread++;
    return r->readset[j].target;
}

/* Every name a record carries must be absolute and clean: records come
 * from inside the traced programs, so anything else is a malformed record
 * (a warning), never a path. */
static int well_formed(const char *p)
{
    if (p[0] != '/')
        return 0;
    for (const char *c = p; *c; c++) {
        if (c[0] == '/' && (c[1] == '/' ||
                            (c[1] == '.' && (c[2] == '/' || c[2] == '\0' ||
                                             (c[2] == '.' && (c[3] == '/' || c[3] == '\0'))))))
            return 0;
    }
    size_t n = strlen(p);
    return n == 1 || p[n - 1] != '/';
}

static int merge_set(sbx_pathset *into, const sbx_pathset *from);

/* An access of process `pid`: into the run's sets at once (their rules
 * depend on the order), and into the pid's current record, or into the
 * set kept for its next image while that is on the way. */
static int record_access(struct sbx_preload_run *r, int pid, const char *p, unsigned fl)
{
    struct proc *pr = proc_get(r, pid, 0);
    if (!pr || !pr->awaiting)
        return sbx_result_record(r->res, pid, p, strlen(p), fl);
    if (!pr->pre && !(pr->pre = sbx_pathset_new_sized(8)))
        return -1;
    if (sbx_pathset_add(r->res->paths, p, strlen(p), fl) < 0)
        return -1;
    return sbx_pathset_add(pr->pre, p, strlen(p), fl) < 0 ? -1 : 0;
}

/* The set an access of `pid` goes into now (NULL: a record not opened yet). */
static const sbx_pathset *access_set(struct sbx_preload_run *r, int pid)
{
    struct proc *pr = proc_get(r, pid, 0);
    if (pr && pr->awaiting)
        return pr->pre;
    int64_t i = sbx_result_proc_index(r->res, pid);
    return i >= 0 ? r->res->procs[i].paths : NULL;
}

/* What `pr` did while its image was on the way joins its current record
 * (the exec's just opened, or the one it has when the exec failed; a
 * record of its own, parent unknown, when it has none). */
static void image_arrived(struct sbx_preload_run *r, struct proc *pr)
{
    pr->awaiting = 0;
    if (!pr->pre)
        return;
    int64_t i = sbx_result_proc_index(r->res, pr->pid);
    if (i < 0 && sbx_result_proc_fork(r->res, pr->pid, 0) == 0)
        i = sbx_result_proc_index(r->res, pr->pid);
    if (i < 0 || merge_set(r->res->procs[i].paths, pr->pre) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
    sbx_pathset_free(pr->pre);
    pr->pre = NULL;
}

/* An access of process `pid` (the record's: the thread-group id). */
static void add_path(struct sbx_preload_run *r, int pid, const char *p, unsigned fl)
{
    if (!p || !*p)
        return;
    if (!well_formed(p)) {
        sbx_result_warn(r->res, "a malformed record from a traced process was ignored "
                        "(a name that is not an absolute, clean path)");
        return;
    }
    int follow = (fl & SBX_READ) && !(fl & (SBX_NOFOLLOW | SBX_REFUSED)) && r->links;
    /* the file a read name resolves to is read by each image that reads
     * the name (a set per image, as for every access): asked once per
     * (image, name), answered once per name for the run */
    const sbx_pathset *into = follow ? access_set(r, pid) : NULL;
    int again = into && (sbx_pathset_get(into, p, strlen(p)) & SBX_READ);
    if (record_access(r, pid, p, fl) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
    const char *real;
    if (follow && !again && (real = read_target(r, p)))
        record_access(r, pid, real, SBX_READ);
}

/* An access the posix_spawn'ed `child` of `parent` made inside libc before
 * its exec (its parent tells, once the spawn returned): the child's record
 * with its parent's image, as for any forked child (docs/semantics.md, "Who
 * did what"), opened now, or put before the new image's record when that
 * started first.  What the new image's loader reported meanwhile stays set
 * aside for that image. */
static void child_path(struct sbx_preload_run *r, int child, int parent, const char *p,
                       unsigned fl)
{
    if (!p || !*p || !fl)
        return;
    if (!well_formed(p)) {
        sbx_result_warn(r->res, "a malformed record from a traced process was ignored "
                        "(a name that is not an absolute, clean path)");
        return;
    }
    int64_t i = sbx_result_proc_before_exec(r->res, child, parent);
    if (i < 0 || sbx_pathset_add(r->res->paths, p, strlen(p), fl) < 0 ||
        sbx_pathset_add(r->res->procs[i].paths, p, strlen(p), fl) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
}

/* An exec happened: its record, and the files the kernel read to run it. */
static void exec_commit(struct sbx_preload_run *r, int pid, const struct exec_info *pre,
                        const struct exec_info *start)
{
    const struct exec_info *main = pre && pre->set ? pre : start;
    const char *path = main->path ? main->path : start && start->exe ? start->exe : "";
    sbx_result_add_exec(r->res, pid, main->ppid, path, (const char *const *)main->argv,
                        main->argc);
    /* the shim knows the new image's cwd (its start record) */
    if (start && start->set && start->cwd && sbx_result_proc_cwd(r->res, pid, start->cwd) < 0)
        sbx_result_warn(r->res, "out of memory while recording processes");
    struct proc *pr = proc_get(r, pid, 0);
    if (pr)
        image_arrived(r, pr);
    add_path(r, pid, path, SBX_READ);
    if (pre && pre->set)
        add_path(r, pid, pre->interp, SBX_READ);
    if (start && start->set) {
        add_path(r, pid, start->exe, SBX_READ);
        add_path(r, pid, start->interp, SBX_READ);
    }
}

static void unobserved(struct sbx_preload_run *r, int pid, const struct exec_info *e)
{
    const char *what = e && e->path ? e->path : r->root_argv0;
    sbx_result_warn(r->res, "process %d (%s) was not observed: %s", pid, what,
                    sbx_unobserved_reason(e && (e->flags & SBX_REC_EXEC_STATIC)));
}

/* A static program the shim handed to the ptrace launcher: trace it. */
static void adopt(struct sbx_preload_run *r, int pid, const char *what)
{
    char err[512] = "handoff is not configured";
    const struct sbx_adopter *ad = sbx_os_adopter();
    void *pt = NULL, **n;
    if (!ad)
        snprintf(err, sizeof err, "this system has no ptrace hand-off");
    else if (r->launcher[0])
        pt = ad->adopt(pid, r->launcher, err, sizeof err);
    if (pt && (n = realloc(r->adopted, (r->nadopted + 1) * sizeof *n))) {
        r->adopted = n;
        r->adopted[r->nadopted++] = pt;
        return;
    }
    if (pt)
        sbx_result_free(ad->end(pt));
    sbx_result_warn(r->res, "process %d (%s) was not observed: it is statically linked and "
                    "could not be handed to the ptrace backend (%s)", pid, what ? what : "?",
                    err);
}

static int merge_path(void *ctx, const char *path, size_t len, unsigned cats)
{
    sbx_pathset *into = ctx;
    return sbx_pathset_add(into, path, len, cats) < 0 ? -1 : 0;
}

static int merge_refused(void *ctx, const char *path, size_t len, unsigned cats)
{
    return merge_path(ctx, path, len, cats | SBX_REFUSED);
}

static int merge_set(sbx_pathset *into, const sbx_pathset *from)
{
    return sbx_pathset_foreach_sorted(from, merge_path, into) < 0 ||
                   sbx_pathset_foreach_refused(from, merge_refused, into) < 0
               ? -1
               : 0;
}

/* An adopted run's result joins this one: its sets (the precision rules
 * applied across that subtree) into the run's, and its processes, in their
 * order, each record with its own sets, hung under the records of this
 * run they were forked from. */
static void merge(struct sbx_preload_run *r, struct sbx_result *o)
{
    if (!o)
        return;
    int oom = merge_set(r->res->paths, o->paths) < 0;
    for (size_t k = 0; k < o->nprocs; k++) {
        const struct sbx_process *p = &o->procs[k];
        if (p->exec)
            oom |= sbx_result_add_exec(r->res, p->pid, p->ppid, p->path ? p->path : "",
                                       (const char *const *)p->argv, p->argc) < 0;
        else
            oom |= sbx_result_proc_fork(r->res, p->pid, p->ppid) < 0;
        int64_t i = sbx_result_proc_index(r->res, p->pid);
        if (i < 0)
            continue;
        if (p->cwd)
            oom |= sbx_result_proc_cwd(r->res, p->pid, p->cwd) < 0;
        if (p->has_status)
            sbx_result_proc_exit(r->res, p->pid, p->status);
        oom |= merge_set(r->res->procs[i].paths, p->paths) < 0;
    }
    for (size_t i = 0; i < o->nexecs; i++) {
        const struct sbx_exec *e = &o->execs[i];
        if (e->breakaway)
            oom |= sbx_result_add_breakaway(r->res, e->pid, e->ppid, e->path,
                                            (const char *const *)e->argv, e->argc) < 0;
        else if (!o->nprocs)     /* (each exec opened a record: replayed above) */
            oom |= sbx_result_add_exec(r->res, e->pid, e->ppid, e->path,
                                       (const char *const *)e->argv, e->argc) < 0;
    }
    if (oom)
        sbx_result_warn(r->res, "out of memory while recording paths");
    for (size_t i = 0; i < o->nwarnings; i++)
        sbx_result_warn(r->res, "%s", o->warnings[i]);
    sbx_result_free(o);
}

/* ---- records ---------------------------------------------------------------------------*/
static void handle(struct sbx_preload_run *r, const struct sbx_rec *rec, uint32_t len)
{
    const char *end = (const char *)rec + len;
    const char *s0 = (const char *)(rec + 1);
    if (s0 < end && !memchr(s0, '\0', (size_t)(end - s0)))
        return;                           /* malformed: never trust a writer */
    if (s0 >= end)
        s0 = "";                          /* a record without strings: the bytes
                                           * after it belong to the next record */
    const char *s1 = s0 < end ? s0 + strlen(s0) + 1 : end;
    if (s1 >= end || !memchr(s1, '\0', (size_t)(end - s1)))
        s1 = NULL;
    struct proc *p = proc_get(r, rec->pid, 1);
    if (p && p->stranger)
        return;                           /* not the window's (in-process) */
    if (p)
        p->seen_any = 1;
    switch (rec->type) {
    case SBX_REC_PATH:
        if (rec->flags & SBX_REC_CHILD) {
            child_path(r, rec->pid, rec->aux, s0, rec->flags & (SBX_CATEGORIES | SBX_CREATED));
            break;
        }
        add_path(r, rec->pid, s0,
                 rec->flags & (SBX_CATEGORIES | SBX_CREATED | SBX_NOFOLLOW | SBX_REFUSED));
        break;
    case SBX_REC_OPEN: {
        struct sbx_keyed *o = sbx_keyed_get(&r->ids, rec->id, 1);
        if (o && !o->path) {
            o->path = strdup(s0);
            o->flags = rec->flags;
            o->pid = rec->pid;        /* its ledger entry is settled for the opener */
        }
        break;
    }
    case SBX_REC_USE: {
        struct sbx_keyed *o = sbx_keyed_get(&r->ids, rec->id, 0);
        unsigned kind = rec->flags & SBX_CATEGORIES;
        /* with the kernel's name in the record the symlink on the way (if
         * any) was resolved at the read: nothing to resolve here */
        unsigned named = rec->flags & SBX_REC_KERNEL_NAME ? SBX_NOFOLLOW : 0;
        if (o) {
            o->used = 1;
            add_path(r, rec->pid, o->path, kind | named);
        }
        /* the kernel's name differs when the opener went through a symlink */
        if (kind == SBX_READ && *s0 && (!o || !o->path || strcmp(o->path, s0) != 0))
            add_path(r, rec->pid, s0, SBX_READ | named);
        break;
    }
    case SBX_REC_START: {
        if (!p)
            break;
        p->seen_start = 1;
        p->image_started = 1;
        struct exec_info st = {0};
        if (exec_load(&st, rec, end, 4, rec->aux) == 0)
            exec_commit(r, rec->pid, p->pending.set ? &p->pending : NULL, &st);
        exec_clear(&p->pending);
        exec_clear(&st);
        break;
    }
    case SBX_REC_EXEC: {
        if (!p)
            break;
        if (rec->flags & SBX_REC_EXEC_BREAKAWAY) {
            /* The shim is gone from the new image and its children: the
             * process is no longer waited for or killed (a failed exec
             * brings it back, below). */
            struct exec_info ba = {0};
            if (exec_load(&ba, rec, end, 2, rec->aux) == 0)
                sbx_result_add_breakaway(r->res, rec->pid, ba.ppid, ba.path ? ba.path : "",
                                         (const char *const *)ba.argv, ba.argc);
            exec_clear(&ba);
            if (p->watch >= 0) {
                sbx_watch_close(r->watches, p->watch);
                p->watch = -1;
                r->live--;
            }
            p->left = 1;
            break;
        }
        /* A spawner's announcement of its child's image comes from the
         * parent, in no order with the child's own records: once the child
         * has started (and maybe announced an exec of its own, env -i's),
         * it is stale. */
        if ((rec->flags & SBX_REC_EXEC_SPAWNED) && p->seen_start)
            break;
        if (p->pending.set)               /* announced, never confirmed, replaced */
            unobserved(r, rec->pid, &p->pending);
        p->image_started = 0;
        exec_load(&p->pending, rec, end, 2, rec->aux);
        p->awaiting = 1;
        if (rec->flags & SBX_REC_EXEC_HANDOFF)
            adopt(r, rec->pid, p->pending.path);
        break;
    }
    case SBX_REC_EXEC_FAIL:
        if (p) {
            exec_clear(&p->pending);
            image_arrived(r, p);      /* it stays in the image it had */
        }
        if (p && p->left) {
            /* the breakaway's exec failed: the process is still the run's */
            p->left = 0;
            if (r->res->nexecs && r->res->execs[r->res->nexecs - 1].breakaway &&
                r->res->execs[r->res->nexecs - 1].pid == rec->pid)
                sbx_result_drop_last_exec(r->res);
            p->watch = sbx_watch_open(r->watches, rec->pid);
            if (p->watch >= 0)
                r->live++;
        }
        break;
    case SBX_REC_FORK:
        /* written by the child first (before any record of its own) and
         * by the parent when fork returns (before the parent can exit):
         * the first one opens the child's record */
    {
        struct proc *child = proc_get(r, rec->aux, 1);
        if (sbx_result_proc_index(r->res, rec->aux) < 0 &&
            sbx_result_proc_fork(r->res, rec->aux, rec->pid) < 0)
            sbx_result_warn(r->res, "out of memory while recording processes");
        if (child && !child->pending.set)
            image_arrived(r, child);  /* forked: the parent's image */
        break;
    }
    case SBX_REC_WARN:
        sbx_result_warn(r->res, "%s", s0);
        break;
    case SBX_REC_EXIT:
        /* the status exit() or _exit() was given (a claim of the process
         * about itself, like every record) */
        if (sbx_result_proc_index(r->res, rec->pid) >= 0)
            sbx_result_proc_exit(r->res, rec->pid, rec->aux & 0xff);
        break;
    }
}

/* Consume every published record.  Returns how many. */
static size_t drain(struct sbx_preload_run *r)
{
    size_t n = 0;
    uint64_t head = __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE);
    if (head > r->hdr->cap)
        head = r->hdr->cap;
    while (r->tail + sizeof(struct sbx_rec) <= head) {
        struct sbx_rec *rec = (struct sbx_rec *)(r->recs + r->tail);
        uint32_t w = __atomic_load_n(&rec->word, __ATOMIC_ACQUIRE);
        if ((w & ~SBX_REC_LENMASK) != SBX_REC_LIVE)
            break;                        /* being written */
        uint32_t len = w & SBX_REC_LENMASK;
        if (len < sizeof *rec || r->tail + len > head || (len & 7))
            break;
        handle(r, rec, len);
        r->tail += len;
        n++;
    }
    if (r->tail >= r->punched + PUNCH_CHUNK) {
        uint64_t upto = r->tail & ~(uint64_t)(PUNCH_CHUNK - 1);
        sbx_log_punch(r->fd, (off_t)(SBX_LOG_HDR + r->punched), (off_t)(upto - r->punched));
        r->punched = upto;
    }
    return n;
}

/* A writer killed between reserving and publishing leaves a hole with no
 * length: once nobody can finish it, find the next published record. */
static void skip_abandoned(struct sbx_preload_run *r)
{
    uint64_t head = __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE);
    if (head > r->hdr->cap)
        head = r->hdr->cap;
    while (r->tail < head) {
        drain(r);
        if (r->tail >= head)
            break;
        uint64_t t = r->tail + 8;
        while (t + sizeof(struct sbx_rec) <= head) {
            uint32_t w = *(uint32_t *)(r->recs + t);
            if ((w & ~SBX_REC_LENMASK) == SBX_REC_LIVE && (w & SBX_REC_LENMASK) >= 24 &&
                t + (w & SBX_REC_LENMASK) <= head)
                break;
            t += 8;
        }
        r->skipped_dead++;
        r->tail = t + sizeof(struct sbx_rec) <= head ? t : head;
    }
}

static void reap(struct sbx_preload_run *r)
{
    for (size_t i = 0; i < r->capprocs; i++) {
        struct proc *p = &r->procs[i];
        if (!p->pid || p->watch < 0)
            continue;
        if (sbx_watch_exited(r->watches, p->watch, p->pid)) {
            sbx_watch_close(r->watches, p->watch);
            p->watch = -1;
            r->live--;
        }
    }
}

/* In-process: the shim in this very process must not record what the
 * reader does (sbx_shim_quiet_thread, exported by the shim). */
static void quiet(struct sbx_preload_run *r, int on)
{
    static void (*fn)(int);
    if (!r->inprocess)
        return;
    if (!fn)
        *(void **)&fn = dlsym(RTLD_DEFAULT, "sbx_shim_quiet_thread");
    if (fn)
        fn(on);
}

static void *reader_main(void *arg)
{
    struct sbx_preload_run *r = arg;
    unsigned idle = 0;
    quiet(r, 1);
    pthread_mutex_lock(&r->mu);
    if (r->anonymous) {
        /* the name lives as long as this thread: the run's */
        if (sbx_log_anonymous_name(r->fd, r->path, sizeof r->path) < 0)
            r->path[0] = '\0';
        r->named = 1;
        pthread_cond_broadcast(&r->wake);
    }
    while (!r->stop) {
        size_t n = drain(r);
        /* back off while idle: a quiet run costs a few wake-ups per
         * second; and batch: a waking reader costs the traced tree a CPU
         * on small machines, while records wait safely in shared memory */
        idle = n ? 0 : idle < 20 ? idle + 1 : idle;
        long us = 5000 + 750 * (long)idle;
        /* end() wakes us at once instead of waiting out the sleep */
        sbx_cond_wait_us(&r->wake, &r->mu, us);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* The final target of `p` when it differs from p (a symlink on the way),
 * into out.  Files of one directory usually come together, so the
 * directory's resolution is kept and each file costs one lstat. */
static int link_target(struct linkres *lr, const char *p, char *out, size_t cap)
{
    const char *slash = strrchr(p, '/');
    if (!slash || !slash[1] || strncmp(p, "/proc/", 6) == 0)
        return 0;           /* pseudo files (/proc/self/...) resolve per process */
    size_t dl = (size_t)(slash - p);
    if (dl >= sizeof lr->dir)
        return 0;
    if (!lr->valid || strlen(lr->dir) != dl || strncmp(lr->dir, p, dl) != 0) {
        memcpy(lr->dir, p, dl);
        lr->dir[dl] = '\0';
        lr->ok = realpath(dl ? lr->dir : "/", lr->realdir) != NULL;
        lr->valid = 1;
    }
    struct stat sb;
    if (!lr->ok || lstat(p, &sb) < 0)
        return 0;
    if (S_ISLNK(sb.st_mode)) {
        if (cap < PATH_MAX || !realpath(p, out))
            return 0;
    } else if ((size_t)snprintf(out, cap, "%s/%s", strcmp(lr->realdir, "/") ? lr->realdir : "",
                                slash + 1) >= cap) {
        return 0;
    }
    return strcmp(out, p) != 0;
}

/* Logs left by a process that was killed before it could remove its own
 * (its pid is in the name and it no longer exists).  A pid reused since
 * keeps its log until that process is gone too. */
static void sweep_orphan_logs(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid = 0;
        char rest[16];
        if (sscanf(e->d_name, "sandbox_py-preload-%d-%15s", &pid, rest) != 2 || pid <= 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat log;
        if (stat(path, &log) < 0 || log.st_uid != getuid())
            continue;
        if (kill(pid, 0) < 0 && errno == ESRCH)
            unlink(path);           /* its owner is gone */
    }
    closedir(d);
}

/* ---- API ------------------------------------------------------------------------------*/
struct sbx_preload_run *sbx_preload_begin(int named, char *err, size_t errlen)
{
    struct sbx_preload_run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->began = sbx_proc_now();
    /* Anonymous where the system allows: nothing to remove, whoever dies
     * (this process SIGKILLed mid-run included). */
    r->fd = named ? -1 : sbx_log_anonymous();
    r->anonymous = r->fd >= 0;
    const char *dirs[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (size_t i = 0; i < 3 && r->fd < 0; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        sweep_orphan_logs(dirs[i]);
        /* the owner's pid in the name: a log whose owner died (SIGKILL)
         * is removed by the next run of any process */
        snprintf(r->path, sizeof r->path, "%s/sandbox_py-preload-%d-XXXXXX", dirs[i],
                 (int)getpid());
        r->fd = mkostemp(r->path, O_CLOEXEC);
    }
    if (r->fd < 0) {
        snprintf(err, errlen, "cannot create the preload event log in /dev/shm or $TMPDIR: %s",
                 strerror(errno));
        free(r);
        return NULL;
    }
    /* Sparse: only pages written and not yet punched use memory. */
    if (ftruncate(r->fd, (off_t)(SBX_LOG_HDR + SBX_LOG_CAP)) < 0) {
        snprintf(err, errlen, "cannot size the preload event log %s: %s",
                 r->anonymous ? "(memfd)" : r->path, strerror(errno));
        goto fail;
    }
    void *m = mmap(NULL, SBX_LOG_HDR + SBX_LOG_CAP, PROT_READ | PROT_WRITE, MAP_SHARED,
                   r->fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map the preload event log: %s", strerror(errno));
        goto fail;
    }
    r->hdr = m;
    r->recs = (char *)m + SBX_LOG_HDR;
    r->hdr->cap = SBX_LOG_CAP;
    __atomic_store_n(&r->hdr->magic, SBX_LOG_MAGIC, __ATOMIC_RELEASE);
    r->res = sbx_result_new();
    r->links = calloc(1, sizeof *r->links);
    r->watches = sbx_watchset_new();
    if (!r->res || !r->links || !r->watches) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&r->mu, NULL);
    sbx_cond_init_monotonic(&r->wake);
    if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
        snprintf(err, errlen, "cannot start the preload reader thread");
        goto fail;
    }
    r->thread_started = 1;
    if (r->anonymous) {
        pthread_mutex_lock(&r->mu);
        while (!r->named)
            pthread_cond_wait(&r->wake, &r->mu);
        pthread_mutex_unlock(&r->mu);
        if (!r->path[0]) {
            snprintf(err, errlen, "cannot name the preload event log");
            sbx_result_free(sbx_preload_end(r));
            return NULL;
        }
    }
    pthread_mutex_lock(&r->mu);
    snprintf(r->env_mark, sizeof r->env_mark, "%s=%s", SBX_ENV_LOG, r->path);
    pthread_mutex_unlock(&r->mu);
    return r;
fail:
    if (r->hdr)
        munmap(r->hdr, SBX_LOG_HDR + SBX_LOG_CAP);
    sbx_result_free(r->res);
    free(r->links);
    if (r->watches)
        sbx_watchset_free(r->watches);
    if (!r->anonymous)
        unlink(r->path);
    close(r->fd);
    free(r);
    return NULL;
}

const char *sbx_preload_log_path(const struct sbx_preload_run *r) { return r->path; }

void sbx_preload_handoff(struct sbx_preload_run *r, const char *launcher)
{
    pthread_mutex_lock(&r->mu);
    snprintf(r->launcher, sizeof r->launcher, "%s", launcher ? launcher : "");
    pthread_mutex_unlock(&r->mu);
}

void sbx_preload_root(struct sbx_preload_run *r, pid_t pid, const char *argv0)
{
    pthread_mutex_lock(&r->mu);
    r->root_pid = pid;
    int ppid;
    sbx_proc_lineage(pid, &ppid, &r->root_start);
    snprintf(r->root_argv0, sizeof r->root_argv0, "%s", argv0 ? argv0 : "?");
    proc_get(r, pid, 1);
    pthread_mutex_unlock(&r->mu);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int sbx_preload_wait(struct sbx_preload_run *r, double timeout)
{
    double deadline = timeout < 0 ? -1 : now() + timeout;
    double quiet_since = -1;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        drain(r);
        reap(r);
        int done = 0;
        size_t busy = 0;
        for (size_t i = 0; i < r->nadopted; i++)
            busy += !sbx_os_adopter()->wait(r->adopted[i], 0);
        if (r->inprocess) {
            /* this process writes on: its records are drained at the
             * window's end, only the children are waited for here */
            done = r->live == 0 && !busy;
        } else if (r->live == 0 && !busy) {
            drain(r);             /* a process's last records before it died */
            uint64_t head = __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE);
            if (head > r->hdr->cap)
                head = r->hdr->cap;
            if (r->live == 0 && r->tail >= head)
                done = 1;
            else if (r->live == 0) {
                /* a reservation nobody publishes: give a writer that is
                 * just descheduled a moment, then give up on it */
                if (quiet_since < 0)
                    quiet_since = now();
                else if (now() - quiet_since > 0.5) {
                    skip_abandoned(r);
                    done = 1;
                }
            }
        } else {
            quiet_since = -1;
        }
        pthread_mutex_unlock(&r->mu);
        if (done)
            return 1;
        if (deadline >= 0 && now() >= deadline)
            return 0;
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
}

void sbx_preload_kill(struct sbx_preload_run *r)
{
    /* Processes may fork while being killed, and a child can exec (and run)
     * before its parent's fork record is written, or after its parent was
     * killed: repeat until several rounds in a row find nobody new, so the
     * records of such children (their start-up record) are caught too. */
    int quiet = 0;
    for (int round = 0; round < 200 && quiet < 5; round++) {
        pthread_mutex_lock(&r->mu);
        drain(r);
        reap(r);
        size_t sent = 0;
        for (size_t i = 0; i < r->nadopted; i++)
            if (!sbx_os_adopter()->wait(r->adopted[i], 0)) {
                sbx_os_adopter()->kill(r->adopted[i]);
                sent++;
            }
        for (size_t i = 0; i < r->capprocs; i++) {
            struct proc *p = &r->procs[i];
            if (p->pid && p->watch >= 0 && sbx_watch_kill(r->watches, p->watch, p->pid) == 0)
                sent++;
        }
        pthread_mutex_unlock(&r->mu);
        quiet = sent ? 0 : quiet + 1;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    /* Processes of the run that no record has named yet (a child that exec'd
     * before its parent's fork record was written, and whose parent was then
     * killed) still carry the run's log in their environment: the shim puts
     * it back at every exec, and no process outside the run can have it (the
     * name is made for this run).  A process in the middle of an exec shows
     * no environment for a moment: scan until two scans find nothing. */
    for (int scans = 0, idle = 0; scans < 20 && idle < 2; scans++) {
        idle = sbx_kill_by_env(r->env_mark) ? 0 : idle + 1;
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- a process reading its own log, in windows -------------------------------------*/
int sbx_preload_log_create(char *path, size_t cap, char *err, size_t errlen)
{
    int fd = -1;
    const char *dirs[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (size_t i = 0; i < 3 && fd < 0; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        sweep_orphan_logs(dirs[i]);
        /* a name (it must outlive the exec), with the owner's pid: the pid
         * the re-executed process keeps, removed by a later run once gone */
        snprintf(path, cap, "%s/sandbox_py-preload-%d-XXXXXX", dirs[i], (int)getpid());
        fd = mkostemp(path, O_CLOEXEC);
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot create the preload event log in /dev/shm or $TMPDIR: %s",
                 strerror(errno));
        return -1;
    }
    void *m = MAP_FAILED;
    if (ftruncate(fd, (off_t)(SBX_LOG_HDR + SBX_LOG_CAP)) == 0)
        m = mmap(NULL, SBX_LOG_HDR + SBX_LOG_CAP, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot size or map the preload event log %s: %s", path,
                 strerror(errno));
        unlink(path);
        close(fd);
        return -1;
    }
    struct sbx_log_hdr *h = m;
    h->cap = SBX_LOG_CAP;
    h->paused = 1;                    /* nothing is any window's until one opens */
    __atomic_store_n(&h->magic, SBX_LOG_MAGIC, __ATOMIC_RELEASE);
    munmap(m, SBX_LOG_HDR + SBX_LOG_CAP);
    close(fd);
    return 0;
}

struct sbx_preload_run *sbx_preload_attach(const char *path, char *err, size_t errlen)
{
    struct sbx_preload_run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->inprocess = 1;
    r->named = 1;
    r->began = sbx_proc_now();
    snprintf(r->path, sizeof r->path, "%s", path);
    snprintf(r->env_mark, sizeof r->env_mark, "%s=%s", SBX_ENV_LOG, r->path);
    r->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    void *m = MAP_FAILED;
    if (r->fd >= 0 && fstat(r->fd, &sb) == 0 && sb.st_uid == getuid() && S_ISREG(sb.st_mode) &&
        sb.st_size == (off_t)(SBX_LOG_HDR + SBX_LOG_CAP))
        m = mmap(NULL, SBX_LOG_HDR + SBX_LOG_CAP, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    if (m == MAP_FAILED || ((struct sbx_log_hdr *)m)->magic != SBX_LOG_MAGIC) {
        snprintf(err, errlen, "%s is not a preload event log of this user", path);
        if (m != MAP_FAILED)
            munmap(m, SBX_LOG_HDR + SBX_LOG_CAP);
        if (r->fd >= 0)
            close(r->fd);
        free(r);
        return NULL;
    }
    r->hdr = m;
    r->recs = (char *)m + SBX_LOG_HDR;
    /* what was written before (nothing: the log is created paused) is no
     * window's */
    r->tail = __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE);
    if (r->tail > r->hdr->cap)
        r->tail = r->hdr->cap;
    r->res = sbx_result_new();
    r->links = calloc(1, sizeof *r->links);
    r->watches = sbx_watchset_new();
    pthread_mutex_init(&r->mu, NULL);
    sbx_cond_init_monotonic(&r->wake);
    if (!r->res || !r->links || !r->watches ||
        pthread_create(&r->thread, NULL, reader_main, r) != 0) {
        snprintf(err, errlen, "cannot start the preload reader");
        munmap(m, SBX_LOG_HDR + SBX_LOG_CAP);
        close(r->fd);
        sbx_result_free(r->res);
        free(r->links);
        if (r->watches)
            sbx_watchset_free(r->watches);
        free(r);
        return NULL;
    }
    r->thread_started = 1;
    return r;
}

/* Forget everything the run knew about processes and open files: a
 * window starts from nothing. */
static void forget_all(struct sbx_preload_run *r)
{
    for (size_t i = 0; i < r->capprocs; i++) {
        struct proc *p = &r->procs[i];
        if (!p->pid)
            continue;
        exec_clear(&p->pending);
        sbx_pathset_free(p->pre);
        if (p->watch >= 0)
            sbx_watch_close(r->watches, p->watch);
    }
    free(r->procs);
    r->procs = NULL;
    r->nprocs = r->capprocs = r->live = 0;
    sbx_keyed_free(&r->ids);
    memset(&r->ids, 0, sizeof r->ids);
    free(r->readset);
    r->readset = NULL;
    r->nread = r->capread = 0;
    r->warned_stranger = 0;
    r->skipped_dead = 0;
}

/* What sbx_preload_end settles for a run, for the window: execs announced
 * and never confirmed, finished static programs, the open-file ledger. */
static void settle_window(struct sbx_preload_run *r)
{
    for (size_t i = 0; i < r->capprocs; i++) {
        struct proc *p = &r->procs[i];
        if (!p->pid || p->stranger)
            continue;
        if (p->pending.set && !(p->pending.flags & SBX_REC_EXEC_HANDOFF)) {
            exec_commit(r, p->pid, &p->pending, NULL);
            unobserved(r, p->pid, &p->pending);
        }
        exec_clear(&p->pending);
    }
    size_t keep = 0;
    for (size_t i = 0; i < r->nadopted; i++) {
        if (sbx_os_adopter()->wait(r->adopted[i], 0))
            merge(r, sbx_os_adopter()->end(r->adopted[i]));
        else
            r->adopted[keep++] = r->adopted[i];   /* still running: a later end */
    }
    if (keep)
        sbx_result_warn(r->res, "%zu statically linked process(es) started in the window "
                        "were still running when it ended; their later accesses are missing",
                        keep);
    r->nadopted = keep;
    for (size_t i = 0; i < r->capprocs; i++)
        if (r->procs[i].pid && !r->procs[i].stranger)
            image_arrived(r, &r->procs[i]);
    for (size_t i = 0; i < r->ids.cap; i++) {
        struct sbx_keyed *o = &r->ids.slots[i];
        if (o->key && o->path &&
            sbx_result_settle(r->res, o->pid, o->path, strlen(o->path),
                              o->used || (o->flags & SBX_REC_FD_NOPROBE)) < 0)
            sbx_result_warn(r->res, "out of memory while recording paths");
    }
    uint64_t dropped = __atomic_exchange_n(&r->hdr->dropped, 0, __ATOMIC_ACQ_REL);
    if (dropped)
        sbx_result_warn(r->res, "%llu events were dropped: the preload event log (%llu MiB) "
                        "was full", (unsigned long long)dropped,
                        (unsigned long long)(SBX_LOG_CAP >> 20));
    if (r->skipped_dead)
        sbx_result_warn(r->res, "%d events were lost: a process was killed while writing one",
                        r->skipped_dead);
}

int sbx_preload_self_quiet(int on)
{
    void (*fn)(int);
    *(void **)&fn = dlsym(RTLD_DEFAULT, "sbx_shim_quiet_thread");
    if (!fn)
        return -1;
    fn(on);
    return 0;
}

int sbx_preload_self_breakaway(const char *text)
{
    void (*fn)(const char *);
    *(void **)&fn = dlsym(RTLD_DEFAULT, "sbx_shim_set_breakaway");
    if (!fn)
        return -1;
    fn(text);
    return 0;
}

int sbx_preload_window_begin(struct sbx_preload_run *r, char *err, size_t errlen)
{
    if (!r->inprocess) {
        snprintf(err, errlen, "windows are for a run attached to this process's own log");
        return -1;
    }
    quiet(r, 1);
    pthread_mutex_lock(&r->mu);
    drain(r);                     /* what came before is no window's */
    struct sbx_result *fresh = sbx_result_new();
    if (!fresh) {
        pthread_mutex_unlock(&r->mu);
        quiet(r, 0);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sbx_result_free(r->res);
    r->res = fresh;
    forget_all(r);
    /* this process has its record from the start (no exec opens it) */
    sbx_result_proc_fork(r->res, getpid(), getppid());
    r->began = sbx_proc_now();
    __atomic_fetch_add(&r->hdr->epoch, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&r->hdr->paused, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&r->mu);
    quiet(r, 0);
    return 0;
}

struct sbx_result *sbx_preload_window_end(struct sbx_preload_run *r, double wait, int *done)
{
    quiet(r, 1);
    /* processes started in the window still run: their records count until
     * they exit or the wait is over */
    *done = sbx_preload_wait(r, wait);
    __atomic_store_n(&r->hdr->paused, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&r->mu);
    /* records reserved before the pause are being written: a moment for them */
    for (int spins = 0; spins < 200; spins++) {
        drain(r);
        uint64_t head = __atomic_load_n(&r->hdr->head, __ATOMIC_ACQUIRE);
        if (r->tail >= (head > r->hdr->cap ? r->hdr->cap : head))
            break;
        pthread_mutex_unlock(&r->mu);
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&r->mu);
    }
    settle_window(r);
    struct sbx_result *res = r->res;
    struct sbx_result *fresh = sbx_result_new();
    r->res = fresh ? fresh : res;
    forget_all(r);
    pthread_mutex_unlock(&r->mu);
    quiet(r, 0);
    return fresh ? res : NULL;
}

struct sbx_result *sbx_preload_end(struct sbx_preload_run *r)
{
    if (r->thread_started) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    drain(r);
    reap(r);
    if (r->live == 0)
        skip_abandoned(r);
    struct sbx_result *res = r->res;
    int root_seen = 0;
    for (size_t i = 0; i < r->capprocs; i++) {
        struct proc *p = &r->procs[i];
        if (!p->pid)
            continue;
        if (p->pid == r->root_pid && (p->seen_start || p->seen_any))
            root_seen = 1;
        if (p->pending.set && !(p->pending.flags & SBX_REC_EXEC_HANDOFF)) {
            /* the exec did not fail (no EXEC_FAIL) but the shim never
             * started in the new image */
            exec_commit(r, p->pid, &p->pending, NULL);
            unobserved(r, p->pid, &p->pending);
        }
        exec_clear(&p->pending);
        if (p->watch >= 0)
            sbx_watch_close(r->watches, p->watch);
    }
    if (r->root_pid && !root_seen)
        unobserved(r, r->root_pid, NULL);
    for (size_t i = 0; i < r->nadopted; i++)
        merge(r, sbx_os_adopter()->end(r->adopted[i]));
    free(r->adopted);
    /* what a process did while an image never confirmed was on the way
     * (a handed-off exec: its record came with the adopted run) */
    for (size_t i = 0; i < r->capprocs; i++)
        if (r->procs[i].pid)
            image_arrived(r, &r->procs[i]);
    for (size_t i = 0; i < r->ids.cap; i++) {
        struct sbx_keyed *o = &r->ids.slots[i];
        /* the ledger's rule: opened but never used, existence was checked */
        if (o->key && o->path &&
            sbx_result_settle(res, o->pid, o->path, strlen(o->path),
                              o->used || (o->flags & SBX_REC_FD_NOPROBE)) < 0)
            sbx_result_warn(res, "out of memory while recording paths");
    }
    uint64_t dropped = __atomic_load_n(&r->hdr->dropped, __ATOMIC_ACQUIRE);
    if (dropped)
        sbx_result_warn(res, "%llu events were dropped: the preload event log (%llu MiB) "
                        "was full", (unsigned long long)dropped,
                        (unsigned long long)(SBX_LOG_CAP >> 20));
    if (r->skipped_dead)
        sbx_result_warn(res, "%d events were lost: a process was killed while writing one",
                        r->skipped_dead);
    free(r->links);
    for (size_t i = 0; i < r->capread; i++)
        free(r->readset[i].target);
    free(r->readset);
    sbx_watchset_free(r->watches);
    munmap(r->hdr, SBX_LOG_HDR + SBX_LOG_CAP);
    if (!r->anonymous)
        unlink(r->path);
    close(r->fd);
    free(r->procs);
    sbx_keyed_free(&r->ids);
    if (r->thread_started) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->wake);
    }
    free(r);
    return res;
}
