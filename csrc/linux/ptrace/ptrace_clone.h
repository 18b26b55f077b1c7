/* ptrace_clone.h — no process of a ptrace run starts untraced.
 *
 * clone(CLONE_UNTRACED) makes a child that no tracer follows (the kernel
 * does not apply PTRACE_O_TRACECLONE/TRACEFORK to it): its reads would go
 * unseen.  The launcher's filter stops such a clone (its flags are a
 * register the filter can read) and the tracer takes the flag off before
 * the call runs; the kernel runs the filter again on the changed call,
 * which now passes.  clone3 keeps its flags in memory, which a filter
 * cannot read and which another thread could rewrite after a tracer
 * looked: it fails with ENOSYS, and libc falls back to clone (container
 * runtimes do the same).
 *
 * Used by the run's tracer and by the breakaway keeper; the includer
 * brings the ptrace request names (<sys/ptrace.h> or <linux/ptrace.h>).
 */
#ifndef SBX_PTRACE_CLONE_H
#define SBX_PTRACE_CLONE_H

#include <sched.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>
#if defined(__aarch64__)
#include <elf.h>
#endif

#ifndef CLONE_UNTRACED
#define CLONE_UNTRACED 0x00800000
#endif
/* PTRACE_POKEUSER in glibc, PTRACE_POKEUSR in <linux/ptrace.h> */
#define SBX_PTRACE_POKEUSER 6
#ifndef __NR_clone3
#define __NR_clone3 435
#endif

/* Clear CLONE_UNTRACED in the flags of the clone that task `tid` is
 * stopped in (at its seccomp stop), whose first argument is `flags`.
 * 0, or -1 when the register could not be written. */
static inline int sbx_pt_strip_untraced(pid_t tid, unsigned long flags)
{
    unsigned long now = flags & ~(unsigned long)CLONE_UNTRACED;
#if defined(__x86_64__)
    return syscall(SYS_ptrace, SBX_PTRACE_POKEUSER, tid,
                   (void *)offsetof(struct user_regs_struct, rdi), (void *)now) < 0 ? -1 : 0;
#elif defined(__aarch64__)
    struct user_regs_struct regs;
    struct iovec io = {&regs, sizeof regs};
    if (syscall(SYS_ptrace, PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &io) < 0)
        return -1;
    regs.regs[0] = now;
    return syscall(SYS_ptrace, PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &io) < 0 ? -1 : 0;
#else
    (void)tid;
    (void)now;
    return -1;
#endif
}

#endif
