/* io_uring.c — see io_uring.h. */
#define _GNU_SOURCE
#include "io_uring.h"

#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "access.h"
#include "io_uring_event.h"
#include "sandbox.skel.h"
#include "syscalls.h"

static int traced;

/* warning reasons beyond the kernel's SBX_URING_*: a completion never seen */
#define LOST_CQE 5

/* io_uring opcodes (uapi values) by name, for warnings. */
static const char *const op_names[] = {
    "NOP", "READV", "WRITEV", "FSYNC", "READ_FIXED", "WRITE_FIXED", "POLL_ADD",
    "POLL_REMOVE", "SYNC_FILE_RANGE", "SENDMSG", "RECVMSG", "TIMEOUT", "TIMEOUT_REMOVE",
    "ACCEPT", "ASYNC_CANCEL", "LINK_TIMEOUT", "CONNECT", "FALLOCATE", "OPENAT", "CLOSE",
    "FILES_UPDATE", "STATX", "READ", "WRITE", "FADVISE", "MADVISE", "SEND", "RECV",
    "OPENAT2", "EPOLL_CTL", "SPLICE", "PROVIDE_BUFFERS", "REMOVE_BUFFERS", "TEE",
    "SHUTDOWN", "RENAMEAT", "UNLINKAT", "MKDIRAT", "SYMLINKAT", "LINKAT", "MSG_RING",
    "FSETXATTR", "SETXATTR", "FGETXATTR", "GETXATTR", "SOCKET", "URING_CMD", "SEND_ZC",
    "SENDMSG_ZC", "READ_MULTISHOT", "WAITID", "FUTEX_WAIT", "FUTEX_WAKE", "FUTEX_WAITV",
    "FIXED_FD_INSTALL", "FTRUNCATE", "BIND", "LISTEN", "RECV_ZC", "EPOLL_WAIT",
    "READV_FIXED", "WRITEV_FIXED", "PIPE",
};

static const char *op_name(long op, char *buf, size_t cap)
{
    if (op >= 0 && (size_t)op < sizeof op_names / sizeof *op_names)
        return op_names[op];
    snprintf(buf, cap, "opcode %ld", op);
    return buf;
}

void sbx_iouring_prepare(struct sandbox_bpf *skel, int enable)
{
    /* SANDBOX_PY_NO_IO_URING=1 leaves the programs out on purpose (the tests
     * check that io_uring is then flagged).  A kernel without these
     * tracepoints in its BTF refuses the whole object at load, and the
     * loader loads it again without them (sbx_ebpf_load): not asking the
     * BTF here first saves parsing it twice (~50 ms of every first run),
     * the price being a second load on such kernels only. */
    if (getenv("SANDBOX_PY_NO_IO_URING"))
        enable = 0;
    struct bpf_program *progs[] = {
        skel->progs.on_uring_newtask, skel->progs.on_uring_submit,
        skel->progs.on_uring_complete, skel->progs.on_uring_req_failed,
        skel->progs.on_uring_overflow,
    };
    for (size_t i = 0; i < sizeof progs / sizeof *progs; i++)
        bpf_program__set_autoload(progs[i], enable);
    traced = enable;
}

int sbx_iouring_traced(void)
{
    return traced;
}

/* One warning per (reason, opcode) and run: a loop of a thousand skipped
 * CQEs says it once. */
static int first_time(struct sbx_iouring *u, unsigned reason, long op)
{
    unsigned bit = op >= 0 && op < 63 ? (unsigned)op : 63;
    if (reason < 1 || reason > LOST_CQE)
        return 1;
    uint64_t m = 1ull << bit;
    if (u->warned[reason - 1] & m)
        return 0;
    u->warned[reason - 1] |= m;
    return 1;
}

static void blind(struct sbx_iouring *u, struct sbx_result *res, const struct sbx_event *ev)
{
    char buf[32];
    long op = (long)(int64_t)ev->args[1];
    const char *comm = ev->nstr ? (const char *)(ev + 1) : "?";
    if (!first_time(u, ev->kind, op))
        return;
    switch (ev->kind) {
    case SBX_URING_UNDECODED:
        sbx_result_warn(res, "process %u (%s) submitted an io_uring %s request: the eBPF "
                        "backend does not decode it, the files it accesses are not recorded",
                        ev->pid, comm, op_name(op, buf, sizeof buf));
        break;
    case SBX_URING_PREP_FAILED:
        sbx_result_warn(res, "process %u (%s) submitted an io_uring %s request that the kernel "
                        "rejected before copying its arguments (error %lld): the names it "
                        "was given are not recorded", ev->pid, comm,
                        op_name(op, buf, sizeof buf), (long long)-ev->ret);
        break;
    case SBX_URING_OVERFLOW:
        sbx_result_warn(res, "an io_uring completion queue of process %u (%s) overflowed: "
                        "completions were seen without their requests, accesses may be "
                        "missing", ev->pid, comm);
        break;
    case SBX_URING_NO_CQE:
        sbx_result_warn(res, "process %u (%s) submitted io_uring %s requests with "
                        "IOSQE_CQE_SKIP_SUCCESS: they post no completion, so they are "
                        "recorded as having succeeded, which was not observed", ev->pid,
                        comm, op_name(op, buf, sizeof buf));
        break;
    }
}

/* File the submit event `sub` with outcome `ret` (and the opened file of
 * `done`, when there is one) as the equivalent system call's path event. */
static void file_request(const struct sbx_event *sub, int64_t ret, const struct sbx_event *done,
                         sbx_iouring_replay replay, void *host)
{
    struct sbx_event *ev = malloc(sub->size);
    if (!ev)
        return;
    memcpy(ev, sub, sub->size);
    ev->type = SBX_EV_PATH;
    ev->ret = ret;
    ev->file = done ? done->file : 0;
    ev->kind = done ? done->kind : 0;
    ev->imode = done ? done->imode : 0;
    replay(host, ev, ev->size);
    if (ev->nr == SYS_openat && ret >= 0 && !ev->file) {
        /* Opened, but the file could not be identified (its process was
         * gone when it completed): no later use can be tied to it, so it
         * counts as the ledger counts an open never used, a probe. */
        int used, tracked;
        sbx_access_open(sbx_linux_open_intent((unsigned)ev->args[2]), 0, &used, &tracked);
        if (tracked && !used) {
            ev->ret = -1;
            replay(host, ev, ev->size);
        }
    }
    free(ev);
}

/* A request still pending when its key is reused or the run ends never
 * completed where we could see it. */
static void settle(struct sbx_iouring *u, struct sbx_result *res, struct sbx_keyed *k,
                   sbx_iouring_replay replay, void *host)
{
    const struct sbx_event *sub = (const struct sbx_event *)k->path;
    if (!sub)
        return;
    if (k->flags) {
        file_request(sub, 0, NULL, replay, host);     /* skipped CQE: success */
    } else {
        char buf[32];
        if (first_time(u, LOST_CQE, (long)sub->args[1]))
            sbx_result_warn(res, "process %u submitted an io_uring %s request whose completion "
                            "was not seen (the ring was torn down or its completion queue "
                            "overflowed): its names are recorded as probes", sub->pid,
                            op_name((long)sub->args[1], buf, sizeof buf));
        file_request(sub, -1, NULL, replay, host);
    }
    free(k->path);
    k->path = NULL;
    k->flags = 0;
}

int sbx_iouring_event(struct sbx_iouring *u, struct sbx_result *res,
                      const struct sbx_event *ev, size_t size,
                      sbx_iouring_replay replay, void *host)
{
    struct sbx_keyed *k;
    switch (ev->type) {
    case SBX_EV_URING_SUBMIT:
        if (size < ev->size)
            return 1;
        k = sbx_keyed_get(&u->pending, ev->args[0], 1);
        if (!k) {
            sbx_result_warn(res, "out of memory while recording paths");
            return 1;
        }
        settle(u, res, k, replay, host);
        k->path = malloc(ev->size);
        if (k->path) {
            memcpy(k->path, ev, ev->size);
            k->flags = ev->args[3] != 0;
        }
        return 1;
    case SBX_EV_URING_DONE:
        k = sbx_keyed_get(&u->pending, ev->args[0], 0);
        if (k && k->path) {
            file_request((const struct sbx_event *)k->path, ev->ret, ev, replay, host);
            free(k->path);
            k->path = NULL;
            k->flags = 0;
        }
        return 1;
    case SBX_EV_URING_BLIND:
        if (ev->kind == SBX_URING_PREP_FAILED) {
            /* the key was reused by a request that never got going */
            k = sbx_keyed_get(&u->pending, ev->args[0], 0);
            if (k)
                settle(u, res, k, replay, host);
        }
        blind(u, res, ev);
        return 1;
    }
    return 0;
}

void sbx_iouring_end(struct sbx_iouring *u, struct sbx_result *res,
                     sbx_iouring_replay replay, void *host)
{
    for (size_t i = 0; i < u->pending.cap; i++)
        if (u->pending.slots[i].key)
            settle(u, res, &u->pending.slots[i], replay, host);
    sbx_keyed_free(&u->pending);
}
