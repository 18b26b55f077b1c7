/* ptrace_run.h — the ptrace backend's insides, shared by its files:
 *
 *   ptrace_tracer.c     the tracer thread (one waitpid loop, each stop to its
 *                       handler) and the API of ptrace_tracer.h
 *   ptrace_state.c      tasks, processes and their fd tables: what an fd was
 *                       opened as, what it did (from its offset), the ledger
 *   ptrace_tracee.c     reading a stopped tracee: its memory, /proc, names
 *                       resolved against its cwd or a dirfd
 *   ptrace_decode.c     a stopped or notified system call to the access
 *                       model's operations: one handler per operation at the
 *                       entry and at the exit; the exec event
 *   ptrace_notify.c     the seccomp user-notification listener and its thread
 *   ptrace_breakaway.c  a declared breakaway leaving the run to a keeper
 *
 * Locks: `mu` guards the task list (the API's wait and kill read it),
 * `state_mu` the tasks' processes and fd tables (the tracer thread holds it
 * while it handles a stop, the notifier while it settles a call), `res_mu`
 * the result (both threads record).
 */
#ifndef SBX_PTRACE_RUN_H
#define SBX_PTRACE_RUN_H

#include <linux/ptrace.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/audit.h>

#include "result.h"

/* <sys/ptrace.h> and <linux/ptrace.h> clash; the few calls we need: */
long ptrace(int req, ...);
#define PT(req, tid, addr, data) ptrace((req), (pid_t)(tid), (void *)(long)(addr), (void *)(long)(data))

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

#define PMAX 4096

/* ---- a process (shared by its threads): its fd table and its opens not
 * matched to an fd yet ------------------------------------------------------*/
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

/* ---- ptrace_state.c: tasks, processes, fds ---------------------------------*/
/* The tgid of task `tid` of this run, or -1 (a process that left the run
 * shares the filter, and so the listener, but is not recorded). */
int sbx_pt_tgid_of(struct sbx_ptrace_run *r, pid_t tid);
/* Record an access of process `pid` (its tgid); either thread. */
void sbx_pt_record(struct sbx_ptrace_run *r, int pid, const char *p, unsigned fl);
/* A warning naming process `pid` (`name`); either thread. */
void sbx_pt_warn(struct sbx_ptrace_run *r, const char *fmt, int pid, const char *name);

struct task *sbx_pt_task_find(struct sbx_ptrace_run *r, pid_t tid);
/* A task met for the first time: a thread joins its process, a new process
 * gets a copy of its parent's fd table and its record in the result. */
struct task *sbx_pt_task_new(struct sbx_ptrace_run *r, pid_t tid);
struct task *sbx_pt_task_add(struct sbx_ptrace_run *r, pid_t tid, struct proc *pr);
void sbx_pt_task_remove(struct sbx_ptrace_run *r, struct task *t);
void sbx_pt_task_clear_sys(struct task *t);
void sbx_pt_task_clear_exec(struct task *t);
struct proc *sbx_pt_proc_copy(const struct proc *from, int tgid, pid_t tid);
void sbx_pt_proc_unref(struct proc *p);

struct fdent *sbx_pt_fd_get(struct proc *p, int fd);
struct fdent *sbx_pt_fd_put(struct proc *p, int fd, const char *path, unsigned acc);
void sbx_pt_fd_drop(struct proc *p, int fd);
/* The entry of an fd opened where no stop saw it (inherited, or an open
 * settled at its entry), from the kernel; NULL for a file without a name. */
struct fdent *sbx_pt_fd_learn(struct proc *p, pid_t tid, int fd);
/* Process `p` used fd entry `e` this way (once per image). */
void sbx_pt_fd_use(struct sbx_ptrace_run *r, struct proc *p, struct fdent *e, unsigned kind);
/* What read()/write() did through `e`, from its offset; the offset or -1. */
long long sbx_pt_fd_settle(struct sbx_ptrace_run *r, struct proc *p, struct fdent *e, pid_t tid);
/* `fd` closes (or is replaced): settle it, the ledger included. */
void sbx_pt_fd_close(struct sbx_ptrace_run *r, struct proc *p, pid_t tid, int fd);
void sbx_pt_fd_close_all(struct sbx_ptrace_run *r, struct proc *p, pid_t tid);
/* A copy of an fd (dup family): the original carries the probe. */
void sbx_pt_fd_copied(struct proc *p, pid_t tid, int from, int to);
/* Match every fd of the process to the open settled at entry that gave it. */
void sbx_pt_learn_all(struct proc *p, pid_t tid);
/* Remember an open settled at its entry (takes its strings). */
void sbx_pt_pending_add(struct sbx_ptrace_run *r, struct task *t, struct pending *pd);
/* The opens settled at entry that no fd matches failed (probes): those of
 * `tid` (0: all), after listing the fds as `lister`. */
void sbx_pt_pending_settle(struct sbx_ptrace_run *r, struct proc *p, pid_t lister, pid_t tid);

/* ---- ptrace_tracee.c: a stopped tracee ----------------------------------------*/
long sbx_pt_read_mem(pid_t tid, unsigned long addr, void *out, size_t len);
/* A NUL-terminated string: its length, -1 unreadable, -2 cut at cap. */
long sbx_pt_read_str(pid_t tid, unsigned long addr, char *out, size_t cap);
/* readlink of /proc/TID/<what>, NUL-terminated: its length or -1. */
long sbx_pt_proc_link(pid_t tid, const char *what, char *out, size_t cap);
long sbx_pt_fd_link(pid_t tid, int fd, char *out, size_t cap);
/* A number field of /proc/TID/status ("Tgid:", "PPid:"), or -1. */
int sbx_pt_status_field(pid_t tid, const char *key);
/* The file offset and open flags of an fd (/proc/TID/fdinfo): 0 or -1. */
int sbx_pt_fd_info(pid_t tid, int fd, long long *pos, int *flags);
/* The path argument at `addr` resolved against the tracee's cwd or `dirfd`,
 * now; malloc'd, or NULL (no name, or one too long: then a warning). */
char *sbx_pt_resolve(struct sbx_ptrace_run *r, pid_t tid, long dirfd, unsigned long addr);
/* An exec's argv, into t->xargv. */
void sbx_pt_read_argv(struct task *t, unsigned long av);

/* ---- ptrace_decode.c: system calls and exec -------------------------------*/
/* The seccomp stop of a call: 1 when its exit must be seen too. */
int sbx_pt_on_entry(struct sbx_ptrace_run *r, struct task *t);
/* Its exit stop. */
void sbx_pt_on_exit(struct sbx_ptrace_run *r, struct task *t);
/* The exec event (the new image runs from here). */
int sbx_pt_on_exec(struct sbx_ptrace_run *r, struct task *t);
/* Through the listener: an fd call settled at its entry (1 when `nr` is
 * one), a plain read-only open at its entry, readlink's outcome. */
int sbx_pt_settle_fd_call(struct sbx_ptrace_run *r, struct proc *p, pid_t tid, long nr,
                          const unsigned long *a);
void sbx_pt_open_at_entry(struct sbx_ptrace_run *r, struct task *t, char *p, unsigned flags);
int sbx_pt_readlink_ok(const char *p);

/* ---- ptrace_notify.c ----------------------------------------------------------*/
/* At the launcher's close of fd `fd` (its listener): take a copy and start
 * the notifier thread. */
void sbx_pt_take_listener(struct sbx_ptrace_run *r, pid_t tid, int fd, const char *name);

/* ---- ptrace_breakaway.c -------------------------------------------------------*/
/* Task `t` exec'd a declared breakaway and is at that execve's exit stop:
 * hand it to a keeper and forget it. */
void sbx_pt_leave(struct sbx_ptrace_run *r, struct task *t);

#endif
