/* sbx_log.h — the wire between the preload/interpose shim (writer, in
 * every traced process) and the shim-log reader in the Python process
 * (csrc/linux/preload/preload_reader.c, also macOS's).  Its names carry the
 * SBX_LOG_ and SBX_REC_ prefixes; the eBPF wire (bpf/sandbox_event.h) has
 * SBX_EV_ and its own SBX_FD_ and SBX_EXEC_ values, which are unrelated.
 *
 * Transport: a file in /dev/shm, mapped MAP_SHARED by every traced process.
 * It is an append-only log, not a ring: a writer reserves space with one
 * atomic fetch-add on `head`, fills its record and publishes it by storing
 * the record's first word last (release).  Consequences that the design
 * relies on:
 *   - no file descriptor stays open in the traced program after start-up,
 *     so a program that closes or reuses every fd (closefrom, daemons) can
 *     never make the shim write into one of its own files;
 *   - a record is in shared memory the moment it is published: a process
 *     killed right afterwards loses nothing;
 *   - writers never wait and never lock: safe in signal handlers, vfork
 *     children and across fork in threaded programs;
 *   - a flood only advances `head`; the reader frees consumed pages with
 *     fallocate(PUNCH_HOLE), so memory stays bounded by the reader's lag.
 *     Running out of the (sparse, virtual) capacity counts drops, which
 *     the reader reports as an incomplete Result — never corruption.
 */
#ifndef SBX_LOG_H
#define SBX_LOG_H

#include <stdint.h>

#define SBX_LOG_MAGIC    0x31676f6c78627353ull   /* "Ssbxlog1" */
#define SBX_LOG_HDR      4096u                   /* records start here */
#define SBX_LOG_CAP      (1ull << 30)            /* record area, sparse */

/* Environment variables the shim reads at start-up and re-injects into
 * every exec whose environment lost them. */
#define SBX_ENV_LOG      "SBX_PRELOAD_LOG"
#define SBX_ENV_SHIM     "SBX_PRELOAD_SHIM"
/* Optional: the ptrace launcher that statically linked programs are handed
 * to (the shim cannot enter them); see csrc/linux/ptrace/ptrace_launcher.c. */
#define SBX_ENV_HANDOFF  "SBX_PRELOAD_HANDOFF"
/* LD_AUDIT value naming the loader audit module (loader_audit.c), kept to
 * put it back when a program scrubs its children's environment */
#define SBX_ENV_AUDIT    "SBX_PRELOAD_AUDIT"
/* The run's breakaway declaration (sandbox_py/breakaway.py): program names
 * and absolute paths, one per line.  An exec that matches runs without the
 * shim and without any of these variables (shim_core.c: sbx_breakaway). */
#define SBX_ENV_BREAKAWAY "SBX_PRELOAD_BREAKAWAY"

struct sbx_log_hdr {
    uint64_t magic;
    uint64_t cap;                  /* bytes of record area */
    uint64_t head;                 /* atomic: next free offset */
    uint64_t dropped;              /* atomic: records that did not fit */
    uint64_t next_id;              /* atomic: open-file ids, unique per run */
    uint64_t renames;              /* atomic: names moved or removed by the run (rename,
                                    * rmdir): a directory name the shim remembered for
                                    * an open dirfd is asked again after one */
    /* A log read in windows by the traced process itself (a test session
     * re-executed under the shim, csrc/linux/preload/preload_reader.c:
     * sbx_preload_attach): outside a window nothing is recorded, and each
     * window has its own epoch, so a name reported in an earlier window is
     * reported again (the shim's repeat filter is per epoch). */
    uint64_t paused;               /* atomic: nonzero, records are dropped */
    uint64_t epoch;                /* atomic: bumped at each window */
};

/* First word of a record: 0 while it is being written, then
 * SBX_REC_LIVE | total length (8-byte aligned, header included). */
#define SBX_REC_LIVE     0xA5000000u
#define SBX_REC_LENMASK  0x00FFFFFFu

struct sbx_rec {
    uint32_t word;                 /* published last */
    uint16_t type;                 /* enum sbx_rec_type */
    uint16_t flags;
    int32_t pid;                   /* the acting process (tgid) */
    int32_t aux;                   /* per type: ppid, child pid, errno */
    uint64_t id;                   /* open-file id, or argc for exec records */
    /* then NUL-terminated strings, as many as the type says */
};

enum sbx_rec_type {
    /* A path with its categories (flags: SBX_READ... | SBX_CREATED).
     * Strings: path. */
    SBX_REC_PATH = 1,
    /* A file descriptor was opened: id names it from now on.  flags:
     * SBX_FD_* access bits.  Strings: path.  Without a later USE record
     * the open only checked existence: a probe. */
    SBX_REC_OPEN,
    /* First read/write/listing through an open id (flags: SBX_READ,
     * SBX_WRITE or SBX_ENUM).  Strings: the kernel's name for the file
     * (symlinks resolved) for reads, else nothing. */
    SBX_REC_USE,
    /* The shim started in a freshly exec'd image.  aux = ppid.  id = argc.
     * Strings: AT_EXECFN made absolute, /proc/self/exe, the ELF
     * interpreter (or ""), the cwd (or ""), then argv. */
    SBX_REC_START,
    /* This process is about to exec (or, for posix_spawn, the parent
     * spawned pid `pid`).  aux = ppid, id = argc, flags: SBX_EXEC_*.
     * Strings: path, #! interpreter (or ""), then argv. */
    SBX_REC_EXEC,
    /* The exec announced by the last EXEC of this pid failed: aux = errno. */
    SBX_REC_EXEC_FAIL,
    /* fork(): pid = the parent, aux = the child.  Written twice: by the
     * child first thing (before any record of its own) and by the parent
     * before fork returns there (so the child is known before the parent
     * can exit). */
    SBX_REC_FORK,
    /* A reason the result may be incomplete.  Strings: the text. */
    SBX_REC_WARN,
    /* The process exits (exit(), _exit()): aux = its status (0-255).  A
     * process killed by a signal writes none. */
    SBX_REC_EXIT,
};

/* SBX_REC_OPEN access bits. */
#define SBX_REC_FD_R     0x1u
#define SBX_REC_FD_W     0x2u
#define SBX_REC_FD_DIR   0x4u
#define SBX_REC_FD_NOPROBE 0x8u   /* already recorded as a write: no probe if unused */

/* flags of an SBX_REC_USE record, beside its category: the record carries
 * the kernel's name of the file as string 0, taken at the use ("" when the
 * file has no name); the reader then resolves no symlink itself. */
#define SBX_REC_KERNEL_NAME 0x1000u

/* flags of an SBX_REC_PATH record, beside its categories: written by the
 * parent for its posix_spawn'ed child `pid` (aux = the parent), an access
 * the child made inside libc before its exec (posix_spawnp's $PATH
 * search, a file action's open), known to the parent only once the spawn
 * returned. */
#define SBX_REC_CHILD 0x8000u

/* SBX_REC_EXEC flags. */
#define SBX_REC_EXEC_STATIC  0x1u   /* the shim cannot enter the target: no ELF interpreter, or 32-bit */
#define SBX_REC_EXEC_SPAWNED 0x2u   /* posix_spawn: written by the parent after success */
#define SBX_REC_EXEC_HANDOFF 0x4u   /* static: the ptrace launcher runs it, to be adopted */
#define SBX_REC_EXEC_BREAKAWAY 0x8u /* declared breakaway: runs without the shim, leaves the run */

#endif
