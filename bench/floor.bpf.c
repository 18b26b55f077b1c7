// SPDX-License-Identifier: GPL-2.0
/* floor.bpf.c — the eBPF mechanism's floor, for bench/ebpf_bench.py.
 *
 * The attach points of bpf/sandbox.bpf.c with programs that return at once:
 * a command run while these are attached pays what the mechanism itself
 * costs (every syscall of every task taking the tracepoint's slow exit path,
 * the call into a BPF program) and nothing that the backend's own work
 * adds.  No vmlinux.h: a program that reads nothing needs no kernel types. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define FLOOR(tp, name) \
    SEC("tp_btf/" #tp) int name(void *ctx) { return 0; }

FLOOR(sched_process_fork, floor_fork)
FLOOR(sched_process_exec, floor_exec)
FLOOR(sched_process_exit, floor_exit)
FLOOR(sys_exit, floor_sys_exit)
FLOOR(task_newtask, floor_newtask)
FLOOR(io_uring_submit_req, floor_uring_submit)
FLOOR(io_uring_complete, floor_uring_complete)
FLOOR(io_uring_req_failed, floor_uring_req_failed)
FLOOR(io_uring_cqe_overflow, floor_uring_overflow)
