/* shim_core.c — what the shim does with an intercepted call: resolve the
 * path, keep the per-fd state that deduplicates reads and writes, and
 * publish records into the shared log (sbx_log.h).
 *
 * Portable: the same file goes into the Linux LD_PRELOAD shim and the macOS
 * interpose dylib.  What differs per system (system calls without hooks,
 * the name behind an fd, the loaded objects, executable formats) is asked
 * of shim_os.h; hook registration lives behind SBX_HOOK.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../csrc/core/breakaway.h"
#include "../../csrc/core/pathnorm.h"
#include "../../csrc/core/shebang.h"

static int raw_getpid(void) { return sbx_os_getpid(); }

/* ---- state ---------------------------------------------------------------*/
static struct sbx_log_hdr *g_log;
static int g_state;                        /* 0 new, 1 initialising, 2 done */
static int g_pid;                          /* pid this state belongs to */
static char g_env_log[SBX_PATH_MAX + 32];  /* "SBX_PRELOAD_LOG=..." */
static char g_env_shim[SBX_PATH_MAX + 32]; /* "SBX_PRELOAD_SHIM=..." */
static char g_env_handoff[SBX_PATH_MAX + 32]; /* "SBX_PRELOAD_HANDOFF=..." or "" */
static char g_env_audit[SBX_PATH_MAX + 32];   /* "LD_AUDIT=..." or "" */
static const char *g_shim;                 /* path of this library */
static char g_breakaway[4096];             /* SBX_ENV_BREAKAWAY's value, or "" */
static int g_quiet;                        /* this image is the launcher: execs only */

/* Per-fd state.  Indexed by fd; fds beyond the table are handled without
 * state (one report per call instead of per fd, never a missed one).
 * It lives in .bss: untouched pages cost nothing. */
#define FD_MAX 65536
#define FS_KNOWN  0x01u
#define FS_R      0x02u
#define FS_W      0x04u
#define FS_DIR    0x08u
#define FS_IGN    0x10u       /* pipe, socket, tty...: not a file */
#define FS_DONE_R 0x20u
#define FS_DONE_W 0x40u
#define FS_DONE_E 0x80u
#define FS_DONE   (FS_DONE_R | FS_DONE_W | FS_DONE_E)
struct fdrec {
    uint64_t id;
    uint32_t st;
};
static struct fdrec g_fds[FD_MAX];
static int g_fd_hi;

/* Names of open directory fds, so that openat(dirfd, ...) resolves without
 * asking /proc (a build tool walks trees this way).  Checked against the
 * fd's inode on every use: an fd closed behind our back (inside libc, by
 * a direct system call) never yields a stale name; and against the run's
 * rename count (sbx_log_hdr.renames): a directory renamed (or a parent of
 * it) by any process of the run is asked of the kernel again. */
#define DIR_SLOTS 64
struct dirslot {
    int fd;                      /* -1: empty or being written */
    uint64_t dev, ino;
    uint64_t renames;            /* the log's rename count when the name was taken */
    uint32_t len;
    char path[SBX_PATH_MAX];
};
static struct dirslot g_dirs[DIR_SLOTS];

static void dir_forget(int fd)
{
    struct dirslot *d = &g_dirs[(unsigned)fd % DIR_SLOTS];
    if (__atomic_load_n(&d->fd, __ATOMIC_ACQUIRE) == fd)
        __atomic_store_n(&d->fd, -1, __ATOMIC_RELEASE);
}

static uint32_t done_bit(unsigned kind)
{
    return kind == SBX_READ ? FS_DONE_R : kind == SBX_WRITE ? FS_DONE_W : FS_DONE_E;
}

/* A vfork child shares our memory but has its own fd table: it must not
 * change the per-fd state the parent will keep using.  The same holds for
 * a child made by a raw clone() that never ran our fork handler. */
static int foreign_process(void) { return g_pid == 0 || raw_getpid() != g_pid; }

/* ---- the log -------------------------------------------------------------*/
/* How much of the record area this process mapped: all of it, or less
 * under an address-space limit (ulimit -v), when the records that would
 * fall past it are dropped and counted rather than the shim not starting. */
static uint64_t g_log_span;

static void map_log(const char *path)
{
    for (uint64_t span = SBX_LOG_CAP; span >= (16u << 20); span /= 4) {
        struct sbx_log_hdr *h = sbx_os_map_log(path, (size_t)(SBX_LOG_HDR + span));
        if (!h)
            continue;
        if (h->magic != SBX_LOG_MAGIC) {
            sbx_os_unmap(h, SBX_LOG_HDR + span);
            return;
        }
        g_log_span = span < h->cap ? span : h->cap;
        g_log = h;
        return;
    }
}

static void copy_env(char *dst, size_t cap, const char *name, const char *val)
{
    size_t n = strlen(name), v = strlen(val);
    if (n + 1 + v + 1 > cap) {
        dst[0] = '\0';
        return;
    }
    memcpy(dst, name, n);
    dst[n] = '=';
    memcpy(dst + n + 1, val, v + 1);
}

static void init(void)
{
    int expect = 0;
    if (!__atomic_compare_exchange_n(&g_state, &expect, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    const char *log = getenv(SBX_ENV_LOG);
    const char *shim = getenv(SBX_ENV_SHIM);
    if (log && shim && *log && *shim) {
        /* Keep our own copies: the program may edit its environment, and
         * exec must be able to put the values back. */
        copy_env(g_env_log, sizeof g_env_log, SBX_ENV_LOG, log);
        copy_env(g_env_shim, sizeof g_env_shim, SBX_ENV_SHIM, shim);
        const char *handoff = getenv(SBX_ENV_HANDOFF);
        if (handoff && *handoff)
            copy_env(g_env_handoff, sizeof g_env_handoff, SBX_ENV_HANDOFF, handoff);
        const char *ba = getenv(SBX_ENV_BREAKAWAY);
        if (ba && strlen(ba) < sizeof g_breakaway)
            memcpy(g_breakaway, ba, strlen(ba) + 1);
        const char *audit = getenv(SBX_ENV_AUDIT);
        if (audit && *audit)
            copy_env(g_env_audit, sizeof g_env_audit, "LD_AUDIT", audit);
        if (g_env_log[0] && g_env_shim[0]) {
            g_shim = g_env_shim + sizeof SBX_ENV_SHIM;
            g_pid = raw_getpid();
            map_log(log);
        }
    }
    __atomic_store_n(&g_state, 2, __ATOMIC_RELEASE);
}

int sbx_on(void)
{
    if (__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) != 2)
        init();
    return g_log != NULL;
}

/* Threads of a process that reads its own log (a test session re-executed
 * under the shim): its reader thread, and a thread while it opens or
 * closes a window.  Their file calls (resolving the names recorded, asking
 * /proc who a process is) are sandbox_py's, not the traced program's. */
#if defined(__linux__)
/* exported for the reader in the same process (dlsym) */
#define SBX_CONTROL __attribute__((visibility("default")))
#else
/* a process reading its own log is Linux's (sandbox_py/selfshim.py): the
 * dylib exports nothing but its interpose table */
#define SBX_CONTROL
#endif

#define QUIET_SLOTS 4
static long g_quiet_tids[QUIET_SLOTS];
static int g_quiet_any;

SBX_CONTROL void sbx_shim_quiet_thread(int on)
{
    long tid = sbx_os_gettid();
    for (int i = 0; i < QUIET_SLOTS; i++) {
        long want = on ? 0 : tid, expect = want;
        if (__atomic_compare_exchange_n(&g_quiet_tids[i], &expect, on ? tid : 0, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            break;
    }
    __atomic_store_n(&g_quiet_any, 1, __ATOMIC_RELEASE);
}

/* Nothing is recorded now: outside a window of a log read in windows
 * (sbx_log.h: paused), or on a quiet thread. */
static int not_recording(void)
{
    struct sbx_log_hdr *h = g_log;
    if (h && __atomic_load_n(&h->paused, __ATOMIC_ACQUIRE))
        return 1;
    if (!__atomic_load_n(&g_quiet_any, __ATOMIC_ACQUIRE))
        return 0;
    long tid = sbx_os_gettid();
    for (int i = 0; i < QUIET_SLOTS; i++)
        if (__atomic_load_n(&g_quiet_tids[i], __ATOMIC_ACQUIRE) == tid)
            return 1;
    return 0;
}

/* A process that runs its parent's image without having passed through our
 * fork handler: a vfork child (gcc's, make's, execvp's search for the
 * program along $PATH happens there), a raw clone().  What it does before
 * its exec is its own record with that image (docs/semantics.md, "Who did
 * what"), as the kernel-side backends see it: the reader must know it was
 * forked before its first record.  `g_child_told` is the last such pid
 * announced: in a vfork child this memory is the parent's, which is why it
 * is the only thing the child writes here (an extra announcement is
 * harmless, the reader keeps the first).  Not inside posix_spawn: the
 * child runs libc's own code up to the exec, and what it reports belongs
 * to the program started (the loader's search), as before. */
static int g_child_told, g_in_spawn;

void sbx_spawning(int on)
{
    int saved = errno;     /* (callers keep posix_spawn's errno) */
    __atomic_add_fetch(&g_in_spawn, on ? 1 : -1, __ATOMIC_ACQ_REL);
    errno = saved;
}

static void emit_v(int type, unsigned flags, int pid, int aux, uint64_t id,
                   const char *const *s, int n, char *const *argv);

static int announce_foreign_child(void)
{
    int me = raw_getpid();
    if (g_pid > 0 && me != g_pid && !__atomic_load_n(&g_in_spawn, __ATOMIC_ACQUIRE) &&
        __atomic_exchange_n(&g_child_told, me, __ATOMIC_ACQ_REL) != me)
        emit_v(SBX_REC_FORK, 0, g_pid, me, 0, NULL, 0, NULL);
    return me;
}

/* Publish one record: fixed strings, then (optionally) an argv vector.
 * An argv too large for a record is cut, with a warning record. */
static void emit_v(int type, unsigned flags, int pid, int aux, uint64_t id,
                   const char *const *s, int n, char *const *argv)
{
    struct sbx_log_hdr *h = g_log;
    if (!h || not_recording())
        return;
    if (!pid && type != SBX_REC_FORK)
        pid = announce_foreign_child();
    size_t total = sizeof(struct sbx_rec);
    for (int i = 0; i < n; i++)
        total += (s[i] ? strlen(s[i]) : 0) + 1;
    size_t argc = 0, limit = 1u << 20;
    int cut = 0;
    if (argv) {
        for (; argv[argc]; argc++) {
            size_t l = strlen(argv[argc]) + 1;
            if (total + l > limit) {
                cut = 1;
                break;
            }
            total += l;
        }
    }
    total = (total + 7) & ~(size_t)7;
    uint64_t off;
    if (g_log_span >= h->cap) {
        off = __atomic_fetch_add(&h->head, total, __ATOMIC_RELAXED);
        if (off + total > h->cap) {
            __atomic_fetch_add(&h->dropped, 1, __ATOMIC_RELAXED);
            return;
        }
    } else {
        /* a partial mapping: reserve only inside it (a slot reserved but
         * never written would hold the reader up) */
        off = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
        do {
            if (off + total > g_log_span) {
                __atomic_fetch_add(&h->dropped, 1, __ATOMIC_RELAXED);
                return;
            }
        } while (!__atomic_compare_exchange_n(&h->head, &off, off + total, 1,
                                              __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    }
    struct sbx_rec *r = (struct sbx_rec *)((char *)h + SBX_LOG_HDR + off);
    r->type = (uint16_t)type;
    r->flags = (uint16_t)flags;
    r->pid = pid ? pid : raw_getpid();
    r->aux = aux;
    r->id = argv ? argc : id;
    char *p = (char *)(r + 1);
    for (int i = 0; i < n; i++) {
        size_t l = s[i] ? strlen(s[i]) : 0;
        memcpy(p, s[i] ? s[i] : "", l);
        p[l] = '\0';
        p += l + 1;
    }
    for (size_t i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]) + 1;
        memcpy(p, argv[i], l);
        p += l;
    }
    __atomic_store_n(&r->word, SBX_REC_LIVE | (uint32_t)total, __ATOMIC_RELEASE);
    if (cut)
        sbx_warn("an argument vector longer than 1 MiB was cut in the exec record");
}

static void emit(int type, unsigned flags, int aux, uint64_t id,
                 const char *s0, const char *s1)
{
    const char *s[2] = {s0, s1};
    emit_v(type, flags, 0, aux, id, s, s1 ? 2 : s0 ? 1 : 0, NULL);
}

void sbx_warn(const char *text)
{
    if (sbx_on())
        emit(SBX_REC_WARN, 0, 0, 0, text, NULL);
}

/* A warning about this process: "process <pid> " + what.  Formatted by
 * hand, as every hook's work is (no stdio, no allocation). */
void sbx_warn_process(const char *what)
{
    char text[256] = "process ";
    char digits[12];
    int nd = 0;
    unsigned v = (unsigned)raw_getpid();
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t k = 8;
    while (nd)
        text[k++] = digits[--nd];
    text[k++] = ' ';
    for (size_t i = 0; what[i] && k < sizeof text - 1; i++)
        text[k++] = what[i];
    text[k] = '\0';
    sbx_warn(text);
}

static uint64_t next_id(void)
{
    return __atomic_add_fetch(&g_log->next_id, 1, __ATOMIC_RELAXED);
}

/* ---- paths ---------------------------------------------------------------*/
static long host_name(char *p, long n, size_t cap);
static long fd_name(int fd, char *out, size_t cap)
{
    return host_name(out, sbx_os_fd_name(fd, out, cap), cap);
}

static uint64_t renames_now(void)
{
    return g_log ? __atomic_load_n(&g_log->renames, __ATOMIC_ACQUIRE) : 0;
}

/* A name was moved or removed: remembered directory names may be stale. */
static void names_moved(void)
{
    if (g_log)
        __atomic_fetch_add(&g_log->renames, 1, __ATOMIC_ACQ_REL);
}

/* `renames`: the count read before the name was taken (a rename in between
 * makes the slot stale at once, never wrongly fresh). */
static void dir_remember(int fd, const char *p, size_t len, uint64_t renames)
{
    struct stat sb;
    if (fd < 0 || len >= SBX_PATH_MAX || foreign_process() ||
        sbx_os_fstat(fd, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return;
    struct dirslot *d = &g_dirs[(unsigned)fd % DIR_SLOTS];
    __atomic_store_n(&d->fd, -1, __ATOMIC_RELEASE);
    d->dev = sb.st_dev;
    d->ino = sb.st_ino;
    d->renames = renames;
    d->len = (uint32_t)len;
    memcpy(d->path, p, len + 1);
    __atomic_store_n(&d->fd, fd, __ATOMIC_RELEASE);
}

static long dir_name(int fd, char *out, size_t cap)
{
    struct dirslot *d = &g_dirs[(unsigned)fd % DIR_SLOTS];
    struct stat sb;
    if (__atomic_load_n(&d->fd, __ATOMIC_ACQUIRE) == fd && d->len < cap &&
        sbx_os_fstat(fd, &sb) == 0) {
        uint32_t len = d->len;
        memcpy(out, d->path, len + 1);
        if (__atomic_load_n(&d->fd, __ATOMIC_ACQUIRE) == fd && d->dev == sb.st_dev &&
            d->ino == sb.st_ino && d->renames == renames_now() && out[len] == '\0')
            return len;
    }
    uint64_t renames = renames_now();
    long n = fd_name(fd, out, cap);
    if (n > 0 && out[0] == '/')
        dir_remember(fd, out, (size_t)n, renames);   /* one /proc lookup per directory */
    return n;
}

/* The process root when it is not "/" (chroot): asked once, and again
 * after a chroot() (sbx_root_changed). */
static char g_root[SBX_PATH_MAX];
static long g_root_len = -1;

void sbx_root_changed(const char *host_root)
{
    /* Inside a chroot the kernel gives every name (getcwd, /proc/self/fd,
     * /proc/self/root) relative to the new root: the host's name of that
     * root is the one the caller resolved before the call. */
    size_t n = host_root ? strlen(host_root) : 0;
    if (!host_root || n >= sizeof g_root) {
        __atomic_store_n(&g_root_len, -1, __ATOMIC_RELEASE);
        return;
    }
    memcpy(g_root, host_root, n + 1);
    __atomic_store_n(&g_root_len, n == 1 ? 0 : (long)n, __ATOMIC_RELEASE);
}

/* A name the kernel gave relative to a chroot made host-relative. */
static long host_name(char *p, long n, size_t cap)
{
    long rl = __atomic_load_n(&g_root_len, __ATOMIC_ACQUIRE);
    if (n <= 0 || rl <= 0 || p[0] != '/')
        return n;
    if ((size_t)(rl + n + 1) > cap)
        return -1;
    memmove(p + rl, p, (size_t)n + 1);
    memcpy(p, g_root, (size_t)rl);
    if (n == 1)                     /* the root itself: no trailing "/" */
        p[--n + rl] = '\0';
    return rl + n;
}

/* ".." after a symlinked directory: the kernel's own answer for the
 * prefix (no realpath(): it is libc, hooked). */
static long real_dir(void *ctx, const char *dir, char *out, size_t cap)
{
    (void)ctx;
    return host_name(out, sbx_os_real_dir(dir, out, cap), cap);
}

/* Resolve against a base buffer of bcap bytes.  long_names: a directory
 * whose name the kernel will not give (nested deeper than a page) is named
 * by walking up (sbx_os_long_dir_name); else that is SBX_RESOLVE_TOO_LONG. */
static long resolve_into(int dirfd, const char *path, char *base, size_t bcap, char *out,
                         size_t cap, int long_names)
{
    if (!path)
        return -1;
    long bl;
    const char *rel = path;
    if (path[0] == '/') {
        /* an absolute name of a chrooted process starts at its root */
        if (__atomic_load_n(&g_root_len, __ATOMIC_ACQUIRE) < 0)
            __atomic_store_n(&g_root_len, sbx_os_root(g_root, sizeof g_root),
                             __ATOMIC_RELEASE);
        bl = __atomic_load_n(&g_root_len, __ATOMIC_ACQUIRE);
        if (bl > 0) {
            memcpy(base, g_root, (size_t)bl + 1);
            rel = path + 1;
        } else {
            base[0] = '/';
            base[1] = '\0';
            bl = 1;
        }
    } else if (dirfd == AT_FDCWD) {
        bl = sbx_os_getcwd(base, bcap);
        if (bl == -ENAMETOOLONG && long_names)
            bl = sbx_os_long_dir_name(AT_FDCWD, base, bcap);
        else if (bl == -ENAMETOOLONG)
            return SBX_RESOLVE_TOO_LONG;
        bl = host_name(base, bl, bcap);
    } else {
        bl = long_names ? host_name(base, sbx_os_long_dir_name(dirfd, base, bcap), bcap)
                        : dir_name(dirfd, base, bcap);
        struct stat sb;
        if (bl <= 0 && !long_names && sbx_os_fstat(dirfd, &sb) == 0 && S_ISDIR(sb.st_mode) &&
            sb.st_nlink > 0)
            return SBX_RESOLVE_TOO_LONG;      /* a directory the kernel will not name */
    }
    if (bl <= 0 || base[0] != '/')
        return bl >= (long)bcap - 1 ? SBX_RESOLVE_TOO_LONG : -1;
    long n = sbx_path_join_resolving(out, cap, base, (size_t)bl, rel, strlen(rel), real_dir,
                                     NULL);
    return n < 0 ? SBX_RESOLVE_TOO_LONG : n;
}

long sbx_resolve(int dirfd, const char *path, char *out, size_t cap)
{
    char base[SBX_PATH_MAX];
    return resolve_into(dirfd, path, base, sizeof base, out, cap, 0);
}

/* The same for a name longer than SBX_PATH_MAX (a directory nested deeper
 * than the kernel names): into out (SBX_LONG_PATH_MAX bytes).  Only called
 * after sbx_resolve said SBX_RESOLVE_TOO_LONG: its frame is large. */
__attribute__((noinline)) static long resolve_long(int dirfd, const char *path, char *out)
{
    char base[SBX_LONG_PATH_MAX];
    return resolve_into(dirfd, path, base, sizeof base, out, SBX_LONG_PATH_MAX, 1);
}

/* Recently reported (path, categories) pairs of this process: tools stat
 * the same name again and again (tar: three times per file).  Adding a
 * pair twice changes nothing in the path set, so a repeat is dropped here
 * instead of crossing into the log.  Direct-mapped; a collision only costs
 * a duplicate record. */
#define SEEN_SLOTS 4096
static uint64_t g_seen[SEEN_SLOTS];

static int seen_before(const char *p, size_t len, unsigned cats)
{
    /* per epoch: a window reports again what an earlier one reported */
    uint64_t epoch = g_log ? __atomic_load_n(&g_log->epoch, __ATOMIC_ACQUIRE) : 0;
    uint64_t h = (14695981039346656037ull ^ cats) + epoch * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    h |= 1;                                   /* 0 marks an empty slot */
    uint64_t *slot = &g_seen[(h >> 20) % SEEN_SLOTS];
    if (__atomic_load_n(slot, __ATOMIC_RELAXED) == h)
        return 1;
    __atomic_store_n(slot, h, __ATOMIC_RELAXED);
    return 0;
}

/* A name longer than the shim can carry: the access happened, its name is
 * lost; the Result says so (once per process is enough). */
static void lost_long_name(void)
{
    static int warned;
    if (!__atomic_exchange_n(&warned, 1, __ATOMIC_ACQ_REL))
        sbx_warn("a path longer than 4096 bytes was used; that access is not in the Result");
}

/* record_cats for a name longer than SBX_PATH_MAX. */
__attribute__((noinline)) static void record_long(int dirfd, const char *path, unsigned cats)
{
    char p[SBX_LONG_PATH_MAX];
    if (resolve_long(dirfd, path, p) < 0)
        lost_long_name();
    else
        emit(SBX_REC_PATH, cats, 0, 0, p, NULL);
}

static void record_cats_as(int dirfd, const char *path, unsigned cats, int dedup)
{
    if (!sbx_on() || !path || !cats || not_recording())
        return;             /* (no per-fd state here: nothing to keep up) */
    char p[SBX_PATH_MAX];
    long n = sbx_resolve(dirfd, path, p, sizeof p);
    if (n == SBX_RESOLVE_TOO_LONG) {
        record_long(dirfd, path, cats);
        return;
    }
    if (n < 0 || sbx_path_is_fd_alias(p))
        return;             /* /proc/self/fd/N names a descriptor, not a file */
    /* only order-free categories: a write that created the name must keep
     * its place before any later read (pathset's created-then-read rule) */
    if (dedup && !(cats & (SBX_WRITE | SBX_CREATED)) && seen_before(p, (size_t)n, cats))
        return;
    emit(SBX_REC_PATH, cats, 0, 0, p, NULL);
}

static void record_cats(int dirfd, const char *path, unsigned cats)
{
    record_cats_as(dirfd, path, cats, 1);
}

void sbx_child_path_cats(int child, const char *path, unsigned cats)
{
    char p[SBX_PATH_MAX];
    if (!sbx_on() || g_quiet || child <= 0 || !path || !cats ||
        sbx_resolve(AT_FDCWD, path, p, sizeof p) < 0)
        return;
    const char *s[1] = {p};
    emit_v(SBX_REC_PATH, cats | SBX_REC_CHILD, child, raw_getpid(), 0, s, 1, NULL);
}

void sbx_child_path(int child, const char *path, enum sbx_op op, int ok)
{
    sbx_child_path_cats(child, path, sbx_access_classify(op, ok).first);
}

void sbx_path_cats_at(int dirfd, const char *path, unsigned cats)
{
    if (!g_quiet)
        record_cats(dirfd, path, cats);
}

/* What a call recorded, given its errno (read first thing by the caller,
 * before anything can change it): refused by the system, or just failed. */
static struct sbx_access classify_call(enum sbx_op op, int ok, int err)
{
    return !ok && sbx_access_refusal(err) ? sbx_access_refused(op, 0)
                                          : sbx_access_classify(op, ok);
}

/* A refused name (p resolved, or path against dirfd): the refusal is also
 * the file the name reached -- a symlink's target, through /proc/self/root,
 * a descriptor's file -- asked of the kernel now, in this process. */
static void record_reached(int dirfd, const char *path, const char *p, int follow,
                           unsigned cats)
{
    char buf[SBX_PATH_MAX], reached[SBX_PATH_MAX];
    if (!sbx_on() || g_quiet || !(cats & SBX_REFUSED) || (!p && !path))
        return;
    if (!p && sbx_resolve(dirfd, path, buf, sizeof buf) < 0)
        return;
    if (sbx_path_reached(p ? p : buf, follow, real_dir, NULL, reached, sizeof reached) > 0)
        emit(SBX_REC_PATH, cats, 0, 0, reached, NULL);
}

void sbx_path_at(int dirfd, const char *path, enum sbx_op op, int ok)
{
    int err = errno;
    if (op == SBX_OP_REMOVE && ok && sbx_on())
        names_moved();
    unsigned cats = classify_call(op, ok, err).first;
    sbx_path_cats_at(dirfd, path, cats);
    record_reached(dirfd, path, NULL, sbx_access_follows(op), cats);
}

void sbx_path2_at(int dirfd1, const char *path1, int dirfd2, const char *path2,
                  enum sbx_op op, int ok)
{
    int err = errno;
    if (op == SBX_OP_RENAME && ok && sbx_on())
        names_moved();
    struct sbx_access a = classify_call(op, ok, err);
    sbx_path_cats_at(dirfd1, path1, a.first);
    sbx_path_cats_at(dirfd2, path2, a.second);
    record_reached(dirfd1, path1, NULL, sbx_access_follows(op), a.first);
    record_reached(dirfd2, path2, NULL, sbx_access_follows(op), a.second);
}

int sbx_exists_at(int dirfd, const char *path)
{
    if (!sbx_on() || !path)
        return -1;
    long r = sbx_os_faccessat(dirfd, path, F_OK);
    return r == 0 ? 1 : r == -2 /* ENOENT */ ? 0 : -1;
}

/* ---- file descriptors ------------------------------------------------------*/
static void fd_store(int fd, uint64_t id, uint32_t st)
{
    if (fd < 0 || fd >= FD_MAX || foreign_process())
        return;
    __atomic_store_n(&g_fds[fd].id, id, __ATOMIC_RELAXED);
    __atomic_store_n(&g_fds[fd].st, st, __ATOMIC_RELEASE);
    if (fd >= g_fd_hi)
        g_fd_hi = fd + 1;
}

static void opened_named(int dirfd, const char *path, char *p, long plen, size_t cap,
                         int oflags, int fd, int existed, int err, uint64_t renames);

/* sbx_opened for a name longer than SBX_PATH_MAX. */
__attribute__((noinline)) static void opened_long(int dirfd, const char *path, int oflags,
                                                  int fd, int existed, int err)
{
    char p[SBX_LONG_PATH_MAX];
    long plen = resolve_long(dirfd, path, p);
    if (plen < 0)
        lost_long_name();
    else
        opened_named(dirfd, path, p, plen, sizeof p, oflags, fd, existed, err, 0);
}

void sbx_opened(int dirfd, const char *path, int oflags, int fd, int existed)
{
    int err = errno;
    if (!sbx_on() || !path || g_quiet)
        return;
    uint64_t renames = renames_now();
    char p[SBX_PATH_MAX];
    long plen = sbx_resolve(dirfd, path, p, sizeof p);
    if (plen == SBX_RESOLVE_TOO_LONG) {
        opened_long(dirfd, path, oflags, fd, existed, err);
        return;
    }
    if (plen < 0)
        return;
    opened_named(dirfd, path, p, plen, sizeof p, oflags, fd, existed, err, renames);
}

/* The open of `path` (dirfd) resolved to p (plen bytes of a cap-byte buffer). */
static void opened_named(int dirfd, const char *path, char *p, long plen, size_t cap,
                         int oflags, int fd, int existed, int err, uint64_t renames)
{
    int alias = sbx_path_is_fd_alias(p);
    if (fd < 0) {
        unsigned cats = sbx_access_refusal(err)
            ? sbx_access_refused(SBX_OP_OPEN, sbx_os_open_intent(oflags)).first
            : SBX_PROBE;
        if (!alias)
            emit(SBX_REC_PATH, cats, 0, 0, p, NULL);
        if ((size_t)plen < SBX_PATH_MAX)
            record_reached(dirfd, path, p, !(oflags & O_NOFOLLOW), cats);
        return;
    }
    if (alias) {
        /* a reopen through /proc/self/fd/N or /dev/fd/N opens the file
         * behind the descriptor (nothing, when it has no name) */
        if ((plen = fd_name(fd, p, cap)) <= 0 || p[0] != '/')
            return;
    }
    if ((oflags & O_DIRECTORY) && (size_t)plen < SBX_PATH_MAX)
        dir_remember(fd, p, (size_t)plen, renames);
    int used, tracked;
    unsigned now = sbx_access_open(sbx_os_open_intent(oflags),
                                   (oflags & O_CREAT) && existed == 0, &used, &tracked);
    if (!tracked) {
        /* O_PATH, or an unnamed file in directory p: only looked at */
        emit(SBX_REC_PATH, now, 0, 0, p, NULL);
        fd_store(fd, 0, FS_KNOWN | FS_IGN | FS_DONE);
        return;
    }
    int acc = oflags & O_ACCMODE;
    int r = acc == O_RDONLY || acc == O_RDWR, w = acc == O_WRONLY || acc == O_RDWR;
    uint32_t st = FS_KNOWN | (r ? FS_R : 0) | (w ? FS_W : 0) |
                  ((oflags & O_DIRECTORY) ? FS_DIR : 0);
    if (now) {
        emit(SBX_REC_PATH, now, 0, 0, p, NULL);
        st |= FS_DONE_W;
        if (!r) {
            fd_store(fd, 0, st | FS_DONE);
            return;
        }
    }
    uint64_t id = next_id();
    unsigned fl = (r ? SBX_REC_FD_R : 0) | (w ? SBX_REC_FD_W : 0) |
                  ((oflags & O_DIRECTORY) ? SBX_REC_FD_DIR : 0) |
                  (used ? SBX_REC_FD_NOPROBE : 0);
    emit(SBX_REC_OPEN, fl, 0, id, p, NULL);
    fd_store(fd, id, st);
}

/* An fd we did not see being opened (inherited, opened by a direct system
 * call or inside libc): learn what it is from the kernel. */
static struct fdrec discover(int fd)
{
    struct fdrec rec = {0, FS_KNOWN | FS_IGN | FS_DONE};
    struct stat sb;
    if (sbx_os_fstat(fd, &sb) < 0 || !(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)))
        return rec;
    char name[SBX_PATH_MAX];
    if (fd_name(fd, name, sizeof name) < 0 || name[0] != '/')
        return rec;
    long fl = sbx_os_getfl(fd);
    int acc = (int)(fl < 0 ? O_RDONLY : fl & O_ACCMODE);
    int r = acc != O_WRONLY, w = acc != O_RDONLY, d = S_ISDIR(sb.st_mode);
    rec.id = next_id();
    rec.st = FS_KNOWN | (r ? FS_R : 0) | (w ? FS_W : 0) | (d ? FS_DIR : 0);
    emit(SBX_REC_OPEN, (r ? SBX_REC_FD_R : 0) | (w ? SBX_REC_FD_W : 0) | (d ? SBX_REC_FD_DIR : 0),
         0, rec.id, name, NULL);
    return rec;
}

/* The first read of a file carries the kernel's name for it, taken now:
 * a read through a symlink reports the target as it was at the access, not
 * as it is when the run ends (one readlink per file read). */
static void emit_use(uint64_t id, unsigned kind, int fd)
{
    char name[SBX_PATH_MAX];
    if (kind == SBX_READ && fd >= 0) {
        long n = fd_name(fd, name, sizeof name);
        if (n <= 0 || name[0] != '/')
            name[0] = '\0';        /* no name: nothing beyond the opened one */
        emit(SBX_REC_USE, kind | SBX_REC_KERNEL_NAME, 0, id, name, NULL);
        return;
    }
    emit(SBX_REC_USE, kind, 0, id, NULL, NULL);
}

void sbx_fd_use(int fd, unsigned kind)
{
    if (fd < 0 || !sbx_on() || g_quiet)
        return;
    uint32_t bit = done_bit(kind);
    if (fd < FD_MAX && (__atomic_load_n(&g_fds[fd].st, __ATOMIC_ACQUIRE) & bit))
        return;                         /* the common case: already reported */
    if (fd >= FD_MAX || foreign_process()) {
        struct fdrec rec = discover(fd);
        if (!(rec.st & bit))
            emit_use(rec.id, kind, fd);
        return;
    }
    struct fdrec *e = &g_fds[fd];
    if (!(__atomic_load_n(&e->st, __ATOMIC_ACQUIRE) & FS_KNOWN)) {
        struct fdrec rec = discover(fd);
        fd_store(fd, rec.id, rec.st);
    }
    uint32_t old = __atomic_fetch_or(&e->st, bit, __ATOMIC_ACQ_REL);
    if (!(old & bit))
        emit_use(__atomic_load_n(&e->id, __ATOMIC_RELAXED), kind, fd);
}

/* A mapping of fd's file: its content read, and written when shared and
 * writable. */
void sbx_mapped(void *r, int prot, int flags, int fd)
{
    if (r == MAP_FAILED || fd < 0 || (flags & MAP_ANONYMOUS))
        return;
    /* callers keep errno: this only records */
    if (prot & (PROT_READ | PROT_EXEC))
        sbx_fd_use(fd, SBX_READ);
    if ((prot & PROT_WRITE) && (flags & MAP_SHARED))
        sbx_fd_use(fd, SBX_WRITE);
}

/* Data read or written by code we cannot intercept (glibc's stdio calls
 * its internal read/write) still moves the file offset: a readable fd whose
 * offset moved was read, a write-only one was written. */
static void settle(int fd, struct fdrec *e)
{
    uint32_t st = __atomic_load_n(&e->st, __ATOMIC_ACQUIRE);
    if (!(st & FS_KNOWN) || (st & FS_IGN))
        return;
    unsigned kind;
    if (st & FS_DIR)
        kind = (st & FS_DONE_E) ? 0 : SBX_ENUM;
    else if ((st & FS_R) && !(st & (FS_DONE_R | FS_DONE_W)))
        kind = SBX_READ;
    else if ((st & FS_W) && !(st & FS_R) && !(st & FS_DONE_W))
        kind = SBX_WRITE;
    else
        kind = 0;
    if (!kind)
        return;
    long pos = sbx_os_lseek_cur(fd);
    if (pos <= 0)
        return;
    uint32_t bit = done_bit(kind);
    uint32_t old = __atomic_fetch_or(&e->st, bit, __ATOMIC_ACQ_REL);
    if (!(old & bit))
        emit_use(e->id, kind, fd);
}

/* Where fds 0-2 stood when this image started (sbx_start): a shell's
 * `>> log` hands over a file whose offset is already past its start. */
static long g_std_start[3];

/* stdin/stdout/stderr redirected to files by a shell were opened by
 * another process (the shell's child, before its exec): learn them when
 * their offset moved since this image started, so that what this image
 * read or wrote through them is its own (`wc -c > n.txt`: wc wrote n.txt). */
static void learn_std(int fd)
{
    if (g_fds[fd].st & FS_KNOWN)
        return;
    struct stat sb;
    if (sbx_os_fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
        sbx_os_lseek_cur(fd) > g_std_start[fd]) {
        struct fdrec rec = discover(fd);
        fd_store(fd, rec.id, rec.st);
    }
}

void sbx_fd_closing(int fd)
{
    if (fd < 0 || fd >= FD_MAX || !sbx_on() || foreign_process())
        return;
    if (fd < 3)
        learn_std(fd);      /* closed before the exit flush (gnulib's close_stdout) */
    settle(fd, &g_fds[fd]);
    __atomic_store_n(&g_fds[fd].st, 0, __ATOMIC_RELEASE);
    dir_forget(fd);
}

void sbx_fd_close_range(unsigned lo, unsigned hi)
{
    if (!sbx_on() || foreign_process())
        return;
    for (unsigned fd = lo; fd < (unsigned)g_fd_hi && fd <= hi; fd++)
        sbx_fd_closing((int)fd);
}

void sbx_fd_dup(int oldfd, int newfd)
{
    if (newfd < 0 || newfd >= FD_MAX || !sbx_on() || foreign_process())
        return;
    if (oldfd >= 0 && oldfd < FD_MAX)
        fd_store(newfd, g_fds[oldfd].id, g_fds[oldfd].st);
    else
        fd_store(newfd, 0, 0);
}

void sbx_fd_mark_dir(int fd)
{
    if (fd < 0 || fd >= FD_MAX || !sbx_on() || foreign_process())
        return;
    __atomic_fetch_or(&g_fds[fd].st, FS_DIR, __ATOMIC_ACQ_REL);
}

/* A process in another mount namespace (unshare, setns, or started in
 * one) names files as it sees them: the Result says so. */
static void check_mount_ns(void)
{
    static int warned;
    if (sbx_os_other_mount_ns() && !__atomic_exchange_n(&warned, 1, __ATOMIC_ACQ_REL)) {
        char text[128];
        snprintf(text, sizeof text, "process %d runs in another mount namespace: its paths "
                 "are as it sees them and may not be where the host has those files",
                 sbx_os_getpid());
        sbx_warn(text);
    }
}

void sbx_flush_fds(void)
{
    if (!sbx_on() || foreign_process())
        return;
    check_mount_ns();
    for (int fd = 0; fd < 3; fd++)
        learn_std(fd);
    for (int fd = 0; fd < g_fd_hi; fd++)
        settle(fd, &g_fds[fd]);
}

void sbx_exiting(int status)
{
    if (sbx_on() && !g_quiet)
        emit(SBX_REC_EXIT, 0, status & 0xff, 0, NULL, NULL);
}

/* ---- processes -------------------------------------------------------------*/
void sbx_forked_parent(int child)
{
    if (child > 0 && sbx_on())
        emit(SBX_REC_FORK, 0, child, 0, NULL, NULL);
}

void sbx_forked_child(void)
{
    if (!g_log)
        return;
    /* g_pid is still the parent's (this memory is its copy): the child
     * says who forked it before any record of its own, so that its first
     * accesses are already its own process's (the parent's FORK record
     * comes when fork returns there, maybe after them) */
    int parent = g_pid;
    g_pid = raw_getpid();
    /* the memory of recent reports is the parent's: this process reports
     * its own accesses for its own record (the pages are copied anyway as
     * soon as it reports one) */
    memset(g_seen, 0, sizeof g_seen);
    if (parent > 0 && parent != g_pid)
        emit_v(SBX_REC_FORK, 0, parent, g_pid, 0, NULL, 0, NULL);
}

/* The loader's injection variable (shim_os.h).  Linux separates entries
 * with spaces or colons; dyld only with colons. */
#define PRELOAD_EQ SBX_OS_PRELOAD_VAR "="
#define PRELOAD_EQ_LEN (sizeof PRELOAD_EQ - 1)
#if defined(__APPLE__)
#define PRELOAD_SEP ':'
#else
#define PRELOAD_SEP ' '
#endif

static int has_shim(const char *preload)
{
    size_t n = strlen(g_shim);
    for (const char *p = preload; (p = strstr(p, g_shim)); p += n)
        if ((p == preload || p[-1] == ' ' || p[-1] == ':') &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == ':'))
            return 1;
    return 0;
}

/* A nested sandbox_py run (Sandbox().run() or a re-executed test session
 * inside a traced program) names its own log: its program reports there.
 * Taking it over would blind that run; what the program does is that run's
 * result, not this one's -- it leaves this run like a breakaway, said in a
 * warning since nobody declared it. */
static void nested_run_warning(void)
{
    sbx_warn_process("started a program traced by a nested sandbox_py run (its own "
                     "event log): what that program does is not in this result");
}

int sbx_nested_run(char *const envp[])
{
    if (!sbx_on() || !envp)
        return 0;
    int other_log = 0, have_shim = 0, have_pre = 0;
    for (size_t n = 0; envp[n]; n++) {
        const char *e = envp[n];
        if (strncmp(e, SBX_ENV_LOG "=", sizeof SBX_ENV_LOG) == 0)
            other_log = e[sizeof SBX_ENV_LOG] && strcmp(e, g_env_log) != 0;
        else if (strcmp(e, g_env_shim) == 0)
            have_shim = 1;
        else if (strncmp(e, PRELOAD_EQ, PRELOAD_EQ_LEN) == 0)
            have_pre = has_shim(e + PRELOAD_EQ_LEN);
    }
    if (!(other_log && have_shim && have_pre))
        return 0;
    nested_run_warning();
    return 1;
}

char *const *sbx_exec_env(char *const envp[], char **vec, size_t nvec,
                          char *store, size_t nstore)
{
    if (!sbx_on())
        return envp;
    int have_log = 0, have_shim = 0, have_pre = 0, have_handoff = !g_env_handoff[0];
    int have_audit = !g_env_audit[0];
    int other_log = 0;            /* another non-empty log: a nested run's */
    const char *old_pre = NULL;
    size_t n = 0;
    for (; envp && envp[n]; n++) {
        const char *e = envp[n];
        if (strcmp(e, g_env_log) == 0)
            have_log = 1;
        else if (strncmp(e, SBX_ENV_LOG "=", sizeof SBX_ENV_LOG) == 0 &&
                 e[sizeof SBX_ENV_LOG])
            other_log = 1;
        else if (strcmp(e, g_env_shim) == 0)
            have_shim = 1;
        else if (g_env_handoff[0] && strcmp(e, g_env_handoff) == 0)
            have_handoff = 1;
        else if (strncmp(e, "LD_AUDIT=", 9) == 0)
            have_audit = 1;         /* ours, or the program's own: left as it is */
        else if (strncmp(e, PRELOAD_EQ, PRELOAD_EQ_LEN) == 0) {
            old_pre = e + PRELOAD_EQ_LEN;
            have_pre = has_shim(old_pre);
        }
    }
    if (have_log && have_shim && have_pre && have_handoff && have_audit)
        return envp;
    if (!have_log && have_shim && have_pre && other_log) {
        nested_run_warning();         /* (an exec path sbx_nested_run missed) */
        return envp;
    }
    /* The program scrubbed our variables (env -i, an explicit envp):
     * put them back so the child is still traced. */
    if (n + 6 > nvec)
        return envp;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = envp[i];
        if (strncmp(e, SBX_ENV_LOG "=", sizeof SBX_ENV_LOG) == 0 ||
            strncmp(e, SBX_ENV_SHIM "=", sizeof SBX_ENV_SHIM) == 0 ||
            strncmp(e, SBX_ENV_HANDOFF "=", sizeof SBX_ENV_HANDOFF) == 0 ||
            strncmp(e, PRELOAD_EQ, PRELOAD_EQ_LEN) == 0)
            continue;
        vec[k++] = (char *)e;
    }
    vec[k++] = g_env_log;
    vec[k++] = g_env_shim;
    if (g_env_handoff[0])
        vec[k++] = g_env_handoff;
    if (!have_audit)
        vec[k++] = g_env_audit;
    size_t sl = strlen(g_shim), ol = old_pre && !have_pre ? strlen(old_pre) : 0;
    if (PRELOAD_EQ_LEN + sl + 1 + ol + 1 <= nstore) {
        memcpy(store, PRELOAD_EQ, PRELOAD_EQ_LEN);
        memcpy(store + PRELOAD_EQ_LEN, g_shim, sl);
        size_t at = PRELOAD_EQ_LEN + sl;
        if (have_pre) {
            store[at] = '\0';
            vec[k++] = (char *)(old_pre - PRELOAD_EQ_LEN);  /* already lists us */
        } else {
            if (ol) {
                store[at++] = PRELOAD_SEP;
                memcpy(store + at, old_pre, ol);
                at += ol;
            }
            store[at] = '\0';
            vec[k++] = store;
        }
    }
    vec[k] = NULL;
    return vec;
}

/* What the kernel will run for `p`: a binary the shim cannot enter
 * (shim_os.h: an ELF without interpreter) or a #! script's interpreter
 * path (into interp). */
static int inspect_exec(const char *p, char *interp, size_t cap)
{
    interp[0] = '\0';
    int fd = sbx_os_open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    unsigned char buf[512];
    long n = sbx_os_pread(fd, buf, sizeof buf, 0);
    int is_static = 0;
    if (n >= 2 && buf[0] == '#' && buf[1] == '!')
        sbx_shebang_interp((const char *)buf, (size_t)n, interp, cap);
    else
        is_static = sbx_os_is_static(fd, buf, n);
    sbx_os_close(fd);
    return is_static;
}

const char *sbx_handoff_target(int dirfd, const char *path, char *target, size_t cap)
{
    char interp[8];
    if (!sbx_on() || !g_env_handoff[0] || !path || sbx_resolve(dirfd, path, target, cap) < 0 ||
        !inspect_exec(target, interp, sizeof interp))
        return NULL;
    return g_env_handoff + sizeof SBX_ENV_HANDOFF;
}

/* The dynamic loader's own variables (LD_TRACE_LOADED_OBJECTS, LD_DEBUG,
 * LD_LIBRARY_PATH ...) are meant for the program handed off, which may be
 * the loader itself (ldd runs `ld.so --list'); the launcher in between is
 * dynamically linked and would obey them (list its own libraries and exit,
 * print debug lines).  So they travel as SBX_LOADER_<name>, and the
 * launcher puts them back just before its exec. */
#define LOADER_SAVED "SBX_LOADER_"

static int loader_var(const char *e)
{
    return strncmp(e, "LD_", 3) == 0 && strncmp(e, PRELOAD_EQ, PRELOAD_EQ_LEN) != 0 &&
           strncmp(e, "LD_AUDIT=", 9) != 0;
}

size_t sbx_loader_env_bytes(char *const env[])
{
    size_t n = 0;
    for (size_t i = 0; env && env[i]; i++)
        if (loader_var(env[i]))
            n += sizeof LOADER_SAVED + strlen(env[i]);
    return n;
}

char *const *sbx_handoff_env(char *const env[], const char *target, char **vec, size_t nvec,
                             char *store, size_t nstore)
{
    size_t k = 0, tl = strlen(target);
    if (tl + 16 + sbx_loader_env_bytes(env) > nstore)
        return env;
    char *at = store + 15 + tl + 1;
    for (size_t i = 0; env && env[i] && k + 4 < nvec; i++) {
        if (loader_var(env[i])) {
            size_t l = strlen(env[i]);
            memcpy(at, LOADER_SAVED, sizeof LOADER_SAVED - 1);
            memcpy(at + sizeof LOADER_SAVED - 1, env[i], l + 1);
            vec[k++] = at;
            at += sizeof LOADER_SAVED + l;
        } else if (strncmp(env[i], PRELOAD_EQ, PRELOAD_EQ_LEN) != 0 &&
                   strncmp(env[i], "LD_AUDIT=", 9) != 0) {
            vec[k++] = env[i];     /* ptrace traces the static subtree alone */
        }
    }
    memcpy(store, "SBX_PTRACE_EXE=", 15);
    memcpy(store + 15, target, tl + 1);
    vec[k++] = store;
    vec[k++] = (char *)"SBX_PTRACE_ADOPT=1";
    vec[k++] = (char *)"SBX_PTRACE_NOTIFY=1";   /* the adopting tracer takes listeners */
    vec[k] = NULL;
    return vec;
}

void sbx_exec_before(int dirfd, const char *path, char *const argv[], int spawned_pid,
                     int handoff)
{
    if (!sbx_on() || !path)
        return;
    char p[SBX_PATH_MAX], interp[SBX_PATH_MAX];
    if (sbx_resolve(dirfd, path, p, sizeof p) < 0)
        return;
    unsigned fl = inspect_exec(p, interp, sizeof interp) ? SBX_REC_EXEC_STATIC : 0;
    const char *s[2] = {p, interp};
    int pid = spawned_pid > 0 ? spawned_pid : 0;
    int ppid = spawned_pid > 0 ? raw_getpid() : sbx_os_getppid();
    if (spawned_pid > 0)
        fl |= SBX_REC_EXEC_SPAWNED;
    if (handoff)
        fl |= SBX_REC_EXEC_HANDOFF;
    static char *const none[] = {NULL};
    emit_v(SBX_REC_EXEC, fl, pid, ppid, 0, s, 2, argv ? argv : none);
}

/* A process that reads its own log (a re-executed test session) declares
 * the breakaways of each window here: its own variables were read at start. */
SBX_CONTROL void sbx_shim_set_breakaway(const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n >= sizeof g_breakaway)
        n = 0;
    g_breakaway[0] = '\0';
    if (n) {
        memcpy(g_breakaway + 1, text + 1, n - 1);
        g_breakaway[n] = '\0';
        __atomic_store_n(&g_breakaway[0], text[0], __ATOMIC_RELEASE);
    }
}

int sbx_breakaway(int dirfd, const char *path, char *const argv[])
{
    if (!sbx_on() || !g_breakaway[0] || !path)
        return 0;
    char p[SBX_PATH_MAX];
    if (sbx_resolve(dirfd, path, p, sizeof p) < 0)
        snprintf(p, sizeof p, "%s", path);
    return sbx_breakaway_matches(g_breakaway, p, NULL, argv ? argv[0] : NULL);
}

void sbx_breakaway_left(int dirfd, const char *path, char *const argv[], int spawned_pid)
{
    if (!sbx_on() || !path)
        return;
    char p[SBX_PATH_MAX];
    if (sbx_resolve(dirfd, path, p, sizeof p) < 0)
        snprintf(p, sizeof p, "%s", path);
    const char *s[2] = {p, ""};
    static char *const none[] = {NULL};
    unsigned fl = SBX_REC_EXEC_BREAKAWAY | (spawned_pid > 0 ? SBX_REC_EXEC_SPAWNED : 0);
    emit_v(SBX_REC_EXEC, fl, spawned_pid > 0 ? spawned_pid : 0,
           spawned_pid > 0 ? raw_getpid() : sbx_os_getppid(), 0, s, 2, argv ? argv : none);
}

/* `value` without the entry `token` (entries separated by ' ' or ':'),
 * into out; 0 when nothing is left. */
static size_t without(const char *value, const char *token, char *out, size_t cap)
{
    size_t k = 0, tl = strlen(token);
    for (const char *p = value; *p;) {
        size_t l = strcspn(p, " :");
        if (l && !(l == tl && memcmp(p, token, tl) == 0) && k + l + 2 < cap) {
            if (k)
                out[k++] = p[-1] == ' ' || p[-1] == ':' ? p[-1] : ':';
            memcpy(out + k, p, l);
            k += l;
        }
        p += l;
        if (*p)
            p++;
    }
    out[k] = '\0';
    return k;
}

char *const *sbx_breakaway_env(char *const env[], char **vec, size_t nvec, char *store,
                               size_t nstore)
{
    size_t k = 0, used = 0;
    /* the audit module is the first entry of the LD_AUDIT value we set */
    char audit[SBX_PATH_MAX];
    audit[0] = '\0';
    if (g_env_audit[0]) {
        const char *a = g_env_audit + sizeof "LD_AUDIT";
        size_t l = strcspn(a, ":");
        if (l < sizeof audit) {
            memcpy(audit, a, l);
            audit[l] = '\0';
        }
    }
    for (size_t i = 0; env && env[i] && k + 1 < nvec; i++) {
        const char *e = env[i];
        if (strncmp(e, "SBX_", 4) == 0)
            continue;
        int pre = strncmp(e, PRELOAD_EQ, PRELOAD_EQ_LEN) == 0;
        int aud = strncmp(e, "LD_AUDIT=", 9) == 0;
        if (pre || aud) {
            size_t nl = pre ? PRELOAD_EQ_LEN : 9;
            char *o = store + used;
            if (used + nl + 1 >= nstore)
                continue;
            memcpy(o, e, nl);
            size_t v = without(e + nl, pre ? g_shim : audit, o + nl, nstore - used - nl);
            if (!v)
                continue;           /* only ours: dropped */
            used += nl + v + 1;
            vec[k++] = o;
            continue;
        }
        vec[k++] = (char *)e;
    }
    vec[k] = NULL;
    return vec;
}

void sbx_exec_failed(int dirfd, const char *path, int err)
{
    if (!sbx_on())
        return;
    emit(SBX_REC_EXEC_FAIL, 0, err, 0, NULL, NULL);
    /* also in the (quiet) launcher: its search along $PATH is the command's.
     * Not through the memory of recent reports: an exec fails mostly in a
     * vfork child (execvp's search), which shares that memory with its
     * parent; the next child's search, and the parent's own, must still be
     * reported for their records. */
    record_cats_as(dirfd, path, sbx_access_classify(SBX_OP_EXEC, 0).first, 0);
}

/* ---- start-up: this image's exec record and loaded libraries ---------------*/
static void report_object(const char *name)
{
    sbx_path(name, SBX_OP_LOAD, 1);
}

int sbx_is_launcher(const char *exe)
{
    return sbx_on() && g_env_handoff[0] &&
           strcmp(exe, g_env_handoff + sizeof SBX_ENV_HANDOFF) == 0;
}

void sbx_start(int argc, char **argv)
{
    if (!sbx_on())
        return;
    (void)argc;
    char fn[SBX_PATH_MAX], execfn[SBX_PATH_MAX], exe[SBX_PATH_MAX];
    sbx_os_exe_names(execfn, exe, sizeof exe);
    if (!execfn[0] || sbx_resolve(AT_FDCWD, execfn, fn, sizeof fn) < 0)
        fn[0] = '\0';
    if (sbx_is_launcher(exe)) {
        g_quiet = 1;       /* sandbox_py's launcher: not the user's program */
        return;
    }
    check_mount_ns();
    for (int fd = 0; fd < 3; fd++) {
        struct stat sb;
        long at = sbx_os_fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? sbx_os_lseek_cur(fd) : 0;
        g_std_start[fd] = at > 0 ? at : 0;
    }
    const char *interp = NULL;
    sbx_os_each_loaded(g_shim, report_object, &interp);
    char cwd[SBX_PATH_MAX];
    if (host_name(cwd, sbx_os_getcwd(cwd, sizeof cwd), sizeof cwd) <= 0 || cwd[0] != '/')
        cwd[0] = '\0';             /* unknown (or deeper than a name fits) */
    const char *s[4] = {fn, exe, interp ? interp : "", cwd};
    static char *const none[] = {NULL};
    emit_v(SBX_REC_START, 0, 0, sbx_os_getppid(), 0, s, 4, argv ? argv : none);
}

void sbx_loaded(const char *name)
{
    if (name && name[0] && sbx_on())
        sbx_path(name, SBX_OP_LOAD, 1);
}

void sbx_loaded_all(void)
{
    const char *interp = NULL;
    if (sbx_on())
        sbx_os_each_loaded(g_shim, report_object, &interp);
}
