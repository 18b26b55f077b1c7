/* ebpf.h — the Linux eBPF backend, as a plain C API (no Python).
 *
 * The Python extension (module.c) and the command-line front use it.  The
 * BPF programs are loaded once per process; any number of runs may be in
 * flight at once, from any threads, each with its own run id.
 *
 * A run follows tasks, not a pid list given up front: a task is traced when
 * a traced task (or a registered *spawner* thread) forks it, in the kernel,
 * before the child's first instruction.
 */
#ifndef SBX_EBPF_H
#define SBX_EBPF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "result.h"

/* Load and attach the BPF programs and start the event reader thread.
 * Idempotent and thread-safe.  On failure returns -errno and writes a
 * sentence naming the missing capability and the remedy into err. */
int sbx_ebpf_load(char *err, size_t errlen);

/* Start a run; returns its id (> 0) or 0 on failure. */
uint32_t sbx_ebpf_run_begin(void);

/* Benchmarks only: detach (0) or attach again (1) the loaded programs;
 * -EBUSY while a run is under way. */
int sbx_ebpf_set_attached(int on);

/* Children forked by thread `tid` from now on belong to `run` (the thread
 * itself is not traced; its children are, and they stay quiet until their
 * first successful exec, so the spawner's pre-exec set-up is not reported,
 * while failed exec attempts along $PATH are reported as probes). */
int sbx_ebpf_spawner_set(uint32_t run, pid_t tid);
int sbx_ebpf_spawner_clear(pid_t tid);

/* Trace an existing task (a thread of the caller, for in-process tracing)
 * and stop tracing it. */
int sbx_ebpf_track_task(uint32_t run, pid_t tid);
int sbx_ebpf_untrack_task(pid_t tid);

/* The run's breakaway declaration (sandbox_py/breakaway.py: program names
 * and absolute paths), matched in the kernel at each exec.  0, or -1 with a
 * sentence in err (an entry too long for the kernel's key). */
int sbx_ebpf_run_breakaway(uint32_t run, const char *const *entries, size_t n,
                           char *err, size_t errlen);

/* Wait until every traced task of the run has exited.  timeout < 0 waits
 * forever.  Returns 1 when the tree is gone, 0 on timeout. */
int sbx_ebpf_run_wait(uint32_t run, double timeout);

/* Kill every task of the run (SIGKILL), including tasks forked meanwhile. */
void sbx_ebpf_run_kill(uint32_t run);

/* Finish the run and hand over its result (caller frees it). */
struct sbx_result *sbx_ebpf_run_end(uint32_t run);

#endif
