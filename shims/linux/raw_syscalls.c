/* raw_syscalls.c — a trip-wire for system calls made without libc.
 *
 * The shim sees what goes through libc.  A `syscall` instruction in the
 * program's own code (hand-written assembly, Go's runtime, an inlined
 * syscall), or a 32-bit `int $0x80`, goes straight to the kernel.  Such a
 * call cannot be traced from here, but it can be noticed: Syscall User
 * Dispatch (prctl PR_SET_SYSCALL_USER_DISPATCH, Linux 5.11) makes the
 * kernel turn every system call that does not come from one address range
 * into a SIGSYS for the thread.  The range given is the span of the objects
 * mapped at start-up other than the executable: libc, the loader, the vDSO
 * and this shim sit there; the executable lies outside it (below the
 * libraries as a PIE at 0x55... or fixed at 0x400000; above them when
 * `ulimit -s unlimited` maps libraries bottom-up).
 *
 * The first such call makes the process's Result incomplete, with a warning
 * naming the call; then the trip-wire steps aside (the selector byte says
 * "allow" from then on) and the call runs as if nothing happened.  One
 * warning per process is what the Result needs: once one call went past
 * the shim, the process's record is known to be partial.
 *
 * Why not a seccomp filter from the launcher: without CAP_SYS_ADMIN it
 * needs no_new_privs for the whole tree (set-uid programs would lose their
 * privilege), and its user-notification action outranks the ptrace
 * backend's own filter in the static programs handed to ptrace.  Why not
 * scanning the loaded code for `0f 05`: every large binary has such bytes
 * inside other instructions (python3.11: 8, cc1: 62, none a real syscall),
 * so a scan needs a full instruction decoder, and costs ~1 ms per MB of
 * code at every exec.
 *
 * What is not covered (docs/unprivileged.md): calls made from a library
 * loaded at start-up other than libc, or from code mapped later into a gap
 * between those libraries (both sit inside the range); threads started
 * without pthread_create (a raw clone: the kernel does not pass the setting
 * on to a new thread); a program that has its own SIGSYS handler or sets
 * up Syscall User Dispatch itself (the wire is then removed, and that is a
 * warning too); and a kernel without Syscall User Dispatch (every process
 * is then named as not watched).
 *
 * The setting is per thread and not inherited by fork, clone or exec: it is
 * armed in the constructor of every image, in every child forked through
 * libc and at the start of every thread started through pthread_create.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <link.h>
#include <linux/audit.h>
#include <sys/auxv.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "hook_linux.h"
#include "shim.h"
#include "shim_linux.h"
#include "syscalls.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#endif
#ifndef PR_SYS_DISPATCH_OFF
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#ifndef SYSCALL_DISPATCH_FILTER_ALLOW
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2     /* si_code of a dispatched call */
#endif

#define USER_TOP 0x800000000000UL   /* end of the 47-bit user address space */

#if defined(__x86_64__)
static volatile char g_selector = SYSCALL_DISPATCH_FILTER_ALLOW;
static unsigned long g_lo, g_hi;    /* the libraries' span at start-up */
static int g_armed;                 /* this process set the wire at least once */
static int g_off;                   /* removed for good (a SIGSYS handler of the program) */

static size_t put(char *text, size_t k, size_t cap, const char *s)
{
    while (*s && k < cap - 1)
        text[k++] = *s++;
    return k;
}

static size_t put_number(char *text, size_t k, size_t cap, unsigned v)
{
    char digits[12];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (nd && k < cap - 1)
        text[k++] = digits[--nd];
    return k;
}

/* "process N made system call openat (257) without libc: ..." — formatted
 * by hand: this runs in a signal handler. */
static void warn_call(int arch_ia32, int nr)
{
    char text[256];
    size_t k = 0, cap = sizeof text;
    if (arch_ia32) {
        k = put(text, k, cap, "made a 32-bit system call (int $0x80 or sysenter, number ");
        k = put_number(text, k, cap, (unsigned)nr);
        k = put(text, k, cap, "), which the preload backend does not see");
    } else {
        const char *name = sbx_linux_syscall_name(nr);
        k = put(text, k, cap, "made system call ");
        if (strcmp(name, "syscall") != 0) {
            k = put(text, k, cap, name);
            k = put(text, k, cap, " (");
            k = put_number(text, k, cap, (unsigned)nr);
            k = put(text, k, cap, ")");
        } else {
            k = put_number(text, k, cap, (unsigned)nr);
        }
        k = put(text, k, cap, " without libc");
        if (nr == SYS_io_uring_setup)
            k = put(text, k, cap, " (io_uring: the requests it submits are not seen either)");
        k = put(text, k, cap, ", which the preload backend does not see");
    }
    k = put(text, k, cap, "; later ones in this process are not checked: use ptrace or ebpf");
    text[k] = '\0';
    sbx_warn_process(text);
}

/* What the program believes SIGSYS does while our handler stands in: the
 * disposition it had at start-up, or SIG_DFL / SIG_IGN set since (a child
 * resetting every signal before exec, as CPython's subprocess does, must not
 * cost the wire).  A handler of its own replaces ours: give_up_sigsys(). */
static struct sigaction g_prog;

/* SIG_DFL back in place from the handler, without libc (the kernel's
 * struct: handler, flags, restorer, mask) */
static void default_sigsys(void)
{
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        unsigned long mask;
    } k = {(void *)SIG_DFL, 0, NULL, 0};
    SBX_SYS4(SYS_rt_sigaction, SIGSYS, &k, NULL, 8);
}

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
    if (si->si_code != SYS_USER_DISPATCH) {
        /* a SIGSYS that is not ours (a seccomp trap, a kill): what the
         * program asked for, ignore or the default action */
        if (g_prog.sa_handler == SIG_IGN)
            return;
        default_sigsys();
        SBX_SYS3(SYS_tgkill, SBX_SYS0(SYS_getpid), SBX_SYS0(SYS_gettid), sig);
        return;
    }
    g_selector = SYSCALL_DISPATCH_FILTER_ALLOW;
    warn_call(si->si_arch != AUDIT_ARCH_X86_64, si->si_syscall);
    /* The kernel left the call unexecuted with its number back in rax and
     * the instruction pointer after it; every system call instruction
     * (syscall, int $0x80, sysenter) is two bytes: run it again, now allowed. */
    ucontext_t *uc = ctx;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)((unsigned long)si->si_call_addr - 2);
}

/* The span of every object mapped at start-up but the executable: the
 * libraries, the loader and the vDSO. */
static int library_span(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    unsigned long *span = data;
    if (!info->dlpi_name || !info->dlpi_name[0])
        return 0;       /* the executable (listed first, with an empty name) */
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD) {
            unsigned long a = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
            unsigned long e = a + info->dlpi_phdr[i].p_memsz;
            if (a < span[0])
                span[0] = a;
            if (e > span[1])
                span[1] = e;
        }
    return 0;
}

/* A program (Wine does) that sets up Syscall User Dispatch for itself
 * replaces ours in that thread: say so rather than lose the wire quietly. */
SBX_HOOK(int, prctl, (int op, ...))
{
    va_list ap;
    unsigned long a[4];
    va_start(ap, op);
    for (int i = 0; i < 4; i++)
        a[i] = va_arg(ap, unsigned long);
    va_end(ap);
    if (op == PR_SET_SYSCALL_USER_DISPATCH && g_armed && !g_off) {
        g_off = 1;
        g_selector = SYSCALL_DISPATCH_FILTER_ALLOW;
        sbx_warn_process("set up Syscall User Dispatch itself: system calls it makes without "
                         "libc are not watched by the preload backend");
    }
    return REAL(prctl)(op, a[0], a[1], a[2], a[3]);
}

/* The program takes SIGSYS for itself (seccomp sandboxes do): remove the
 * wire first, so that its handler never sees our dispatches, and say that
 * its later calls are not watched. */
static void give_up_sigsys(void)
{
    if (!g_armed || g_off)
        return;
    g_off = 1;
    g_selector = SYSCALL_DISPATCH_FILTER_ALLOW;
    REAL(prctl)(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    sbx_warn_process("installed its own SIGSYS handler: system calls it makes without libc "
                     "from then on are not watched by the preload backend");
}

/* A SIGSYS blocked by the program would turn a dispatched call into a
 * kill: it stays deliverable while the wire is set. */
static const sigset_t *keep_sigsys(int how, const sigset_t *set, sigset_t *copy)
{
    if (!set || how == SIG_UNBLOCK || !g_armed || g_off ||
        g_selector != SYSCALL_DISPATCH_FILTER_BLOCK || !sigismember(set, SIGSYS))
        return set;
    *copy = *set;
    sigdelset(copy, SIGSYS);
    return copy;
}

static int no_handler(const struct sigaction *act)
{
    return !(act->sa_flags & SA_SIGINFO) &&
           (act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN);
}

SBX_HOOK(int, sigaction, (int sig, const struct sigaction *act, struct sigaction *old))
{
    if (sig != SIGSYS || !g_armed || g_off)
        return REAL(sigaction)(sig, act, old);
    if (act && !no_handler(act)) {
        give_up_sigsys();
        return REAL(sigaction)(sig, act, old);
    }
    struct sigaction was = g_prog;
    if (act)
        g_prog = *act;
    if (old)
        *old = was;
    return 0;
}

SBX_HOOK(sighandler_t, signal, (int sig, sighandler_t h))
{
    if (sig != SIGSYS || !g_armed || g_off)
        return REAL(signal)(sig, h);
    if (h != SIG_DFL && h != SIG_IGN) {
        give_up_sigsys();
        return REAL(signal)(sig, h);
    }
    sighandler_t was = g_prog.sa_handler;
    g_prog.sa_handler = h;
    g_prog.sa_flags = 0;
    return was;
}

/* The older ways to set a disposition: rare enough to simply step aside. */
SBX_HOOK(sighandler_t, sigset, (int sig, sighandler_t h))
{
    if (sig == SIGSYS && g_armed && !g_off)
        give_up_sigsys();
    return REAL(sigset)(sig, h);
}

SBX_HOOK(sighandler_t, bsd_signal, (int sig, sighandler_t h))
{
    if (sig == SIGSYS && g_armed && !g_off)
        give_up_sigsys();
    return REAL(bsd_signal)(sig, h);
}

SBX_HOOK(sighandler_t, sysv_signal, (int sig, sighandler_t h))
{
    if (sig == SIGSYS && g_armed && !g_off)
        give_up_sigsys();
    return REAL(sysv_signal)(sig, h);
}

SBX_HOOK(int, sigprocmask, (int how, const sigset_t *set, sigset_t *old))
{
    sigset_t copy;
    return REAL(sigprocmask)(how, keep_sigsys(how, set, &copy), old);
}

SBX_HOOK(int, pthread_sigmask, (int how, const sigset_t *set, sigset_t *old))
{
    sigset_t copy;
    return REAL(pthread_sigmask)(how, keep_sigsys(how, set, &copy), old);
}

/* The calling thread (the kernel keeps the setting per thread).  One
 * selector byte for the whole process: the first call that trips it lets
 * every thread through from then on, as the warning says. */
static int arm_thread(void)
{
    return REAL(prctl)(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, g_lo, g_hi - g_lo,
                       (unsigned long)&g_selector);
}

/* A thread the program starts does not inherit the setting: its start
 * routine is wrapped to arm it first. */
struct thread_start {
    void *(*fn)(void *);
    void *arg;
};

static void *armed_start(void *p)
{
    struct thread_start ts = *(struct thread_start *)p;
    free(p);
    if (g_armed && !g_off)
        arm_thread();
    return ts.fn(ts.arg);
}

SBX_HOOK(int, pthread_create,
         (pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg))
{
    struct thread_start *ts;
    if (!g_armed || g_off || !(ts = malloc(sizeof *ts)))
        return REAL(pthread_create)(t, attr, fn, arg);
    ts->fn = fn;
    ts->arg = arg;
    int rc = REAL(pthread_create)(t, attr, armed_start, ts);
    if (rc != 0)
        free(ts);
    return rc;
}

void sbx_raw_watch_arm(void)
{
    if (g_off)
        return;
    if (!g_lo) {
        unsigned long span[2] = {USER_TOP, 0};
        unsigned long exe = (unsigned long)getauxval(AT_PHDR);
        dl_iterate_phdr(library_span, span);
        if (span[1] <= span[0] || !exe || (exe >= span[0] && exe < span[1])) {
            /* run as `ld.so prog`: the executable is mapped among the
             * libraries, so its calls cannot be told apart */
            g_off = 1;
            sbx_warn_process("could not be watched for system calls made without libc "
                             "(its executable is mapped among its libraries)");
            return;
        }
        g_lo = span[0];
        g_hi = span[1];
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    struct sigaction was;
    if (REAL(sigaction)(SIGSYS, NULL, &was) != 0)
        return;
    if (was.sa_sigaction != on_sigsys) {     /* not a forked child, which inherited ours */
        if (!no_handler(&was)) {
            /* a library's constructor took SIGSYS before ours ran */
            g_off = 1;
            sbx_warn_process("has its own SIGSYS handler: system calls it makes without libc "
                             "are not watched by the preload backend");
            return;
        }
        g_prog = was;
    }
    if (REAL(sigaction)(SIGSYS, &sa, NULL) != 0)
        return;
    /* a SIGSYS blocked when a call is dispatched would kill the process */
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    SBX_SYS4(SYS_rt_sigprocmask, SIG_UNBLOCK, &sys, NULL, 8);
    g_selector = SYSCALL_DISPATCH_FILTER_BLOCK;
    if (arm_thread() != 0) {
        g_selector = SYSCALL_DISPATCH_FILTER_ALLOW;
        g_off = 1;
        sbx_warn_process("could not be watched for system calls made without libc "
                         "(Syscall User Dispatch is not available: Linux 5.11 or newer)");
        return;
    }
    g_armed = 1;
}

#else
void sbx_raw_watch_arm(void) {}
#endif
