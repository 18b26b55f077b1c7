/* hooks_linux.c — the intercepted glibc entry points that only Linux has
 * (the portable ones are in shims/core/hooks_posix.c): the *64 aliases,
 * the fortified __open_2 family, statx and the legacy __xstat family
 * (binaries built before glibc 2.33), openat2 through syscall(), Linux's
 * xattr and statfs64 signatures, sendfile/splice/copy_file_range,
 * close_range, dup3, execveat/fexecve/execvpe, the *64 mkstemp family;
 * and the shim's constructor.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>
#include <pthread.h>

#include "shim_linux.h"
#include "syscalls.h"
#include "../core/hook_bodies.h"

void *sbx_next(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
#if defined(__x86_64__)
    if (!p)     /* compat-only symbols (__xstat... since glibc 2.33) */
        p = dlvsym(RTLD_NEXT, name, "GLIBC_2.2.5");
#elif defined(__aarch64__)
    if (!p)
        p = dlvsym(RTLD_NEXT, name, "GLIBC_2.17");
#endif
    return p;
}

/* ---- open family ------------------------------------------------------------*/
SBX_HOOK(int, open64, (const char *path, int flags, ...))
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = sbx_mode_of(flags, ap);
    va_end(ap);
    OPEN_BODY(AT_FDCWD, path, flags, REAL(open64)(path, flags, m));
}

SBX_HOOK(int, openat64, (int dirfd, const char *path, int flags, ...))
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = sbx_mode_of(flags, ap);
    va_end(ap);
    OPEN_BODY(dirfd, path, flags, REAL(openat64)(dirfd, path, flags, m));
}

/* _FORTIFY_SOURCE entry points (no mode: O_CREAT is not allowed there). */
SBX_HOOK(int, __open_2, (const char *path, int flags))
{
    OPEN_BODY(AT_FDCWD, path, flags, REAL(__open_2)(path, flags));
}
SBX_HOOK(int, __open64_2, (const char *path, int flags))
{
    OPEN_BODY(AT_FDCWD, path, flags, REAL(__open64_2)(path, flags));
}
SBX_HOOK(int, __openat_2, (int dirfd, const char *path, int flags))
{
    OPEN_BODY(dirfd, path, flags, REAL(__openat_2)(dirfd, path, flags));
}
SBX_HOOK(int, __openat64_2, (int dirfd, const char *path, int flags))
{
    OPEN_BODY(dirfd, path, flags, REAL(__openat64_2)(dirfd, path, flags));
}

SBX_HOOK(int, creat64, (const char *path, mode_t mode))
{
    OPEN_BODY(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, REAL(creat64)(path, mode));
}

/* A file system call made through syscall() that the code below does not
 * route through a hook: said once per call and process (the table in
 * csrc/linux/syscalls.def says which calls touch files).  Plain
 * read/write/readv/writev need nothing: their fd is settled from its file
 * offset like stdio's. */
static void syscall_unseen(long n)
{
    static unsigned char said[512];
    enum sbx_use use;
    int fd, hot;
    int file = sbx_linux_path_op(n) != SBX_OP_NONE || n == SYS_sendfile ||
               n == SYS_copy_file_range || n == SYS_splice || n == SYS_open_by_handle_at ||
               (sbx_linux_fd_call(n, &use, &fd, &hot) && !hot);
    if (!file || n < 0 || n >= (long)sizeof said || said[n] || !sbx_on())
        return;
    said[n] = 1;
    char text[160] = "called ";
    size_t k = 7;
    for (const char *c = sbx_linux_syscall_name(n); *c && k < 60; c++)
        text[k++] = *c;
    const char *tail = " through syscall(), which the preload backend does not decode";
    for (size_t i = 0; tail[i] && k < sizeof text - 1; i++)
        text[k++] = tail[i];
    text[k] = '\0';
    sbx_warn_process(text);
}

/* openat2 has no glibc wrapper: programs reach it through syscall(), as
 * they may reach any other call; the opens and exec are routed through
 * their hooks, the rest of the file calls are named (syscall_unseen). */
SBX_HOOK(long, syscall, (long n, ...))
{
    va_list ap;
    long a[6];
    va_start(ap, n);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    /* the name argument as a variable: OPEN_BODY hands the kernel a copy */
#ifdef SYS_openat2
    if (n == SYS_openat2) {
        const uint64_t *how = (const uint64_t *)a[2];   /* struct open_how: flags first */
        int flags = how ? (int)how[0] : 0;
        const char *path = (const char *)a[1];
        OPEN_BODY((int)a[0], path, flags,
                  (int)REAL(syscall)(n, a[0], (long)path, a[2], a[3], a[4], a[5]));
    }
#endif
    if (n == SYS_openat) {
        const char *path = (const char *)a[1];
        OPEN_BODY((int)a[0], path, (int)a[2],
                  (int)REAL(syscall)(n, a[0], (long)path, a[2], a[3], a[4], a[5]));
    }
    if (n == SYS_open) {
        const char *path = (const char *)a[0];
        OPEN_BODY(AT_FDCWD, path, (int)a[1],
                  (int)REAL(syscall)(n, (long)path, a[1], a[2], a[3], a[4], a[5]));
    }
    if (n == SYS_creat) {
        const char *path = (const char *)a[0];
        OPEN_BODY(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC,
                  (int)REAL(syscall)(n, (long)path, a[1], a[2], a[3], a[4], a[5]));
    }
    if (n == SYS_execve)
        return SBX_SELF(execve)((const char *)a[0], (char *const *)a[1], (char *const *)a[2]);
    if (n != SYS_io_uring_setup) {
        int saved = errno;
        syscall_unseen(n);
        errno = saved;
    }
    long rc = REAL(syscall)(n, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (n == SYS_io_uring_setup && rc >= 0) {
        /* requests submitted through the ring never pass through libc */
        int saved = errno;
        sbx_warn_process("uses io_uring: file accesses submitted through the ring are "
                         "not seen by the preload backend");
        errno = saved;
    }
    return rc;
}

/* execveat through the real syscall() (glibc 2.34 has no wrapper on every
 * target): the portable exec hook's path for a dirfd or flags. */
int sbx_os_execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                    int flags)
{
    return (int)REAL(syscall)(SYS_execveat, dirfd, path, argv, envp, flags, 0);
}

/* ---- stdio and dirent openers -------------------------------------------------*/
SBX_HOOK(FILE *, fopen64, (const char *path, const char *mode))
{
    FOPEN_BODY(path, mode, REAL(fopen64)(path, mode));
}

SBX_HOOK(FILE *, freopen64, (const char *path, const char *mode, FILE *stream))
{
    if (!path)
        return REAL(freopen64)(path, mode, stream);
    KEEP_ERRNO(sbx_stream_closing(stream));
    FOPEN_BODY(path, mode, REAL(freopen64)(path, mode, stream));
}

SBX_HOOK(struct dirent64 *, readdir64, (DIR *d))
{
    struct dirent64 *e = REAL(readdir64)(d);
    KEEP_ERRNO(sbx_fd_use(dirfd(d), SBX_ENUM));
    return e;
}
SBX_HOOK(ssize_t, getdents64, (int fd, void *buf, size_t n))
{
    ssize_t r = REAL(getdents64)(fd, buf, n);
    if (r >= 0)
        KEEP_ERRNO(sbx_fd_use(fd, SBX_ENUM));
    return r;
}

typedef int (*scan_filter64)(const struct dirent64 *);
typedef int (*scan_cmp64)(const struct dirent64 **, const struct dirent64 **);

SBX_HOOK(int, scandir64, (const char *dir, struct dirent64 ***list, scan_filter64 f,
                          scan_cmp64 c))
{
    int r = REAL(scandir64)(dir, list, f, c);
    KEEP_ERRNO(sbx_path(dir, SBX_OP_LIST, r >= 0));
    return r;
}
SBX_HOOK(int, scandirat, (int dirfd, const char *dir, struct dirent ***list, scan_filter f,
                          scan_cmp c))
{
    int r = REAL(scandirat)(dirfd, dir, list, f, c);
    KEEP_ERRNO(sbx_path_at(dirfd, dir, SBX_OP_LIST, r >= 0));
    return r;
}

/* ---- metadata: probes ------------------------------------------------------------*/
SBX_HOOK(int, stat64, (const char *p, struct stat64 *b)) { PROBE_BODY(AT_FDCWD, p, REAL(stat64)(p, b)); }
SBX_HOOK(int, lstat64, (const char *p, struct stat64 *b)) { PROBE_BODY(AT_FDCWD, p, REAL(lstat64)(p, b)); }
SBX_HOOK(int, fstatat64, (int d, const char *p, struct stat64 *b, int fl))
{
    PROBE_BODY(d, p, REAL(fstatat64)(d, p, b, fl));
}
SBX_HOOK(int, statx, (int d, const char *p, int fl, unsigned mask, struct statx *b))
{
    PROBE_BODY(d, p, REAL(statx)(d, p, fl, mask, b));
}
/* Legacy versioned entry points that binaries built before glibc 2.33 call. */
int __xstat(int v, const char *p, struct stat *b);
int __xstat64(int v, const char *p, struct stat64 *b);
int __lxstat(int v, const char *p, struct stat *b);
int __lxstat64(int v, const char *p, struct stat64 *b);
int __fxstatat(int v, int d, const char *p, struct stat *b, int fl);
int __fxstatat64(int v, int d, const char *p, struct stat64 *b, int fl);
SBX_HOOK(int, __xstat, (int v, const char *p, struct stat *b)) { PROBE_BODY(AT_FDCWD, p, REAL(__xstat)(v, p, b)); }
SBX_HOOK(int, __xstat64, (int v, const char *p, struct stat64 *b)) { PROBE_BODY(AT_FDCWD, p, REAL(__xstat64)(v, p, b)); }
SBX_HOOK(int, __lxstat, (int v, const char *p, struct stat *b)) { PROBE_BODY(AT_FDCWD, p, REAL(__lxstat)(v, p, b)); }
SBX_HOOK(int, __lxstat64, (int v, const char *p, struct stat64 *b)) { PROBE_BODY(AT_FDCWD, p, REAL(__lxstat64)(v, p, b)); }
SBX_HOOK(int, __fxstatat, (int v, int d, const char *p, struct stat *b, int fl))
{
    PROBE_BODY(d, p, REAL(__fxstatat)(v, d, p, b, fl));
}
SBX_HOOK(int, __fxstatat64, (int v, int d, const char *p, struct stat64 *b, int fl))
{
    PROBE_BODY(d, p, REAL(__fxstatat64)(v, d, p, b, fl));
}

SBX_HOOK(int, euidaccess, (const char *p, int m)) { PROBE_BODY(AT_FDCWD, p, REAL(euidaccess)(p, m)); }
SBX_HOOK(int, eaccess, (const char *p, int m)) { PROBE_BODY(AT_FDCWD, p, REAL(eaccess)(p, m)); }

/* readlink of a link reads it; a failed one probed the name. */

/* ---- names created, removed, changed: writes ---------------------------------------*/
SBX_HOOK(int, renameat2, (int od, const char *o, int nd, const char *n, unsigned fl))
{
    TWO_BODY(od, o, nd, n, SBX_OP_RENAME, REAL(renameat2)(od, o, nd, n, fl));
}

SBX_HOOK(int, mknodat, (int d, const char *p, mode_t m, dev_t dv)) { CREATE_BODY(d, p, REAL(mknodat)(d, p, m, dv)); }
SBX_HOOK(int, truncate64, (const char *p, off64_t n)) { MODIFY_BODY(AT_FDCWD, p, REAL(truncate64)(p, n)); }
SBX_HOOK(int, futimesat, (int d, const char *p, const struct timeval t[2]))
{
    if (!p) {
        int r = REAL(futimesat)(d, p, t);
        if (r >= 0)
            KEEP_ERRNO(sbx_fd_use(d, SBX_WRITE));
        return r;
    }
    MODIFY_BODY(d, p, REAL(futimesat)(d, p, t));
}

/* ---- extended attributes and file-system statistics ----------------------------------*/
SBX_HOOK(ssize_t, getxattr, (const char *p, const char *n, void *v, size_t s))
{
    ssize_t r = REAL(getxattr)(p, n, v, s);
    KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, r >= 0));
    return r;
}
SBX_HOOK(ssize_t, lgetxattr, (const char *p, const char *n, void *v, size_t s))
{
    ssize_t r = REAL(lgetxattr)(p, n, v, s);
    KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, r >= 0));
    return r;
}
SBX_HOOK(ssize_t, listxattr, (const char *p, char *l, size_t s))
{
    ssize_t r = REAL(listxattr)(p, l, s);
    KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, r >= 0));
    return r;
}
SBX_HOOK(ssize_t, llistxattr, (const char *p, char *l, size_t s))
{
    ssize_t r = REAL(llistxattr)(p, l, s);
    KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, r >= 0));
    return r;
}
SBX_HOOK(int, setxattr, (const char *p, const char *n, const void *v, size_t s, int fl))
{
    MODIFY_BODY(AT_FDCWD, p, REAL(setxattr)(p, n, v, s, fl));
}
SBX_HOOK(int, lsetxattr, (const char *p, const char *n, const void *v, size_t s, int fl))
{
    MODIFY_BODY(AT_FDCWD, p, REAL(lsetxattr)(p, n, v, s, fl));
}
SBX_HOOK(int, removexattr, (const char *p, const char *n))
{
    MODIFY_BODY(AT_FDCWD, p, REAL(removexattr)(p, n));
}
SBX_HOOK(int, lremovexattr, (const char *p, const char *n))
{
    MODIFY_BODY(AT_FDCWD, p, REAL(lremovexattr)(p, n));
}
SBX_HOOK(int, statfs64, (const char *p, struct statfs64 *b)) { PROBE_BODY(AT_FDCWD, p, REAL(statfs64)(p, b)); }
SBX_HOOK(int, statvfs64, (const char *p, struct statvfs64 *b)) { PROBE_BODY(AT_FDCWD, p, REAL(statvfs64)(p, b)); }

/* ---- file descriptors: content read or written ---------------------------------------*/
SBX_HOOK(ssize_t, pread64, (int fd, void *b, size_t n, off64_t o)) { FD_BODY(ssize_t, fd, SBX_READ, REAL(pread64)(fd, b, n, o)); }
SBX_HOOK(ssize_t, preadv64, (int fd, const struct iovec *v, int n, off64_t o)) { FD_BODY(ssize_t, fd, SBX_READ, REAL(preadv64)(fd, v, n, o)); }
SBX_HOOK(ssize_t, preadv2, (int fd, const struct iovec *v, int n, off_t o, int fl)) { FD_BODY(ssize_t, fd, SBX_READ, REAL(preadv2)(fd, v, n, o, fl)); }
SBX_HOOK(ssize_t, pwrite64, (int fd, const void *b, size_t n, off64_t o)) { FD_BODY(ssize_t, fd, SBX_WRITE, REAL(pwrite64)(fd, b, n, o)); }
SBX_HOOK(ssize_t, pwritev64, (int fd, const struct iovec *v, int n, off64_t o)) { FD_BODY(ssize_t, fd, SBX_WRITE, REAL(pwritev64)(fd, v, n, o)); }
SBX_HOOK(ssize_t, pwritev2, (int fd, const struct iovec *v, int n, off_t o, int fl)) { FD_BODY(ssize_t, fd, SBX_WRITE, REAL(pwritev2)(fd, v, n, o, fl)); }
SBX_HOOK(int, ftruncate64, (int fd, off64_t n)) { FD_BODY(int, fd, SBX_WRITE, REAL(ftruncate64)(fd, n)); }
SBX_HOOK(int, fallocate, (int fd, int m, off_t o, off_t n)) { FD_BODY(int, fd, SBX_WRITE, REAL(fallocate)(fd, m, o, n)); }
SBX_HOOK(int, fallocate64, (int fd, int m, off64_t o, off64_t n)) { FD_BODY(int, fd, SBX_WRITE, REAL(fallocate64)(fd, m, o, n)); }
/* posix_fallocate returns an error number, not -1 */
SBX_HOOK(int, posix_fallocate, (int fd, off_t o, off_t n))
{
    int r = REAL(posix_fallocate)(fd, o, n);
    if (r == 0)
        KEEP_ERRNO(sbx_fd_use(fd, SBX_WRITE));
    return r;
}
SBX_HOOK(int, posix_fallocate64, (int fd, off64_t o, off64_t n))
{
    int r = REAL(posix_fallocate64)(fd, o, n);
    if (r == 0)
        KEEP_ERRNO(sbx_fd_use(fd, SBX_WRITE));
    return r;
}
SBX_HOOK(int, fsetxattr, (int fd, const char *n, const void *v, size_t s, int fl))
{
    FD_BODY(int, fd, SBX_WRITE, REAL(fsetxattr)(fd, n, v, s, fl));
}
SBX_HOOK(int, fremovexattr, (int fd, const char *n)) { FD_BODY(int, fd, SBX_WRITE, REAL(fremovexattr)(fd, n)); }

SBX_HOOK(void *, mmap64, (void *a, size_t n, int prot, int fl, int fd, off64_t o))
{
    void *r = REAL(mmap64)(a, n, prot, fl, fd, o);
    if (!sbx_mmap_body_patched)
        KEEP_ERRNO(sbx_mapped(r, prot, fl, fd));
    return r;
}

static ssize_t transferred(ssize_t r, int in, int out)
{
    if (r >= 0)
        KEEP_ERRNO({
            sbx_fd_use(in, SBX_READ);
            sbx_fd_use(out, SBX_WRITE);
        });
    return r;
}
SBX_HOOK(ssize_t, sendfile, (int out, int in, off_t *o, size_t n))
{
    return transferred(REAL(sendfile)(out, in, o, n), in, out);
}
SBX_HOOK(ssize_t, sendfile64, (int out, int in, off64_t *o, size_t n))
{
    return transferred(REAL(sendfile64)(out, in, o, n), in, out);
}
SBX_HOOK(ssize_t, splice, (int in, off64_t *io, int out, off64_t *oo, size_t n, unsigned fl))
{
    return transferred(REAL(splice)(in, io, out, oo, n, fl), in, out);
}
SBX_HOOK(ssize_t, copy_file_range, (int in, off64_t *io, int out, off64_t *oo, size_t n,
                                     unsigned fl))
{
    return transferred(REAL(copy_file_range)(in, io, out, oo, n, fl), in, out);
}

/* ---- fd table upkeep ------------------------------------------------------------------*/
SBX_HOOK(int, close_range, (unsigned lo, unsigned hi, int fl))
{
    KEEP_ERRNO(sbx_fd_close_range(lo, hi));
    return REAL(close_range)(lo, hi, fl);
}
SBX_HOOK(void, closefrom, (int lo))
{
    KEEP_ERRNO(sbx_fd_close_range((unsigned)lo, ~0u));
    REAL(closefrom)(lo);
}
SBX_HOOK(int, dup3, (int fd, int nfd, int fl))
{
    KEEP_ERRNO(sbx_fd_closing(nfd));
    int r = REAL(dup3)(fd, nfd, fl);
    if (r >= 0)
        KEEP_ERRNO(sbx_fd_dup(fd, r));
    return r;
}

SBX_HOOK(int, fcntl64, (int fd, int cmd, ...)) { FCNTL_BODY(REAL(fcntl64)); }

/* ---- processes --------------------------------------------------------------------------*/

SBX_HOOK(int, execveat, (int d, const char *path, char *const argv[], char *const envp[],
                         int fl))
{
    return sbx_exec_at(d, path, argv, envp, fl);
}
SBX_HOOK(int, fexecve, (int fd, char *const argv[], char *const envp[]))
{
    return sbx_exec_at(fd, "", argv, envp, AT_EMPTY_PATH);
}

SBX_HOOK(int, execvpe, (const char *file, char *const argv[], char *const envp[]))
{
    return sbx_exec_search(file, argv, envp);
}

/* ---- temporary files: glibc creates them with its own open() ---------------------------*/
SBX_HOOK(int, mkstemp64, (char *t)) { MKSTEMP_BODY(t, 0, REAL(mkstemp64)(t)); }
SBX_HOOK(int, mkostemp64, (char *t, int fl)) { MKSTEMP_BODY(t, fl, REAL(mkostemp64)(t, fl)); }
SBX_HOOK(int, mkstemps64, (char *t, int sl)) { MKSTEMP_BODY(t, 0, REAL(mkstemps64)(t, sl)); }
SBX_HOOK(int, mkostemps64, (char *t, int sl, int fl))
{
    MKSTEMP_BODY(t, fl, REAL(mkostemps64)(t, sl, fl));
}

/* ---- life cycle -------------------------------------------------------------------------*/
/* exit() hands its status to on_exit handlers (glibc): the process's record
 * gets it (a process killed by a signal has none) */
static void sbx_on_exit(int status, void *arg)
{
    (void)arg;
    sbx_exiting(status);
}

__attribute__((constructor)) static void sbx_ctor(int argc, char **argv, char **envp)
{
    (void)envp;
    if (!sbx_on())
        return;
    /* children forked inside libc (not through our fork) keep their own
     * fd state from here on */
    pthread_atfork(NULL, NULL, sbx_forked_child);
    sbx_glibc_internal_patch();
    sbx_start(argc, argv);
    on_exit(sbx_on_exit, NULL);
    /* last: the libraries the program started with are all mapped now */
    sbx_raw_watch_arm();
    pthread_atfork(NULL, NULL, sbx_raw_watch_arm);
}

__attribute__((destructor)) static void sbx_dtor(void)
{
    if (!sbx_on())
        return;
    fflush(NULL);       /* exit() would flush after us: show those writes now */
    sbx_flush_fds();
}

/* ---- system(): glibc spawns the shell with its own internal posix_spawn -----------*/
/* With the shim's variables still in the environment the child is traced
 * as it is; when the program scrubbed them (os.environ.clear(), then
 * system()), glibc would start an untraced shell.  Then the shell is
 * started the way glibc's system() does it (SIGINT and SIGQUIT ignored and
 * SIGCHLD blocked in the caller, defaults restored in the child), through
 * the posix_spawn hook, which puts the variables back. */
extern char **environ;

static int env_has_shim(void)
{
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) == 0 && strstr(*e, "_sbx_preload.so"))
            return 1;
    return 0;
}

SBX_HOOK(int, system, (const char *cmd))
{
    if (!cmd || !sbx_on() || env_has_shim())
        return REAL(system)(cmd);
    struct sigaction ign = {0}, old_int, old_quit;
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    sigset_t chld, old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t deflt;
    sigemptyset(&deflt);
    if (old_int.sa_handler != SIG_IGN)
        sigaddset(&deflt, SIGINT);
    if (old_quit.sa_handler != SIG_IGN)
        sigaddset(&deflt, SIGQUIT);
    posix_spawnattr_setsigdefault(&attr, &deflt);
    posix_spawnattr_setsigmask(&attr, &old_mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)cmd, NULL};
    pid_t pid;
    int status = -1;
    int err = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ);  /* our hook */
    posix_spawnattr_destroy(&attr);
    if (err == 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    } else {
        status = 127 << 8;          /* as glibc: the shell could not run */
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return status;
}

/* ---- popen(): glibc spawns its shell the same way ----------------------------------*/
/* As system(): with the variables gone, glibc's internal posix_spawn would
 * start an untraced shell.  Then the shim makes the pipe and spawns
 * `sh -c cmd` through the hooked posix_spawn, as glibc's popen does (the
 * child's end on its stdin or stdout, the streams of earlier popen()s
 * closed in the child), and keeps the pid for pclose(). */
#define POPEN_SLOTS 64
static struct {
    FILE *fp;                       /* NULL: free */
    pid_t pid;
} g_popen[POPEN_SLOTS];

SBX_HOOK(FILE *, popen, (const char *cmd, const char *mode))
{
    if (!cmd || !mode || !sbx_on() || env_has_shim())
        return REAL(popen)(cmd, mode);
    int reading = mode[0] == 'r', cloexec = strchr(mode, 'e') != NULL;
    if (!reading && mode[0] != 'w') {
        errno = EINVAL;
        return NULL;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return NULL;
    int parent_end = reading ? fds[0] : fds[1], child_end = reading ? fds[1] : fds[0];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* (onto itself, dup2 clears close-on-exec: the child keeps it) */
    posix_spawn_file_actions_adddup2(&fa, child_end, reading ? 1 : 0);
    for (int i = 0; i < POPEN_SLOTS; i++) {
        FILE *other = __atomic_load_n(&g_popen[i].fp, __ATOMIC_ACQUIRE);
        if (other && fileno(other) >= 0 && fileno(other) != (reading ? 1 : 0))
            posix_spawn_file_actions_addclose(&fa, fileno(other));
    }
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)cmd, NULL};
    pid_t pid;
    int err = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);   /* our hook */
    posix_spawn_file_actions_destroy(&fa);
    close(child_end);
    if (err != 0) {
        close(parent_end);
        errno = err;
        return NULL;
    }
    if (!cloexec)
        fcntl(parent_end, F_SETFD, 0);
    FILE *fp = fdopen(parent_end, reading ? "r" : "w");
    if (!fp) {
        int e = errno;
        close(parent_end);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        errno = e;
        return NULL;
    }
    for (int i = 0; i < POPEN_SLOTS; i++) {
        FILE *none = NULL;
        if (__atomic_compare_exchange_n(&g_popen[i].fp, &none, fp, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            g_popen[i].pid = pid;
            return fp;
        }
    }
    /* more than POPEN_SLOTS at once: pclose() will not find its child;
     * still never an untraced one */
    sbx_warn_process("had more popen() streams open at once than the shim keeps: "
                     "their exit statuses are lost");
    return fp;
}

SBX_HOOK(int, pclose, (FILE *fp))
{
    for (int i = 0; fp && i < POPEN_SLOTS; i++) {
        if (__atomic_load_n(&g_popen[i].fp, __ATOMIC_ACQUIRE) != fp)
            continue;
        pid_t pid = g_popen[i].pid;
        __atomic_store_n(&g_popen[i].fp, NULL, __ATOMIC_RELEASE);
        fclose(fp);
        int status;
        pid_t w;
        while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
            ;
        return w < 0 ? -1 : status;
    }
    return REAL(pclose)(fp);
}
