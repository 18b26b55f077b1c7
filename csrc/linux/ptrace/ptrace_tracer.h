/* ptrace_tracer.h — the ptrace backend: seccomp-filtered ptrace.
 *
 * The child is started by the launcher (ptrace_launcher.c), which blocks on
 * a gate pipe until the tracer thread has seized it, installs a seccomp
 * filter that makes only the file system calls stop (SECCOMP_RET_TRACE),
 * and execs the command.  The tracer thread follows fork/vfork/clone/exec
 * through ptrace options and decodes each stopped call with
 * PTRACE_GET_SYSCALL_INFO (entry arguments, exit value).
 *
 * Plain read/write/readv/writev do not stop (they are most of a build's
 * calls): whether an fd was read or written is settled from its file
 * offset (/proc/PID/fdinfo) when it is closed, when the process execs and
 * when it exits.  Positional and mapping calls (pread, mmap, sendfile...)
 * stop and count directly.
 */
#ifndef SBX_PTRACE_TRACER_H
#define SBX_PTRACE_TRACER_H

#include <stddef.h>
#include <sys/types.h>

#include "result.h"

struct sbx_ptrace_run;

/* 1 when this process can trace its children, else 0; reason either way. */
int sbx_ptrace_available(char *why, size_t len);

/* Create a run (its gate pipe); NULL with a sentence in err. */
struct sbx_ptrace_run *sbx_ptrace_begin(char *err, size_t errlen);

/* The read end of the gate, to pass to the launcher. */
int sbx_ptrace_gate_fd(const struct sbx_ptrace_run *run);

/* Seize the launcher `pid` from the tracer thread and open the gate.
 * -1 with a sentence in err when it cannot be traced. */
int sbx_ptrace_attach(struct sbx_ptrace_run *run, pid_t pid, const char *argv0,
                      char *err, size_t errlen);

/* Trace `pid`, a launcher in adopt mode that the preload shim started in
 * place of a static program (it waits until traced).  Its own exec event
 * (of `launcher`) is not recorded.  NULL with a sentence in err. */
struct sbx_ptrace_run *sbx_ptrace_adopt(pid_t pid, const char *launcher, char *err,
                                        size_t errlen);

/* The run's breakaway declaration (csrc/core/breakaway.h; one entry per
 * line), and the launcher that keeps a process which left the run. */
int sbx_ptrace_set_breakaway(struct sbx_ptrace_run *run, const char *decl, const char *keeper);

/* Wait until every traced task has exited (timeout < 0: forever). */
int sbx_ptrace_wait(struct sbx_ptrace_run *run, double timeout);

/* SIGKILL every traced task. */
void sbx_ptrace_kill(struct sbx_ptrace_run *run);

/* Stop tracing, free the run, hand over the result. */
struct sbx_result *sbx_ptrace_end(struct sbx_ptrace_run *run);

#endif
