/* ptrace_decode.c — a stopped (or notified) system call to the access
 * model's operations (csrc/core/access.h; its row in csrc/linux/syscalls.def
 * says which), one handler per operation at the call's entry and at its
 * exit, and the exec event. */
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "access.h"
#include "breakaway.h"
#include "exec_reads.h"
#include "pathnorm.h"
#include "physpath.h"
#include "ptrace_clone.h"
#include "syscalls.h"


/* ---- helpers, and the calls the listener settles at their entry -----------*/
static int get_info(pid_t tid, struct ptrace_syscall_info *si)
{
    memset(si, 0, sizeof *si);
    return PT(PTRACE_GET_SYSCALL_INFO, tid, sizeof *si, si) > 0 ? 0 : -1;
}

static int path_exists(const char *p)
{
    return p && faccessat(AT_FDCWD, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A name that is a symlink is read by readlink; anything else (absent, not
 * a link) only probed.  One lstat in the tracer costs less than a stop at
 * the call's exit. */
int sbx_pt_readlink_ok(const char *p)
{
    struct stat sb;
    return p && lstat(p, &sb) == 0 && S_ISLNK(sb.st_mode);
}

/* A plain read-only open (no O_CREAT, O_TRUNC, O_TMPFILE, O_PATH: the
 * launcher's filter sends only those here) at its entry.  Its outcome
 * changes what is recorded only when it succeeds and the fd is then used,
 * and the fd tells that when it is met: the open is remembered, not
 * stopped at its exit.  The caller holds state_mu. */
void sbx_pt_open_at_entry(struct sbx_ptrace_run *r, struct task *t, char *p, unsigned flags)
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
            sbx_pt_record(r, pr->tgid, p, SBX_PROBE);
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
    sbx_pt_pending_add(r, t, &pd);
}

/* A refused call's name: the refusal is also the file the name reached (a
 * symlink's target, /proc/self/root's, a descriptor's file), asked now,
 * while the caller is stopped in the call. */
static void add_reached(struct sbx_ptrace_run *r, struct task *t, const char *p, int follow,
                        unsigned fl)
{
    char reached[PMAX];
    if (!(fl & SBX_REFUSED))
        return;                     /* asked for nothing: a look, not a refusal */
    long n = sbx_refused_reached(t->pr->tgid, t->tid, p, follow, reached, sizeof reached);
    if (n > 0)
        sbx_pt_record(r, t->pr->tgid, reached, fl);
    else if (n == -2)
        sbx_pt_warn(r, SBX_REFUSED_UNNAMED, t->pr->tgid, p);
}

/* Record what a path call did to its names (the access model decides):
 * ok 1 succeeded, 0 failed, -1 refused by the system (EACCES, EPERM). */
static void path_done(struct sbx_ptrace_run *r, struct task *t, enum sbx_op op, int ok)
{
    struct sbx_access a = ok < 0 ? sbx_access_refused(op, 0) : sbx_access_classify(op, ok);
    /* /proc/self/fd/N and /dev/fd/N name a descriptor, not a file */
    if (t->p1 && !sbx_path_is_fd_alias(t->p1))
        sbx_pt_record(r, t->pr->tgid, t->p1, a.first);
    if (t->p2 && !sbx_path_is_fd_alias(t->p2))
        sbx_pt_record(r, t->pr->tgid, t->p2, a.second);
    if (ok < 0 && t->p1)
        add_reached(r, t, t->p1, sbx_access_follows(op), a.first);
    if (ok < 0 && t->p2)
        add_reached(r, t, t->p2, sbx_access_follows(op), a.second);
}

/* The names of path call `nr` (its row in syscalls.def), resolved against
 * the tracee's cwd or dirfd now, before the call can change them. */
static void resolve_names(struct sbx_ptrace_run *r, struct task *t,
                          const struct sbx_sc_layout *l)
{
    const unsigned long *a = t->args;
    long d0 = l->d0 < 0 ? AT_FDCWD : (long)(int)a[l->d0];
    if (a[l->p0])
        t->p1 = sbx_pt_resolve(r, t->tid, d0, a[l->p0]);
    if (l->npath > 1 && a[l->p1]) {
        long d1 = l->d1 < 0 ? AT_FDCWD : (long)(int)a[l->d1];
        t->p2 = sbx_pt_resolve(r, t->tid, d1, a[l->p1]);
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
        sbx_pt_read_mem(t->tid, a[2], &how, sizeof how);
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
int sbx_pt_settle_fd_call(struct sbx_ptrace_run *r, struct proc *p, pid_t tid, long nr,
                          const unsigned long *a)
{
    enum sbx_use use;
    int fdarg, hot;
    switch (nr) {
    case SYS_close:
        sbx_pt_fd_close(r, p, tid, (int)a[0]);
        return 1;
    case SYS_mmap: {
        struct fdent *e = sbx_pt_fd_learn(p, tid, (int)a[4]);
        if (a[2] & (PROT_READ | PROT_EXEC))
            sbx_pt_fd_use(r, p, e, SBX_READ);
        if ((a[2] & PROT_WRITE) && (a[3] & MAP_SHARED))
            sbx_pt_fd_use(r, p, e, SBX_WRITE);
        return 1;
    }
    }
    /* reading and listing are settled here (half the stops of a tree
     * walk); changes wait for the exit, where success is known */
    if (sbx_linux_fd_call(nr, &use, &fdarg, &hot) && use != SBX_USE_WRITE) {
        sbx_pt_fd_use(r, p, sbx_pt_fd_learn(p, tid, (int)a[fdarg]), sbx_access_use(use));
        return 1;
    }
    return 0;
}

/* ---- at a call's entry ---------------------------------------------------
 * One handler per call of the open-file ledger and per operation of the
 * access model (the call's row in syscalls.def); each returns 1 when the
 * call's exit must be seen too.  t->args hold the arguments; a path call's
 * names are resolved (t->p1, t->p2) before its handler runs, while the cwd
 * and dirfds are the ones the kernel will use. */
typedef int entry_handler(struct sbx_ptrace_run *r, struct task *t);

/* clone(CLONE_UNTRACED), the only clone the filter stops: its child would
 * run unfollowed (ptrace_clone.h) */
static int enter_clone(struct sbx_ptrace_run *r, struct task *t)
{
    struct proc *p = t->pr;
    if ((t->args[0] & CLONE_UNTRACED) && sbx_pt_strip_untraced(t->tid, t->args[0]) < 0)
        sbx_pt_warn(r, "process %d (%s) started a process with CLONE_UNTRACED that the "
                       "tracer could not follow: its file accesses are not in the Result",
                    p->tgid, p->name);
    return 0;
}

/* close stops only while there is no listener: the launcher's close of its
 * listener fd is where the tracer takes it */
static int enter_close(struct sbx_ptrace_run *r, struct task *t)
{
    if (r->listener < 0)
        sbx_pt_take_listener(r, t->tid, (int)t->args[0], t->pr->name);
    sbx_pt_settle_fd_call(r, t->pr, t->tid, t->nr, t->args);
    return 0;
}

static int enter_close_range(struct sbx_ptrace_run *r, struct task *t)
{
    const unsigned long *a = t->args;
    struct proc *p = t->pr;
    /* the launcher closes its listener with close_range (close itself
     * goes to the listener nobody holds yet) */
    if (r->listener < 0 && a[0] == a[1])
        sbx_pt_take_listener(r, t->tid, (int)a[0], p->name);
    if (p->npend)
        sbx_pt_learn_all(p, t->tid);   /* fds of opens settled at entry among them */
    if (!(a[2] & 4 /* CLOSE_RANGE_CLOEXEC */))
        for (size_t i = p->n; i-- > 0;)
            if ((unsigned)p->fds[i].fd >= (unsigned)a[0] &&
                (unsigned)p->fds[i].fd <= (unsigned)a[1])
                sbx_pt_fd_close(r, p, t->tid, p->fds[i].fd);
    return 0;
}

/* dup2/dup3 onto an open fd close it first; the copy is made at the exit */
static int enter_dup_onto(struct sbx_ptrace_run *r, struct task *t)
{
    if (t->nr == SYS_dup3 || t->args[0] != t->args[1])
        sbx_pt_fd_close(r, t->pr, t->tid, (int)t->args[1]);
    return 1;
}

/* exec: what it runs is named now; close-on-exec fds vanish with it, so
 * every fd is settled now */
static int enter_exec(struct sbx_ptrace_run *r, struct task *t)
{
    struct proc *p = t->pr;
    sbx_pt_task_clear_exec(t);
    t->xpath = t->p1;
    t->p1 = NULL;
    sbx_pt_read_argv(t, t->nr == SYS_execve ? t->args[1] : t->args[2]);
    sbx_pt_pending_settle(r, p, t->tid, p->refs == 1 ? 0 : t->tid);
    for (size_t i = 0; i < p->n; i++)
        sbx_pt_fd_settle(r, p, &p->fds[i], t->tid);
    return 1;
}

/* stat, access...: without a listener they stop here; the outcome
 * changes nothing */
static int enter_probe(struct sbx_ptrace_run *r, struct task *t)
{
    path_done(r, t, SBX_OP_PROBE, 1);
    return 0;
}

static int enter_readlink(struct sbx_ptrace_run *r, struct task *t)
{
    path_done(r, t, SBX_OP_READLINK, sbx_pt_readlink_ok(t->p1));
    return 0;
}

/* A name about to change (remove, rename, create, link, modify).  Reads do
 * not stop: what an open fd of this name read so far is settled before the
 * name changes, so that the order the precision rules depend on ("read,
 * then replaced") is the real one.  The outcome is at the exit. */
static int enter_change(struct sbx_ptrace_run *r, struct task *t)
{
    struct proc *p = t->pr;
    if (p->npend)
        sbx_pt_learn_all(p, t->tid);
    for (size_t i = 0; i < p->n; i++) {
        const struct fdent *e = &p->fds[i];
        if ((t->p1 && (!strcmp(e->path, t->p1) || (e->real && !strcmp(e->real, t->p1)))) ||
            (t->p2 && (!strcmp(e->path, t->p2) || (e->real && !strcmp(e->real, t->p2)))))
            sbx_pt_fd_settle(r, p, &p->fds[i], t->tid);
    }
    return 1;
}

/* An open that stopped (it creates, truncates or writes; or any open
 * without a listener). */
static int enter_open(struct sbx_ptrace_run *r, struct task *t)
{
    unsigned fl = open_flags(t);
    /* compilers try many include directories: an open of an absent name
     * is a probe, known now (the exit is only needed for the fd) */
    if (t->p1 && !(fl & O_CREAT) && strncmp(t->p1, "/proc/", 6) != 0 &&
        strncmp(t->p1, "/dev/", 5) != 0 &&      /* these resolve per process */
        access(t->p1, F_OK) < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        sbx_pt_record(r, t->pr->tgid, t->p1, SBX_PROBE);
        return 0;
    }
    /* creation is judged against the name's existence before the call */
    if (fl & O_CREAT)
        t->existed = path_exists(t->p1);
    return 1;
}

/* the path operations (the others are all decided at the exit) */
static entry_handler *const enter_op[SBX_OP_COUNT] = {
    [SBX_OP_OPEN] = enter_open,
    [SBX_OP_PROBE] = enter_probe,
    [SBX_OP_READLINK] = enter_readlink,
    [SBX_OP_CREATE] = enter_change,
    [SBX_OP_REMOVE] = enter_change,
    [SBX_OP_MODIFY] = enter_change,
    [SBX_OP_RENAME] = enter_change,
    [SBX_OP_LINK] = enter_change,
    [SBX_OP_EXEC] = enter_exec,
};

/* The handler of a call that is not a path call, or NULL. */
static entry_handler *ledger_entry(long nr)
{
    switch (nr) {
    case SYS_clone: return enter_clone;
    case SYS_close: return enter_close;
    case SYS_close_range: return enter_close_range;
#ifdef SYS_dup2
    case SYS_dup2:
#endif
    case SYS_dup3: return enter_dup_onto;
    }
    return NULL;
}

int sbx_pt_on_entry(struct sbx_ptrace_run *r, struct task *t)
{
    struct ptrace_syscall_info si;
    if (get_info(t->tid, &si) < 0 || si.op != PTRACE_SYSCALL_INFO_SECCOMP)
        return 0;
    struct proc *p = t->pr;
    if (si.arch != NATIVE_ARCH) {
        if (!p->warned_arch++)
            sbx_pt_warn(r, "process %d (%s) made system calls of another ABI "
                           "(32-bit or x32), which the ptrace backend does not decode",
                        p->tgid, p->name);
        return 0;
    }
    sbx_pt_task_clear_sys(t);
    long nr = (long)si.seccomp.nr;
    memcpy(t->args, si.seccomp.args, sizeof t->args);
    t->nr = nr;

    entry_handler *h = ledger_entry(nr);
    enum sbx_use use;
    int fdarg, hot, want_exit;
    struct sbx_sc_layout l;
    if (h) {
        want_exit = h(r, t);
    } else if (sbx_pt_settle_fd_call(r, p, t->tid, nr, t->args)) {
        want_exit = 0;              /* reads and listings through an fd, mmap */
    } else if (sbx_linux_fd_call(nr, &use, &fdarg, &hot) ||
               sbx_linux_path_call(nr, &l) < 0) {
        want_exit = 1;              /* changes through an fd, copies, dup, fcntl,
                                     * UNSEEN rows: decided at the exit */
    } else {
        resolve_names(r, t, &l);
        want_exit = enter_op[l.op] ? enter_op[l.op](r, t) : 1;
    }
    if (!want_exit)
        sbx_pt_task_clear_sys(t);
    return want_exit;
}

/* ---- at a call's exit -------------------------------------------------------
 * One handler per kind of call, with its outcome: ok (it succeeded) and its
 * return value (-errno on failure). */
typedef void exit_handler(struct sbx_ptrace_run *r, struct task *t, int ok, long rv);

static void opened(struct sbx_ptrace_run *r, struct task *t, unsigned flags, long fd)
{
    if (!t->p1)
        return;
    int alias = sbx_path_is_fd_alias(t->p1);
    if (fd < 0) {
        /* refused (fd is -errno): what it asked for is kept, for the
         * name and for the file it reached */
        int refused = sbx_access_refusal((int)-fd);
        unsigned fl = refused ? sbx_access_refused(SBX_OP_OPEN,
                                                   sbx_linux_open_intent(flags)).first
                              : SBX_PROBE;
        if (!alias)
            sbx_pt_record(r, t->pr->tgid, t->p1, fl);
        if (refused)
            add_reached(r, t, t->p1, !(flags & O_NOFOLLOW), fl);
        return;
    }
    if (alias) {
        /* a reopen through /proc/self/fd/N: the file behind the descriptor
         * is what is opened (nothing, when it has no name) */
        char behind[PMAX];
        free(t->p1);
        t->p1 = NULL;
        if (sbx_pt_fd_link(t->tid, (int)fd, behind, sizeof behind) <= 0 || behind[0] != '/' ||
            strstr(behind, " (deleted)"))
            return;
        t->p1 = strdup(behind);
        if (!t->p1)
            return;
    }
    int used, tracked;
    unsigned now = sbx_access_open(sbx_linux_open_intent(flags),
                                   (flags & O_CREAT) && !t->existed, &used, &tracked);
    sbx_pt_record(r, t->pr->tgid, t->p1, now);
    if (!tracked)
        return;
    int acc = flags & O_ACCMODE;
    unsigned ac = (acc != O_WRONLY ? 1 : 0) | (acc != O_RDONLY ? 2 : 0);
    struct fdent *e = sbx_pt_fd_put(t->pr, (int)fd, t->p1, ac);
    if (!e)
        return;
    e->dir = (flags & O_DIRECTORY) != 0;
    struct stat sb;
    e->chr = stat(t->p1, &sb) == 0 && S_ISCHR(sb.st_mode);
    char real[PMAX];
    if (sbx_pt_fd_link(t->tid, (int)fd, real, sizeof real) > 0 && real[0] == '/' &&
        strcmp(real, t->p1) != 0 && !strstr(real, " (deleted)"))
        e->real = strdup(real);
    if (used) {
        e->done |= SBX_WRITE;
        e->mine |= SBX_WRITE;
        e->noprobe = 1;
    }
}

/* dup, dup2, dup3, fcntl(F_DUPFD*): a copy of an fd */
static void exit_fd_copy(struct sbx_ptrace_run *r, struct task *t, int ok, long rv)
{
    (void)r;
    const unsigned long *a = t->args;
    if (ok && (t->nr != SYS_fcntl || a[1] == F_DUPFD || a[1] == F_DUPFD_CLOEXEC))
        sbx_pt_fd_copied(t->pr, t->tid, (int)a[0], (int)rv);
}

/* sendfile, copy_file_range, splice: one fd read, another written */
static void exit_fd_transfer(struct sbx_ptrace_run *r, struct task *t, int ok, long rv)
{
    (void)rv;
    int in, out;
    struct proc *p = t->pr;
    if (!ok || !sbx_linux_fd2_call(t->nr, &in, &out))
        return;
    sbx_pt_fd_use(r, p, sbx_pt_fd_learn(p, t->tid, (int)t->args[in]), SBX_READ);
    sbx_pt_fd_use(r, p, sbx_pt_fd_learn(p, t->tid, (int)t->args[out]), SBX_WRITE);
}

/* io_uring_setup, open_by_handle_at: what follows is not named here */
static void exit_unseen(struct sbx_ptrace_run *r, struct task *t, int ok, long rv)
{
    (void)rv;
    struct proc *p = t->pr;
    int uring = t->nr == SYS_io_uring_setup;
    if ((ok || !uring) && !p->warned_uring++)
        sbx_pt_warn(r, uring ? "process %d (%s) uses io_uring: file accesses submitted "
                               "through the ring are not seen by the ptrace backend"
                             : "process %d (%s) called open_by_handle_at: files opened "
                               "by handle are not named by the ptrace backend",
                    p->tgid, p->name);
}

/* a change through an fd (write family, ftruncate, fchmod...) */
static void exit_fd_change(struct sbx_ptrace_run *r, struct task *t, int ok, long rv)
{
    (void)rv;
    enum sbx_use use;
    int fdarg, hot;
    if (ok && sbx_linux_fd_call(t->nr, &use, &fdarg, &hot))
        sbx_pt_fd_use(r, t->pr, sbx_pt_fd_learn(t->pr, t->tid, (int)t->args[fdarg]),
                      sbx_access_use(use));
}

static void exit_open(struct sbx_ptrace_run *r, struct task *t, int ok, long rv)
{
    (void)ok;
    opened(r, t, open_flags(t), rv);   /* on failure: -errno */
}

/* a failed exec (a success was handled at the exec event) */
static void exit_exec(struct sbx_ptrace_run *r, struct task *t, int ok, long rv)
{
    (void)rv;
    if (!ok && t->xpath) {
        sbx_pt_record(r, t->pr->tgid, t->xpath, SBX_PROBE);
        sbx_pt_task_clear_exec(t);
    }
}

/* every other path operation: the access model decides from the outcome */
static void exit_path(struct sbx_ptrace_run *r, struct task *t, int ok, long rv)
{
    enum sbx_op op = sbx_linux_path_op(t->nr);
    if (!t->p1 && !t->p2 && op == SBX_OP_MODIFY) {
        /* utimensat/futimesat with no name act on the fd */
        if (ok)
            sbx_pt_fd_use(r, t->pr, sbx_pt_fd_learn(t->pr, t->tid, (int)t->args[0]), SBX_WRITE);
        return;
    }
    path_done(r, t, op, ok ? 1 : sbx_access_refusal((int)-rv) ? -1 : 0);
}

static exit_handler *exit_of(long nr)
{
    enum sbx_use use;
    int fdarg, hot, in, out;
    switch (nr) {
#ifdef SYS_dup2
    case SYS_dup2:
#endif
    case SYS_dup: case SYS_dup3: case SYS_fcntl:
        return exit_fd_copy;
    case SYS_io_uring_setup: case SYS_open_by_handle_at:
        return exit_unseen;
    }
    if (sbx_linux_fd2_call(nr, &in, &out))
        return exit_fd_transfer;
    if (sbx_linux_fd_call(nr, &use, &fdarg, &hot))
        return exit_fd_change;
    switch (sbx_linux_path_op(nr)) {
    case SBX_OP_NONE: return NULL;
    case SBX_OP_OPEN: return exit_open;
    case SBX_OP_EXEC: return exit_exec;
    default: return exit_path;
    }
}

void sbx_pt_on_exit(struct sbx_ptrace_run *r, struct task *t)
{
    struct ptrace_syscall_info si;
    exit_handler *h;
    if (t->nr >= 0 && get_info(t->tid, &si) == 0 && si.op == PTRACE_SYSCALL_INFO_EXIT &&
        (h = exit_of(t->nr)))
        h(r, t, !si.exit.is_error, (long)si.exit.rval);
    sbx_pt_task_clear_sys(t);
}

/* ---- the exec event ---------------------------------------------------------*/
int sbx_pt_on_exec(struct sbx_ptrace_run *r, struct task *t)
{
    unsigned long former = 0;
    PT(PTRACE_GETEVENTMSG, t->tid, 0, &former);
    if ((pid_t)former != t->tid) {
        /* a non-leader thread exec'd: it now wears the leader's tid */
        struct task *old = sbx_pt_task_find(r, (pid_t)former);
        if (old) {
            sbx_pt_task_clear_exec(t);
            t->xpath = old->xpath;
            t->xargv = old->xargv;
            t->xargc = old->xargc;
            old->xpath = NULL;
            old->xargv = NULL;
            old->xargc = 0;
            sbx_pt_task_remove(r, old);
        }
    }
    struct proc *p = t->pr;
    /* exec closed the close-on-exec fds: keep only what is still open.
     * The new image records its own use of the others (its reads from
     * the offset they have now on). */
    for (size_t i = p->n; i-- > 0;) {
        long long pos = 0;
        if (sbx_pt_fd_info(t->tid, p->fds[i].fd, &pos, NULL) < 0) {
            sbx_pt_fd_drop(p, p->fds[i].fd);
        } else {
            p->fds[i].mine = 0;
            p->fds[i].pos0 = pos;
        }
    }
    char exe[PMAX], sb[PMAX];
    if (sbx_pt_proc_link(t->tid, "exe", exe, sizeof exe) < 0)
        exe[0] = '\0';
    if (r->skip_exe[0] && strcmp(exe, r->skip_exe) == 0) {
        sbx_pt_task_clear_exec(t);
        return 0;
    }
    const char *path = t->xpath ? t->xpath : exe;
    int ppid = sbx_pt_status_field(t->tid, "PPid:");
    if (r->breakaway &&
        sbx_breakaway_matches(r->breakaway, path, exe[0] ? exe : NULL,
                              t->xargc ? t->xargv[0] : NULL)) {
        /* it leaves at this execve's exit stop (sbx_pt_leave()), recording nothing */
        pthread_mutex_lock(&r->res_mu);
        sbx_result_add_breakaway(r->res, p->tgid, ppid, path, (const char *const *)t->xargv,
                                 t->xargc);
        pthread_mutex_unlock(&r->res_mu);
        snprintf(p->name, sizeof p->name, "%s", path);
        sbx_pt_task_clear_exec(t);
        t->leaving = 1;
        return 0;
    }
    char cwd[PMAX];
    if (sbx_pt_proc_link(t->tid, "cwd", cwd, sizeof cwd) < 0 || cwd[0] != '/')
        cwd[0] = '\0';
    sbx_exec_script_interp(path, sb, sizeof sb);
    pthread_mutex_lock(&r->res_mu);
    /* the exec opens the process's new record: what the image reads is its */
    if (sbx_result_add_exec(r->res, p->tgid, ppid, path, (const char *const *)t->xargv,
                            t->xargc) < 0 ||
        (cwd[0] && sbx_result_proc_cwd(r->res, p->tgid, cwd) < 0) ||
        sbx_exec_reads_record(r->res, p->tgid, path, exe[0] ? exe : NULL, sb[0] ? sb : NULL) < 0)
        sbx_result_warn(r->res, "out of memory while recording paths");
    pthread_mutex_unlock(&r->res_mu);
    snprintf(p->name, sizeof p->name, "%s", path);
    sbx_pt_task_clear_exec(t);
    return 0;
}
