/* ptrace_syscalls.h — the system calls that stop under the ptrace backend,
 * generated from the one table (csrc/linux/syscalls.def): the launcher's
 * seccomp filter and the tracer share these lists.
 *
 *  - calls whose outcome does not change what is recorded (a stat is a
 *    probe whether it succeeds or not; readlink is settled with one lstat)
 *    go to the seccomp user-notification listener, a cheaper round trip
 *    than a ptrace stop;
 *  - so do the fd calls settled at their entry: the ones that read or
 *    list through an fd (pread, getdents), close (the ledger settles the
 *    fd while it is still open) and mmap of a file (added by the filter);
 *  - every other row of the table stops, except the hot fd calls (read,
 *    write, readv, writev), which are settled from file offsets when the
 *    fd is closed (see ptrace_tracer.h);
 *  - the ledger's other calls (close_range, dup) stop too; fcntl stops
 *    when it duplicates an fd (added by the filter).
 *  Without a listener (an old kernel) the notified calls stop as well. */
#ifndef SBX_PTRACE_SYSCALLS_H
#define SBX_PTRACE_SYSCALLS_H

#include <sys/syscall.h>

#include "access.h"

#define SBX_PT_NOTIFIED(op) ((op) == SBX_OP_PROBE || (op) == SBX_OP_READLINK)

/* an fd call that reads or lists is settled at its entry */
#define SBX_PT_FD_NOTIFIED(use) ((use) != SBX_USE_WRITE)

static const int sbx_pt_syscalls[] = {
#define SBX_SC_PATH(name, op, np, d0, p0, d1, p1) SBX_PT_NOTIFIED(op) ? -1 : __NR_##name,
#define SBX_SC_FD(name, use, fd, hot) hot || SBX_PT_FD_NOTIFIED(use) ? -1 : __NR_##name,
#define SBX_SC_FD2(name, fd_in, fd_out) __NR_##name,
#define SBX_SC_UNSEEN(name) __NR_##name,
#include "syscalls.def"
    /* the open-file ledger */
    __NR_close_range, __NR_dup, __NR_dup3,
#ifdef __NR_dup2
    __NR_dup2,
#endif
};
#define SBX_PT_NSYSCALLS (sizeof sbx_pt_syscalls / sizeof sbx_pt_syscalls[0])

static const int sbx_pt_notify_syscalls[] = {
#define SBX_SC_PATH(name, op, np, d0, p0, d1, p1) SBX_PT_NOTIFIED(op) ? __NR_##name : -1,
#define SBX_SC_FD(name, use, fd, hot) !hot && SBX_PT_FD_NOTIFIED(use) ? __NR_##name : -1,
#include "syscalls.def"
    __NR_close,
};
#define SBX_PT_NNOTIFY (sizeof sbx_pt_notify_syscalls / sizeof sbx_pt_notify_syscalls[0])

#endif
