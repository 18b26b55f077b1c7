/* shim_linux.h — Linux-only pieces shared by the Linux glue files
 * (shim_os_linux.c, hooks_linux.c, glibc_internal.c, raw_syscalls.c,
 * loader_audit.c). */
#ifndef SBX_SHIM_LINUX_H
#define SBX_SHIM_LINUX_H

#include "../core/shim.h"

/* Raw system call (no errno, returns -errno): the shim must not call the
 * libc functions it intercepts (recursion) nor depend on libc state that
 * may be half-built (early start-up, vfork). */
long sbx_sys(long n, long a, long b, long c, long d, long e, long f);
#define SBX_SYS0(n) sbx_sys(n, 0, 0, 0, 0, 0, 0)
#define SBX_SYS1(n, a) sbx_sys(n, (long)(a), 0, 0, 0, 0, 0)
#define SBX_SYS2(n, a, b) sbx_sys(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define SBX_SYS3(n, a, b, c) sbx_sys(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define SBX_SYS4(n, a, b, c, d) sbx_sys(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* glibc_internal.c: route glibc's own opens, reads and maps (locale, NSS,
 * time zones) through the shim; a warning when that is not possible. */
void sbx_glibc_internal_patch(void);

/* raw_syscalls.c: make a system call that bypasses libc a warning (Syscall
 * User Dispatch); armed in each image's constructor and each forked child. */
void sbx_raw_watch_arm(void);

#endif
