/* ebpf.c — the user half of the eBPF backend (see ebpf.h).
 *
 * One reader thread per process drains the ring buffer and files each event
 * under its run; every run() waits on its own condition variable.  The
 * kernel half (bpf/sandbox.bpf.c) does the tree following and the per-file
 * deduplication; this half turns events into paths and categories.
 */
#define _GNU_SOURCE
#include "ebpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "exec_reads.h"
#include "io_uring.h"
#include "keyed_table.h"
#include "pathnorm.h"
#include "physpath.h"
#include "syscalls.h"
#include "sandbox.skel.h"
#include "sandbox_event.h"

#define FMODE_CREATED (1u << 20)
#define S_IFMT_ 0170000
#define S_IFDIR_ 0040000
#define AT_EMPTY_PATH_ 0x1000
#define PROC_PID_INIT_INO 4026531836UL

/* ---- per-run state ---------------------------------------------------- */

/* A mount namespace the run's processes moved into (SBX_EV_MNTNS).  One the
 * run made (unshare, clone) starts as a copy of the one it was made from,
 * so a name in it is the host's, except under the mount points it has
 * changed since: `mounts`, each with the host's name of what is mounted
 * there (a bind of a directory the host has) or NULL (a file system the
 * host does not show there: tmpfs, a fresh proc, an unmounted host mount).
 * A namespace joined by setns, or changed by calls not followed
 * (move_mount, pivot_root), is not `known`: its names stay as it shows
 * them, with a warning. */
struct ns_mount {
    char *at;                       /* mount point, as the namespace names it */
    char *host;                     /* what the host calls it, or NULL */
};
struct mntns {
    uint32_t inum;
    int known;
    int warned;                     /* the "not known" warning was given */
    struct ns_mount *mounts;
    size_t n, cap;
};

/* An access of a spawner's child before its first exec (SBX_PATH_PRE_EXEC). */
struct pre_exec {
    uint32_t pid;
    unsigned flags;
    char *path;
};

/* Two keyed tables per run (keyed_table.h):
 *   opened: the name an open file was opened under, keyed by its struct
 *           file address, so that a read through a symlink reports the link
 *           as well as the target, and an open whose data was never used
 *           ends up a probe (its flags: the opener's tgid, whose record
 *           the settled access goes to);
 *   dirs:   the paths of directories the kernel half sent once (DIRDEF)
 *           and now refers to by token (DIRREF). */
struct run {
    uint32_t id;
    int done;
    uint64_t misses_at_start;       /* see prog_misses() */
    int killed;                     /* counted in the kernel's kills_pending */
    pthread_cond_t cv;
    struct sbx_result *res;
    struct sbx_keyed_table opened, dirs;
    struct sbx_iouring uring;       /* io_uring requests in flight */
    unsigned rewritten_names;       /* opens whose name string was rewritten */
    struct sbx_keyed_table pid_ns;  /* tgid -> its mount namespace (flags), when
                                     * not the tracer's */
    struct mntns *ns;               /* the namespaces seen, in order */
    size_t nns;
    struct pre_exec *pre;           /* a spawner's child's $PATH search, held
                                     * for the exec that follows it */
    size_t npre, cappre;
    struct run *next;
};

static struct {
    pthread_mutex_t lock;
    int loaded;
    int load_err;
    char load_msg[512];
    struct sandbox_bpf *skel;
    struct ring_buffer *rb;
    pthread_t reader;
    pid_t reader_tid;
    int debug_events;               /* SANDBOX_PY_DEBUG_EVENTS: print each event */
    int wake_fd;                    /* eventfd: "drain now" requests */
    int epoll_fd;                   /* ring buffer + wake_fd */
    uint64_t drain_req;             /* drain requests made (wait_drained) */
    uint64_t drain_done;            /* requests whose drain has finished */
    pthread_cond_t gen_cv;
    struct run *runs;
    uint32_t next_id;
    uint32_t *ended;                /* runs whose kernel entries are still to forget */
    size_t nended, capended;
    double ended_at;                /* when the last of them ended (monotonic) */
} G = {.lock = PTHREAD_MUTEX_INITIALIZER, .gen_cv = PTHREAD_COND_INITIALIZER};

static struct run *find_run(uint32_t id)
{
    for (struct run *r = G.runs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

/* Before this run's open replaces a stale entry for the same struct file
 * (the kernel reuses freed file objects), settle the old one, for the
 * process that opened it (its tgid is the entry's flags). */
static void settle_opened(struct run *r, struct sbx_keyed *o)
{
    if (o->path && sbx_result_settle(r->res, o->flags, o->path, strlen(o->path), o->used) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
    free(o->path);
    o->path = NULL;
    o->used = 0;
}

/* An access by process `pid` (a tgid): the run's sets and its own. */
static void add_path(struct run *r, uint32_t pid, const char *p, unsigned flags)
{
    if (!flags)
        return;
    if (sbx_result_record(r->res, pid, p, strlen(p), flags) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
}

/* ---- mount namespaces ------------------------------------------------- */

static struct mntns *ns_find(struct run *r, uint32_t inum)
{
    for (size_t i = 0; i < r->nns; i++)
        if (r->ns[i].inum == inum)
            return &r->ns[i];
    return NULL;
}

/* The namespace process `pid` is in, NULL for the tracer's own. */
static struct mntns *ns_of(struct run *r, uint32_t pid)
{
    if (!r->nns)
        return NULL;                /* the common case: nobody moved */
    struct sbx_keyed *k = sbx_keyed_get(&r->pid_ns, pid, 0);
    return k && k->flags ? ns_find(r, k->flags) : NULL;
}

static void ns_set_pid(struct run *r, uint32_t pid, uint32_t inum)
{
    struct sbx_keyed *k = sbx_keyed_get(&r->pid_ns, pid, inum != 0);
    if (k)
        k->flags = inum;
}

static void ns_free_mount(struct ns_mount *m)
{
    free(m->at);
    free(m->host);
    m->at = m->host = NULL;
}

/* Whether `p` is `at` or below it. */
static size_t below(const char *p, const char *at)
{
    size_t n = strlen(at);
    if (n == 1 && at[0] == '/')
        return 1;
    if (strncmp(p, at, n) != 0 || (p[n] != '\0' && p[n] != '/'))
        return 0;
    return n;
}

/* Mounting at `at` hides every mount below it: they are forgotten. */
static void ns_forget_below(struct mntns *ns, const char *at)
{
    size_t j = 0;
    for (size_t i = 0; i < ns->n; i++) {
        if (below(ns->mounts[i].at, at))
            ns_free_mount(&ns->mounts[i]);
        else
            ns->mounts[j++] = ns->mounts[i];
    }
    ns->n = j;
}

static int ns_add(struct mntns *ns, const char *at, const char *host)
{
    if (ns->n == ns->cap) {
        size_t nc = ns->cap ? ns->cap * 2 : 8;
        struct ns_mount *m = realloc(ns->mounts, nc * sizeof *m);
        if (!m)
            return -1;
        ns->mounts = m;
        ns->cap = nc;
    }
    struct ns_mount *m = &ns->mounts[ns->n];
    m->at = strdup(at);
    m->host = host ? strdup(host) : NULL;
    if (!m->at || (host && !m->host)) {
        ns_free_mount(m);
        return -1;
    }
    ns->n++;
    return 0;
}

/* Process `pid` moved from namespace `from` to `to` (SBX_EV_MNTNS). */
static void on_mntns_event(struct run *r, const struct sbx_event *ev)
{
    uint32_t from = (uint32_t)ev->args[0], to = (uint32_t)ev->args[1];
    ns_set_pid(r, ev->pid, to);
    if (!to || ns_find(r, to))
        return;
    struct mntns *grown = realloc(r->ns, (r->nns + 1) * sizeof *grown);
    if (!grown) {
        sbx_result_warn(r->res, "out of memory while recording mount namespaces");
        return;
    }
    r->ns = grown;
    struct mntns *ns = &r->ns[r->nns++];
    memset(ns, 0, sizeof *ns);
    ns->inum = to;
    /* a copy of the namespace it was made from, when that one is known */
    struct mntns *old = from ? ns_find(r, from) : NULL;
    int made = ev->nr == SYS_unshare || ev->nr == SYS_clone || ev->nr == SYS_clone3;
    ns->known = made && (!from || (old && old->known));
    for (size_t i = 0; ns->known && old && i < old->n; i++)
        if (ns_add(ns, old->mounts[i].at, old->mounts[i].host) < 0)
            ns->known = 0;
}

/* The host's name of `p`, a path as process `pid`'s namespace shows it:
 * `p` itself (the host's namespace, or a name the namespace has not
 * changed), the host's name of what is mounted over it (into buf), or
 * NULL when the host has no name for it (said in a warning). */
static const char *host_name(struct run *r, uint32_t pid, const char *p, char *buf, size_t cap)
{
    struct mntns *ns = ns_of(r, pid);
    if (!ns || !p)
        return p;
    if (!ns->known) {
        if (!ns->warned++)
            sbx_result_warn(r->res, "process %u runs in a mount namespace this run did not "
                            "make, or changed it by a call the eBPF backend does not follow "
                            "(move_mount, pivot_root): its paths are as it sees them and may "
                            "not be where the host has those files", pid);
        return p;
    }
    struct ns_mount *best = NULL;
    size_t blen = 0;
    for (size_t i = 0; i < ns->n; i++) {
        size_t n = below(p, ns->mounts[i].at);
        if (n && (!best || n > blen)) {
            best = &ns->mounts[i];
            blen = n;
        }
    }
    if (!best)
        return p;
    if (!best->host) {
        sbx_result_warn(r->res, "process %u used files under %s, a file system mounted only "
                        "in its mount namespace: they have no name on the host and are not "
                        "reported", pid, best->at);
        return NULL;
    }
    const char *rest = strcmp(best->at, "/") == 0 ? p : p + blen;
    const char *host = strcmp(best->host, "/") == 0 && *rest ? "" : best->host;
    if ((size_t)snprintf(buf, cap, "%s%s", host, rest) >= cap) {
        sbx_result_warn(r->res, "a path used by process %u did not fit in %zu bytes", pid, cap);
        return NULL;
    }
    return buf;
}

#define MS_BIND_        0x1000
#define MS_MOVE_        0x2000
#define MS_REMOUNT_     0x20
#define MS_PROPAGATION_ ((1u << 17) | (1u << 18) | (1u << 19) | (1u << 20))

/* A successful mount(2) or umount2(2) (names as the namespace shows them):
 * what the namespace of the process now shows at the target. */
static void on_mount_event(struct run *r, const struct sbx_event *ev, const char *p0,
                           const char *p1)
{
    struct mntns *ns = ns_of(r, ev->pid);
    if (!ns || !ns->known)
        return;             /* the host's own mounts name host files */
    char buf[SBX_PATH_MAX * 2 + 2];
    int rc = 0;
    if (ev->nr == SYS_umount2) {
        if (!p0)
            return;
        int had = 0;
        for (size_t i = 0; i < ns->n; i++)
            had |= strcmp(ns->mounts[i].at, p0) == 0;
        ns_forget_below(ns, p0);
        /* a mount copied from the host is gone: what shows there now is
         * hidden under that mount on the host */
        if (!had)
            rc = ns_add(ns, p0, NULL);
    } else {
        unsigned long flags = (unsigned long)ev->args[3];
        if (!p1 || (flags & MS_REMOUNT_) ||
            ((flags & MS_PROPAGATION_) && !(flags & (MS_BIND_ | MS_MOVE_))))
            return;         /* no name changes its file */
        if (flags & MS_BIND_) {
            const char *src = p0 ? host_name(r, ev->pid, p0, buf, sizeof buf) : NULL;
            char *keep = src ? strdup(src) : NULL;
            ns_forget_below(ns, p1);
            rc = ns_add(ns, p1, keep);
            free(keep);
        } else if (flags & MS_MOVE_) {
            const char *src = p0 ? host_name(r, ev->pid, p0, buf, sizeof buf) : NULL;
            char *keep = src ? strdup(src) : NULL;
            ns_forget_below(ns, p0);
            ns_forget_below(ns, p1);
            rc = ns_add(ns, p1, keep) | (p0 ? ns_add(ns, p0, NULL) : 0);
            free(keep);
        } else {
            ns_forget_below(ns, p1);        /* a new file system */
            rc = ns_add(ns, p1, NULL);
        }
    }
    if (rc < 0) {
        ns->known = 0;
        sbx_result_warn(r->res, "out of memory while recording mount namespaces");
    }
}

/* The search along $PATH of a spawner's child is the command's: filed
 * with the record of the exec that follows it (or of the pid, if none
 * does), not with a record of the child before it, which has no image
 * (it is the tracer's own fork). */
static void hold_pre_exec(struct run *r, uint32_t pid, const char *p, unsigned flags)
{
    if (!flags)
        return;
    if (r->npre == r->cappre) {
        size_t nc = r->cappre ? r->cappre * 2 : 16;
        struct pre_exec *g = realloc(r->pre, nc * sizeof *g);
        if (!g)
            goto now;
        r->pre = g;
        r->cappre = nc;
    }
    r->pre[r->npre].path = strdup(p);
    if (!r->pre[r->npre].path)
        goto now;
    r->pre[r->npre].pid = pid;
    r->pre[r->npre].flags = flags;
    r->npre++;
    return;
now:
    add_path(r, pid, p, flags);
}

/* File what pid (0: every pid) searched before its exec. */
static void release_pre_exec(struct run *r, uint32_t pid)
{
    size_t j = 0;
    for (size_t i = 0; i < r->npre; i++) {
        struct pre_exec *e = &r->pre[i];
        if (pid && e->pid != pid) {
            r->pre[j++] = *e;
            continue;
        }
        add_path(r, e->pid, e->path, e->flags);
        free(e->path);
    }
    r->npre = j;
}

/* ---- event decoding --------------------------------------------------- */

struct strings {
    const char *s[SBX_MAX_STR];
    uint32_t len[SBX_MAX_STR];
    uint16_t flags[SBX_MAX_STR];
};

static int split_strings(const struct sbx_event *ev, size_t size, struct strings *out)
{
    const char *data = (const char *)(ev + 1);
    size_t off = 0, avail = size - sizeof *ev;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < ev->nstr && i < SBX_MAX_STR; i++) {
        uint32_t n = ev->str_len[i];
        if (n == 0 || off + n > avail)
            return -1;
        out->s[i] = data + off;
        out->len[i] = n - 1;          /* without the NUL */
        out->flags[i] = ev->str_flags[i];
        off += n;
    }
    return 0;
}

static const char *pair_name(struct run *r, const struct sbx_event *ev,
                             const struct strings *st, int i, char *buf, size_t cap);

/* Absolute, clean path of string pair (2i, 2i+1) into buf, as the acting
 * process's mount namespace names it; NULL if unusable. */
static const char *pair_path_ns(struct run *r, const struct sbx_event *ev,
                                const struct strings *st, int i, char *buf, size_t cap)
{
    const char *p = pair_name(r, ev, st, i, buf, cap);
    if (p && sbx_path_is_fd_alias(p))
        return NULL;    /* /proc/self/fd/N names a descriptor: its file is walked */
    return p;
}

/* The same, a descriptor's alias (/proc/self/fd/N) included. */
static const char *pair_name(struct run *r, const struct sbx_event *ev,
                             const struct strings *st, int i, char *buf, size_t cap)
{
    int d = 2 * i, p = 2 * i + 1;
    if (p >= ev->nstr)
        return NULL;
    if ((st->flags[d] | st->flags[p]) & SBX_STR_TRUNCATED) {
        sbx_result_warn(r->res, "a path used by process %u was longer than %d bytes "
                        "and could not be recorded", ev->pid, SBX_PATH_MAX);
        return NULL;
    }
    if (st->flags[p] & SBX_STR_FAULT) {
        sbx_result_warn(r->res, "process %u passed a path the tracer could not read "
                        "(syscall %d)", ev->pid, ev->nr);
        return NULL;
    }
    const char *dir = st->s[d];
    size_t dlen = st->len[d];
    const char *name = st->s[p];
    size_t nlen = st->len[p];
    if ((st->flags[d] & SBX_STR_ROOT) && nlen && name[0] == '/') {
        name++;                     /* a chrooted process's absolute name */
        nlen--;
    }
    if (st->flags[d] & (SBX_STR_DIRDEF | SBX_STR_DIRREF)) {
        struct sbx_keyed *k = sbx_keyed_get(&r->dirs, ev->dirtok[i], st->flags[d] & SBX_STR_DIRDEF);
        if (st->flags[d] & SBX_STR_DIRDEF) {
            if (k && !k->path)
                k->path = strdup(dir);
        } else if (k && k->path) {
            dir = k->path;
            dlen = strlen(dir);
        } else {
            sbx_result_warn(r->res, "process %u used a directory whose path was lost "
                            "with earlier events", ev->pid);
            return NULL;
        }
    }
    if (nlen == 0 && dlen == 0)
        return NULL;                /* an fd-relative call on a non-file */
    /* ".." after a symlinked directory goes where the kernel went */
    if (sbx_path_join_physical(buf, cap, dir, dlen, name, nlen) < 0) {
        if (name[0] != '/' && dlen == 0)
            return NULL;            /* dirfd was not a directory we know */
        sbx_result_warn(r->res, "a path used by process %u did not fit in %zu bytes",
                        ev->pid, cap);
        return NULL;
    }
    return buf;
}

/* The same, as the host names it (host_name()), in buf. */
static const char *pair_path(struct run *r, const struct sbx_event *ev,
                             const struct strings *st, int i, char *buf, size_t cap)
{
    const char *p = pair_path_ns(r, ev, st, i, buf, cap);
    char tmp[SBX_PATH_MAX * 2 + 2];
    const char *h = host_name(r, ev->pid, p, tmp, sizeof tmp);
    if (h == tmp) {
        if (strlen(tmp) >= cap)
            return NULL;
        memcpy(buf, tmp, strlen(tmp) + 1);
        return buf;
    }
    return h;
}

static unsigned open_flags_of(const struct sbx_event *ev)
{
    switch (ev->nr) {
    case SYS_open: return (unsigned)ev->args[1];
    case SYS_openat: return (unsigned)ev->args[2];
    case SYS_openat2: return (unsigned)ev->args[3];
    case SYS_creat: return O_CREAT | O_WRONLY | O_TRUNC;
    }
    return 0;
}

/* A successful open: what the access model records now, and the open file
 * in the ledger (keyed by its struct file) until it is used or replaced. */
static void on_open(struct run *r, const struct sbx_event *ev, const char *path)
{
    int used, tracked;
    add_path(r, ev->pid, path, sbx_access_open(sbx_linux_open_intent(open_flags_of(ev)),
                                      (ev->kind & FMODE_CREATED) != 0, &used, &tracked));
    if (!tracked || !ev->file)
        return;
    struct sbx_keyed *o = sbx_keyed_get(&r->opened, ev->file, 1);
    if (!o) {
        add_path(r, ev->pid, path, SBX_PROBE);
        return;
    }
    settle_opened(r, o);
    o->path = strdup(path);
    o->used = used;
    o->flags = ev->pid;
}

/* Whether `path', read from the process's memory after its open returned,
 * is a name of the file the kernel opened.  Its final component is the
 * file's own (SBX_STR_FILENAME), or the kernel half saw the same name at
 * the call's entry (SBX_STR_NAME_SAME): the kernel resolved this name, so
 * its final component was a symlink at the access, even if it has been
 * retargeted or removed since.  Otherwise another thread rewrote the string
 * while the call ran (SBX_STR_NAME_CHANGED), and the file is reported under
 * its own name by its uses (on_fd_event), never under this one. */
static int opened_by_this_name(struct run *r, const struct sbx_event *ev,
                               const struct strings *st, const char *path)
{
    int i = 2 * ev->npath;
    if (i >= ev->nstr || !(st->flags[i] & SBX_STR_FILENAME))
        return 1;                   /* a mount root, or an io_uring replay */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!*base || strcmp(base, st->s[i]) == 0 || strcasecmp(base, st->s[i]) == 0)
        return 1;                   /* "/", the same name, a case-folding file system */
    if (st->flags[i] & SBX_STR_NAME_SAME)
        return 1;                   /* opened through a symlink */
    if (!(st->flags[i] & SBX_STR_NAME_CHANGED)) {
        /* the entry was not seen (a task traced from within the call):
         * the name as it is now is all there is to go by */
        struct stat lst;
        if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
            return 1;
    }
    if (r->rewritten_names++)
        return 0;                   /* said once per run */
    sbx_result_warn(r->res, "process %u opened %s under the name %s, which does not name "
                    "it: another thread rewrote the name during the call; the file is "
                    "reported under its own name", ev->pid, st->s[i], path);
    return 0;
}

/* Name i of a refused call as the kernel walked it when it starts with a
 * magic link of the process, walked at the call (string SBX_STR_MAGIC):
 * the rest of the name as written joined to it ("..": physically), into
 * out; NULL when there is no such string. */
static const char *magic_join(const struct sbx_event *ev, const struct strings *st, int i,
                              char *out, size_t cap)
{
    int m = 2 * ev->npath, raw = 2 * i + 1;
    size_t k;
    if (m >= ev->nstr || !(st->flags[m] & SBX_STR_MAGIC) ||
        !(st->flags[m] & SBX_STR_MAGIC2) != (i == 0) || raw >= m ||
        (k = sbx_path_magic_prefix(st->s[raw])) == 0)
        return NULL;
    const char *rest = st->s[raw] + k;
    while (*rest == '/')
        rest++;
    return sbx_path_join_physical(out, cap, st->s[m], st->len[m], rest, strlen(rest)) > 0
           ? out : NULL;
}

/* Name i of a refused call: the refusal is also the file it reached (a
 * symlink's target, through /proc/self/root, a descriptor's file); the
 * symlinks after a magic link are followed here, when the event is read.
 * `existed`: the call needed the name to exist (an open without O_CREAT). */
static void add_reached(struct run *r, const struct sbx_event *ev, const struct strings *st,
                        int i, const char *name, int follow, int existed, unsigned flags)
{
    char joined[SBX_PATH_MAX * 2 + 2], reached[SBX_PATH_MAX * 2 + 2];
    if (!name || !(flags & SBX_REFUSED))
        return;                     /* asked for nothing: a look, not a refusal */
    const char *from = magic_join(ev, st, i, joined, sizeof joined);
    if (!from)
        from = name;
    long n = sbx_refused_reached((int)ev->pid, (int)ev->tid, from, follow, reached,
                                 sizeof reached);
    const char *target = n > 0 ? reached : from != name ? from : NULL;
    struct stat sb;
    if (target && strcmp(target, name) != 0)
        add_path(r, ev->pid, target, flags);
    else if (n == -2)
        sbx_result_warn(r->res, SBX_REFUSED_UNNAMED, (int)ev->pid, name);
    else if (from == name && (n < 0 || (existed && lstat(name, &sb) < 0)))
        /* changed since the call (milliseconds ago): a symlink on the way
         * may have led elsewhere, and nothing says where */
        sbx_result_warn(r->res, "process %d was refused %s, which was gone when its event "
                        "was read: whether a symlink on the way led to a file outside the "
                        "policy cannot be told (Result.denied lists the name as given)",
                        (int)ev->pid, name);
}

static void on_path_event(struct run *r, const struct sbx_event *ev, const struct strings *st)
{
    char a[SBX_PATH_MAX * 2 + 2], b[SBX_PATH_MAX * 2 + 2];
    if (ev->nr == SYS_mount || ev->nr == SYS_umount2) {
        /* not an access (no backend records one): the namespace's names */
        on_mount_event(r, ev, pair_path_ns(r, ev, st, 0, a, sizeof a),
                       ev->npath > 1 ? pair_path_ns(r, ev, st, 1, b, sizeof b) : NULL);
        return;
    }
    const char *p0 = pair_path(r, ev, st, 0, a, sizeof a);
    const char *p1 = ev->npath > 1 ? pair_path(r, ev, st, 1, b, sizeof b) : NULL;
    int refused = ev->ret < 0 && sbx_access_refusal((int)-ev->ret);
    enum sbx_op op = sbx_linux_path_op(ev->nr);
    if (op == SBX_OP_OPEN && ev->ret >= 0) {
        if (p0 && opened_by_this_name(r, ev, st, p0)) {
            on_open(r, ev, p0);
        } else if (ev->file) {
            /* opened under no name of ours (/proc/PID/fd/N of a memfd, the
             * preload log): the struct file may sit where a closed file's
             * did, whose name must not be given to this one's uses */
            struct sbx_keyed *o = sbx_keyed_get(&r->opened, ev->file, 0);
            if (o && o->path)
                settle_opened(r, o);
        }
        return;
    }
    if (!p0 && !p1 && !refused)
        return;
    /* "/proc/PID/cwd/../x": ".." was taken from what the link pointed to
     * at the call, which the kernel walked then */
    char ja[SBX_PATH_MAX * 2 + 2], jb[SBX_PATH_MAX * 2 + 2];
    const char *m0 = refused && p0 && ev->nstr > 1 &&
                     strstr(st->s[1], "/..") ? magic_join(ev, st, 0, ja, sizeof ja) : NULL;
    const char *m1 = refused && p1 && ev->nstr > 3 && strstr(st->s[3], "/..")
                     ? magic_join(ev, st, 1, jb, sizeof jb) : NULL;
    p0 = m0 ? m0 : p0;
    p1 = m1 ? m1 : p1;
    struct sbx_access acc = refused
        ? sbx_access_refused(op, sbx_linux_open_intent(open_flags_of(ev)))
        : sbx_access_classify(op, ev->ret >= 0);
    if (ev->kind == SBX_PATH_PRE_EXEC) {
        if (p0)
            hold_pre_exec(r, ev->pid, p0, acc.first);
        return;
    }
    if (p0)
        add_path(r, ev->pid, p0, acc.first);
    if (p1)
        add_path(r, ev->pid, p1, acc.second);
    if (refused) {
        /* The refusal is the reached file's (a symlink's target, through
         * /proc/self/root, a descriptor's file). */
        int follow = sbx_access_follows(op) && !(open_flags_of(ev) & O_NOFOLLOW);
        const char *n0 = p0 ? p0 : pair_name(r, ev, st, 0, a, sizeof a);
        const char *n1 = p1 || ev->npath < 2 ? p1 : pair_name(r, ev, st, 1, b, sizeof b);
        int existed = op == SBX_OP_OPEN && !(open_flags_of(ev) & O_CREAT);
        add_reached(r, ev, st, 0, n0, follow, existed, acc.first);
        add_reached(r, ev, st, 1, n1, follow, 0, acc.second);
    }
}

static void on_fd_event(struct run *r, const struct sbx_event *ev, const struct strings *st)
{
    char buf[SBX_PATH_MAX * 2 + 2];
    /* a file without a name any more is never reported under the one its
     * dentry shows (/tmp/#1234); the name it was opened by still counts */
    const char *path = ev->kind & SBX_FD_NONAME ? NULL : pair_path(r, ev, st, 0, buf, sizeof buf);
    unsigned cat = sbx_access_use((enum sbx_use)(ev->kind & 0xff));
    if (path)
        add_path(r, ev->pid, path, cat);
    struct sbx_keyed *o = sbx_keyed_get(&r->opened, ev->file, 0);
    if (o && o->path) {
        o->used = 1;
        if (!path || strcmp(o->path, path) != 0)
            add_path(r, ev->pid, o->path, cat);     /* the name it was opened by */
    }
}

static void on_exec_event(struct run *r, const struct sbx_event *ev, const struct strings *st)
{
    if (ev->nstr < 5)
        return;
    /* a declared breakaway: the kernel untracked it at this exec; what the
     * new program reads is its own, not the run's */
    int leaves = ev->kind == SBX_EXEC_BREAKAWAY;
    char path[SBX_PATH_MAX * 2 + 2], tmp[SBX_PATH_MAX * 2 + 2];
    const char *exe = path, *called = path, *script = NULL;
    if (sbx_path_join_clean(path, sizeof path, st->s[1], st->len[1], st->s[0], st->len[0]) < 0)
        exe = st->s[3], called = NULL;
    if (st->len[2] && sbx_path_join_clean(tmp, sizeof tmp, st->s[1], st->len[1],
                                          st->s[2], st->len[2]) >= 0)
        script = tmp;                   /* the #! interpreter as written */
    int walked = st->len[3] && !(st->flags[3] & SBX_STR_TRUNCATED);
    /* a truncated cwd is no cwd: the record says it does not know */
    const char *cwd = st->len[1] && st->s[1][0] == '/' && !(st->flags[1] & SBX_STR_TRUNCATED)
                      ? st->s[1] : NULL;
    const char *walked_exe = walked ? st->s[3] : NULL;
    if (ns_of(r, ev->pid)) {
        /* as the host names them */
        static __thread char h[4][SBX_PATH_MAX * 2 + 2];
        const char *c = host_name(r, ev->pid, called, h[0], sizeof h[0]);
        if (exe == called)
            exe = c;
        called = c;
        walked_exe = host_name(r, ev->pid, walked_exe, h[1], sizeof h[1]);
        script = host_name(r, ev->pid, script, h[2], sizeof h[2]);
        cwd = host_name(r, ev->pid, cwd, h[3], sizeof h[3]);
        if (exe == st->s[3])
            exe = walked_exe;
        if (!exe)
            exe = st->s[3];     /* named as the namespace shows it, with a warning */
    }

    /* argv: NUL-separated */
    const char *argv[256];
    size_t argc = 0;
    for (size_t i = 0; i < st->len[4] && argc < 256;) {
        argv[argc++] = st->s[4] + i;
        i += strlen(st->s[4] + i) + 1;
    }
    if (st->flags[4] & SBX_STR_TRUNCATED || argc == 256)
        sbx_result_warn(r->res, "the argument list of process %u was cut short in execs",
                        ev->pid);
    if (leaves) {
        release_pre_exec(r, ev->pid);   /* searched for while still the run's */
        sbx_result_add_breakaway(r->res, ev->pid, ev->ppid, exe, argv, argc);
        return;
    }
    /* the exec's record first, so that what the exec read is its own */
    if (sbx_result_add_exec(r->res, ev->pid, ev->ppid, exe, argv, argc) < 0 ||
        (cwd && sbx_result_proc_cwd(r->res, ev->pid, cwd) < 0) ||
        sbx_exec_reads_record(r->res, ev->pid, called, walked_exe, script) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
    release_pre_exec(r, ev->pid);
}

/* Exit status as the subprocess module gives it: the code, or minus the
 * signal that killed it. */
static int returncode_of(int64_t wstatus)
{
    int sig = (int)(wstatus & 0x7f);
    return sig ? -sig : (int)((wstatus >> 8) & 0xff);
}

/* An io_uring request joined to its outcome, as its system call's event. */
static void replay_path_event(void *host, const struct sbx_event *ev, size_t size)
{
    struct strings st;
    if (split_strings(ev, size, &st) == 0)
        on_path_event(host, ev, &st);
}

static int handle_event(void *ctx, void *data, size_t size)
{
    (void)ctx;
    const struct sbx_event *ev = data;
    if (size < sizeof *ev)
        return 0;
    pthread_mutex_lock(&G.lock);
    struct run *r = find_run(ev->run_id);
    if (!r || !r->res)
        goto out;
    struct strings st;
    if (G.debug_events)
        fprintf(stderr, "event type=%u nr=%d ret=%lld pid=%u nstr=%u s0=%s\n", ev->type,
                ev->nr, (long long)ev->ret, ev->pid, ev->nstr,
                ev->nstr ? (const char *)(ev + 1) : "");
    if (split_strings(ev, size, &st) < 0) {
        sbx_result_warn(r->res, "a malformed event from process %u was ignored", ev->pid);
        goto out;
    }
    switch (ev->type) {
    case SBX_EV_PATH:
        on_path_event(r, ev, &st);
        break;
    case SBX_EV_FD:
        on_fd_event(r, ev, &st);
        break;
    case SBX_EV_EXEC:
        on_exec_event(r, ev, &st);
        break;
    case SBX_EV_FORK: {
        if (sbx_result_proc_fork(r->res, ev->pid, ev->ppid) < 0)
            sbx_result_warn(r->res, "out of memory while recording processes");
        struct mntns *ns = ns_of(r, ev->ppid);
        if (ns)
            ns_set_pid(r, ev->pid, ns->inum);       /* born in its parent's */
        break;
    }
    case SBX_EV_MNTNS:
        on_mntns_event(r, ev);
        break;
    case SBX_EV_EXIT:
        sbx_result_proc_exit(r->res, ev->pid, returncode_of(ev->ret));
        break;
    case SBX_EV_RUN_DONE:
        r->done = 1;
        pthread_cond_broadcast(&r->cv);
        break;
    case SBX_EV_UNSEEN:
        if (ev->nr == SBX_NR_COMPAT) {
            sbx_result_warn(r->res, "process %u (%s) made 32-bit system calls, which the "
                            "eBPF backend does not decode: its accesses through them are "
                            "missing", ev->pid, ev->nstr ? st.s[0] : "?");
            break;
        }
        if (ev->nr == SYS_move_mount || ev->nr == SYS_pivot_root) {
            /* the host's own mounts name host files; another namespace's
             * names are no longer followed (host_name() says so) */
            struct mntns *ns = ns_of(r, ev->pid);
            if (ns)
                ns->known = 0;
            break;
        }
        if (ev->nr == SBX_NR_HANDED_OVER) {
            sbx_result_warn(r->res, "process %u was started by a nested Sandbox.run() "
                            "and is reported in that run's Result, not in this one",
                            ev->tid);
            break;
        }
        if (ev->nr == SYS_io_uring_setup && sbx_iouring_traced())
            break;                  /* its requests are traced (io_uring.c) */
        sbx_result_warn(r->res, "process %u (%s) called %s: file accesses made through it "
                        "are not seen by the eBPF backend", ev->pid,
                        ev->nstr ? st.s[0] : "?", sbx_linux_syscall_name(ev->nr));
        break;
    default:
        sbx_iouring_event(&r->uring, r->res, ev, size, replay_path_event, r);
        break;
    }
out:
    pthread_mutex_unlock(&G.lock);
    return 0;
}

/* The kernel's per-run deduplication caches (fd_seen, dir_seen,
 * probe_seen), mapped into this process: clearing an ended run's slots is a
 * scan of memory, not a system call per entry. */
static struct {
    struct sbx_seen_slot *slots;
    size_t n;
} seen_caches[3];

static int map_seen_caches(void)
{
    struct bpf_map *maps[3] = {G.skel->maps.fd_seen, G.skel->maps.dir_seen,
                               G.skel->maps.probe_seen};
    for (int i = 0; i < 3; i++) {
        size_t n = bpf_map__max_entries(maps[i]);
        void *p = mmap(NULL, n * sizeof(struct sbx_seen_slot), PROT_READ | PROT_WRITE,
                       MAP_SHARED, bpf_map__fd(maps[i]), 0);
        if (p == MAP_FAILED)
            return -errno;
        seen_caches[i].slots = p;
        seen_caches[i].n = n;
    }
    return 0;
}

/* Clear the slots of the ended `runs`: a finished run leaves nothing behind.
 * (Its slots could never match a later run, whose id differs, but they
 * would hold memory of it.)  A slot the kernel rewrites meanwhile for a live
 * run may be cleared too: that only costs one duplicate event. */
static void forget_runs(const uint32_t *runs, size_t nruns)
{
    for (int c = 0; c < 3; c++) {
        struct sbx_seen_slot *slots = seen_caches[c].slots;
        for (size_t i = 0; slots && i < seen_caches[c].n; i++) {
            if (!__atomic_load_n(&slots[i].tag, __ATOMIC_RELAXED))
                continue;
            uint32_t id = __atomic_load_n(&slots[i].run_id, __ATOMIC_RELAXED);
            for (size_t k = 0; k < nruns; k++)
                if (id == runs[k]) {
                    __atomic_store_n(&slots[i].tag, 0, __ATOMIC_RELAXED);
                    break;
                }
        }
    }
}

static void *reader_main(void *arg)
{
    (void)arg;
    G.reader_tid = (pid_t)syscall(SYS_gettid);
    /* SANDBOX_PY_READER_DELAY_MS starves the reader on purpose, as a loaded
     * machine would: the tests use it to prove that overflow is reported. */
    const char *delay_env = getenv("SANDBOX_PY_READER_DELAY_MS");
    long delay_ms = delay_env ? strtol(delay_env, NULL, 10) : 0;
    for (;;) {
        /* The kernel half wakes us only when the buffer fills or a run ends,
         * and waiters wake us through wake_fd; the timeout bounds the
         * latency of everything else. */
        struct epoll_event evs[2];
        int n = epoll_wait(G.epoll_fd, evs, 2, 20);
        for (int i = 0; i < n; i++)
            if (evs[i].data.fd == G.wake_fd) {
                uint64_t v;
                if (read(G.wake_fd, &v, sizeof v) < 0)
                    (void)0;        /* already drained by an earlier read */
            }
        /* Requests made before this point are satisfied by this drain. */
        pthread_mutex_lock(&G.lock);
        uint64_t req = G.drain_req;
        pthread_mutex_unlock(&G.lock);
        ring_buffer__consume(G.rb);
        if (delay_ms > 0)
            usleep((useconds_t)delay_ms * 1000);
        pthread_mutex_lock(&G.lock);
        G.drain_done = req;
        pthread_cond_broadcast(&G.gen_cv);
        /* Forgetting is batched: one walk of each map per 32 ended runs, or
         * once things have been quiet for a moment. */
        uint32_t *ended = NULL;
        size_t nended = 0;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double t = now.tv_sec + now.tv_nsec / 1e9;
        if (G.nended && (G.nended >= 32 || t - G.ended_at >= 0.2)) {
            ended = G.ended;
            nended = G.nended;
            G.ended = NULL;
            G.nended = G.capended = 0;
        }
        pthread_mutex_unlock(&G.lock);
        if (nended) {
            /* Runs that ended leave nothing in the kernel's per-run caches:
             * one scan of each forgets all of them. */
            forget_runs(ended, nended);
            free(ended);
        }
    }
    return NULL;
}

/* ---- loading ---------------------------------------------------------- */

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    if (level == LIBBPF_WARN && getenv("SANDBOX_PY_DEBUG_BPF"))
        return vfprintf(stderr, fmt, ap);
    return 0;
}

static int check_pid_namespace(char *err, size_t errlen)
{
    char link[64] = {0};
    ssize_t n = readlink("/proc/self/ns/pid", link, sizeof link - 1);
    if (n <= 0)
        return 0;                   /* cannot tell; the kernel will say */
    unsigned long ino = 0;
    if (sscanf(link, "pid:[%lu]", &ino) == 1 && ino != PROC_PID_INIT_INO) {
        snprintf(err, errlen, "this process runs in a PID namespace other than the "
                 "initial one, where kernel task ids do not match the ones it sees "
                 "(run on the host, or use backend='ptrace' or 'preload')");
        return -ENOTSUP;
    }
    return 0;
}

/* Open the skeleton, configure it (ring-buffer size, wake threshold, the
 * host's mount namespace; with or without the io_uring programs) and load
 * it.  G.skel is NULL only when opening failed. */
static int open_and_load(int with_uring, char *err, size_t errlen)
{
    G.skel = sandbox_bpf__open();
    if (!G.skel) {
        int rc = -errno;
        snprintf(err, errlen, "opening the BPF object failed: %s", strerror(errno));
        return rc;
    }
    /* SANDBOX_PY_RINGBUF_BYTES: a power of two, at least a page; the tests
     * use a tiny one to prove that overflow is reported. */
    const char *rbenv = getenv("SANDBOX_PY_RINGBUF_BYTES");
    unsigned long rbsize = rbenv ? strtoul(rbenv, NULL, 0) : 0;
    if (rbsize >= 4096 && (rbsize & (rbsize - 1)) == 0)
        bpf_map__set_max_entries(G.skel->maps.events, (uint32_t)rbsize);
    G.skel->rodata->wake_bytes = bpf_map__max_entries(G.skel->maps.events) / 8;
    struct stat ns;
    if (stat("/proc/self/ns/mnt", &ns) == 0)
        G.skel->rodata->host_mntns = (uint32_t)ns.st_ino;
    sbx_iouring_prepare(G.skel, with_uring);
    return sandbox_bpf__load(G.skel);
}

static int do_load(char *err, size_t errlen)
{
    int rc = check_pid_namespace(err, errlen);
    if (rc)
        return rc;
    libbpf_set_print(libbpf_quiet);
    G.debug_events = getenv("SANDBOX_PY_DEBUG_EVENTS") != NULL;
    rc = open_and_load(1, err, errlen);
    if (rc && sbx_iouring_traced()) {
        /* The io_uring programs read the most kernel-specific structures
         * and need tracepoints older kernels lack: a kernel that refuses
         * them still gets the backend, with io_uring use flagged as before. */
        sandbox_bpf__destroy(G.skel);
        G.skel = NULL;
        rc = open_and_load(0, err, errlen);
    }
    if (!G.skel)
        return rc;
    if (rc) {
        if (rc == -EPERM || rc == -EACCES)
            /* what to do about it is said by the Python layer, where the
             * entry point (Sandbox, trace, pytest) is known */
            snprintf(err, errlen, "loading BPF programs was refused (%s): it needs root, "
                     "or CAP_BPF and CAP_PERFMON", strerror(-rc));
        else
            snprintf(err, errlen, "the kernel rejected the BPF programs (%s); it needs "
                     "BTF (/sys/kernel/btf/vmlinux), tp_btf programs, ring buffers and "
                     "bpf_loop and bpf_rdonly_cast (Linux 6.2 or newer); set SANDBOX_PY_DEBUG_BPF=1 to see "
                     "the verifier log", strerror(-rc));
        goto fail;
    }
    rc = map_seen_caches();
    if (rc) {
        snprintf(err, errlen, "mapping the deduplication caches failed: %s", strerror(-rc));
        goto fail;
    }
    rc = sandbox_bpf__attach(G.skel);
    if (rc) {
        snprintf(err, errlen, "attaching the BPF programs to the sched and sys_exit "
                 "tracepoints failed (%s)", strerror(-rc));
        goto fail;
    }
    G.rb = ring_buffer__new(bpf_map__fd(G.skel->maps.events), handle_event, NULL, NULL);
    if (!G.rb) {
        rc = -errno;
        snprintf(err, errlen, "opening the BPF ring buffer failed: %s", strerror(errno));
        goto fail;
    }
    G.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    G.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e1 = {.events = EPOLLIN, .data.fd = ring_buffer__epoll_fd(G.rb)};
    struct epoll_event e2 = {.events = EPOLLIN, .data.fd = G.wake_fd};
    if (G.wake_fd < 0 || G.epoll_fd < 0 ||
        epoll_ctl(G.epoll_fd, EPOLL_CTL_ADD, e1.data.fd, &e1) < 0 ||
        epoll_ctl(G.epoll_fd, EPOLL_CTL_ADD, G.wake_fd, &e2) < 0) {
        rc = -errno;
        snprintf(err, errlen, "setting up the event reader failed: %s", strerror(errno));
        goto fail;
    }
    rc = pthread_create(&G.reader, NULL, reader_main, NULL);
    if (rc) {
        snprintf(err, errlen, "starting the event reader thread failed: %s", strerror(rc));
        rc = -rc;
        goto fail;
    }
    pthread_detach(G.reader);
    return 0;
fail:
    for (int i = 0; i < 3; i++)
        if (seen_caches[i].slots)
            munmap(seen_caches[i].slots, seen_caches[i].n * sizeof(struct sbx_seen_slot));
    memset(seen_caches, 0, sizeof seen_caches);
    if (G.rb)
        ring_buffer__free(G.rb);
    G.rb = NULL;
    sandbox_bpf__destroy(G.skel);
    G.skel = NULL;
    return rc;
}

int sbx_ebpf_load(char *err, size_t errlen)
{
    pthread_mutex_lock(&G.lock);
    if (!G.loaded) {
        G.load_err = do_load(G.load_msg, sizeof G.load_msg);
        G.loaded = 1;
    }
    int rc = G.load_err;
    if (rc && err)
        snprintf(err, errlen, "%s", G.load_msg);
    pthread_mutex_unlock(&G.lock);
    return rc;
}

/* Benchmarks only (bench/bench.py): detach the programs so that a bare
 * command pays nothing for them — not even the syscall-exit tracepoint,
 * which once enabled sends every task of the machine through the slow
 * syscall-exit path — and attach them again.  The maps and the reader stay.
 * Refused while a run is under way. */
int sbx_ebpf_set_attached(int on)
{
    pthread_mutex_lock(&G.lock);
    int rc = 0;
    if (!G.loaded || !G.skel)
        rc = -ENODEV;
    else if (G.runs)
        rc = -EBUSY;
    else if (on)
        rc = sandbox_bpf__attach(G.skel);
    else
        sandbox_bpf__detach(G.skel);
    pthread_mutex_unlock(&G.lock);
    return rc;
}

/* ---- runs ------------------------------------------------------------- */

/* How often the kernel skipped one of our programs because it was already
 * running on that CPU (a preempted invocation): each skip is a lost event
 * that no counter of ours sees, so a run during which this grows is
 * reported incomplete. */
static uint64_t prog_misses(void)
{
    uint64_t total = 0;
    struct bpf_program *prog;
    bpf_object__for_each_program(prog, G.skel->obj) {
        struct bpf_prog_info info;
        uint32_t len = sizeof info;
        memset(&info, 0, sizeof info);
        if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0)
            total += info.recursion_misses;
    }
    return total;
}

static int runs_fd(void) { return bpf_map__fd(G.skel->maps.runs); }
static int tracked_fd(void) { return bpf_map__fd(G.skel->maps.tracked); }

uint32_t sbx_ebpf_run_begin(void)
{
    struct run *r = calloc(1, sizeof *r);
    if (!r)
        return 0;
    r->res = sbx_result_new();
    if (!r->res) {
        free(r);
        return 0;
    }
    pthread_cond_init(&r->cv, NULL);
    r->misses_at_start = prog_misses();
    pthread_mutex_lock(&G.lock);
    do {
        r->id = ++G.next_id;
    } while (r->id == 0 || find_run(r->id));
    struct sbx_run_state st = {0};
    if (bpf_map_update_elem(runs_fd(), &r->id, &st, BPF_ANY) != 0) {
        pthread_mutex_unlock(&G.lock);
        sbx_result_free(r->res);
        free(r);
        return 0;
    }
    r->next = G.runs;
    G.runs = r;
    pthread_mutex_unlock(&G.lock);
    return r->id;
}

int sbx_ebpf_spawner_set(uint32_t run, pid_t tid)
{
    uint32_t key = (uint32_t)tid;
    return bpf_map_update_elem(bpf_map__fd(G.skel->maps.spawners), &key, &run, BPF_ANY);
}

int sbx_ebpf_spawner_clear(pid_t tid)
{
    uint32_t key = (uint32_t)tid;
    return bpf_map_delete_elem(bpf_map__fd(G.skel->maps.spawners), &key);
}

int sbx_ebpf_track_task(uint32_t run, pid_t tid)
{
    if (tid == G.reader_tid)
        return 0;                   /* our own reader does no file work */
    uint32_t key = (uint32_t)tid;
    struct sbx_task t = {.run_id = run, .flags = SBX_TASK_SELF};
    return bpf_map_update_elem(tracked_fd(), &key, &t, BPF_ANY);
}

int sbx_ebpf_untrack_task(pid_t tid)
{
    uint32_t key = (uint32_t)tid;
    return bpf_map_delete_elem(tracked_fd(), &key);
}

static int kernel_live(uint32_t run, struct sbx_run_state *out)
{
    return bpf_map_lookup_elem(runs_fd(), &run, out);
}

static int breakaway_fd(void) { return bpf_map__fd(G.skel->maps.breakaway); }

int sbx_ebpf_run_breakaway(uint32_t run, const char *const *entries, size_t n,
                           char *err, size_t errlen)
{
    __u8 one = 1;
    for (size_t i = 0; i < n; i++) {
        struct sbx_ba_key k;
        memset(&k, 0, sizeof k);
        k.run_id = run;
        size_t len = strlen(entries[i]);
        if (len == 0 || len >= sizeof k.name) {
            snprintf(err, errlen, "the breakaway entry %.80s... is longer than the %zu bytes "
                     "the kernel compares", entries[i], sizeof k.name - 1);
            return -1;
        }
        memcpy(k.name, entries[i], len);
        if (bpf_map_update_elem(breakaway_fd(), &k, &one, BPF_ANY) != 0) {
            snprintf(err, errlen, "cannot store the breakaway declaration in the kernel: %s",
                     strerror(errno));
            return -1;
        }
    }
    struct sbx_run_state st;
    if (n && kernel_live(run, &st) == 0) {
        /* before the first task exists: no concurrent update of the entry */
        st.breakaway = 1;
        bpf_map_update_elem(runs_fd(), &run, &st, BPF_EXIST);
    }
    return 0;
}

/* A run's breakaway entries, forgotten when it ends. */
static void forget_breakaway(uint32_t run)
{
    struct sbx_ba_key key, next, *prev = NULL;
    struct sbx_ba_key *gone = NULL;
    size_t n = 0, cap = 0;
    while (bpf_map_get_next_key(breakaway_fd(), prev, &next) == 0) {
        key = next;
        prev = &key;
        if (next.run_id != run)
            continue;
        if (n == cap) {
            struct sbx_ba_key *g = realloc(gone, (cap = cap ? cap * 2 : 8) * sizeof *g);
            if (!g)
                break;
            gone = g;
        }
        gone[n++] = next;
    }
    for (size_t i = 0; i < n; i++)
        bpf_map_delete_elem(breakaway_fd(), &gone[i]);
    free(gone);
}

static void deadline_after(struct timespec *ts, double seconds)
{
    clock_gettime(CLOCK_REALTIME, ts);
    long long ns = ts->tv_nsec + (long long)(seconds * 1e9);
    ts->tv_sec += ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
}

/* Wait until the reader has drained everything submitted before now.
 * Called with G.lock held. */
static void wait_drained(void)
{
    uint64_t mine = ++G.drain_req, one = 1;
    if (write(G.wake_fd, &one, sizeof one) < 0)
        (void)0;                    /* counter saturated: a wake-up is pending */
    while (G.drain_done < mine) {
        struct timespec ts;
        deadline_after(&ts, 0.2);
        pthread_cond_timedwait(&G.gen_cv, &G.lock, &ts);
    }
}

int sbx_ebpf_run_wait(uint32_t run, double timeout)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_mutex_lock(&G.lock);
    struct run *r = find_run(run);
    int done = 0;
    while (r && !r->done) {
        /* The RUN_DONE event could have been lost with a full ring buffer:
         * the kernel's live counter is the fallback truth. */
        struct sbx_run_state st;
        if (kernel_live(run, &st) == 0 && st.live <= 0) {
            wait_drained();
            r->done = 1;
            break;
        }
        if (timeout >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double el = (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
            if (el >= timeout)
                break;
        }
        struct timespec ts;
        deadline_after(&ts, 0.05);
        pthread_cond_timedwait(&r->cv, &G.lock, &ts);
    }
    done = r ? r->done : 1;
    pthread_mutex_unlock(&G.lock);
    return done;
}

/* The tids the kernel traces for `run` (SELF-registered ones only with
 * with_self), collected before anyone acts on them: deleting while walking
 * a hash map restarts the walk.  *out is malloc'd (NULL when empty). */
static size_t run_tasks(uint32_t run, int with_self, uint32_t **out)
{
    size_t n = 0, cap = 0;
    uint32_t key, next, *prev = NULL, *tids = NULL;
    while (bpf_map_get_next_key(tracked_fd(), prev, &next) == 0) {
        struct sbx_task t;
        key = next;
        prev = &key;
        if (bpf_map_lookup_elem(tracked_fd(), &next, &t) != 0 || t.run_id != run ||
            (!with_self && (t.flags & SBX_TASK_SELF)))
            continue;
        if (n == cap) {
            uint32_t *g = realloc(tids, (cap = cap ? cap * 2 : 64) * sizeof *g);
            if (!g)
                break;
            tids = g;
        }
        tids[n++] = next;
    }
    *out = tids;
    return n;
}

void sbx_ebpf_run_kill(uint32_t run)
{
    /* First make the programs look at the kill flags (they skip the lookup
     * while no run is being killed), then raise this run's. */
    pthread_mutex_lock(&G.lock);
    struct run *r = find_run(run);
    if (r && !r->killed) {
        r->killed = 1;
        __atomic_fetch_add(&G.skel->bss->kills_pending, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&G.lock);
    struct sbx_run_state st;
    if (kernel_live(run, &st) == 0) {
        st.kill = 1;
        bpf_map_update_elem(runs_fd(), &run, &st, BPF_EXIST);
    }
    /* Tasks asleep in a syscall never reach the kernel-side check: signal
     * every task of the run that the kernel knows of. */
    uint32_t *tids;
    size_t n = run_tasks(run, 0, &tids);
    for (size_t i = 0; i < n; i++)
        kill((pid_t)tids[i], SIGKILL);
    free(tids);
}

struct sbx_result *sbx_ebpf_run_end(uint32_t run)
{
    pthread_mutex_lock(&G.lock);
    /* Everything the run's tasks submitted before now must be filed: a
     * RUN_DONE only says the tree was empty once (in-process tracing goes
     * on after its children exit), and a timed-out run has none. */
    wait_drained();
    struct run **pp = &G.runs, *r = NULL;
    while (*pp && (*pp)->id != run)
        pp = &(*pp)->next;
    if (*pp) {
        r = *pp;
        *pp = r->next;
        if (r->killed)
            __atomic_fetch_sub(&G.skel->bss->kills_pending, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&G.lock);
    if (!r)
        return NULL;
    struct sbx_run_state st;
    if (kernel_live(run, &st) == 0 && st.dropped)
        sbx_result_warn(r->res, "%llu events were lost because the kernel ring buffer "
                        "was full; accesses may be missing",
                        (unsigned long long)st.dropped);
    bpf_map_delete_elem(runs_fd(), &run);
    forget_breakaway(run);
    uint64_t misses = prog_misses() - r->misses_at_start;
    if (misses)
        sbx_result_warn(r->res, "the kernel skipped %llu invocations of the tracing "
                        "programs while this run was active (re-entry on a CPU); "
                        "accesses may be missing", (unsigned long long)misses);
    /* Tasks of the run that outlived it (a timed-out run whose kill is
     * still landing) must not count against a later run with this id. */
    uint32_t *tids;
    size_t n = run_tasks(run, 1, &tids);
    for (size_t i = 0; i < n; i++)
        bpf_map_delete_elem(tracked_fd(), &tids[i]);
    free(tids);
    /* the run's deduplication entries are forgotten by the reader thread,
     * off this caller's path (a walk of each map costs ~0.4 ms) */
    pthread_mutex_lock(&G.lock);
    if (G.nended == G.capended) {
        size_t nc = G.capended ? G.capended * 2 : 64;
        uint32_t *n = realloc(G.ended, nc * sizeof *n);
        if (n) {
            G.ended = n;
            G.capended = nc;
        }
    }
    if (G.nended < G.capended)
        G.ended[G.nended++] = run;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    G.ended_at = now.tv_sec + now.tv_nsec / 1e9;
    pthread_mutex_unlock(&G.lock);
    sbx_iouring_end(&r->uring, r->res, replay_path_event, r);
    release_pre_exec(r, 0);             /* searches no exec followed */
    free(r->pre);
    for (size_t i = 0; i < r->opened.cap; i++)
        if (r->opened.slots[i].key)
            settle_opened(r, &r->opened.slots[i]);
    sbx_keyed_free(&r->opened);
    sbx_keyed_free(&r->dirs);
    sbx_keyed_free(&r->pid_ns);
    for (size_t i = 0; i < r->nns; i++) {
        for (size_t j = 0; j < r->ns[i].n; j++)
            ns_free_mount(&r->ns[i].mounts[j]);
        free(r->ns[i].mounts);
    }
    free(r->ns);
    pthread_cond_destroy(&r->cv);
    struct sbx_result *res = r->res;
    free(r);
    return res;
}
