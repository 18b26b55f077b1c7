/* preload_reader.h — the Python-process half of the preload backend.
 *
 * A run creates the shared log (shims/core/sbx_log.h) the traced
 * processes write into, follows it from a reader thread, watches every
 * process it learns about with a pidfd, and turns the records into an
 * sbx_result with the same semantics as the eBPF backend (docs/semantics.md).
 */
#ifndef SBX_PRELOAD_READER_H
#define SBX_PRELOAD_READER_H

#include <stddef.h>
#include <sys/types.h>

#include "result.h"

struct sbx_preload_run;

/* Create the log and start the reader thread.  The log has no name in any
 * directory where the system allows (reader_os.h: sbx_log_anonymous);
 * `named` asks for a file in /dev/shm (else $TMPDIR) all the same: the
 * processes of a Landlock domain cannot reach an anonymous log through the
 * owner's /proc entry.  NULL on failure, with a sentence in err. */
struct sbx_preload_run *sbx_preload_begin(int named, char *err, size_t errlen);

/* The path traced processes map (SBX_PRELOAD_LOG). */
const char *sbx_preload_log_path(const struct sbx_preload_run *run);

/* The root process exists (argv0 names it in warnings). */
void sbx_preload_root(struct sbx_preload_run *run, pid_t pid, const char *argv0);

/* Statically linked programs announced by the shim are run by this
 * launcher and adopted by the ptrace backend (their results merge into
 * this run's).  Without it they are reported as unobserved. */
void sbx_preload_handoff(struct sbx_preload_run *run, const char *launcher);

/* Wait until every known process has exited and the log is drained.
 * timeout < 0 waits forever.  1 when done, 0 on timeout. */
int sbx_preload_wait(struct sbx_preload_run *run, double timeout);

/* SIGKILL every known live process of the run. */
void sbx_preload_kill(struct sbx_preload_run *run);

/* A test session re-executed under the shim reads its own log in windows
 * (one per test):
 *   sbx_preload_log_create  before the exec: a log, created paused, whose
 *                           path goes into SBX_PRELOAD_LOG;
 *   sbx_preload_attach      after it, in the traced process itself: read it;
 *   sbx_preload_window_begin / _end  record between the two: this process
 *                           and the processes started in the window (not
 *                           ones that ran before it), children waited for
 *                           up to `wait` seconds (*done = 0 when some still
 *                           run).  The caller frees the window's result.
 * sbx_preload_end finishes an attached run as any other. */
int sbx_preload_log_create(char *path, size_t cap, char *err, size_t errlen);
struct sbx_preload_run *sbx_preload_attach(const char *path, char *err, size_t errlen);
int sbx_preload_window_begin(struct sbx_preload_run *run, char *err, size_t errlen);
struct sbx_result *sbx_preload_window_end(struct sbx_preload_run *run, double wait, int *done);
/* The breakaway declaration (SBX_PRELOAD_BREAKAWAY's form) of this process's
 * own shim, for the next windows; "" for none.  -1 without a shim here. */
int sbx_preload_self_breakaway(const char *text);
/* The calling thread's file calls are (on=1) or are no longer (on=0) recorded
 * by this process's own shim: sandbox_py's work, not the program's. */
int sbx_preload_self_quiet(int on);

/* Stop the reader, settle what the log says, delete the log and free the
 * run.  The caller frees the result. */
struct sbx_result *sbx_preload_end(struct sbx_preload_run *run);


#endif
