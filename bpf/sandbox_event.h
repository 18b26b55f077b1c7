/* sandbox_event.h — the eBPF wire: what the BPF programs (kernel, writer)
 * send the reader (csrc/linux/ebpf/ebpf.c) through the ring buffer.  Its
 * names carry the SBX_EV_, SBX_STR_, SBX_FD_ and SBX_TASK_ prefixes; the
 * shim's log (shims/core/sbx_log.h) is another wire, with SBX_LOG_/SBX_REC_.
 *
 * Each record in the ring buffer is a struct sbx_event header followed by
 * `nstr` NUL-terminated strings packed back to back; str_len[i] counts the
 * bytes of string i including its NUL.  What the strings mean depends on
 * `type` (see the comments on enum sbx_event_type).
 *
 * Included by BPF code (with vmlinux.h types) and by user space (with
 * <stdint.h>), hence the __u32 style types.
 */
#ifndef SBX_SANDBOX_EVENT_H
#define SBX_SANDBOX_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SBX_PATH_MAX   4096          /* one string, NUL included */
#define SBX_MAX_STR    5
#define SBX_DATA_MAX   (SBX_MAX_STR * SBX_PATH_MAX)

enum sbx_event_type {
    /* A path-taking syscall returned.  Strings, per path argument i
     * (npath of them): dir_i (the dirfd's or cwd's absolute path, walked in
     * the kernel; empty when the argument is absolute) then path_i (the
     * argument as the program passed it). */
    SBX_EV_PATH = 1,
    /* First read/write/listing of an open file by this run: one pair,
     * (the file's directory, its name), as for SBX_EV_PATH. */
    SBX_EV_FD = 2,
    /* A successful exec.  Strings: filename as passed, the cwd (walked;
     * filename is relative to it when it is relative), #! interpreter as written (or empty), the
     * executed file's absolute path, argv (NUL-separated, as one blob). */
    SBX_EV_EXEC = 3,
    /* The last traced task of the run exited.  No strings. */
    SBX_EV_RUN_DONE = 4,
    /* The task did something this backend cannot follow (io_uring set-up,
     * open_by_handle_at); `nr` says which.  One string: the task's comm. */
    SBX_EV_UNSEEN = 5,
    /* A traced process forked a new process (not a thread): `pid` is the
     * child's tgid, `ppid` the parent's.  Sent from the parent's fork, so
     * it precedes every event of the child.  No strings. */
    SBX_EV_FORK = 6,
    /* The last thread of traced process `pid` exited; `ret` is its wait
     * status (as waitpid() would report it).  No strings. */
    SBX_EV_EXIT = 7,
    /* Process `pid` is now in mount namespace args[1] (it was in args[0];
     * 0 is the tracer's own), seen at the exit of system call `nr`: unshare
     * or clone made the new namespace a copy of the old one, setns joined
     * another.  The paths of its later events are as that namespace shows
     * them; the reader turns them into the host's (docs/backends.md).
     * No strings. */
    SBX_EV_MNTNS = 8,
};

/* SBX_EV_UNSEEN with this `nr`: child `tid` of process `pid` was started
 * by a nested run (a spawn window) and is reported there, not here. */
#define SBX_NR_HANDED_OVER (-1)
/* SBX_EV_UNSEEN: process `pid` made 32-bit (ia32) system calls, which are
 * not decoded. */
#define SBX_NR_COMPAT      (-2)

/* SBX_EV_FD kinds: the values of enum sbx_use (csrc/core/access_ops.h), so
 * that the table's use column can be sent as it is */
#define SBX_FD_READ   1
#define SBX_FD_WRITE  2
#define SBX_FD_ENUM   3
/* OR'ed into an SBX_EV_FD kind: the file has no name any more (O_TMPFILE,
 * memfd-like, deleted): its walked path would be an invented one. */
#define SBX_FD_NONAME 0x100

/* str_flags bits (16 of them) */
#define SBX_STR_TRUNCATED 0x1        /* did not fit: the path is incomplete */
#define SBX_STR_FAULT     0x2        /* user memory could not be read */
/* Directory strings are cached: the first event that needs a directory
 * carries its walked path (DIRDEF) and a token, later ones only the token
 * (DIRREF, empty string).  Walking a path costs a few probe reads per
 * component; a token costs one map lookup. */
#define SBX_STR_DIRDEF    0x4
#define SBX_STR_DIRREF    0x8
/* The directory string of an absolute name: the root of a chrooted process
 * (the name is then relative to it), in the host's terms. */
#define SBX_STR_ROOT      0x10
/* The name the opened file's dentry has, after the (dir, name) pair of a
 * successful open.  The name string is read from user memory after the
 * call, so another thread may have rewritten it since the kernel used it:
 * a final component that differs from the file's own is either a symlink
 * or such a rewrite.  The kernel half read the name at the call's entry
 * too and says which it was, with one of these on the FILENAME string: */
#define SBX_STR_FILENAME  0x20
#define SBX_STR_NAME_SAME 0x40       /* the same name at entry and exit: what
                                      * the kernel resolved (a symlink, if
                                      * the file's name differs) */
#define SBX_STR_NAME_CHANGED 0x80    /* rewritten during the call */
/* After the pairs of a refused call (EACCES, EPERM) whose name starts with
 * one of the process's own magic links (/proc/self/fd/N, /proc/self/root,
 * /proc/self/cwd; the same under /proc/thread-self, /proc/<its pid> and
 * /dev/fd/N): the kernel's path of what that link points to, walked at the
 * call -- the process may be gone when the reader sees the event.  The
 * reader joins the rest of the name to it.  With SBX_STR_MAGIC2 it is the
 * second pair's name (one such string per event). */
#define SBX_STR_MAGIC     0x100
#define SBX_STR_MAGIC2    0x200

struct sbx_event {
    __u32 size;          /* header + strings, bytes */
    __u16 type;          /* enum sbx_event_type */
    __u8  nstr;
    __u8  npath;         /* SBX_EV_PATH: number of (dir, path) pairs */
    __u32 run_id;
    __u32 pid;           /* tgid */
    __u32 tid;
    __u32 ppid;          /* SBX_EV_EXEC: parent's tgid */
    __s32 nr;            /* syscall number (SBX_EV_PATH/SBX_EV_UNSEEN) */
    __u32 kind;          /* SBX_EV_FD: SBX_FD_*; SBX_EV_PATH: open's f_mode */
    __s64 ret;           /* syscall return value */
    __u64 args[6];       /* syscall arguments (flags, modes, fds) */
    __u64 file;          /* struct file * of the opened/used file (identity) */
    __u32 imode;         /* inode mode of that file (S_IFMT bits) */
    __u64 dirtok[2];     /* directory tokens of path pairs 0 and 1 */
    __u16 str_len[SBX_MAX_STR];
    __u16 str_flags[SBX_MAX_STR];   /* SBX_STR_* */
    __u8  pad[4];
};

/* A slot of the kernel's per-run deduplication caches (fd_seen, dir_seen,
 * probe_seen: direct-mapped arrays, see sandbox.bpf.c).  `tag` mixes the
 * identity and the run id (0: empty); `run_id` lets user space clear an
 * ended run's slots. */
struct sbx_seen_slot {
    __u64 tag;
    __u32 run_id;
    __u32 pad;
};
/* log2 of their sizes (16 bytes a slot: 4 MiB, 1 MiB, 2 MiB) */
#define SBX_FD_SEEN_BITS    18
#define SBX_DIR_SEEN_BITS   16
#define SBX_PROBE_SEEN_BITS 17

/* Per-run state shared by kernel and user space (map `runs`). */
struct sbx_run_state {
    __s64 live;          /* traced tasks not yet exited */
    __u64 dropped;       /* events lost because the ring buffer was full */
    __u32 kill;          /* set by user space: SIGKILL every task of the run */
    __u32 gen;           /* bumped by renames and rmdirs: directory tokens of
                          * an older generation are never reused */
    __u32 breakaway;     /* set by user space: the run declared breakaway
                          * entries (map `breakaway`) */
    __u32 pad;
};

/* Key of map `breakaway`: one entry of a run's breakaway declaration
 * (sandbox_py/breakaway.py), a program name or an absolute path,
 * NUL-padded.  Longer entries are not pushed; user space matches them. */
#define SBX_BA_NAME 252
struct sbx_ba_key {
    __u32 run_id;
    char name[SBX_BA_NAME];
};
/* SBX_EV_EXEC `kind`: the exec matched the run's breakaway declaration and
 * the process (with its future children) was dropped from `tracked`. */
#define SBX_EXEC_BREAKAWAY 1
/* SBX_EV_PATH `kind` of a failed exec by a spawner's child before its
 * first successful exec (its search along $PATH): the command's doing, so
 * the reader files it with the exec that follows. */
#define SBX_PATH_PRE_EXEC 1

/* Value of map `tracked` (key: tid in the initial pid namespace). */
struct sbx_task {
    __u32 run_id;
    __u32 flags;
    __u64 last_read, last_write, last_enum;  /* struct file * last reported */
    __u64 name_hash;     /* hash of the name of the open under way, read at
                          * its entry (0: none) */
    __u32 mntns;         /* its mount namespace when last seen (0: the
                          * tracer's) */
    __u32 image;         /* execs of its process so far: with the tgid, the
                          * program image the deduplication is per */
};
#define SBX_TASK_PENDING 0x1     /* forked by a spawner, not yet exec'd */
#define SBX_TASK_SELF    0x2     /* registered by user space, not counted */
#define SBX_TASK_WARNED_COMPAT 0x4   /* its 32-bit system calls were reported */

#endif
