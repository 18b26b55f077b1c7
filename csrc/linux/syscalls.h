/* syscalls.h — user-space view of the Linux syscall table (syscalls.def):
 * what a path-taking call does and where its names are, and how open(2)
 * flags read in the access model's terms.  Shared by the eBPF reader and
 * the ptrace tracer; the BPF programs include syscalls.def directly. */
#ifndef SBX_LINUX_SYSCALLS_H
#define SBX_LINUX_SYSCALLS_H

#include "access.h"

/* Where a path-taking call's names are: argument index of each name's
 * dirfd (-1: the cwd) and of the name. */
struct sbx_sc_layout {
    enum sbx_op op;
    int npath, d0, p0, d1, p1;
};

/* The row of path-taking call `nr`; 0, or -1 when it is not one. */
int sbx_linux_path_call(long nr, struct sbx_sc_layout *out);

/* The operation of `nr` (SBX_OP_NONE when it takes no name). */
enum sbx_op sbx_linux_path_op(long nr);

/* The fd use of `nr` (0 when none), its fd argument and whether it is hot
 * (see syscalls.def). */
int sbx_linux_fd_call(long nr, enum sbx_use *use, int *fd, int *hot);

/* A copy between two fds (sendfile, splice...): 1 with the argument index
 * of the fd read and of the fd written, else 0. */
int sbx_linux_fd2_call(long nr, int *fd_in, int *fd_out);

/* open(2) flags -> SBX_OPEN_* intent. */
unsigned sbx_linux_open_intent(unsigned oflags);

/* Name of a system call of the table ("syscall" for others). */
const char *sbx_linux_syscall_name(long nr);

#endif
