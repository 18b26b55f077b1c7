/* io_uring.bpf.h — io_uring requests, traced like the system calls they
 * stand for.  Included once, at the end of sandbox.bpf.c (it uses that
 * file's maps and helpers).
 *
 * A request never passes through sys_exit: it is prepared and submitted in
 * io_uring_enter() (or in the SQPOLL thread, outside any system call),
 * issued inline, in an io-wq worker or from task work, and completed
 * wherever it finished.  Five tp_btf programs follow it:
 *   task_newtask          io threads (iou-wrk-*, iou-sqp-*) of a traced
 *                         process join its run: they are created by
 *                         create_io_thread(), which fires no
 *                         sched_process_fork, and the run must wait for them;
 *   io_uring_submit_req   the request has been prepared: its names were
 *                         copied into the kernel (getname) and are released
 *                         before completion, so they are read here;
 *   io_uring_complete     the outcome (cqe->res) and, for reads and writes,
 *                         the file (req->file is only set at issue);
 *   io_uring_req_failed   prep failed: only the user's pointers exist;
 *   io_uring_cqe_overflow a completion without its request.
 * A request is attributed at submit (the submitter is a traced task or one
 * of its io threads) and remembered by address until it completes, so the
 * completion is attributed whoever runs it (a worker, task work, a kworker
 * tearing the ring down).
 */
#include "io_uring_event.h"

#define PF_IO_WORKER          0x00000010
#define IORING_CQE_F_MORE     (1u << 1)
#define IORING_FILE_INDEX_ALLOC (~0u)
#define AT_REMOVEDIR_         0x200
/* the low bits of a fixed-file slot's file_ptr are flags (FFS_*) */
#define FFS_MASK              7ul
/* The first request flags are the IOSQE_* bits, by design of io_uring */
#define SBX_REQ_F_FIXED_FILE  (1ull << 0)   /* IOSQE_FIXED_FILE */
#define SBX_REQ_F_CQE_SKIP    (1ull << 6)   /* IOSQE_CQE_SKIP_SUCCESS */

/* Opcodes: the uapi values (stable), not vmlinux.h's enum, which only
 * lists what the build machine's kernel knows. */
enum uring_op {
    UOP_NOP = 0,
    UOP_READV = 1,
    UOP_WRITEV = 2,
    UOP_FSYNC = 3,
    UOP_READ_FIXED = 4,
    UOP_WRITE_FIXED = 5,
    UOP_POLL_ADD = 6,
    UOP_POLL_REMOVE = 7,
    UOP_SYNC_FILE_RANGE = 8,
    UOP_SENDMSG = 9,
    UOP_RECVMSG = 10,
    UOP_TIMEOUT = 11,
    UOP_TIMEOUT_REMOVE = 12,
    UOP_ACCEPT = 13,
    UOP_ASYNC_CANCEL = 14,
    UOP_LINK_TIMEOUT = 15,
    UOP_CONNECT = 16,
    UOP_FALLOCATE = 17,
    UOP_OPENAT = 18,
    UOP_CLOSE = 19,
    UOP_FILES_UPDATE = 20,
    UOP_STATX = 21,
    UOP_READ = 22,
    UOP_WRITE = 23,
    UOP_FADVISE = 24,
    UOP_MADVISE = 25,
    UOP_SEND = 26,
    UOP_RECV = 27,
    UOP_OPENAT2 = 28,
    UOP_EPOLL_CTL = 29,
    UOP_SPLICE = 30,
    UOP_PROVIDE_BUFFERS = 31,
    UOP_REMOVE_BUFFERS = 32,
    UOP_TEE = 33,
    UOP_SHUTDOWN = 34,
    UOP_RENAMEAT = 35,
    UOP_UNLINKAT = 36,
    UOP_MKDIRAT = 37,
    UOP_SYMLINKAT = 38,
    UOP_LINKAT = 39,
    UOP_MSG_RING = 40,
    UOP_FSETXATTR = 41,
    UOP_SETXATTR = 42,
    UOP_FGETXATTR = 43,
    UOP_GETXATTR = 44,
    UOP_SOCKET = 45,
    UOP_URING_CMD = 46,
    UOP_SEND_ZC = 47,
    UOP_SENDMSG_ZC = 48,
    UOP_READ_MULTISHOT = 49,
    UOP_WAITID = 50,
    UOP_FUTEX_WAIT = 51,
    UOP_FUTEX_WAKE = 52,
    UOP_FUTEX_WAITV = 53,
    UOP_FIXED_FD_INSTALL = 54,
    UOP_FTRUNCATE = 55,
    UOP_BIND = 56,
    UOP_LISTEN = 57,
    UOP_RECV_ZC = 58,
    UOP_EPOLL_WAIT = 59,
    UOP_READV_FIXED = 60,
    UOP_WRITEV_FIXED = 61,
    UOP_PIPE = 62,
};

/* What a request does to files, by opcode. */
enum uring_class {
    UC_NONE = 0,        /* touches no file by name or content */
    UC_READ,            /* content of req->file read */
    UC_WRITE,           /* content or metadata of req->file written */
    UC_PATH,            /* takes names: the equivalent system call's row */
    UC_BLIND,           /* touches files in a way not decoded here */
};

struct uring_req {
    __u64 ring;         /* its io_ring_ctx: a stale entry (a skipped CQE) is
                         * never matched by a request of another ring that
                         * reuses the freed memory */
    __u32 run_id;
    __u32 tgid;         /* the submitting process */
    __u8 opcode;
    __u8 cls;
    __u16 pad;
};

/* LRU: a request whose completion never comes (CQE skipped, ring torn
 * down) only ages out; the reader accounts for it. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);                 /* struct io_kiocb address */
    __type(value, struct uring_req);
} uring_reqs SEC(".maps");

SCRATCH_MAP(scratch_uring_sub);
SCRATCH_MAP(scratch_uring_cqe);

/* Later kernels hold the names in a struct delayed_filename (by value)
 * instead of a struct filename pointer: both layouts, chosen by CO-RE. */
struct delayed_filename___sbx {
    struct filename *__incomplete_filename;
};
struct io_open___delayed { struct delayed_filename___sbx filename; };
struct io_statx___delayed { struct delayed_filename___sbx filename; };
struct io_unlink___delayed { struct delayed_filename___sbx filename; };
struct io_mkdir___delayed { struct delayed_filename___sbx filename; };
struct io_xattr___delayed { struct delayed_filename___sbx filename; };
struct io_rename___delayed {
    struct delayed_filename___sbx oldpath, newpath;
};
struct io_link___delayed {
    struct delayed_filename___sbx oldpath, newpath;
};

#define URING_NAME(T, p, field)                                                 \
    (bpf_core_field_exists(((struct T##___delayed *)0)->field)                   \
         ? BPF_CORE_READ((struct T##___delayed *)(p), field.__incomplete_filename) \
         : (struct filename *)BPF_CORE_READ((struct T *)(p), field))

/* Before 6.13 the fixed-file table was an array of tagged pointers. */
struct io_fixed_file___old { unsigned long file_ptr; };
struct io_file_table___old { struct io_fixed_file___old *files; };
struct io_ring_ctx___old { struct io_file_table___old file_table; };

static __always_inline int uring_class_of(__u8 op, __u32 *nr)
{
    switch (op) {
    case UOP_READV: case UOP_READ_FIXED: case UOP_READ:
    case UOP_READ_MULTISHOT: case UOP_READV_FIXED:
        return UC_READ;
    case UOP_WRITEV: case UOP_WRITE_FIXED: case UOP_WRITE:
    case UOP_WRITEV_FIXED: case UOP_FALLOCATE: case UOP_FTRUNCATE:
    case UOP_FSETXATTR:
        return UC_WRITE;
    case UOP_OPENAT: case UOP_OPENAT2: *nr = __NR_openat; return UC_PATH;
    case UOP_STATX:     *nr = __NR_statx;     return UC_PATH;
    case UOP_RENAMEAT:  *nr = __NR_renameat2; return UC_PATH;
    case UOP_UNLINKAT:  *nr = __NR_unlinkat;  return UC_PATH;
    case UOP_MKDIRAT:   *nr = __NR_mkdirat;   return UC_PATH;
    case UOP_SYMLINKAT: *nr = __NR_symlinkat; return UC_PATH;
    case UOP_LINKAT:    *nr = __NR_linkat;    return UC_PATH;
    case UOP_SETXATTR:  *nr = __NR_setxattr;  return UC_PATH;
    case UOP_GETXATTR:  *nr = __NR_getxattr;  return UC_PATH;
    /* No name and no content: their system call equivalents are not rows
     * of the table either (fsync, close, sockets, polling, timers,
     * fgetxattr, registering files...).  FIXED_FD_INSTALL only gives a
     * fixed file an fd: its later use through that fd is a system call
     * on the same struct file, seen as any other. */
    case UOP_NOP: case UOP_FSYNC: case UOP_POLL_ADD:
    case UOP_POLL_REMOVE: case UOP_SYNC_FILE_RANGE: case UOP_SENDMSG:
    case UOP_RECVMSG: case UOP_TIMEOUT: case UOP_TIMEOUT_REMOVE:
    case UOP_ACCEPT: case UOP_ASYNC_CANCEL: case UOP_LINK_TIMEOUT:
    case UOP_CONNECT: case UOP_CLOSE: case UOP_FILES_UPDATE:
    case UOP_FADVISE: case UOP_MADVISE: case UOP_SEND:
    case UOP_RECV: case UOP_EPOLL_CTL: case UOP_PROVIDE_BUFFERS:
    case UOP_REMOVE_BUFFERS: case UOP_SHUTDOWN: case UOP_MSG_RING:
    case UOP_FGETXATTR: case UOP_SOCKET: case UOP_SEND_ZC:
    case UOP_SENDMSG_ZC: case UOP_WAITID: case UOP_FUTEX_WAIT:
    case UOP_FUTEX_WAKE: case UOP_FUTEX_WAITV: case UOP_FIXED_FD_INSTALL:
    case UOP_BIND: case UOP_LISTEN: case UOP_RECV_ZC:
    case UOP_EPOLL_WAIT: case UOP_PIPE:
        return UC_NONE;
    }
    /* splice, tee, uring_cmd and any opcode newer than this list */
    return UC_BLIND;
}

/* The run a task belongs to: traced itself, or an io thread of a traced
 * process created before it was (then its thread-group leader's). */
static __always_inline struct sbx_task *uring_task(void)
{
    __u64 pt = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)pt, tgid = pt >> 32;
    struct sbx_task *tp = bpf_map_lookup_elem(&tracked, &tid);
    if (!tp) {
        struct task_struct *task = bpf_get_current_task_btf();
        if (!(task->flags & PF_IO_WORKER))
            return NULL;
        tp = bpf_map_lookup_elem(&tracked, &tgid);
    }
    if (!tp || (tp->flags & SBX_TASK_PENDING))
        return NULL;
    return tp;
}

static __always_inline void uring_blind(__u32 run_id, __u32 kind, long opcode, long err,
                                        __u64 key)
{
    struct {
        struct sbx_event ev;
        char comm[16];
    } b = {};
    __u64 pt = bpf_get_current_pid_tgid();
    b.ev.size = sizeof b;
    b.ev.type = SBX_EV_URING_BLIND;
    b.ev.run_id = run_id;
    b.ev.pid = pt >> 32;
    b.ev.tid = (__u32)pt;
    b.ev.kind = kind;
    b.ev.ret = err;
    b.ev.args[0] = key;
    b.ev.args[1] = opcode;
    bpf_get_current_comm(b.comm, sizeof b.comm);
    b.comm[15] = '\0';
    b.ev.str_len[0] = sizeof b.comm;
    b.ev.nstr = 1;
    if (bpf_ringbuf_output(&events, &b, sizeof b, wake_flags()))  /* may repeat: no forced wake-up */
        count_drop(run_id);
}

/* The file in fixed-file slot `slot` of ring `ctx` (NULL when empty). */
static __always_inline __u64 uring_fixed_file(struct io_ring_ctx *ctx, __u32 slot)
{
    unsigned long fp = 0;
    if (bpf_core_field_exists(ctx->file_table.data)) {
        struct io_ring_ctx *c = CAST(struct io_ring_ctx, ctx);
        if (slot >= c->file_table.data.nr)
            return 0;
        struct io_rsrc_node *node = NULL;
        bpf_probe_read_kernel(&node, sizeof node, &c->file_table.data.nodes[slot]);
        if (!node)
            return 0;
        fp = BPF_CORE_READ(node, file_ptr);
    } else {
        struct io_fixed_file___old *files =
            BPF_CORE_READ((struct io_ring_ctx___old *)ctx, file_table.files);
        if (!files || slot > 65535)
            return 0;
        bpf_probe_read_kernel(&fp, sizeof fp, &files[slot].file_ptr);
    }
    return fp & ~FFS_MASK;
}

/* Append the (directory, name) pair `i` of a name the kernel copied: the
 * directory walked whole (see SBX_EV_URING_SUBMIT), the name as given. */
__noinline int uring_append_name(struct scratch *s, __u64 *off, __u64 i, long dfd,
                                 __u64 fnaddr)
{
    /* global: verified once, not at each of its nine call sites */
    struct filename *fn = (struct filename *)fnaddr;
    if (!s || !off || i > 1)
        return -1;
    const char *name = NULL;
    if (fn)
        name = BPF_CORE_READ(fn, name);
    char c0 = 0;
    if (name)
        bpf_probe_read_kernel(&c0, 1, name);
    struct task_struct *task = bpf_get_current_task_btf();
    struct vfsmount *m = NULL;
    struct dentry *d = NULL;
    if (c0 != '/') {
        if (dfd == AT_FDCWD) {
            m = task->fs->pwd.mnt;
            d = task->fs->pwd.dentry;
        } else {
            struct file *f = fd_file(task, dfd);
            if (f) {
                m = f->f_path.mnt;
                d = f->f_path.dentry;
            }
        }
    }
    if (!d || append_walk(s, off, 2 * i, kaddr(m), kaddr(d)) < 0)
        append_empty(s, off, 2 * i);
    __u64 o = *off;
    int j = 2 * i + 1;
    if (o > SBX_DATA_MAX - SBX_PATH_MAX)
        return -1;
    long n = name ? bpf_probe_read_kernel_str(&s->data[o], SBX_PATH_MAX, name) : 0;
    if (n <= 0) {
        s->data[o] = '\0';
        n = 1;
        s->ev.str_flags[j] = name ? SBX_STR_FAULT : 0;
    } else {
        s->ev.str_flags[j] = n >= SBX_PATH_MAX ? SBX_STR_TRUNCATED : 0;
    }
    s->ev.str_len[j] = n;
    *off = o + n;
    s->ev.nstr = j + 1;
    return 0;
}

/* Nothing to report for `kind` on file `faddr`: the submitting process
 * reported it already (fd_seen), or it is a pipe or a socket (no path). */
static __always_inline int uring_file_known(__u32 run_id, __u64 faddr, __u32 kind)
{
    if (!faddr)
        return 0;
    struct file *f = CAST(struct file, (void *)faddr);
    __u32 imode = f->f_inode->i_mode & S_IFMT;
    if (imode != S_IFREG && imode != S_IFDIR && imode != S_IFCHR && imode != S_IFBLK)
        return 1;
    /* keyed by the submitter's tgid, as emit_file() keys what it reports */
    __u64 tgid = bpf_get_current_pid_tgid() >> 32;
    return seen_has(&fd_seen, SBX_FD_SEEN_BITS,
                    fd_tag(faddr, f->f_inode->i_ino, kind, tgid, run_id));
}

/* The names of a request that takes some, into the submit event. */
static __noinline int uring_submit_names(struct scratch *s, void *cmd, __u32 op)
{
    if (!s)
        return 0;
    __u64 off = 0;
    switch (op) {
    case UOP_OPENAT:
    case UOP_OPENAT2: {
        struct io_open *o = CAST(struct io_open, cmd);
        s->ev.args[2] = o->how.flags;
        uring_append_name(s, &off, 0, o->dfd, (__u64)URING_NAME(io_open, cmd, filename));
        break;
    }
    case UOP_STATX: {
        struct io_statx *x = CAST(struct io_statx, cmd);
        struct filename *fn = URING_NAME(io_statx, cmd, filename);
        char c0 = 0;
        if (fn)
            bpf_probe_read_kernel(&c0, 1, BPF_CORE_READ(fn, name));
        if (!c0)
            return -1;          /* fstat by another name: no name to report */
        s->ev.args[2] = x->flags;
        uring_append_name(s, &off, 0, x->dfd, (__u64)fn);
        break;
    }
    case UOP_UNLINKAT: {
        struct io_unlink *u = CAST(struct io_unlink, cmd);
        s->ev.args[2] = u->flags;
        uring_append_name(s, &off, 0, u->dfd, (__u64)URING_NAME(io_unlink, cmd, filename));
        break;
    }
    case UOP_MKDIRAT: {
        struct io_mkdir *mk = CAST(struct io_mkdir, cmd);
        uring_append_name(s, &off, 0, mk->dfd, (__u64)URING_NAME(io_mkdir, cmd, filename));
        break;
    }
    case UOP_SYMLINKAT: {
        /* oldpath is the link's target, a string that is not looked up */
        struct io_link *l = CAST(struct io_link, cmd);
        uring_append_name(s, &off, 0, l->new_dfd, (__u64)URING_NAME(io_link, cmd, newpath));
        break;
    }
    case UOP_RENAMEAT: {
        struct io_rename *r = CAST(struct io_rename, cmd);
        s->ev.args[2] = r->flags;
        s->ev.npath = 2;
        uring_append_name(s, &off, 0, r->old_dfd, (__u64)URING_NAME(io_rename, cmd, oldpath));
        uring_append_name(s, &off, 1, r->new_dfd, (__u64)URING_NAME(io_rename, cmd, newpath));
        break;
    }
    case UOP_LINKAT: {
        struct io_link *l = CAST(struct io_link, cmd);
        s->ev.args[2] = l->flags;
        s->ev.npath = 2;
        uring_append_name(s, &off, 0, l->old_dfd, (__u64)URING_NAME(io_link, cmd, oldpath));
        uring_append_name(s, &off, 1, l->new_dfd, (__u64)URING_NAME(io_link, cmd, newpath));
        break;
    }
    case UOP_SETXATTR:
    case UOP_GETXATTR:
        /* by path, relative to the cwd like setxattr(2) */
        uring_append_name(s, &off, 0, AT_FDCWD, (__u64)URING_NAME(io_xattr, cmd, filename));
        break;
    default:
        return -1;
    }
    submit(s, off, wake_flags());
    return 0;
}

SEC("tp_btf/task_newtask")
int BPF_PROG(on_uring_newtask, struct task_struct *p, __u64 clone_flags)
{
    if (!(p->flags & PF_IO_WORKER))
        return 0;
    /* an io thread is a thread of the creating process: the creator is the
     * submitter, or the owner running task work on a worker's behalf */
    __u64 pt = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)pt, tgid = pt >> 32;
    struct sbx_task *pp = bpf_map_lookup_elem(&tracked, &tid);
    if (!pp)
        pp = bpf_map_lookup_elem(&tracked, &tgid);
    if (!pp || (pp->flags & SBX_TASK_PENDING))
        return 0;
    struct sbx_task t = {.run_id = pp->run_id, .flags = pp->flags & SBX_TASK_SELF};
    struct sbx_run_state *st = bpf_map_lookup_elem(&runs, &t.run_id);
    if (!st)
        return 0;
    __u32 ctid = p->pid;
    if (bpf_map_update_elem(&tracked, &ctid, &t, BPF_NOEXIST) != 0)
        return 0;
    /* counted like a child: the run ends after the last worker, whose
     * completions belong to it */
    if (!(t.flags & SBX_TASK_SELF))
        __sync_fetch_and_add(&st->live, 1);
    return 0;
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(on_uring_submit, struct io_kiocb *req)
{
    struct sbx_task *tp = uring_task();
    if (!tp)
        return 0;
    __u32 run_id = tp->run_id;
    __u8 op = req->opcode;
    __u64 rflags = req->flags;
    __u64 key = (__u64)req;
    __u32 nr = 0;
    int cls = uring_class_of(op, &nr);
    if (cls == UC_NONE)
        return 0;
    if (cls == UC_BLIND) {
        uring_blind(run_id, SBX_URING_UNDECODED, op, 0, key);
        return 0;
    }
    int skip = (rflags & SBX_REQ_F_CQE_SKIP) != 0;
    __u32 kind = cls == UC_READ ? SBX_FD_READ : SBX_FD_WRITE;
    __u64 faddr = 0;
    if (cls != UC_PATH) {
        /* The file is only attached when the request is issued, but its fd
         * (or fixed slot) names it now: a loop of reads on a file the run
         * already reported, or on a socket, costs no map entry. */
        __s32 fd = req->cqe.fd;
        if (rflags & SBX_REQ_F_FIXED_FILE)
            faddr = uring_fixed_file(req->ctx, fd);
        else
            fd_file_addr(bpf_get_current_task_btf(), fd, &faddr);
        if (uring_file_known(run_id, faddr, kind))
            return 0;
    }
    struct uring_req ur = {
        .ring = (__u64)req->ctx, .run_id = run_id, .tgid = bpf_get_current_pid_tgid() >> 32,
        .opcode = op, .cls = cls,
    };
    bpf_map_update_elem(&uring_reqs, &key, &ur, BPF_ANY);
    if (skip)
        uring_blind(run_id, SBX_URING_NO_CQE, op, 0, key);
    void *cmd = (void *)req + bpf_core_field_offset(struct io_kiocb, cmd);
    if (cls == UC_PATH) {
        struct scratch *s = get_scratch(&scratch_uring_sub);
        if (!s)
            return 0;
        init_event(s, SBX_EV_URING_SUBMIT, run_id);
        s->ev.nr = nr;
        s->ev.npath = 1;
        s->ev.args[0] = key;
        s->ev.args[1] = op;
        s->ev.args[3] = skip;
        if (uring_submit_names(s, cmd, op) < 0)
            bpf_map_delete_elem(&uring_reqs, &key);
        return 0;
    }
    if (skip) {
        /* no completion will say which file: the one its fd names now */
        struct scratch *s = get_scratch(&scratch_uring_sub);
        emit_file(s, run_id, faddr, kind, ur.tgid);
    }
    return 0;
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(on_uring_complete, struct io_ring_ctx *ring, void *req, struct io_uring_cqe *cqe)
{
    if (!req)
        return 0;                       /* an auxiliary CQE */
    __u64 key = (__u64)req;
    struct uring_req *urp = bpf_map_lookup_elem(&uring_reqs, &key);
    if (!urp || urp->ring != (__u64)ring)
        return 0;
    struct uring_req ur = *urp;
    __s32 res = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE))
        bpf_map_delete_elem(&uring_reqs, &key);
    struct io_kiocb *r = CAST(struct io_kiocb, req);
    struct scratch *s = get_scratch(&scratch_uring_cqe);
    if (!s)
        return 0;
    if (ur.cls == UC_READ || ur.cls == UC_WRITE) {
        /* emit_file() is a global function: it takes the address as a
         * plain number, which a read gives (a pointer register would not do) */
        __u64 faddr = 0;
        bpf_probe_read_kernel(&faddr, sizeof faddr, &r->file);
        if (res >= 0)
            emit_file(s, ur.run_id, faddr,
                      ur.cls == UC_READ ? SBX_FD_READ : SBX_FD_WRITE, ur.tgid);
        return 0;
    }
    void *cmd = (void *)req + bpf_core_field_offset(struct io_kiocb, cmd);
    init_event(s, SBX_EV_URING_DONE, ur.run_id);
    s->ev.pid = ur.tgid;
    s->ev.ret = res;
    s->ev.args[0] = key;
    s->ev.args[1] = ur.opcode;
    if (res >= 0 && (ur.opcode == UOP_OPENAT || ur.opcode == UOP_OPENAT2)) {
        /* the opened file, so that its later reads are tied to this name */
        struct io_open *o = CAST(struct io_open, cmd);
        __u32 slot = o->file_slot;
        __u64 faddr = 0;
        if (slot) {
            faddr = uring_fixed_file(ring, slot == IORING_FILE_INDEX_ALLOC ? res : slot - 1);
        } else {
            /* the fd is the submitter's; a thread of its process shares its
             * table, anyone else (a kworker) looks it up through the task */
            struct task_struct *owner = bpf_get_current_task_btf();
            if ((bpf_get_current_pid_tgid() >> 32) != ur.tgid) {
                owner = NULL;
                if (bpf_core_field_exists(r->tctx->task))
                    owner = CAST(struct task_struct, BPF_CORE_READ(r, tctx, task));
            }
            if (owner)
                fd_file_addr(owner, res, &faddr);
        }
        if (faddr) {
            struct file *f = CAST(struct file, (void *)faddr);
            s->ev.file = faddr;
            s->ev.kind = f->f_mode;
            s->ev.imode = f->f_inode->i_mode & S_IFMT;
        }
    }
    if (res == 0 && (ur.opcode == UOP_RENAMEAT ||
                     (ur.opcode == UOP_UNLINKAT &&
                      (CAST(struct io_unlink, cmd)->flags & AT_REMOVEDIR_)))) {
        /* as for rename(2)/rmdir(2): directory tokens must not outlive it */
        struct sbx_run_state *st = bpf_map_lookup_elem(&runs, &ur.run_id);
        if (st)
            __sync_fetch_and_add(&st->gen, 1);
    }
    submit(s, 0, wake_flags());
    return 0;
}

SEC("tp_btf/io_uring_req_failed")
int BPF_PROG(on_uring_req_failed, const struct io_uring_sqe *sqe, struct io_kiocb *req,
             int error)
{
    struct sbx_task *tp = uring_task();
    if (!tp)
        return 0;
    __u64 key = (__u64)req;
    /* a recycled request must not inherit an older one's entry */
    bpf_map_delete_elem(&uring_reqs, &key);
    __u8 op = req->opcode;
    __u32 nr = 0;
    if (uring_class_of(op, &nr) == UC_NONE)
        return 0;
    uring_blind(tp->run_id, SBX_URING_PREP_FAILED, op, error, key);
    return 0;
}

SEC("tp_btf/io_uring_cqe_overflow")
int BPF_PROG(on_uring_overflow, void *ring, __u64 user_data, __s32 res, __u32 cflags,
             void *ocqe)
{
    struct sbx_task *tp = uring_task();
    if (!tp)
        return 0;
    uring_blind(tp->run_id, SBX_URING_OVERFLOW, -1, res, 0);
    return 0;
}
