// SPDX-License-Identifier: GPL-2.0
/* sandbox.bpf.c — the kernel half of the eBPF backend.
 *
 * Four programs, all tp_btf (no tracefs needed, allowed under lockdown):
 *   sched_process_fork  a child of a traced task (or of a spawner thread) is
 *                       traced from its first instruction;
 *   sched_process_exec  reports the exec and ends the "pending" quiet phase;
 *   sched_process_exit  stops tracing the task; the last one ends the run;
 *   sys_exit            classifies every file syscall by its *result*.
 *
 * Everything is done at syscall exit: the arguments are still in pt_regs,
 * the result is known (a failed open is a probe), and the kernel has just
 * touched the user strings, so reading them rarely faults.
 *
 * Reads and writes on a file are reported once per (run, file, kind): the
 * dedup map is consulted in the kernel, so a loop of read() calls costs no
 * ring-buffer traffic.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "sandbox_event.h"

char LICENSE[] SEC("license") = "GPL";

/* Turn a kernel address into a typed pointer the program may dereference
 * directly: such loads compile to plain instructions with a fault handler,
 * several times cheaper than a bpf_probe_read_kernel() call each. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define CAST(type, p) ((type *)bpf_rdonly_cast((p), bpf_core_type_id_kernel(type)))


#define AT_FDCWD      -100
#define O_CREAT       0100
#define MAP_SHARED    0x01
#define MAP_ANONYMOUS 0x20
#define PROT_WRITE    0x2
#define S_IFMT        00170000
#define S_IFREG       0100000
#define S_IFDIR       0040000
#define S_IFCHR       0020000
#define S_IFBLK       0060000
#define SIGKILL       9
#define FMODE_CREATED (1u << 20)

/* Syscall numbers: the kernel's own uapi list (asm/unistd_64.h), so that
 * the table csrc/linux/syscalls.def names calls the same way here and in
 * user space. */
#include <asm/unistd_64.h>
#include "access_ops.h"

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 32 << 20);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u32);                 /* tid */
    __type(value, struct sbx_task);
} tracked SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);                 /* tid of a thread inside Popen() */
    __type(value, __u32);               /* run id */
} spawners SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);                 /* run id */
    __type(value, struct sbx_run_state);
} runs SEC(".maps");

/* Breakaway declarations of the runs (see on_exec); value unused. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct sbx_ba_key);
    __type(value, __u8);
} breakaway SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sbx_ba_key);
} ba_scratch SEC(".maps");

/* What each run already reported, kept in three direct-mapped caches: a
 * slot per tag (a 64-bit mix of the identity and the run id), the slot
 * chosen by the tag's low bits.  A lookup is one array access and a compare,
 * an insert one store: no hashing of a key, no allocation, no LRU lists to
 * shrink when full (an LRU hash cost ~0.5 us per new probe in a storm of
 * distinct names, most of it evicting).  A collision overwrites a slot,
 * which only means one more (harmless) duplicate event later; a false
 * "seen" needs two identities with the same 64-bit tag.  The run id in the
 * slot is not compared (the tag holds it): it lets user space clear an
 * ended run's slots (the arrays are mmapable). */
#define SEEN_MAP(name, bits)                                \
    struct {                                                \
        __uint(type, BPF_MAP_TYPE_ARRAY);                   \
        __uint(map_flags, BPF_F_MMAPABLE);                  \
        __uint(max_entries, 1u << (bits));                  \
        __type(key, __u32);                                 \
        __type(value, struct sbx_seen_slot);                \
    } name SEC(".maps")

SEEN_MAP(fd_seen, SBX_FD_SEEN_BITS);        /* (file, inode, kind): used */
SEEN_MAP(dir_seen, SBX_DIR_SEEN_BITS);      /* directory tokens the reader has */
SEEN_MAP(probe_seen, SBX_PROBE_SEEN_BITS);  /* probes reported (see probe_hash) */

/* splitmix64's finaliser: a bijection that spreads every input bit */
static __always_inline __u64 fmix64(__u64 x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* The identity (a, b) of run run_id as a tag.  Mixed in two rounds, not
 * XOR-ed together: identities are structured (directory tokens are inode ^
 * device bits, runs count up), and with a plain XOR a directory of run 1 and
 * a neighbouring one of run 2 could share a tag, which would make run 2
 * refer to a directory its reader was never sent. */
static __always_inline __u64 seen_tag(__u64 a, __u64 b, __u32 run_id)
{
    __u64 x = fmix64(a ^ fmix64(b ^ ((__u64)run_id * 0x9e3779b97f4a7c15ULL)));
    return x ? x : 1;                           /* 0 marks an empty slot */
}

static __always_inline int seen_has(void *map, __u32 bits, __u64 tag)
{
    __u32 idx = (__u32)tag & ((1u << bits) - 1);
    struct sbx_seen_slot *slot = bpf_map_lookup_elem(map, &idx);
    return slot && slot->tag == tag;
}

static __always_inline void seen_put(void *map, __u32 bits, __u64 tag, __u32 run_id)
{
    __u32 idx = (__u32)tag & ((1u << bits) - 1);
    struct sbx_seen_slot *slot = bpf_map_lookup_elem(map, &idx);
    if (slot) {
        slot->run_id = run_id;
        slot->tag = tag;
    }
}

/* Tag of (open file, its inode number, kind of use, process image) for
 * fd_seen: file objects are recycled, the inode number makes a reused one
 * differ; each process record has its own sets, so a file another process
 * of the run already used is still a first use for this one. */
static __always_inline __u64 fd_tag(__u64 faddr, __u64 ino, __u32 kind, __u64 image,
                                    __u32 run_id)
{
    return seen_tag(faddr ^ fmix64(image), ino ^ ((__u64)kind << 56), run_id);
}

/* The process image a task acts for: its tgid and how many execs its
 * process made (the per-process records of docs/semantics.md). */
static __always_inline __u64 image_key(struct sbx_task *tp)
{
    return (bpf_get_current_pid_tgid() >> 32) | ((__u64)tp->image << 32);
}

/* Scratch space: an event is assembled here, then copied into the ring
 * buffer with its exact size.  One map per program so that a program
 * preempted on a CPU never shares its scratch with another one. */
struct scratch {
    struct sbx_event ev;
    char data[SBX_DATA_MAX + SBX_PATH_MAX];
    char walk[SBX_PATH_MAX + 256];      /* dentry walk, built backwards */
    /* Walk state lives here, not on the stack: values loaded from a map
     * are unknown to the verifier, so the bpf_loop callback verifies once
     * instead of once per possible position. */
    __u32 wpos;         /* start of the string in walk */
    __u32 wflags;
    __u64 newtok[2];    /* directories defined by this event: marked seen
                         * only once the event is in the ring buffer */
    __u64 newprobe;     /* likewise, a probe this event reports */
    __u64 hstate;       /* probe_hash's running state */
    __u32 hstart, hlen;
    __u64 regs[6];      /* the syscall's arguments, for emit_path() */
    __u64 name_hash;    /* sbx_task.name_hash of the open, for emit_path() */
    __u32 mntns;        /* the acting task's mount namespace, 0: the tracer's */
    __u32 pad2;
    __u64 image;        /* the acting process image (image_key()): a first
                         * access is a first access per process record */
};

#define SCRATCH_MAP(name)                                   \
    struct {                                                \
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);            \
        __uint(max_entries, 1);                             \
        __type(key, __u32);                                 \
        __type(value, struct scratch);                      \
    } name SEC(".maps")

SCRATCH_MAP(scratch_sys);
SCRATCH_MAP(scratch_exec);
SCRATCH_MAP(scratch_exit);
SCRATCH_MAP(scratch_enter);

static __always_inline struct scratch *get_scratch(void *map)
{
    __u32 zero = 0;
    return bpf_map_lookup_elem(map, &zero);
}

/* ---- path walking ------------------------------------------------------ */

struct walk_ctx {
    struct scratch *s;
    struct dentry *d;
    struct mount *mnt;
};

static __always_inline struct mount *real_mount(struct vfsmount *m)
{
    return (struct mount *)((char *)m - bpf_core_field_offset(struct mount, mnt));
}

static long walk_step(__u64 idx, void *arg)
{
    struct walk_ctx *c = arg;
    struct dentry *d = c->d;
    struct mount *mnt = c->mnt;
    struct scratch *s = c->s;

    if (!s)
        return 1;
    /* Not stopped at the process's root: a chrooted process's files are
     * named as the host sees them (the walk ends at the namespace's root). */
    struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
    if (d == mnt_root) {
        struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
        if (parent == mnt)
            return 1;                           /* the namespace's root */
        c->d = BPF_CORE_READ(mnt, mnt_mountpoint);
        c->mnt = parent;
        return 0;
    }
    struct dentry *parent = BPF_CORE_READ(d, d_parent);
    if (parent == d)
        return 1;                               /* root of a detached fs */
    __u32 len = BPF_CORE_READ(d, d_name.len);
    const unsigned char *name = BPF_CORE_READ(d, d_name.name);
    if (len > 255)
        len = 255;
    if (len + 2 > s->wpos) {
        s->wflags |= SBX_STR_TRUNCATED;
        return 1;
    }
    __u32 pos = s->wpos - len;
    if (pos > SBX_PATH_MAX)
        return 1;
    bpf_probe_read_kernel(&s->walk[pos], len & 255, name);
    pos -= 1;
    if (pos > SBX_PATH_MAX)
        return 1;
    s->walk[pos] = '/';
    s->wpos = pos;
    c->d = parent;
    return 0;
}

/* A kernel pointer as a plain number.  The path helpers below are global
 * functions (verified once, see emit_path()), and a global function takes
 * no kernel pointers: a copy through bpf_probe_read_kernel() is a number to
 * the verifier. */
static __always_inline __u64 kaddr(const void *p)
{
    __u64 v = 0;
    bpf_probe_read_kernel(&v, sizeof v, &p);
    return v;
}

/* Append the absolute path of (vfsmount, dentry) — their addresses — to the
 * event as string i. */
__noinline int append_walk(struct scratch *s, __u64 *off, __u64 i, __u64 vmnt, __u64 d)
{
    /* 64-bit index: an int's sign extension loses the verifier's bound */
    if (!s || !off || i >= SBX_MAX_STR)
        return -1;
    struct walk_ctx c = {
        .s = s,
        .d = (struct dentry *)d,
        .mnt = real_mount((struct vfsmount *)vmnt),
    };
    s->wpos = SBX_PATH_MAX - 1;
    s->wflags = 0;
    s->walk[SBX_PATH_MAX - 1] = '\0';
    bpf_loop(1024, walk_step, &c, 0);
    __u32 pos = s->wpos;
    if (pos == SBX_PATH_MAX - 1) {              /* the root itself */
        pos -= 1;
        s->walk[SBX_PATH_MAX - 2] = '/';
    }
    if (pos < 1 || pos > SBX_PATH_MAX - 2)
        return -1;
    __u32 n = SBX_PATH_MAX - pos;               /* NUL included */
    __u64 o = *off;
    if (o > SBX_DATA_MAX - SBX_PATH_MAX)
        return -1;
    if (n > SBX_PATH_MAX)
        return -1;
    bpf_probe_read_kernel(&s->data[o], n, &s->walk[pos]);
    s->ev.str_len[i] = n;
    s->ev.str_flags[i] = s->wflags;
    *off = o + n;
    s->ev.nstr = i + 1;
    return 0;
}

static __always_inline int append_empty(struct scratch *s, __u64 *off, int i)
{
    __u64 o = *off;
    if (o > SBX_DATA_MAX - 1 || i < 0 || i >= SBX_MAX_STR)
        return -1;
    s->data[o] = '\0';
    s->ev.str_len[i] = 1;
    s->ev.str_flags[i] = 0;
    *off = o + 1;
    s->ev.nstr = i + 1;
    return 0;
}

static __always_inline __u32 run_gen(__u32 run_id)
{
    struct sbx_run_state *st = bpf_map_lookup_elem(&runs, &run_id);
    return st ? st->gen : 0;
}

/* Append directory (vfsmount, dentry) as string 2*pair: a reference to a
 * directory the reader knows, or its walked path with a new token.  The
 * token is the directory's (device, inode number) and the run's rename
 * generation, so a directory renamed or removed by the run never matches an
 * old token.  Mixed, not XOR-ed together: an inode number's high bits (64-bit
 * inode numbers, overlayfs's layer bits) must not cancel a device's. */
__noinline int append_dir(struct scratch *s, __u64 *off, __u64 pair, __u64 m, __u64 d)
{
    if (!s || !off || pair > 1)
        return -1;
    struct dentry *dd = CAST(struct dentry, (void *)d);
    __u64 ino = dd->d_inode->i_ino;
    __u64 dev = dd->d_sb->s_dev;
    __u64 token = fmix64(ino ^ fmix64(dev | ((__u64)run_gen(s->ev.run_id) << 32)));
    /* a directory's path as another mount namespace shows it is another
     * string than the host's: a token of its own */
    if (s->mntns)
        token = fmix64(token ^ s->mntns);
    if (!token)
        token = 1;
    s->ev.dirtok[pair] = token;
    if (seen_has(&dir_seen, SBX_DIR_SEEN_BITS, seen_tag(token, 0, s->ev.run_id))) {
        append_empty(s, off, 2 * pair);
        s->ev.str_flags[2 * pair] = SBX_STR_DIRREF;
        return 0;
    }
    if (append_walk(s, off, 2 * pair, m, d) < 0)
        return -1;
    if (!(s->ev.str_flags[2 * pair] & SBX_STR_TRUNCATED)) {
        s->ev.str_flags[2 * pair] |= SBX_STR_DIRDEF;
        s->newtok[pair] = token;
    }
    return 0;
}

/* Append a string from user memory; returns its first byte (or -1). */
static __always_inline int append_user_str(struct scratch *s, __u64 *off, int i,
                                           const char *uptr)
{
    __u64 o = *off;
    if (o > SBX_DATA_MAX - SBX_PATH_MAX || i < 0 || i >= SBX_MAX_STR)
        return -1;
    long n = 0;
    if (uptr)
        n = bpf_probe_read_user_str(&s->data[o], SBX_PATH_MAX, uptr);
    if (n <= 0) {
        s->data[o] = '\0';
        s->ev.str_len[i] = 1;
        s->ev.str_flags[i] = uptr ? SBX_STR_FAULT : 0;
        *off = o + 1;
        s->ev.nstr = i + 1;
        return -1;
    }
    s->ev.str_len[i] = n;
    s->ev.str_flags[i] = n >= SBX_PATH_MAX ? SBX_STR_TRUNCATED : 0;
    *off = o + n;
    s->ev.nstr = i + 1;
    return s->data[o];
}

/* The open file behind `fd`; *addr gets its address as a plain number
 * (pointer arithmetic and map keys need one). */
static __always_inline struct file *fd_file_addr(struct task_struct *t, long fd, __u64 *addr)
{
    if (fd < 0)
        return NULL;
    struct fdtable *fdt = t->files->fdt;
    if ((unsigned long)fd >= fdt->max_fds)
        return NULL;
    __u64 a = 0;
    bpf_probe_read_kernel(&a, sizeof a, &fdt->fd[fd]);
    *addr = a;
    return a ? CAST(struct file, (void *)a) : NULL;
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
    __u64 addr;
    return fd_file_addr(t, fd, &addr);
}

/* ---- emitting ------------------------------------------------------------ */

static __always_inline void count_drop(__u32 run_id)
{
    struct sbx_run_state *st = bpf_map_lookup_elem(&runs, &run_id);
    if (st)
        __sync_fetch_and_add(&st->dropped, 1);
}

/* Set by user space before loading: an eighth of the ring buffer. */
const volatile __u64 wake_bytes = 4 << 20;
/* The tracer's own mount namespace (set by user space at load): a traced
 * process in another one sees other paths than the host. */
const volatile __u32 host_mntns = 0;
/* Runs being killed, counted up and down by user space (sbx_ebpf_run_kill,
 * sbx_ebpf_run_end): while none is, on_sys_exit need not look its run up
 * in the `runs` hash map at every system call of every traced task. */
volatile __u32 kills_pending = 0;

/* Wake the reader only when the buffer is filling: fewer wake-ups, fewer
 * context switches; the reader also polls on a short timer. */
static __always_inline __u64 wake_flags(void)
{
    return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > wake_bytes
           ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void submit(struct scratch *s, __u64 off, __u64 flags)
{
    __u64 size = sizeof(struct sbx_event) + off;
    if (size > sizeof(struct sbx_event) + SBX_DATA_MAX)
        return;
    s->ev.size = size;
    if (bpf_ringbuf_output(&events, &s->ev, size, flags)) {
        count_drop(s->ev.run_id);
        return;
    }
    /* Only now that the definition precedes them in the buffer may later
     * events refer to these directories. */
    for (int i = 0; i < 2; i++) {
        if (!s->newtok[i])
            continue;
        seen_put(&dir_seen, SBX_DIR_SEEN_BITS, seen_tag(s->newtok[i], 0, s->ev.run_id),
                 s->ev.run_id);
    }
    if (s->newprobe)
        seen_put(&probe_seen, SBX_PROBE_SEEN_BITS, seen_tag(s->newprobe, 1, s->ev.run_id),
                 s->ev.run_id);
}

static __always_inline void init_event(struct scratch *s, __u16 type, __u32 run_id)
{
    __u64 pt = bpf_get_current_pid_tgid();
    __builtin_memset(&s->ev, 0, sizeof s->ev);
    s->newtok[0] = 0;
    s->newtok[1] = 0;
    s->newprobe = 0;
    s->ev.type = type;
    s->ev.run_id = run_id;
    s->ev.pid = pt >> 32;
    s->ev.tid = (__u32)pt;
    struct task_struct *t = bpf_get_current_task_btf();
    __u32 ns = t->nsproxy->mnt_ns->ns.inum;
    s->mntns = ns == host_mntns ? 0 : ns;
}

/* The first read/write/listing of `fd` by this run. */
/* Pipes, sockets and anonymous inodes are not files of the file system;
 * their traffic is not an access to any path. */
static __always_inline int has_path(struct file *f)
{
    __u32 imode = f->f_inode->i_mode & S_IFMT;
    return imode == S_IFREG || imode == S_IFDIR || imode == S_IFCHR || imode == S_IFBLK;
}

/* Whether the open file has no name a path could reach: its link count
 * is 0 (deleted, memfd), or its dentry is not in the dcache's hash — an
 * O_TMPFILE file keeps its "#<inode>" dentry even after linkat() gave the
 * inode a name, and a file unlinked while another link remains keeps the
 * dentry of the name that is gone.  Walking such a dentry would invent a
 * path.  A mount's root is unhashed by nature and has its mount's name. */
static __always_inline int nameless(struct file *f)
{
    struct dentry *d = f->f_path.dentry;
    if (f->f_inode->__i_nlink == 0)
        return 1;
    return !d->d_hash.pprev && d != f->f_path.mnt->mnt_root;
}

/* The first use of `kind` of open file `faddr` by the run: one SBX_EV_FD
 * event with the file's directory and name (walked now), once per (run,
 * file, kind) thanks to fd_seen.  `tgid`: the acting process when it is not
 * the current task (an io_uring worker); 0 for the current one.  Shared by
 * the syscall path (emit_fd) and io_uring completions. */
__noinline int emit_file(struct scratch *s, __u32 run_id, __u64 faddr, __u32 kind,
                         __u32 tgid)
{
    if (!s || !faddr)
        return 0;
    struct file *f = CAST(struct file, (void *)faddr);
    if (!f || !has_path(f))
        return 0;
    __u64 tag = fd_tag(faddr, f->f_inode->i_ino, kind, tgid ? tgid : s->image, run_id);
    if (seen_has(&fd_seen, SBX_FD_SEEN_BITS, tag))
        return 0;                               /* already reported */
    /* marked before the event is out: two threads racing here may both
     * report, never neither */
    seen_put(&fd_seen, SBX_FD_SEEN_BITS, tag, run_id);
    init_event(s, SBX_EV_FD, run_id);
    if (tgid)
        s->ev.pid = tgid;
    s->ev.kind = kind;
    if (nameless(f))
        s->ev.kind |= SBX_FD_NONAME;            /* no name (any more): none invented */
    s->ev.file = faddr;
    s->ev.imode = f->f_inode->i_mode & S_IFMT;
    s->ev.npath = 1;
    __u64 off = 0;
    struct dentry *d = f->f_path.dentry;
    struct vfsmount *m = f->f_path.mnt;
    struct dentry *parent = d->d_parent;
    if (d == m->mnt_root || parent == d) {
        /* the root of a mount: no parent on this mount, walk it whole */
        append_walk(s, &off, 0, kaddr(m), kaddr(d));
        append_empty(s, &off, 1);
    } else {
        append_dir(s, &off, 0, kaddr(m), kaddr(parent));
        __u64 o = off;
        if (o > SBX_DATA_MAX - SBX_PATH_MAX)
            return 0;
        __u32 len = d->d_name.len;
        long n = bpf_probe_read_kernel_str(&s->data[o], (len & 255) + 1, d->d_name.name);
        if (n <= 0)
            return 0;
        s->ev.str_len[1] = n;
        s->ev.str_flags[1] = 0;
        s->ev.nstr = 2;
        off = o + n;
    }
    submit(s, off, wake_flags());
    return 0;
}

__noinline int emit_fd(struct sbx_task *tp, long fd, __u32 kind)
{
    if (!tp)
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    __u64 faddr = 0;
    struct file *f = fd_file_addr(task, fd, &faddr);
    if (!f || !has_path(f))
        return 0;
    /* A loop of read() calls on one file: the task remembers the last file
     * it reported per kind, so only the first call reaches the map.  File
     * objects are recycled: the inode number makes a reused one differ. */
    __u64 *last = kind == SBX_FD_READ ? &tp->last_read : kind == SBX_FD_WRITE
                  ? &tp->last_write : &tp->last_enum;
    __u64 ident = faddr ^ (f->f_inode->i_ino << 20);
    if (*last == ident)
        return 0;
    *last = ident;
    struct scratch *s = get_scratch(&scratch_sys);
    if (!s)
        return 0;
    s->image = image_key(tp);
    return emit_file(s, tp->run_id, faddr, kind, 0);
}

/* Append the (dir, path) pair for path argument i: strings 2i and 2i+1. */
__noinline int append_path_arg(struct scratch *s, __u64 *off, __u64 i, long dirfd,
                               __u64 uaddr)
{
    const char *uptr = (const char *)uaddr;
    if (!s || !off || i > 1)
        return -1;
    struct task_struct *task = bpf_get_current_task_btf();
    /* Peek at the first byte: an absolute argument needs no directory. */
    char c0 = 0;
    if (uptr)
        bpf_probe_read_user(&c0, 1, uptr);
    if (c0 == '/' && uptr) {
        /* An absolute name starts at the process root.  A chrooted process's
         * root is not the top of the mount tree: its path, walked like any
         * directory, makes the name a host path. */
        struct path root = task->fs->root;
        /* the struct mount around the vfsmount, read as any kernel memory */
        struct mount *rm = CAST(struct mount, real_mount(root.mnt));
        struct vfsmount *rvm = CAST(struct vfsmount, root.mnt);
        if (!rm || !rvm || (root.dentry == rvm->mnt_root && rm->mnt_parent == rm)) {
            append_empty(s, off, 2 * i);
        } else {
            if (append_dir(s, off, i, kaddr(root.mnt), kaddr(root.dentry)) < 0)
                append_empty(s, off, 2 * i);
            else
                s->ev.str_flags[2 * i] |= SBX_STR_ROOT;
        }
    } else {
        struct vfsmount *m = NULL;
        struct dentry *d = NULL;
        if (dirfd == AT_FDCWD) {
            m = task->fs->pwd.mnt;
            d = task->fs->pwd.dentry;
        } else {
            struct file *f = fd_file(task, dirfd);
            /* AT_EMPTY_PATH on a file without a name (O_TMPFILE given to
             * linkat): no directory, so no path for this argument */
            if (f && !((f->f_inode->i_mode & S_IFMT) != S_IFDIR && nameless(f))) {
                m = f->f_path.mnt;
                d = f->f_path.dentry;
            }
        }
        if (!d || append_dir(s, off, i, kaddr(m), kaddr(d)) < 0)
            append_empty(s, off, 2 * i);
    }
    if (uptr)
        append_user_str(s, off, 2 * i + 1, uptr);
    else
        append_empty(s, off, 2 * i + 1);   /* the directory itself */
    return 0;
}

static __always_inline long arg_at(struct scratch *s, int idx)
{
    if (idx < 0 || idx > 5)
        return AT_FDCWD;
    return (long)s->ev.args[idx];
}

/* Only a probe: the call looked at a name and changed nothing. */
static __always_inline int pure_probe(int op, long ret)
{
    return ret < 0 || op == SBX_OP_PROBE;
}

/* One 8-byte word of the name into the FNV-style hash (state in the
 * scratch map, for the same reason as the path walk's). */
struct hash_ctx {
    struct scratch *s;
};

static long hash_step(__u64 i, void *arg)
{
    struct scratch *s = ((struct hash_ctx *)arg)->s;
    if (!s)
        return 1;
    __u32 at = (__u32)i * 8;
    if (at >= s->hlen)
        return 1;
    /* a plain load from the map value: no helper call per 8 bytes (64-bit
     * index, checked right before the load, so that the verifier keeps the
     * bound) */
    __u64 idx = (__u64)s->hstart + at;
    barrier_var(idx);
    if (idx > SBX_DATA_MAX)
        return 1;
    __u64 w = *(__u64 *)&s->data[idx];
    __u32 rem = s->hlen - at;
    if (rem < 8)
        w &= (1ULL << ((rem & 7) * 8)) - 1;  /* bytes past the NUL are stale */
    /* each word through the full mixer, not FNV's multiply: with
     * h = (h ^ w) * p, two directories whose tokens differ in a few low
     * bits (sibling inode numbers) and two names that differ in the same
     * bits ("cms.h" and "ess.h" in sibling directories) gave the same hash,
     * and one probe of each pair was taken for the other's duplicate */
    s->hstate = fmix64(s->hstate ^ w);
    return 0;
}

/* Hash of s->data[start, start + len), from state h. */
static __always_inline __u64 string_hash(struct scratch *s, __u64 h, __u32 start, __u32 len)
{
    s->hstate = h;
    s->hstart = start;
    s->hlen = len;
    struct hash_ctx hc = {.s = s};
    bpf_loop((len + 7) / 8, hash_step, &hc, 0);
    return s->hstate;
}

#define FNV_OFFSET 14695981039346656037ULL

/* Hash of the name string of the open under way, as user memory has it
 * now (string 1 of the event for the exit, s->data[0..] for the entry). */
static __always_inline __u64 name_hash_of(struct scratch *s, __u32 start, __u32 len)
{
    if (start > SBX_PATH_MAX || len > SBX_PATH_MAX || len == 0)
        return 0;
    __u64 h = string_hash(s, FNV_OFFSET, start, len);
    return h ? h : 1;
}

/* Identity of a one-path probe: the directory's token (0 for an absolute
 * name), the name as written (up to 512 bytes; longer ones are not
 * deduplicated) and the outcome.  Probes repeat a lot: every compiler of a
 * build looks for the same headers in the same absent places, so a probe
 * the run already reported is not sent again.  Returns 0 for "do not
 * deduplicate". */
static __always_inline __u64 probe_hash(struct scratch *s, long ret)
{
    __u16 df = s->ev.str_flags[0];
    if (s->ev.nstr < 2 || (s->ev.str_flags[1] & (SBX_STR_TRUNCATED | SBX_STR_FAULT)) ||
        (df & SBX_STR_TRUNCATED))
        return 0;
    /* "/x" differs between namespaces; each process record has its own */
    __u64 h = fmix64(FNV_OFFSET ^ s->mntns ^ fmix64(s->image));
    if (df & (SBX_STR_DIRREF | SBX_STR_DIRDEF))
        h = fmix64(h ^ s->ev.dirtok[0]);
    else if (s->ev.str_len[0] > 1)
        return 0;                       /* a directory without a token */
    __u32 start = s->ev.str_len[0];
    __u32 len = s->ev.str_len[1];       /* NUL included */
    if (start > SBX_PATH_MAX || len > 512)
        return 0;
    h = string_hash(s, h, start, len);
    h = fmix64(h ^ (__u64)(ret < 0 ? -ret : 0) ^ ((__u64)len << 48));
    return h ? h : 1;
}

/* ---- refused names through the process's own magic links ------------------ */

#define EACCES 13
#define EPERM  1

/* b starts with the NUL-less literal `lit` (unrolled: constant indexes) */
#define STARTS(b, lit) starts_with(b, lit, sizeof(lit) - 1)
static __always_inline int starts_with(const char *b, const char *lit, int n)
{
#pragma unroll
    for (int i = 0; i < 20; i++)
        if (i < n && b[i] != lit[i])
            return 0;
    return 1;
}

/* The decimal number at b (up to 10 digits): its value, *len its digits */
static __always_inline long number_at(const char *b, int *len)
{
    long v = 0;
    int n = 0, done = 0;
#pragma unroll
    for (int i = 0; i < 10; i++) {
        if (!done && b[i] >= '0' && b[i] <= '9') {
            v = v * 10 + (b[i] - '0');
            n++;
        } else {
            done = 1;
        }
    }
    *len = n;
    return v;
}

/* If the name at s->data[start] starts with a magic link of the current
 * process, append what it points to as string i (SBX_STR_MAGIC | flag) and
 * return 1; else 0 and nothing appended.  The forms are the ones
 * sbx_path_magic_prefix() in csrc/core/pathnorm.c parses. */
__noinline int append_magic(struct scratch *s, __u64 *off, __u64 i, __u64 start, __u64 flag)
{
    char b[24] = {}, c[16] = {};
    if (!s || !off || i >= SBX_MAX_STR || start > SBX_DATA_MAX)
        return 0;
    bpf_probe_read_kernel(b, sizeof b, &s->data[start]);
    struct task_struct *task = bpf_get_current_task_btf();
    __u32 p = 0;
    int n = 0;
    if (STARTS(b, "/proc/self/"))
        p = 11;
    else if (STARTS(b, "/proc/thread-self/"))
        p = 18;
    else if (STARTS(b, "/dev/fd/"))
        p = 5;                          /* "fd/N" follows */
    else if (STARTS(b, "/proc/") && number_at(&b[6], &n) == (long)task->tgid && n > 0 &&
             n < 11)
        p = 6 + n + 1;                  /* checked below: '/' after the pid */
    else
        return 0;
    if (p > 17)
        return 0;
    if (p == (__u32)(6 + n + 1) && n > 0)
        bpf_probe_read_kernel(c, 1, &s->data[start + p - 1]);
    if (n > 0 && c[0] != '/')
        return 0;
    bpf_probe_read_kernel(c, sizeof c, &s->data[start + p]);
    struct vfsmount *m = NULL;
    struct dentry *d = NULL;
    if (STARTS(c, "fd/")) {
        long fd = number_at(&c[3], &n);
        char after = 0;
        if (n > 0 && n < 10)
            bpf_probe_read_kernel(&after, 1, &s->data[start + p + 3 + n]);
        struct file *f = n > 0 && n < 10 && (after == '/' || after == 0) ? fd_file(task, fd)
                                                                         : NULL;
        if (f) {
            m = f->f_path.mnt;
            d = f->f_path.dentry;
        }
    } else if (STARTS(c, "root") && (c[4] == '/' || c[4] == 0)) {
        m = task->fs->root.mnt;
        d = task->fs->root.dentry;
    } else if (STARTS(c, "cwd") && (c[3] == '/' || c[3] == 0)) {
        m = task->fs->pwd.mnt;
        d = task->fs->pwd.dentry;
    }
    if (!d || append_walk(s, off, i, kaddr(m), kaddr(d)) < 0)
        return 0;
    s->ev.str_flags[i] |= SBX_STR_MAGIC | flag;
    return 1;
}

/* Where a syscall's path arguments are: npath pairs, dN = argument index of
 * path N's dirfd (-1: the cwd), pN = argument index of the path; emit_path()
 * also takes the operation in bits 24-27. */
#define LAYOUT_PRE_EXEC (1 << 28)     /* see SBX_PATH_PRE_EXEC */
#define LAYOUT(npath, d0, p0, d1, p1) \
    ((npath) | (((d0) + 1) << 4) | ((p0) << 8) | (((d1) + 1) << 12) | ((p1) << 16))

/* Append the opened file's own final component as string i (SBX_STR_FILENAME),
 * unless the file is the root of a mount (its dentry name is then the
 * mounted source's, not a name in the directory it was opened from) or has
 * no name (O_TMPFILE: the dentry shows an invented "#ino"). */
static __always_inline void append_file_name(struct scratch *s, __u64 *off, int i,
                                             struct file *f)
{
    struct dentry *d = f->f_path.dentry;
    __u64 o = *off;
    if (d == f->f_path.mnt->mnt_root || nameless(f) || i < 0 ||
        i >= SBX_MAX_STR || o > SBX_DATA_MAX - 256)
        return;
    __u32 len = d->d_name.len;
    long n = bpf_probe_read_kernel_str(&s->data[o], (len & 255) + 1, d->d_name.name);
    if (n <= 0)
        return;
    s->ev.str_len[i] = n;
    s->ev.str_flags[i] = SBX_STR_FILENAME;
    s->ev.nstr = i + 1;
    *off = o + n;
}

/* A path syscall returned.
 *
 * emit_path(), emit_fd() and emit_file() are global functions (not static):
 * the verifier checks a global function once, on its own, with unknown
 * arguments, whereas a static one is verified again at each of its call
 * sites — and the generated switch of on_sys_exit has one per row of the
 * syscall table, each with other constants.  Verifying them per call site
 * made on_sys_exit ~390k processed instructions and over a second of
 * loading; once each, it is a few tens of milliseconds.  The price: a
 * global function takes scalars and pointers to plain memory only, so the
 * registers travel in the scratch map (path_call()). */
__noinline int emit_path(struct scratch *s, __u32 run_id, long nr, long ret, int layout)
{
    int op = (layout >> 24) & 0xf;      /* BPF functions take five arguments */
    int npath = layout & 0xf;
    int d0 = ((layout >> 4) & 0xf) - 1, p0 = (layout >> 8) & 0xf;
    int d1 = ((layout >> 12) & 0xf) - 1, p1 = (layout >> 16) & 0xf;
    if (!s)
        return 0;
    init_event(s, SBX_EV_PATH, run_id);
    s->ev.nr = nr;
    s->ev.ret = ret;
    for (int i = 0; i < 6; i++)
        s->ev.args[i] = s->regs[i];
    s->ev.npath = npath;
    if (layout & LAYOUT_PRE_EXEC)
        s->ev.kind = SBX_PATH_PRE_EXEC;
    __u64 off = 0;
    /* A chdir that succeeded has already moved the cwd: its name resolved
     * now would be relative to the new directory, which is the one it named. */
    if (nr == __NR_chdir && ret == 0)
        append_path_arg(s, &off, 0, AT_FDCWD, 0);
    else
        append_path_arg(s, &off, 0, (int)arg_at(s, d0), arg_at(s, p0));
    if (npath > 1)
        append_path_arg(s, &off, 1, (int)arg_at(s, d1), arg_at(s, p1));
    /* a refused name through the process's own /proc links: their target
     * now (never deduplicated: /proc/self/fd/3 differs between processes) */
    int magic = 0;
    if ((ret == -EACCES || ret == -EPERM) && s->ev.nstr == 2 * npath) {
        __u64 at0 = s->ev.str_len[0] & (SBX_PATH_MAX * 2 - 1);
        magic = append_magic(s, &off, 2 * npath, at0, 0);
        if (!magic && npath > 1)
            magic = append_magic(s, &off, 2 * npath,
                                 at0 + (s->ev.str_len[1] & (SBX_PATH_MAX - 1)) +
                                 (s->ev.str_len[2] & (SBX_PATH_MAX - 1)), SBX_STR_MAGIC2);
    }
    if (npath == 1 && pure_probe(op, ret) && !magic) {
        __u64 h = probe_hash(s, ret);
        if (h) {
            if (seen_has(&probe_seen, SBX_PROBE_SEEN_BITS, seen_tag(h, 1, run_id)))
                return 0;               /* this run reported it already */
            s->newprobe = h;
        }
    }
    if (ret == 0 && (nr == __NR_rename || nr == __NR_renameat || nr == __NR_renameat2 ||
                     nr == __NR_rmdir || (nr == __NR_unlinkat && (s->ev.args[2] & 0x200)))) {
        struct sbx_run_state *st = bpf_map_lookup_elem(&runs, &run_id);
        if (st)
            __sync_fetch_and_add(&st->gen, 1);
    }
    /* A successful open: identify the file so that its later reads can be
     * tied back to the name it was opened under. */
    if (ret >= 0 && op == SBX_OP_OPEN) {
        struct task_struct *task = bpf_get_current_task_btf();
        __u64 faddr = 0;
        struct file *f = fd_file_addr(task, ret, &faddr);
        if (f) {
            s->ev.file = faddr;
            s->ev.kind = f->f_mode;
            s->ev.imode = f->f_inode->i_mode & S_IFMT;
            append_file_name(s, &off, 2 * npath, f);
            int fi = 2 * npath;
            if (s->name_hash && s->ev.nstr == fi + 1 && fi < SBX_MAX_STR) {
                /* was the name the kernel resolved the one we read now? */
                __u64 h = name_hash_of(s, s->ev.str_len[0], s->ev.str_len[1]);
                s->ev.str_flags[fi] |= h == s->name_hash ? SBX_STR_NAME_SAME
                                                         : SBX_STR_NAME_CHANGED;
            }
        }
    }
    if (nr == __NR_openat2) {
        /* the flags live in struct open_how, which args[2] points to */
        __u64 flags = 0;
        bpf_probe_read_user(&flags, sizeof flags, (void *)s->ev.args[2]);
        s->ev.args[3] = flags;
    }
    submit(s, off, wake_flags());
    return 0;
}

static __always_inline int path_call(struct pt_regs *regs, __u32 run_id, long nr, long ret,
                                     int layout, __u64 name_hash, struct sbx_task *tp)
{
    struct scratch *s = get_scratch(&scratch_sys);
    if (!s)
        return 0;
    s->name_hash = name_hash;
    s->image = image_key(tp);
    s->regs[0] = regs->di;
    s->regs[1] = regs->si;
    s->regs[2] = regs->dx;
    s->regs[3] = regs->r10;
    s->regs[4] = regs->r8;
    s->regs[5] = regs->r9;
    return emit_path(s, run_id, nr, ret, layout);
}

static __always_inline void emit_unseen(__u32 run_id, long nr)
{
    struct scratch *s = get_scratch(&scratch_sys);
    if (!s)
        return;
    init_event(s, SBX_EV_UNSEEN, run_id);
    s->ev.nr = nr;
    __u64 off = 0;
    bpf_get_current_comm(&s->data[0], 16);
    s->data[15] = '\0';
    s->ev.str_len[0] = 16;
    s->ev.nstr = 1;
    off = 16;
    submit(s, off, BPF_RB_FORCE_WAKEUP);
}

static __always_inline long arg_reg(struct pt_regs *regs, int idx)
{
    switch (idx) {
    case 0: return regs->di;
    case 1: return regs->si;
    case 2: return regs->dx;
    case 3: return regs->r10;
    case 4: return regs->r8;
    case 5: return regs->r9;
    }
    return AT_FDCWD;
}

/* A path-taking call of the table returned: the special arguments of a few
 * rows, then the common event. */
static __always_inline int on_path_call(struct pt_regs *regs, struct sbx_task *tp,
                                        __u32 run_id, long nr, long ret, int op, int layout)
{
    int p0 = (layout >> 8) & 0xf;
    if (op == SBX_OP_EXEC && ret >= 0)
        return 0;               /* a successful exec is the exec event */
    if (nr == __NR_newfstatat || nr == __NR_statx || nr == __NR_utimensat ||
        nr == __NR_futimesat) {
        /* fstat() is newfstatat(fd, "", AT_EMPTY_PATH) in today's glibc and
         * futimens() is utimensat(fd, NULL, ...): operations on an open
         * file, not on a name. */
        const char *name = (const char *)arg_reg(regs, p0);
        char c0 = 0;
        if (name)
            bpf_probe_read_user(&c0, 1, name);
        if (c0 == 0) {
            if (ret >= 0 && op == SBX_OP_MODIFY)
                emit_fd(tp, regs->di, SBX_FD_WRITE);
            if (ret >= 0 || !name)
                return 0;
        }
    }
    __u64 name_hash = 0;
    if (op == SBX_OP_OPEN) {
        name_hash = tp->name_hash;
        tp->name_hash = 0;
    }
    return path_call(regs, run_id, nr, ret, layout | (op << 24), name_hash, tp);
}

/* ---- breakaway ------------------------------------------------------------ */

/* Is the string at `src` (its basename when `base`) one of the run's
 * declared entries?  The rule itself is sandbox_py/breakaway.py: names are
 * matched against the basename of the file as exec'd and of argv[0],
 * absolute paths against the file as exec'd and as resolved. */
struct slash_ctx {
    const char *str;
    __u32 len;
    __u32 after;        /* index just past the last '/' */
};

static long slash_step(__u64 i, void *arg)
{
    struct slash_ctx *c = arg;
    if (i >= c->len)
        return 1;
    char ch = 0;
    bpf_probe_read_kernel(&ch, 1, c->str + i);
    if (ch == '\0')
        return 1;
    if (ch == '/')
        c->after = i + 1;
    return 0;
}

static __always_inline int ba_declared(__u32 run_id, const char *src, __u32 len, int base)
{
    __u32 zero = 0;
    struct sbx_ba_key *k = bpf_map_lookup_elem(&ba_scratch, &zero);
    if (!k)
        return 0;
    if (base) {
        struct slash_ctx c = {.str = src, .len = len, .after = 0};
        bpf_loop(SBX_PATH_MAX, slash_step, &c, 0);
        src += c.after & (SBX_PATH_MAX - 1);
    }
    __builtin_memset(k, 0, sizeof *k);
    k->run_id = run_id;
    long n = bpf_probe_read_kernel_str(k->name, sizeof k->name, src);
    if (n <= 1 || n >= (long)sizeof k->name)
        return 0;           /* empty, or too long to be a declared entry */
    return bpf_map_lookup_elem(&breakaway, k) != NULL;
}

/* ---- programs ------------------------------------------------------------- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
    __u32 ptid = parent->pid;
    struct sbx_task t = {};
    struct sbx_task *pt = bpf_map_lookup_elem(&tracked, &ptid);
    __u32 *run = bpf_map_lookup_elem(&spawners, &ptid);
    if (run) {
        /* A spawn window wins: Sandbox.run() inside an in-process trace
         * owns its command.  The outer trace is told it does not see it. */
        t.run_id = *run;
        t.flags = SBX_TASK_PENDING;
        if (pt && pt->run_id != t.run_id) {
            struct sbx_event ev = {};
            ev.size = sizeof ev;
            ev.type = SBX_EV_UNSEEN;
            ev.run_id = pt->run_id;
            ev.pid = parent->tgid;
            ev.tid = child->pid;
            ev.nr = SBX_NR_HANDED_OVER;
            bpf_ringbuf_output(&events, &ev, sizeof ev, 0);
        }
    } else if (pt) {
        t.run_id = pt->run_id;
        t.flags = pt->flags & SBX_TASK_PENDING;
        t.mntns = pt->mntns;
        if (child->tgid != child->pid)
            t.image = pt->image;        /* a thread acts for its process */
    } else {
        return 0;
    }
    struct sbx_run_state *st = bpf_map_lookup_elem(&runs, &t.run_id);
    if (!st)
        return 0;
    __u32 ctid = child->pid;
    if (bpf_map_update_elem(&tracked, &ctid, &t, BPF_ANY) == 0)
        __sync_fetch_and_add(&st->live, 1);
    else
        __sync_fetch_and_add(&st->dropped, 1);  /* tracked map full */
    if (child->tgid == ctid) {
        /* a new process, not a thread: its record of who did what opens
         * here, before it runs (sent by the parent, so it precedes every
         * event of the child) */
        struct sbx_event ev = {};
        ev.size = sizeof ev;
        ev.type = SBX_EV_FORK;
        ev.run_id = t.run_id;
        ev.pid = ctid;
        ev.tid = ctid;
        ev.ppid = parent->tgid;
        if (bpf_ringbuf_output(&events, &ev, sizeof ev, 0))
            __sync_fetch_and_add(&st->dropped, 1);
    }
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    __u32 tid = old_pid;
    struct sbx_task *tp = bpf_map_lookup_elem(&tracked, &tid);
    if (!tp)
        return 0;
    struct sbx_task t = *tp;
    t.flags &= ~SBX_TASK_PENDING;
    t.image++;                          /* a new process record */
    t.last_read = t.last_write = t.last_enum = 0;   /* whose first uses are its own */
    __u32 ntid = p->pid;
    if (ntid != tid) {
        /* a non-leader thread exec'd and took over the leader's pid */
        bpf_map_delete_elem(&tracked, &tid);
    }
    bpf_map_update_elem(&tracked, &ntid, &t, BPF_ANY);

    struct scratch *s = get_scratch(&scratch_exec);
    if (!s)
        return 0;
    init_event(s, SBX_EV_EXEC, t.run_id);
    s->ev.ppid = BPF_CORE_READ(p, real_parent, tgid);
    __u64 off = 0;
    const char *filename = BPF_CORE_READ(bprm, filename);
    const char *interp = BPF_CORE_READ(bprm, interp);
    long n = bpf_probe_read_kernel_str(&s->data[0], SBX_PATH_MAX, filename);
    if (n <= 0) {
        s->data[0] = '\0';
        n = 1;
    }
    s->ev.str_len[0] = n;
    s->ev.nstr = 1;
    off = n;
    /* the cwd, always: a relative filename is resolved against it, and
     * the process's record says where it ran (a compile's directory) */
    struct task_struct *task = bpf_get_current_task_btf();
    if (append_walk(s, &off, 1, (__u64)BPF_CORE_READ(task, fs, pwd.mnt),
                    (__u64)BPF_CORE_READ(task, fs, pwd.dentry)) < 0)
        append_empty(s, &off, 1);
    if (interp != filename) {
        __u64 o = off;
        if (o > SBX_DATA_MAX - SBX_PATH_MAX)
            return 0;
        n = bpf_probe_read_kernel_str(&s->data[o], SBX_PATH_MAX, interp);
        if (n <= 0) {
            s->data[o] = '\0';
            n = 1;
        }
        s->ev.str_len[2] = n;
        s->ev.nstr = 3;
        off = o + n;
    } else {
        append_empty(s, &off, 2);
    }
    struct file *f = BPF_CORE_READ(bprm, file);
    if (append_walk(s, &off, 3, (__u64)BPF_CORE_READ(f, f_path.mnt),
                    (__u64)BPF_CORE_READ(f, f_path.dentry)) < 0)
        append_empty(s, &off, 3);
    /* argv: the new image's argument block, as the kernel just wrote it */
    unsigned long as = BPF_CORE_READ(p, mm, arg_start);
    unsigned long ae = BPF_CORE_READ(p, mm, arg_end);
    __u64 o = off;
    if (o > SBX_DATA_MAX - SBX_PATH_MAX)
        return 0;
    unsigned long alen = ae - as;
    __u8 aflags = 0;
    if (alen > SBX_PATH_MAX - 1) {
        alen = SBX_PATH_MAX - 1;
        aflags = SBX_STR_TRUNCATED;
    }
    if (bpf_probe_read_user(&s->data[o], alen & (SBX_PATH_MAX - 1), (void *)as) != 0) {
        alen = 0;
        aflags |= SBX_STR_FAULT;
    }
    alen &= SBX_PATH_MAX - 1;
    s->data[(o + alen) & (SBX_DATA_MAX + SBX_PATH_MAX - 1)] = '\0';
    s->ev.str_len[4] = alen + 1;
    s->ev.str_flags[4] = aflags;
    s->ev.nstr = 5;
    off = o + alen + 1;

    /* A declared breakaway leaves the run here, before it runs an
     * instruction of the new program: untracked, its future children are
     * never tracked, it is not waited for or killed.  The event tells the
     * reader so (Result.breakaways). */
    struct sbx_run_state *st = bpf_map_lookup_elem(&runs, &t.run_id);
    int leaves = 0;
    if (st && st->breakaway) {
        __u32 s3 = s->ev.str_len[0] + s->ev.str_len[1] + s->ev.str_len[2];
        leaves = (s->data[0] == '/' && ba_declared(t.run_id, &s->data[0], SBX_PATH_MAX, 0)) ||
                 ba_declared(t.run_id, &s->data[0], SBX_PATH_MAX, 1);
        if (!leaves && s->ev.str_len[3] > 1 && s3 < SBX_DATA_MAX)
            leaves = ba_declared(t.run_id, &s->data[s3], SBX_PATH_MAX, 0);
        if (!leaves && alen && o < SBX_DATA_MAX)
            leaves = ba_declared(t.run_id, &s->data[o], SBX_PATH_MAX, 1);
    }
    if (leaves)
        s->ev.kind = SBX_EXEC_BREAKAWAY;
    submit(s, off, BPF_RB_FORCE_WAKEUP);
    if (!leaves || !st)
        return 0;
    bpf_map_delete_elem(&tracked, &ntid);
    if (__sync_fetch_and_add(&st->live, -1) != 1)
        return 0;
    init_event(s, SBX_EV_RUN_DONE, t.run_id);
    submit(s, 0, BPF_RB_FORCE_WAKEUP);
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
    __u32 tid = p->pid;
    struct sbx_task *tp = bpf_map_lookup_elem(&tracked, &tid);
    if (!tp)
        return 0;
    struct sbx_task t = *tp;
    bpf_map_delete_elem(&tracked, &tid);
    if (t.flags & SBX_TASK_SELF)
        return 0;
    struct sbx_run_state *st = bpf_map_lookup_elem(&runs, &t.run_id);
    if (!st)
        return 0;
    if (p->signal->live.counter == 0) {
        /* the process is gone with this thread (do_exit() counted it out
         * before this tracepoint; two threads exiting at once may both
         * see 0 and both report the same group status) */
        struct sbx_event ev = {};
        ev.size = sizeof ev;
        ev.type = SBX_EV_EXIT;
        ev.run_id = t.run_id;
        ev.pid = p->tgid;
        ev.tid = tid;
        ev.ret = p->exit_code;
        if (bpf_ringbuf_output(&events, &ev, sizeof ev, 0))
            __sync_fetch_and_add(&st->dropped, 1);
    }
    if (__sync_fetch_and_add(&st->live, -1) != 1)
        return 0;
    struct scratch *s = get_scratch(&scratch_exit);
    if (!s)
        return 0;
    init_event(s, SBX_EV_RUN_DONE, t.run_id);
    submit(s, 0, BPF_RB_FORCE_WAKEUP);
    return 0;
}

/* An open by a traced task begins: hash its name as user memory has it
 * now, before the kernel resolves it.  At the exit the name is read again
 * for the event; the same hash says that the name the event carries is
 * the one the kernel used, so a final component other than the file's
 * own was a symlink at the access (even if it is retargeted or removed
 * later); another hash, that another thread rewrote it meanwhile.  Runs
 * at every system call of every task: a compare for all but opens. */
SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
    if (id != __NR_openat && id != __NR_open && id != __NR_openat2 && id != __NR_creat)
        return 0;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct sbx_task *tp = bpf_map_lookup_elem(&tracked, &tid);
    if (!tp || (tp->flags & SBX_TASK_PENDING))
        return 0;
    struct scratch *s = get_scratch(&scratch_enter);
    if (!s)
        return 0;
    const char *name = (const char *)(id == __NR_open || id == __NR_creat ? regs->di : regs->si);
    long n = bpf_probe_read_user_str(&s->data[0], SBX_PATH_MAX, name);
    tp->name_hash = n > 0 ? name_hash_of(s, 0, n) : 0;
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct sbx_task *tp = bpf_map_lookup_elem(&tracked, &tid);
    if (!tp)
        return 0;
    __u32 run_id = tp->run_id;
    __u32 flags = tp->flags;
    long nr = regs->orig_ax;

    if (kills_pending) {
        struct sbx_run_state *st = bpf_map_lookup_elem(&runs, &run_id);
        if (st && st->kill) {
            bpf_send_signal(SIGKILL);
            return 0;
        }
    }
    /* 32-bit system calls (int $0x80 from a 64-bit process, a 32-bit
     * program) have other numbers: never decoded as 64-bit ones, reported */
    struct task_struct *cur = bpf_get_current_task_btf();
    if (cur->thread_info.status & 0x0002 /* TS_COMPAT */) {
        if (!(tp->flags & SBX_TASK_WARNED_COMPAT)) {
            tp->flags |= SBX_TASK_WARNED_COMPAT;
            emit_unseen(run_id, SBX_NR_COMPAT);
        }
        return 0;
    }
    /* A move to another mount namespace (unshare, setns; a child cloned
     * into a new one sees it at the exit of its clone) is reported before
     * the call's own event: the reader names its paths from then on. */
    __u32 ns = cur->nsproxy->mnt_ns->ns.inum;
    if (ns == host_mntns)
        ns = 0;
    if (ns != tp->mntns && host_mntns) {
        struct sbx_event ev = {};
        ev.size = sizeof ev;
        ev.type = SBX_EV_MNTNS;
        ev.run_id = run_id;
        __u64 pt = bpf_get_current_pid_tgid();
        ev.pid = pt >> 32;
        ev.tid = (__u32)pt;
        ev.nr = nr;
        ev.args[0] = tp->mntns;
        ev.args[1] = ns;
        tp->mntns = ns;
        if (bpf_ringbuf_output(&events, &ev, sizeof ev, 0))
            count_drop(run_id);
    }
    if (flags & SBX_TASK_PENDING) {
        /* Between fork and exec in a spawner's child: only the search for
         * the program along $PATH is the command's own doing. */
        if ((nr == __NR_execve || nr == __NR_execveat) && ret < 0) {
            if (nr == __NR_execve)
                path_call(regs, run_id, nr, ret,
                          LAYOUT(1, -1, 0, -1, 0) | (SBX_OP_EXEC << 24) | LAYOUT_PRE_EXEC, 0,
                          tp);
            else
                path_call(regs, run_id, nr, ret,
                          LAYOUT(1, 0, 1, -1, 0) | (SBX_OP_EXEC << 24) | LAYOUT_PRE_EXEC, 0,
                          tp);
        }
        return 0;
    }

    switch (nr) {
    /* Mounts change which file a name means in the namespace that made
     * them: the reader keeps each namespace's changes (mount: source and
     * target, as the namespace names them; umount2: the target).  Calls of
     * the new mount API are only named: what they attach is not followed. */
    case __NR_mount:
        if (ret == 0)
            path_call(regs, run_id, nr, ret, LAYOUT(2, -1, 0, -1, 1) | (SBX_OP_MODIFY << 24), 0,
                      tp);
        return 0;
    case __NR_umount2:
        if (ret == 0)
            path_call(regs, run_id, nr, ret, LAYOUT(1, -1, 0, -1, 0) | (SBX_OP_MODIFY << 24), 0,
                      tp);
        return 0;
    case __NR_move_mount:
    case __NR_pivot_root:
        if (ret == 0)
            emit_unseen(run_id, nr);
        return 0;
    case __NR_mmap: {
        long mflags = regs->r10;
        long fd = regs->r8;
        long prot = regs->dx;
        if ((unsigned long)ret >= (unsigned long)-4095L || (mflags & MAP_ANONYMOUS) || fd < 0)
            return 0;
        emit_fd(tp, fd, SBX_FD_READ);
        if ((prot & PROT_WRITE) && (mflags & MAP_SHARED))
            emit_fd(tp, fd, SBX_FD_WRITE);
        return 0;
    }
    /* Every other call comes from the one table (csrc/linux/syscalls.def). */
#define SBX_SC_FD(name, use, fd, hot)                                          \
    case __NR_##name:                                                           \
        if (ret >= 0)                                                           \
            emit_fd(tp, arg_reg(regs, fd), use);                                \
        return 0;
#define SBX_SC_FD2(name, fd_in, fd_out)                                        \
    case __NR_##name:                                                           \
        if (ret >= 0) {                                                         \
            emit_fd(tp, arg_reg(regs, fd_in), SBX_FD_READ);                     \
            emit_fd(tp, arg_reg(regs, fd_out), SBX_FD_WRITE);                   \
        }                                                                       \
        return 0;
#define SBX_SC_UNSEEN(name)                                                    \
    case __NR_##name:                                                           \
        if (ret >= 0)                                                           \
            emit_unseen(run_id, nr);                                            \
        return 0;
#define SBX_SC_PATH(name, op, np, d0, p0, d1, p1)                              \
    case __NR_##name:                                                           \
        return on_path_call(regs, tp, run_id, nr, ret, op, LAYOUT(np, d0, p0, d1, p1));
#include "syscalls.def"
    }
    return 0;
}

/* io_uring requests: their own programs, on this file's maps and helpers */
#include "io_uring.bpf.h"
