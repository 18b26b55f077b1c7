/* io_uring.h — the eBPF reader's half of io_uring tracing
 * (bpf/io_uring.bpf.h is the kernel's).
 *
 * A request that takes names is reported twice by the kernel: its names at
 * submit, its outcome at completion.  This joins the two and hands the pair
 * to the reader as the path event of the equivalent system call, so that
 * the access model and the open-file ledger treat it exactly as that call.
 * Reads and writes need nothing here: the kernel reports them as ordinary
 * fd events.  What cannot be reported becomes a warning (complete=False).
 */
#ifndef SBX_EBPF_IO_URING_H
#define SBX_EBPF_IO_URING_H

#include <stddef.h>
#include <stdint.h>

#include "keyed_table.h"
#include "result.h"
#include "sandbox_event.h"

struct sandbox_bpf;

/* Per run: submitted requests not completed yet, keyed by request. */
struct sbx_iouring {
    struct sbx_keyed_table pending;
    uint64_t warned[5];             /* (reason, opcode) pairs already said */
};

/* Files a joined request as an SBX_EV_PATH event of `size` bytes. */
typedef void (*sbx_iouring_replay)(void *host, const struct sbx_event *ev, size_t size);

/* Before loading: leave the io_uring programs out when this kernel cannot
 * take them (no io_uring tracepoints in its BTF), or when `enable` is 0
 * (a first load with them failed).  io_uring use is then only flagged. */
void sbx_iouring_prepare(struct sandbox_bpf *skel, int enable);

/* Whether the io_uring programs are part of the loaded object. */
int sbx_iouring_traced(void);

/* An event of one of the io_uring types (io_uring_event.h)?  Then it is
 * consumed here. */
int sbx_iouring_event(struct sbx_iouring *u, struct sbx_result *res,
                      const struct sbx_event *ev, size_t size,
                      sbx_iouring_replay replay, void *host);

/* The run ended: requests whose completion never came are settled (a
 * request that skips its success CQE succeeded; any other is a warning and
 * its names probes), and the table freed. */
void sbx_iouring_end(struct sbx_iouring *u, struct sbx_result *res,
                     sbx_iouring_replay replay, void *host);

#endif
