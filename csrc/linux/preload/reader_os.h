/* reader_os.h — what the shim-log reader (preload_reader.c) asks of the
 * system it runs on.  The reader itself (record decoding, exec
 * bookkeeping, the result) is the same on Linux (preload backend) and
 * macOS (interpose backend); these are the parts that differ:
 *
 *   Linux  reader_os_linux.c         pidfd per process, fallocate(PUNCH_HOLE),
 *                                    a CLOCK_MONOTONIC condition variable
 *   macOS  csrc/macos/reader_os_darwin.c   kqueue EVFILT_PROC/NOTE_EXIT,
 *                                    F_PUNCHHOLE, pthread_cond_timedwait_relative_np
 */
#ifndef SBX_READER_OS_H
#define SBX_READER_OS_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

struct sbx_result;

/* Watching processes exit.  A handle is >= 0 while the process is
 * watched; -1 means it is already gone (nothing to wait for). */
struct sbx_watchset;
struct sbx_watchset *sbx_watchset_new(void);
void sbx_watchset_free(struct sbx_watchset *ws);
int sbx_watch_open(struct sbx_watchset *ws, int pid);
/* 1 once the watched process has exited (then close the handle). */
int sbx_watch_exited(struct sbx_watchset *ws, int handle, int pid);
/* SIGKILL it; 0 when a signal was sent. */
int sbx_watch_kill(struct sbx_watchset *ws, int handle, int pid);
void sbx_watch_close(struct sbx_watchset *ws, int handle);

/* The parent pid and start time of `pid`, from the kernel (not from a
 * record): 0, or -1 when it is gone.  Start times only need to compare. */
int sbx_proc_lineage(int pid, int *ppid, unsigned long long *start);
/* Now, in the units of sbx_proc_lineage's start times. */
unsigned long long sbx_proc_now(void);

/* 1 when the environment `pid` was started with (its current image's)
 * holds the entry `entry` ("NAME=value") exactly, else 0 (also when it
 * cannot be read). */
int sbx_proc_has_env(int pid, const char *entry);

/* SIGKILL every process of this user whose environment holds the entry
 * `entry` ("NAME=value"); the number killed. */
int sbx_kill_by_env(const char *entry);

/* The run's log without a name in any directory, so that nothing is left
 * behind whoever is killed (Linux: a memfd): its fd, or -1 where there is
 * none (then a file in /dev/shm or $TMPDIR is used and removed at the end,
 * or by the next run when its owner was killed). */
int sbx_log_anonymous(void);
/* The name the traced processes open the anonymous log `fd` by, valid
 * while the calling thread lives (Linux: /proc/PID/task/TID/fd/FD, which
 * no later run of this process will name the same way while the thread's
 * id is not reused).  0, or -1. */
int sbx_log_anonymous_name(int fd, char *name, size_t cap);

/* Give back the memory of consumed log pages (the file stays its size). */
void sbx_log_punch(int fd, off_t off, off_t len);

/* A condition variable the reader thread sleeps on for `us` microseconds
 * at most, immune to wall-clock changes. */
void sbx_cond_init_monotonic(pthread_cond_t *c);
void sbx_cond_wait_us(pthread_cond_t *c, pthread_mutex_t *mu, long us);

/* Adoption of the static programs the shim hands off (it execs the
 * launcher in adopt mode in their place): Linux traces them with the
 * ptrace backend, whose result joins the run's.  NULL where the system
 * has no such hand-off (macOS). */
struct sbx_adopter {
    /* Trace `pid`, a launcher in adopt mode (`launcher` is its path): an
     * opaque run, or NULL with a sentence in err. */
    void *(*adopt)(pid_t pid, const char *launcher, char *err, size_t errlen);
    int (*wait)(void *run, double timeout);      /* 1 once it is over */
    void (*kill)(void *run);
    struct sbx_result *(*end)(void *run);         /* its result; the run is freed */
};
const struct sbx_adopter *sbx_os_adopter(void);

/* Why a process that was exec'd never said hello (the shim's START
 * record), and what to do, for the Result's warning. */
const char *sbx_unobserved_reason(int is_static);

#endif
