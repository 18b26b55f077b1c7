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

/* Create the log (in /dev/shm, else $TMPDIR) and start the reader thread.
 * NULL on failure, with a sentence in err. */
struct sbx_preload_run *sbx_preload_begin(char *err, size_t errlen);

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

/* Stop the reader, settle what the log says, delete the log and free the
 * run.  The caller frees the result. */
struct sbx_result *sbx_preload_end(struct sbx_preload_run *run);


#endif
