/* io_uring_event.h — the io_uring records of the ring buffer, shared by
 * bpf/io_uring.bpf.h (writer) and csrc/linux/ebpf/io_uring.c (reader).
 *
 * They reuse struct sbx_event (sandbox_event.h); only the types and the
 * meaning of a few fields are new.  A request is named by `args[0]`, the
 * address of its struct io_kiocb, which the kernel recycles: a request is
 * live from its SUBMIT to its DONE, and a new SUBMIT with the same key means
 * the previous one will never complete.
 */
#ifndef SBX_IO_URING_EVENT_H
#define SBX_IO_URING_EVENT_H

enum sbx_uring_event_type {
    /* A request that takes names was submitted; the names were read now,
     * while the kernel still holds its copy of them.  Laid out as the
     * SBX_EV_PATH of the equivalent system call `nr` (openat, statx,
     * renameat2, unlinkat, mkdirat, symlinkat, linkat, setxattr, getxattr),
     * with directories always walked whole (no tokens: the event is filed
     * at completion, after later events may have been).  args[0]: key;
     * args[1]: the opcode; args[2]: open flags (openat) or the call's flags;
     * args[3]: 1 when the request posts no completion on success
     * (IOSQE_CQE_SKIP_SUCCESS). */
    SBX_EV_URING_SUBMIT = 16,
    /* That request completed: ret = cqe->res; for an open that succeeded,
     * file/kind/imode describe the opened file as for SBX_EV_PATH.
     * args[0]: key. */
    SBX_EV_URING_DONE = 17,
    /* Something io_uring did that this backend cannot report: kind says
     * what (SBX_URING_*), args[1] the opcode (-1 when unknown), ret an
     * error code where one applies, args[0] the key where one applies.
     * One string: the task's comm. */
    SBX_EV_URING_BLIND = 18,
};

#define SBX_URING_UNDECODED   1  /* an opcode whose file accesses are not decoded */
#define SBX_URING_PREP_FAILED 2  /* rejected before its names were copied */
#define SBX_URING_OVERFLOW    3  /* a completion queue overflowed: CQEs without requests */
#define SBX_URING_NO_CQE      4  /* IOSQE_CQE_SKIP_SUCCESS on a file request */

#endif
