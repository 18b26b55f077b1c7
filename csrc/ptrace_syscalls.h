/* ptrace_syscalls.h — the system calls that stop under the ptrace backend:
 * the one list the launcher's seccomp filter and the tracer share.  Same
 * coverage as the eBPF backend; plain read/write are settled from file
 * offsets instead (see ptrace_tracer.h).  mmap (when it maps a file) and
 * fcntl (when it duplicates an fd) are added by the filter itself. */
#ifndef SBX_PTRACE_SYSCALLS_H
#define SBX_PTRACE_SYSCALLS_H

#include <sys/syscall.h>

static const int sbx_pt_syscalls[] = {
#ifdef SYS_open
    SYS_open, SYS_creat, SYS_rename,
    SYS_unlink, SYS_rmdir, SYS_mkdir, SYS_link, SYS_symlink, SYS_chmod, SYS_chown,
    SYS_lchown, SYS_utime, SYS_utimes, SYS_futimesat, SYS_getdents, SYS_dup2,
    SYS_mknod,
#endif
    SYS_openat, SYS_openat2, SYS_renameat, SYS_renameat2, SYS_unlinkat, SYS_mkdirat, SYS_linkat,
    SYS_symlinkat, SYS_truncate, SYS_ftruncate, SYS_fchmod, SYS_fchmodat, SYS_fchown,
    SYS_fchownat, SYS_utimensat, SYS_getdents64, SYS_execve, SYS_execveat, SYS_chdir,
    SYS_close, SYS_close_range, SYS_dup, SYS_dup3, SYS_pread64, SYS_pwrite64,
    SYS_preadv, SYS_pwritev, SYS_preadv2, SYS_pwritev2, SYS_sendfile,
    SYS_copy_file_range, SYS_mknodat, SYS_io_uring_setup,
};
#define SBX_PT_NSYSCALLS (sizeof sbx_pt_syscalls / sizeof sbx_pt_syscalls[0])

/* Calls whose outcome does not change what is recorded (a stat is a probe
 * whether it succeeds or not): they go to the seccomp user-notification
 * listener, a cheaper round trip than a ptrace stop, and continue at once.
 * Where the kernel has no listener they stop under ptrace like the rest. */
static const int sbx_pt_notify_syscalls[] = {
#ifdef SYS_stat
    SYS_stat, SYS_lstat, SYS_access, SYS_readlink,
#endif
    SYS_newfstatat, SYS_statx, SYS_faccessat, SYS_faccessat2, SYS_readlinkat,
};
#define SBX_PT_NNOTIFY (sizeof sbx_pt_notify_syscalls / sizeof sbx_pt_notify_syscalls[0])

#endif
