/* result.h — what one traced run produced, in C, the same for every backend.
 *
 * The Python extension turns it into a sandbox_py.Result; the command-line
 * front (sbx-trace) writes it as the JSON schema of docs/json-schema.md.
 * Portable C99 (Linux extension and Windows launcher share it).
 */
#ifndef SBX_RESULT_H
#define SBX_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "pathset.h"

struct sbx_exec {
    int64_t pid, ppid;
    char *path;              /* absolute, clean; UTF-8 on Windows */
    char **argv;             /* argc strings */
    size_t argc;
    int breakaway;           /* left the run at this exec, by declaration:
                              * Result.breakaways, not Result.execs */
};

/* One program image of one process (docs/semantics.md, "Who did what"):
 * a process that execs twice has two records with the same pid; a forked
 * child's accesses before its exec are a record of their own, with the
 * parent's image.  Threads are their process. */
struct sbx_process {
    int64_t pid, ppid;
    int64_t parent;          /* index of the record this pid was forked from,
                              * -1 for the root (or an unknown parent) */
    char *path;              /* the image executed; NULL while unknown */
    char **argv;             /* argc strings */
    size_t argc;
    char *cwd;               /* at its exec; NULL where the mechanism did not say */
    int exec;                /* 1: the record of an exec; 0: of a fork */
    int has_status, status;  /* exit status (subprocess convention) if known */
    int current;             /* still the pid's current image */
    sbx_pathset *paths;      /* this record's own accesses */
};

struct sbx_result {
    sbx_pathset *paths;      /* the run's sets (the precision rules across the run) */
    struct sbx_process *procs;   /* in start order */
    size_t nprocs, cap_procs;
    struct sbx_pid_slot *pid_index;  /* pid -> index of its current record */
    size_t pid_cap, pid_count;
    struct sbx_exec *execs;
    size_t nexecs, cap_execs;
    char **warnings;         /* human-readable, one reason each */
    size_t nwarnings, cap_warnings;
    int complete;            /* 0 as soon as anything may be missing */
    int has_status;          /* set by launchers that reap the root */
    int status;              /* subprocess convention: <0 = killed by signal */
};

struct sbx_result *sbx_result_new(void);
void sbx_result_free(struct sbx_result *r);

/* Record a warning and mark the result incomplete (printf-style).  The same
 * warning text is kept once. */
void sbx_result_warn(struct sbx_result *r, const char *fmt, ...);

/* Append an exec record (strings are copied).  Returns 0 or -1. */
int sbx_result_add_exec(struct sbx_result *r, int64_t pid, int64_t ppid,
                        const char *path, const char *const *argv, size_t argc);

/* Forget the last exec record (an announced breakaway whose exec failed). */
void sbx_result_drop_last_exec(struct sbx_result *r);
/* Record that process `pid` left the run at its exec of `path` (breakaway
 * declaration): an exec record marked breakaway, listed apart. */
int sbx_result_add_breakaway(struct sbx_result *r, int64_t pid, int64_t ppid,
                             const char *path, const char *const *argv, size_t argc);

/* ---- who did what: per-process records ----------------------------------
 *
 * Every backend tells the result when a process of the run is forked and
 * when it execs, and records each access with the pid (thread-group id) that
 * made it.  sbx_result_add_exec() opens the exec record itself, so a backend
 * only adds sbx_result_proc_fork() at fork/clone of a new process (never a
 * thread), sbx_result_proc_exit() where it learns a status, and calls
 * sbx_result_record()/sbx_result_settle() instead of the pathset functions. */

/* `pid` was forked by `ppid`: a new record with the parent's current image
 * (path, argv, cwd), parent = ppid's current record.  A pid already known
 * is left alone (a backend that sees the fork twice), unless it has exited
 * (sbx_result_proc_exit): then the pid was given again, to a new process.
 * Returns 0 or -1. */
int sbx_result_proc_fork(struct sbx_result *r, int64_t pid, int64_t ppid);

/* The index of pid's record before its current exec: what a spawned child
 * did inside libc before its exec (posix_spawnp's search, a file action's
 * open) when its parent tells only after the exec was recorded.  Made
 * (forked from `ppid`) when the pid is unknown, put right before the exec's
 * record when it has none (the records after it are renumbered).  The
 * index, or -1 (out of memory). */
int64_t sbx_result_proc_before_exec(struct sbx_result *r, int64_t pid, int64_t ppid);

/* The cwd of pid's current record (at its exec).  Copies; 0 or -1. */
int sbx_result_proc_cwd(struct sbx_result *r, int64_t pid, const char *cwd);

/* `pid` exited with `status` (subprocess convention: <0 = signal). */
void sbx_result_proc_exit(struct sbx_result *r, int64_t pid, int status);

/* Record an access by `pid`: into the run's sets and the process's own.
 * An unknown pid gets a record of its own (no image, parent unknown).
 * Returns 0 or -1 (out of memory: the caller marks the run incomplete). */
int sbx_result_record(struct sbx_result *r, int64_t pid, const char *path, size_t len,
                      unsigned flags);

/* The ledger's rule (access.h, sbx_ledger_settle) for an open file of
 * `pid` closed or dropped: for the run and for that process.  0 or -1. */
int sbx_result_settle(struct sbx_result *r, int64_t pid, const char *path, size_t len,
                      int used);

/* Index of pid's current record, or -1. */
int64_t sbx_result_proc_index(const struct sbx_result *r, int64_t pid);

/* Before the records are handed out (Python, JSON): drop fork records that
 * did nothing (no access, no child, no status of their own worth keeping
 * apart from the exec that replaced them) and renumber the parents.  Call
 * once, when the run is over. */
void sbx_result_settle_processes(struct sbx_result *r);

#endif
