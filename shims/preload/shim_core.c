/* shim_core.c — what the preload shim does with an intercepted call:
 * resolve the path, keep the per-fd state that deduplicates reads and
 * writes, and publish records into the shared log (sbx_log.h).
 *
 * Portable to the macOS interpose dylib except for the marked Linux parts
 * (raw system call numbers, /proc/self/fd, auxv); hook registration lives in
 * shim_hooks.c behind SBX_HOOK.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shim.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../csrc/core/pathnorm.h"

/* ---- raw system calls (Linux) -------------------------------------------
 * The shim must not call the libc functions it intercepts (recursion) nor
 * depend on libc state that may be half-built (early start-up, vfork). */
long sbx_sys(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
#else
#error "sbx_sys: add this architecture's system call sequence"
#endif
}

static int raw_getpid(void) { return (int)SBX_SYS0(SYS_getpid); }

/* ---- state ---------------------------------------------------------------*/
static struct sbx_log_hdr *g_log;
static int g_state;                        /* 0 new, 1 initialising, 2 done */
static int g_pid;                          /* pid this state belongs to */
static char g_env_log[SBX_PATH_MAX + 32];  /* "SBX_PRELOAD_LOG=..." */
static char g_env_shim[SBX_PATH_MAX + 32]; /* "SBX_PRELOAD_SHIM=..." */
static char g_env_handoff[SBX_PATH_MAX + 32]; /* "SBX_PRELOAD_HANDOFF=..." or "" */
static char g_env_audit[SBX_PATH_MAX + 32];   /* "LD_AUDIT=..." or "" */
static const char *g_shim;                 /* path of this library */
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
 * a direct system call) never yields a stale name. */
#define DIR_SLOTS 64
struct dirslot {
    int fd;                      /* -1: empty or being written */
    uint64_t dev, ino;
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
static void map_log(const char *path)
{
    int fd = (int)SBX_SYS4(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return;
    long m = sbx_sys(SYS_mmap, 0, (long)(SBX_LOG_HDR + SBX_LOG_CAP),
                     PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    SBX_SYS1(SYS_close, fd);   /* the mapping outlives the fd */
    if (m < 0 && m > -4096)
        return;
    struct sbx_log_hdr *h = (struct sbx_log_hdr *)m;
    if (h->magic != SBX_LOG_MAGIC) {
        SBX_SYS2(SYS_munmap, h, SBX_LOG_HDR + SBX_LOG_CAP);
        return;
    }
    g_log = h;
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

/* Publish one record: fixed strings, then (optionally) an argv vector.
 * An argv too large for a record is cut, with a warning record. */
static void emit_v(int type, unsigned flags, int pid, int aux, uint64_t id,
                   const char *const *s, int n, char *const *argv)
{
    struct sbx_log_hdr *h = g_log;
    if (!h)
        return;
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
    uint64_t off = __atomic_fetch_add(&h->head, total, __ATOMIC_RELAXED);
    if (off + total > h->cap) {
        __atomic_fetch_add(&h->dropped, 1, __ATOMIC_RELAXED);
        return;
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
        emit(SBX_EV_WARN, 0, 0, 0, text, NULL);
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

/* ---- paths (Linux: /proc/self/fd) -----------------------------------------*/
static long fd_name(int fd, char *out, size_t cap)
{
    char link[32] = "/proc/self/fd/";
    char digits[12];
    int nd = 0;
    unsigned v = (unsigned)fd;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t k = strlen(link);
    while (nd)
        link[k++] = digits[--nd];
    link[k] = '\0';
    long n = SBX_SYS4(SYS_readlinkat, AT_FDCWD, link, out, cap - 1);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    return n;
}

static void dir_remember(int fd, const char *p, size_t len)
{
    struct stat sb;
    if (fd < 0 || len >= SBX_PATH_MAX || foreign_process() ||
        SBX_SYS2(SYS_fstat, fd, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return;
    struct dirslot *d = &g_dirs[(unsigned)fd % DIR_SLOTS];
    __atomic_store_n(&d->fd, -1, __ATOMIC_RELEASE);
    d->dev = sb.st_dev;
    d->ino = sb.st_ino;
    d->len = (uint32_t)len;
    memcpy(d->path, p, len + 1);
    __atomic_store_n(&d->fd, fd, __ATOMIC_RELEASE);
}

static long dir_name(int fd, char *out, size_t cap)
{
    struct dirslot *d = &g_dirs[(unsigned)fd % DIR_SLOTS];
    struct stat sb;
    if (__atomic_load_n(&d->fd, __ATOMIC_ACQUIRE) == fd && d->len < cap &&
        SBX_SYS2(SYS_fstat, fd, &sb) == 0) {
        uint32_t len = d->len;
        memcpy(out, d->path, len + 1);
        if (__atomic_load_n(&d->fd, __ATOMIC_ACQUIRE) == fd && d->dev == sb.st_dev &&
            d->ino == sb.st_ino && out[len] == '\0')
            return len;
    }
    long n = fd_name(fd, out, cap);
    if (n > 0 && out[0] == '/')
        dir_remember(fd, out, (size_t)n);     /* one /proc lookup per directory */
    return n;
}

long sbx_resolve(int dirfd, const char *path, char *out, size_t cap)
{
    if (!path)
        return -1;
    size_t plen = strlen(path);
    if (path[0] == '/')
        return sbx_path_join_clean(out, cap, "/", 1, path, plen);
    char base[SBX_PATH_MAX];
    long bl;
    if (dirfd == AT_FDCWD) {
        bl = SBX_SYS2(SYS_getcwd, base, sizeof base);
        if (bl > 0)
            bl--;                      /* the kernel counts the NUL */
    } else {
        bl = dir_name(dirfd, base, sizeof base);
    }
    if (bl <= 0 || base[0] != '/')
        return -1;
    return sbx_path_join_clean(out, cap, base, (size_t)bl, path, plen);
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
    uint64_t h = 14695981039346656037ull ^ cats;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    h |= 1;                                   /* 0 marks an empty slot */
    uint64_t *slot = &g_seen[(h >> 20) % SEEN_SLOTS];
    if (__atomic_load_n(slot, __ATOMIC_RELAXED) == h)
        return 1;
    __atomic_store_n(slot, h, __ATOMIC_RELAXED);
    return 0;
}

static void record_cats(int dirfd, const char *path, unsigned cats)
{
    if (!sbx_on() || !path || !cats)
        return;
    char p[SBX_PATH_MAX];
    long n = sbx_resolve(dirfd, path, p, sizeof p);
    if (n < 0)
        return;
    /* only order-free categories: a write that created the name must keep
     * its place before any later read (pathset's created-then-read rule) */
    if (!(cats & (SBX_WRITE | SBX_CREATED)) && seen_before(p, (size_t)n, cats))
        return;
    emit(SBX_EV_PATH, cats, 0, 0, p, NULL);
}

void sbx_path_cats_at(int dirfd, const char *path, unsigned cats)
{
    if (!g_quiet)
        record_cats(dirfd, path, cats);
}

void sbx_path_at(int dirfd, const char *path, enum sbx_op op, int ok)
{
    sbx_path_cats_at(dirfd, path, sbx_access_classify(op, ok).first);
}

void sbx_path2_at(int dirfd1, const char *path1, int dirfd2, const char *path2,
                  enum sbx_op op, int ok)
{
    struct sbx_access a = sbx_access_classify(op, ok);
    sbx_path_cats_at(dirfd1, path1, a.first);
    sbx_path_cats_at(dirfd2, path2, a.second);
}

int sbx_exists_at(int dirfd, const char *path)
{
    if (!sbx_on() || !path)
        return -1;
    long r = SBX_SYS4(SYS_faccessat, dirfd, path, F_OK, 0);
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

void sbx_opened(int dirfd, const char *path, int oflags, int fd, int existed)
{
    if (!sbx_on() || !path || g_quiet)
        return;
    char p[SBX_PATH_MAX];
    long plen = sbx_resolve(dirfd, path, p, sizeof p);
    if (plen < 0)
        return;
    if (fd >= 0 && (oflags & O_DIRECTORY))
        dir_remember(fd, p, (size_t)plen);
    if (fd < 0) {
        emit(SBX_EV_PATH, SBX_PROBE, 0, 0, p, NULL);
        return;
    }
    int used, tracked;
    unsigned now = sbx_access_open(sbx_linux_open_intent((unsigned)oflags),
                                   (oflags & O_CREAT) && existed == 0, &used, &tracked);
    if (!tracked) {
        /* O_PATH, or an unnamed file in directory p: only looked at */
        emit(SBX_EV_PATH, now, 0, 0, p, NULL);
        fd_store(fd, 0, FS_KNOWN | FS_IGN | FS_DONE);
        return;
    }
    int acc = oflags & O_ACCMODE;
    int r = acc == O_RDONLY || acc == O_RDWR, w = acc == O_WRONLY || acc == O_RDWR;
    uint32_t st = FS_KNOWN | (r ? FS_R : 0) | (w ? FS_W : 0) |
                  ((oflags & O_DIRECTORY) ? FS_DIR : 0);
    if (now) {
        emit(SBX_EV_PATH, now, 0, 0, p, NULL);
        st |= FS_DONE_W;
        if (!r) {
            fd_store(fd, 0, st | FS_DONE);
            return;
        }
    }
    uint64_t id = next_id();
    unsigned fl = (r ? SBX_FD_R : 0) | (w ? SBX_FD_W : 0) |
                  ((oflags & O_DIRECTORY) ? SBX_FD_DIR : 0) |
                  (used ? SBX_FD_NOPROBE : 0);
    emit(SBX_EV_OPEN, fl, 0, id, p, NULL);
    fd_store(fd, id, st);
}

/* An fd we did not see being opened (inherited, opened by a direct system
 * call or inside libc): learn what it is from the kernel. */
static struct fdrec discover(int fd)
{
    struct fdrec rec = {0, FS_KNOWN | FS_IGN | FS_DONE};
    struct stat sb;
    if (SBX_SYS2(SYS_fstat, fd, &sb) < 0 || !(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)))
        return rec;
    char name[SBX_PATH_MAX];
    if (fd_name(fd, name, sizeof name) < 0 || name[0] != '/')
        return rec;
    long fl = SBX_SYS2(SYS_fcntl, fd, F_GETFL);
    int acc = (int)(fl < 0 ? O_RDONLY : fl & O_ACCMODE);
    int r = acc != O_WRONLY, w = acc != O_RDONLY, d = S_ISDIR(sb.st_mode);
    rec.id = next_id();
    rec.st = FS_KNOWN | (r ? FS_R : 0) | (w ? FS_W : 0) | (d ? FS_DIR : 0);
    emit(SBX_EV_OPEN, (r ? SBX_FD_R : 0) | (w ? SBX_FD_W : 0) | (d ? SBX_FD_DIR : 0),
         0, rec.id, name, NULL);
    return rec;
}

/* A read through a symlink also reports the target: the reader resolves
 * each distinct read path once at the end (cheaper than asking the kernel
 * in the traced process on every first read). */
static void emit_use(uint64_t id, unsigned kind, int fd)
{
    (void)fd;
    emit(SBX_EV_USE, kind, 0, id, NULL, NULL);
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
    long pos = SBX_SYS3(SYS_lseek, fd, 0, SEEK_CUR);
    if (pos <= 0)
        return;
    uint32_t bit = done_bit(kind);
    uint32_t old = __atomic_fetch_or(&e->st, bit, __ATOMIC_ACQ_REL);
    if (!(old & bit))
        emit_use(e->id, kind, fd);
}

void sbx_fd_closing(int fd)
{
    if (fd < 0 || fd >= FD_MAX || !sbx_on() || foreign_process())
        return;
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

void sbx_flush_fds(void)
{
    if (!sbx_on() || foreign_process())
        return;
    /* stdin/stdout/stderr redirected to files by a shell were opened by
     * another process: learn them now so the offsets can be checked. */
    for (int fd = 0; fd < 3; fd++)
        if (!(g_fds[fd].st & FS_KNOWN)) {
            struct stat sb;
            if (SBX_SYS2(SYS_fstat, fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
                SBX_SYS3(SYS_lseek, fd, 0, SEEK_CUR) > 0) {
                struct fdrec rec = discover(fd);
                fd_store(fd, rec.id, rec.st);
            }
        }
    for (int fd = 0; fd < g_fd_hi; fd++)
        settle(fd, &g_fds[fd]);
}

/* ---- processes -------------------------------------------------------------*/
void sbx_forked_parent(int child)
{
    if (child > 0 && sbx_on())
        emit(SBX_EV_FORK, 0, child, 0, NULL, NULL);
}

void sbx_forked_child(void)
{
    if (g_log)
        g_pid = raw_getpid();
}

static int has_shim(const char *preload)
{
    size_t n = strlen(g_shim);
    for (const char *p = preload; (p = strstr(p, g_shim)); p += n)
        if ((p == preload || p[-1] == ' ' || p[-1] == ':') &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == ':'))
            return 1;
    return 0;
}

char *const *sbx_exec_env(char *const envp[], char **vec, size_t nvec,
                          char *store, size_t nstore)
{
    if (!sbx_on())
        return envp;
    int have_log = 0, have_shim = 0, have_pre = 0, have_handoff = !g_env_handoff[0];
    int have_audit = !g_env_audit[0];
    const char *old_pre = NULL;
    size_t n = 0;
    for (; envp && envp[n]; n++) {
        const char *e = envp[n];
        if (strcmp(e, g_env_log) == 0)
            have_log = 1;
        else if (strcmp(e, g_env_shim) == 0)
            have_shim = 1;
        else if (g_env_handoff[0] && strcmp(e, g_env_handoff) == 0)
            have_handoff = 1;
        else if (strncmp(e, "LD_AUDIT=", 9) == 0)
            have_audit = 1;         /* ours, or the program's own: left as it is */
        else if (strncmp(e, "LD_PRELOAD=", 11) == 0) {
            old_pre = e + 11;
            have_pre = has_shim(old_pre);
        }
    }
    if (have_log && have_shim && have_pre && have_handoff && have_audit)
        return envp;
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
            strncmp(e, "LD_PRELOAD=", 11) == 0)
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
    if (11 + sl + 1 + ol + 1 <= nstore) {
        memcpy(store, "LD_PRELOAD=", 11);
        memcpy(store + 11, g_shim, sl);
        size_t at = 11 + sl;
        if (have_pre) {
            store[at] = '\0';
            vec[k++] = (char *)(old_pre - 11);  /* already lists us */
        } else {
            if (ol) {
                store[at++] = ' ';
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

/* What the kernel will run for `p`: an ELF without interpreter (static) or
 * a #! script's interpreter path (into interp). */
static int inspect_exec(const char *p, char *interp, size_t cap)
{
    interp[0] = '\0';
    int fd = (int)SBX_SYS4(SYS_openat, AT_FDCWD, p, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    unsigned char buf[512];
    long n = SBX_SYS4(SYS_pread64, fd, buf, sizeof buf, 0);
    int is_static = 0;
    if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
        long i = 2, j;
        while (i < n && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        for (j = i; j < n && buf[j] != ' ' && buf[j] != '\t' && buf[j] != '\n'; j++)
            ;
        if (j > i && (size_t)(j - i) < cap) {
            memcpy(interp, buf + i, (size_t)(j - i));
            interp[j - i] = '\0';
        }
    } else if (n >= (long)sizeof(Elf64_Ehdr) && memcmp(buf, ELFMAG, SELFMAG) == 0 &&
               buf[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;
        memcpy(&eh, buf, sizeof eh);
        Elf64_Phdr ph[64];
        size_t cnt = eh.e_phnum < 64 ? eh.e_phnum : 64;
        if (eh.e_phentsize == sizeof(Elf64_Phdr) &&
            SBX_SYS4(SYS_pread64, fd, ph, cnt * sizeof *ph, eh.e_phoff) ==
                (long)(cnt * sizeof *ph)) {
            is_static = 1;
            for (size_t i = 0; i < cnt; i++)
                if (ph[i].p_type == PT_INTERP)
                    is_static = 0;
        }
    }
    SBX_SYS1(SYS_close, fd);
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

char *const *sbx_handoff_env(char *const env[], const char *target, char **vec, size_t nvec,
                             char *store, size_t nstore)
{
    size_t k = 0, tl = strlen(target);
    if (tl + 16 > nstore)
        return env;
    for (size_t i = 0; env && env[i] && k + 4 < nvec; i++)
        if (strncmp(env[i], "LD_PRELOAD=", 11) != 0 && strncmp(env[i], "LD_AUDIT=", 9) != 0)
            vec[k++] = env[i];     /* ptrace traces the static subtree alone */
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
    unsigned fl = inspect_exec(p, interp, sizeof interp) ? SBX_EXEC_STATIC : 0;
    const char *s[2] = {p, interp};
    int pid = spawned_pid > 0 ? spawned_pid : 0;
    int ppid = spawned_pid > 0 ? raw_getpid() : (int)SBX_SYS0(SYS_getppid);
    if (spawned_pid > 0)
        fl |= SBX_EXEC_SPAWNED;
    if (handoff)
        fl |= SBX_EXEC_HANDOFF;
    static char *const none[] = {NULL};
    emit_v(SBX_EV_EXEC, fl, pid, ppid, 0, s, 2, argv ? argv : none);
}

void sbx_exec_failed(int dirfd, const char *path, int err)
{
    if (!sbx_on())
        return;
    emit(SBX_EV_EXEC_FAIL, 0, err, 0, NULL, NULL);
    /* also in the (quiet) launcher: its search along $PATH is the command's */
    record_cats(dirfd, path, sbx_access_classify(SBX_OP_EXEC, 0).first);
}

/* ---- start-up: this image's exec record and loaded libraries ---------------*/
static int report_object(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    const char **interp = ctx;
    if (!info->dlpi_name || !info->dlpi_name[0]) {
        /* the main program: its PT_INTERP names the ELF interpreter */
        for (int i = 0; i < info->dlpi_phnum; i++)
            if (info->dlpi_phdr[i].p_type == PT_INTERP)
                *interp = (const char *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        return 0;
    }
    if (strncmp(info->dlpi_name, "linux-vdso", 10) == 0 ||
        strncmp(info->dlpi_name, "linux-gate", 10) == 0 ||
        (g_shim && strcmp(info->dlpi_name, g_shim) == 0))
        return 0;
    sbx_path(info->dlpi_name, SBX_OP_LOAD, 1);
    return 0;
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
    char fn[SBX_PATH_MAX], exe[SBX_PATH_MAX];
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    if (!execfn || sbx_resolve(AT_FDCWD, execfn, fn, sizeof fn) < 0)
        fn[0] = '\0';
    long n = SBX_SYS4(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    if (sbx_is_launcher(exe)) {
        g_quiet = 1;       /* sandbox_py's launcher: not the user's program */
        return;
    }
    const char *interp = NULL;
    dl_iterate_phdr(report_object, &interp);
    const char *s[3] = {fn, exe, interp ? interp : ""};
    static char *const none[] = {NULL};
    emit_v(SBX_EV_START, 0, 0, (int)SBX_SYS0(SYS_getppid), 0, s, 3, argv ? argv : none);
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
        dl_iterate_phdr(report_object, &interp);
}
