/* hooks_posix.c — the intercepted libc entry points that Linux (glibc) and
 * macOS (libSystem) share, with one body each.  Each system adds its own
 * in shims/linux/hooks_linux.c and shims/macos/hooks_darwin.c; the list of
 * every hook and where it exists is shims/core/hooks.def.
 *
 * glibc calls its own internal entry points (fopen → __open, fread →
 * __read), which no preload library can see: those are covered by hooking
 * the outer call (fopen, opendir, scandir, fclose) and by the file offset
 * check in shim_core.c's settle().  libSystem's internal calls cross image
 * boundaries (libsystem_c → libsystem_kernel) and are interposed by dyld.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>
#include <utime.h>
#if defined(__APPLE__)
#include <sys/mount.h>      /* statfs */
#else
#include <sys/statfs.h>
#endif

#include "hook_bodies.h"

/* ---- open family ------------------------------------------------------------*/
SBX_HOOK(int, open, (const char *path, int flags, ...))
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = sbx_mode_of(flags, ap);
    va_end(ap);
    OPEN_BODY(AT_FDCWD, path, flags, REAL(open)(path, flags, m));
}
SBX_HOOK(int, openat, (int dirfd, const char *path, int flags, ...))
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = sbx_mode_of(flags, ap);
    va_end(ap);
    OPEN_BODY(dirfd, path, flags, REAL(openat)(dirfd, path, flags, m));
}
SBX_HOOK(int, creat, (const char *path, mode_t mode))
{
    OPEN_BODY(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, REAL(creat)(path, mode));
}

/* ---- stdio and dirent openers -------------------------------------------------*/
SBX_HOOK(FILE *, fopen, (const char *path, const char *mode))
{
    FOPEN_BODY(path, mode, REAL(fopen)(path, mode));
}

/* Buffered output not yet flushed is a write the offset cannot show yet
 * (the FILE layout is the system's: shim_os.h). */
void sbx_stream_closing(FILE *f)
{
    int fd = f ? fileno(f) : -1;
    if (fd < 0 || !sbx_on())
        return;
    if (sbx_os_stream_unflushed(f))
        sbx_fd_use(fd, SBX_WRITE);
    sbx_fd_closing(fd);
}

SBX_HOOK(FILE *, freopen, (const char *path, const char *mode, FILE *stream))
{
    if (!path)
        return REAL(freopen)(path, mode, stream);
    KEEP_ERRNO(sbx_stream_closing(stream));
    FOPEN_BODY(path, mode, REAL(freopen)(path, mode, stream));
}
SBX_HOOK(int, fclose, (FILE *stream))
{
    KEEP_ERRNO(sbx_stream_closing(stream));
    return REAL(fclose)(stream);
}
SBX_HOOK(DIR *, opendir, (const char *name))
{
    unsigned long seq = sbx_os_open_seq();
    DIR *d = REAL(opendir)(name);
    /* else libc's own open reported it (glibc patched; libsystem_c's
     * open$NOCANCEL: shim_os.h) */
    if (!sbx_open_body_patched && !(d && sbx_os_open_marked_since(dirfd(d), seq)))
        KEEP_ERRNO(sbx_opened(AT_FDCWD, name, O_RDONLY | O_DIRECTORY, d ? dirfd(d) : -1, 0));
    return d;
}
SBX_HOOK(DIR *, fdopendir, (int fd))
{
    DIR *d = REAL(fdopendir)(fd);
    if (d)
        KEEP_ERRNO(sbx_fd_mark_dir(fd));
    return d;
}
SBX_HOOK(struct dirent *, readdir, (DIR *d))
{
    struct dirent *e = REAL(readdir)(d);
    KEEP_ERRNO(sbx_fd_use(dirfd(d), SBX_ENUM));
    return e;
}
SBX_HOOK(int, readdir_r, (DIR *d, struct dirent *entry, struct dirent **result))
{
    int r = REAL(readdir_r)(d, entry, result);
    KEEP_ERRNO(sbx_fd_use(dirfd(d), SBX_ENUM));
    return r;
}
SBX_HOOK(int, closedir, (DIR *d))
{
    if (d)
        KEEP_ERRNO(sbx_fd_closing(dirfd(d)));
    return REAL(closedir)(d);
}
SBX_HOOK(int, scandir, (const char *dir, struct dirent ***list, scan_filter f, scan_cmp c))
{
    int r = REAL(scandir)(dir, list, f, c);
    KEEP_ERRNO(sbx_path(dir, SBX_OP_LIST, r >= 0));
    return r;
}

/* ---- metadata: probes ------------------------------------------------------------*/
SBX_HOOK(int, stat, (const char *p, struct stat *b)) { PROBE_BODY(AT_FDCWD, p, REAL(stat)(p, b)); }
SBX_HOOK(int, lstat, (const char *p, struct stat *b)) { PROBE_BODY(AT_FDCWD, p, REAL(lstat)(p, b)); }
SBX_HOOK(int, fstatat, (int d, const char *p, struct stat *b, int fl))
{
    PROBE_BODY(d, p, REAL(fstatat)(d, p, b, fl));
}
SBX_HOOK(int, access, (const char *p, int m)) { PROBE_BODY(AT_FDCWD, p, REAL(access)(p, m)); }
SBX_HOOK(int, faccessat, (int d, const char *p, int m, int fl)) { PROBE_BODY(d, p, REAL(faccessat)(d, p, m, fl)); }
SBX_HOOK(char *, realpath, (const char *p, char *out))
{
    char *r = REAL(realpath)(p, out);
    KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, 1));
    return r;
}
SBX_HOOK(ssize_t, readlink, (const char *p, char *buf, size_t n))
{
    ssize_t r = REAL(readlink)(p, buf, n);
    KEEP_ERRNO(sbx_path(p, SBX_OP_READLINK, r >= 0));
    return r;
}
SBX_HOOK(ssize_t, readlinkat, (int d, const char *p, char *buf, size_t n))
{
    ssize_t r = REAL(readlinkat)(d, p, buf, n);
    KEEP_ERRNO(sbx_path_at(d, p, SBX_OP_READLINK, r >= 0));
    return r;
}
SBX_HOOK(int, chdir, (const char *p))
{
    /* named against the cwd it leaves, so resolved before the call */
    char abs[SBX_PATH_MAX];
    long n = sbx_on() && p ? sbx_resolve(AT_FDCWD, p, abs, sizeof abs) : -1;
    int r = REAL(chdir)(p);
    if (n >= 0)
        KEEP_ERRNO(sbx_path(abs, SBX_OP_PROBE, r >= 0));
    else if (n == SBX_RESOLVE_TOO_LONG)
        /* deeper than a name fits here: the new cwd is the directory (on
         * failure the old one is still the base) */
        KEEP_ERRNO(sbx_path(r >= 0 ? "." : p, SBX_OP_PROBE, r >= 0));
    return r;
}

/* chroot: the directory is looked at, and absolute names start there now */
SBX_HOOK(int, chroot, (const char *p))
{
    char abs[SBX_PATH_MAX];
    int known = sbx_on() && p && sbx_resolve(AT_FDCWD, p, abs, sizeof abs) >= 0;
    int r = REAL(chroot)(p);
    if (known)
        KEEP_ERRNO({
            sbx_path(abs, SBX_OP_PROBE, r >= 0);
            if (r == 0)
                sbx_root_changed(abs);
        });
    return r;
}

/* ---- names created, removed, changed: writes ---------------------------------------*/
SBX_HOOK(int, rename, (const char *o, const char *n))
{
    TWO_BODY(AT_FDCWD, o, AT_FDCWD, n, SBX_OP_RENAME, REAL(rename)(o, n));
}
SBX_HOOK(int, renameat, (int od, const char *o, int nd, const char *n))
{
    TWO_BODY(od, o, nd, n, SBX_OP_RENAME, REAL(renameat)(od, o, nd, n));
}
SBX_HOOK(int, link, (const char *o, const char *n))
{
    TWO_BODY(AT_FDCWD, o, AT_FDCWD, n, SBX_OP_LINK, REAL(link)(o, n));
}
SBX_HOOK(int, linkat, (int od, const char *o, int nd, const char *n, int fl))
{
    TWO_BODY(od, o, nd, n, SBX_OP_LINK, REAL(linkat)(od, o, nd, n, fl));
}
SBX_HOOK(int, symlink, (const char *t, const char *n))
{
    CREATE_BODY(AT_FDCWD, n, REAL(symlink)(t, n));
}
SBX_HOOK(int, symlinkat, (const char *t, int d, const char *n))
{
    CREATE_BODY(d, n, REAL(symlinkat)(t, d, n));
}
SBX_HOOK(int, unlink, (const char *p)) { REMOVE_BODY(AT_FDCWD, p, REAL(unlink)(p)); }
SBX_HOOK(int, unlinkat, (int d, const char *p, int fl)) { REMOVE_BODY(d, p, REAL(unlinkat)(d, p, fl)); }
SBX_HOOK(int, rmdir, (const char *p)) { REMOVE_BODY(AT_FDCWD, p, REAL(rmdir)(p)); }
SBX_HOOK(int, remove, (const char *p)) { REMOVE_BODY(AT_FDCWD, p, REAL(remove)(p)); }
SBX_HOOK(int, mkdir, (const char *p, mode_t m)) { CREATE_BODY(AT_FDCWD, p, REAL(mkdir)(p, m)); }
SBX_HOOK(int, mkdirat, (int d, const char *p, mode_t m)) { CREATE_BODY(d, p, REAL(mkdirat)(d, p, m)); }
SBX_HOOK(int, mkfifo, (const char *p, mode_t m)) { CREATE_BODY(AT_FDCWD, p, REAL(mkfifo)(p, m)); }
SBX_HOOK(int, mknod, (const char *p, mode_t m, dev_t dv)) { CREATE_BODY(AT_FDCWD, p, REAL(mknod)(p, m, dv)); }
SBX_HOOK(int, truncate, (const char *p, off_t n)) { MODIFY_BODY(AT_FDCWD, p, REAL(truncate)(p, n)); }
SBX_HOOK(int, chmod, (const char *p, mode_t m)) { MODIFY_BODY(AT_FDCWD, p, REAL(chmod)(p, m)); }
SBX_HOOK(int, lchmod, (const char *p, mode_t m)) { MODIFY_BODY(AT_FDCWD, p, REAL(lchmod)(p, m)); }
SBX_HOOK(int, fchmodat, (int d, const char *p, mode_t m, int fl)) { MODIFY_BODY(d, p, REAL(fchmodat)(d, p, m, fl)); }
SBX_HOOK(int, chown, (const char *p, uid_t u, gid_t g)) { MODIFY_BODY(AT_FDCWD, p, REAL(chown)(p, u, g)); }
SBX_HOOK(int, lchown, (const char *p, uid_t u, gid_t g)) { MODIFY_BODY(AT_FDCWD, p, REAL(lchown)(p, u, g)); }
SBX_HOOK(int, fchownat, (int d, const char *p, uid_t u, gid_t g, int fl))
{
    MODIFY_BODY(d, p, REAL(fchownat)(d, p, u, g, fl));
}
SBX_HOOK(int, utime, (const char *p, const struct utimbuf *t)) { MODIFY_BODY(AT_FDCWD, p, REAL(utime)(p, t)); }
SBX_HOOK(int, utimes, (const char *p, const struct timeval t[2])) { MODIFY_BODY(AT_FDCWD, p, REAL(utimes)(p, t)); }
SBX_HOOK(int, lutimes, (const char *p, const struct timeval t[2])) { MODIFY_BODY(AT_FDCWD, p, REAL(lutimes)(p, t)); }
SBX_HOOK(int, utimensat, (int d, const char *p, const struct timespec t[2], int fl))
{
    if (!p) {                        /* Linux: NULL path acts on the fd */
        int r = REAL(utimensat)(d, p, t, fl);
        if (r >= 0)
            KEEP_ERRNO(sbx_fd_use(d, SBX_WRITE));
        return r;
    }
    MODIFY_BODY(d, p, REAL(utimensat)(d, p, t, fl));
}

/* ---- file-system statistics ----------------------------------------------------------*/
SBX_HOOK(int, statfs, (const char *p, struct statfs *b)) { PROBE_BODY(AT_FDCWD, p, REAL(statfs)(p, b)); }
SBX_HOOK(int, statvfs, (const char *p, struct statvfs *b)) { PROBE_BODY(AT_FDCWD, p, REAL(statvfs)(p, b)); }

/* ---- file descriptors: content read or written ---------------------------------------*/
SBX_HOOK(ssize_t, read, (int fd, void *b, size_t n)) { FD_BODY(ssize_t, fd, SBX_READ, REAL(read)(fd, b, n)); }
SBX_HOOK(ssize_t, pread, (int fd, void *b, size_t n, off_t o)) { FD_BODY(ssize_t, fd, SBX_READ, REAL(pread)(fd, b, n, o)); }
SBX_HOOK(ssize_t, readv, (int fd, const struct iovec *v, int n)) { FD_BODY(ssize_t, fd, SBX_READ, REAL(readv)(fd, v, n)); }
SBX_HOOK(ssize_t, preadv, (int fd, const struct iovec *v, int n, off_t o)) { FD_BODY(ssize_t, fd, SBX_READ, REAL(preadv)(fd, v, n, o)); }
SBX_HOOK(ssize_t, write, (int fd, const void *b, size_t n)) { FD_BODY(ssize_t, fd, SBX_WRITE, REAL(write)(fd, b, n)); }
SBX_HOOK(ssize_t, pwrite, (int fd, const void *b, size_t n, off_t o)) { FD_BODY(ssize_t, fd, SBX_WRITE, REAL(pwrite)(fd, b, n, o)); }
SBX_HOOK(ssize_t, writev, (int fd, const struct iovec *v, int n)) { FD_BODY(ssize_t, fd, SBX_WRITE, REAL(writev)(fd, v, n)); }
SBX_HOOK(ssize_t, pwritev, (int fd, const struct iovec *v, int n, off_t o)) { FD_BODY(ssize_t, fd, SBX_WRITE, REAL(pwritev)(fd, v, n, o)); }
SBX_HOOK(int, ftruncate, (int fd, off_t n)) { FD_BODY(int, fd, SBX_WRITE, REAL(ftruncate)(fd, n)); }
SBX_HOOK(int, fchmod, (int fd, mode_t m)) { FD_BODY(int, fd, SBX_WRITE, REAL(fchmod)(fd, m)); }
SBX_HOOK(int, fchown, (int fd, uid_t u, gid_t g)) { FD_BODY(int, fd, SBX_WRITE, REAL(fchown)(fd, u, g)); }
SBX_HOOK(int, futimens, (int fd, const struct timespec t[2])) { FD_BODY(int, fd, SBX_WRITE, REAL(futimens)(fd, t)); }
SBX_HOOK(void *, mmap, (void *a, size_t n, int prot, int fl, int fd, off_t o))
{
    void *r = REAL(mmap)(a, n, prot, fl, fd, o);
    if (!sbx_mmap_body_patched)         /* else the body reported it */
        KEEP_ERRNO(sbx_mapped(r, prot, fl, fd));
    return r;
}

/* ---- fd table upkeep ------------------------------------------------------------------*/
SBX_HOOK(int, close, (int fd))
{
    KEEP_ERRNO(sbx_fd_closing(fd));
    return REAL(close)(fd);
}
SBX_HOOK(int, dup, (int fd))
{
    int r = REAL(dup)(fd);
    KEEP_ERRNO(sbx_fd_dup(fd, r));
    return r;
}
SBX_HOOK(int, dup2, (int fd, int nfd))
{
    if (fd != nfd)
        KEEP_ERRNO(sbx_fd_closing(nfd));
    int r = REAL(dup2)(fd, nfd);
    if (r >= 0 && fd != nfd)
        KEEP_ERRNO(sbx_fd_dup(fd, r));
    return r;
}
SBX_HOOK(int, fcntl, (int fd, int cmd, ...)) { FCNTL_BODY(REAL(fcntl)); }

/* ---- processes --------------------------------------------------------------------------*/
SBX_HOOK(pid_t, fork, (void))
{
    pid_t r = REAL(fork)();
    if (r == 0)
        sbx_forked_child();
    else if (r > 0)
        KEEP_ERRNO(sbx_forked_parent(r));
    return r;
}
SBX_HOOK(void, _exit, (int status))
{
    sbx_flush_fds();
    sbx_exiting(status);
    REAL(_exit)(status);
    __builtin_unreachable();
}
SBX_HOOK(void, _Exit, (int status))
{
    sbx_flush_fds();
    sbx_exiting(status);
    REAL(_Exit)(status);
    __builtin_unreachable();
}

static size_t env_count(char *const envp[])
{
    size_t n = 0;
    while (envp && envp[n])
        n++;
    return n;
}

/* The environment a child gets, with our variables restored: a VLA in the
 * caller's frame (no malloc: this runs in vfork children). */
#define HANDOFF_ENV(env, target, out)                                          \
    size_t nh_ = env_count(env) + 4;                                           \
    char *hvec_[nh_];                                                          \
    char hstore_[SBX_PATH_MAX + 32 + sbx_loader_env_bytes(env)];               \
    char *const *out = sbx_handoff_env(env, target, hvec_, nh_, hstore_, sizeof hstore_)

#define CHILD_ENV(envp, out)                                                   \
    size_t ne_ = env_count(envp) + 6;   /* log, shim, handoff, audit, preload, NULL */ \
    char *vec_[ne_];                                                           \
    char store_[2 * SBX_PATH_MAX + 16];                                        \
    char *const *out = sbx_exec_env(envp, vec_, ne_, store_, sizeof store_)

SBX_HOOK(int, execve, (const char *path, char *const argv[], char *const envp[]))
{
    return sbx_exec_at(AT_FDCWD, path, argv, envp, 0);
}

/* A declared breakaway's environment: without the shim (see shim.h). */
#define BREAKAWAY_ENV(envp, out)                                               \
    size_t nb_ = env_count(envp) + 1;                                          \
    char *bvec_[nb_];                                                          \
    char bstore_[2 * SBX_PATH_MAX + 64];                                       \
    char *const *out = sbx_breakaway_env(envp, bvec_, nb_, bstore_, sizeof bstore_)

int sbx_exec_at(int dirfd, const char *path, char *const argv[], char *const envp[],
                int flags)
{
    if (sbx_breakaway(dirfd, path, argv)) {
        BREAKAWAY_ENV(envp, benv);
        sbx_flush_fds();
        sbx_breakaway_left(dirfd, path, argv, 0);
        int r = dirfd == AT_FDCWD && flags == 0
                    ? REAL(execve)(path, argv, benv)
                    : sbx_os_execveat(dirfd, path, argv, benv, flags);
        KEEP_ERRNO(sbx_exec_failed(dirfd, path, errno));
        return r;
    }
    if (sbx_nested_run(envp)) {
        sbx_flush_fds();
        sbx_breakaway_left(dirfd, path, argv, 0);
        int r = dirfd == AT_FDCWD && flags == 0
                    ? REAL(execve)(path, argv, envp)
                    : sbx_os_execveat(dirfd, path, argv, envp, flags);
        KEEP_ERRNO(sbx_exec_failed(dirfd, path, errno));
        return r;
    }
    CHILD_ENV(envp, env);
    sbx_flush_fds();
    char target[SBX_PATH_MAX];
    const char *launcher = sbx_handoff_target(dirfd, path, target, sizeof target);
    sbx_exec_before(dirfd, path, argv, 0, launcher != NULL);
    if (launcher) {
        HANDOFF_ENV(env, target, henv);
        REAL(execve)(launcher, argv, henv);
        /* no launcher: run it unobserved; the reader names the process */
    }
    int r = dirfd == AT_FDCWD && flags == 0
                ? REAL(execve)(path, argv, env)
                : sbx_os_execveat(dirfd, path, argv, env, flags);
    KEEP_ERRNO(sbx_exec_failed(dirfd, path, errno));
    return r;
}

SBX_HOOK(int, execv, (const char *path, char *const argv[]))
{
    return sbx_exec_at(AT_FDCWD, path, argv, environ, 0);
}

/* execvp's $PATH search done here, so that every candidate tried is
 * reported as a probe (the kernel sees each failed execve). */
int sbx_exec_search(const char *file, char *const argv[], char *const envp[])
{
    if (!file || !*file) {
        errno = ENOENT;
        return -1;
    }
    if (strchr(file, '/'))
        return sbx_exec_at(AT_FDCWD, file, argv, envp, 0);
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    size_t fl = strlen(file);
    int eacces = 0;
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        char cand[SBX_PATH_MAX];
        if (dl + 1 + fl + 1 <= sizeof cand) {
            memcpy(cand, dl ? p : ".", dl ? dl : 1);
            size_t at = dl ? dl : 1;
            cand[at++] = '/';
            memcpy(cand + at, file, fl + 1);
            sbx_exec_at(AT_FDCWD, cand, argv, envp, 0);
            switch (errno) {
            case EACCES:
                eacces = 1;
                /* fall through */
            case ENOENT: case ENOTDIR: case ESTALE: case ENODEV: case ETIMEDOUT:
                break;
            case ENOEXEC: {
                /* POSIX: run it as a shell script */
                size_t argc = 0;
                while (argv[argc])
                    argc++;
                char *sh[argc + 2];
                sh[0] = (char *)"/bin/sh";
                sh[1] = cand;
                for (size_t i = 1; i <= argc; i++)
                    sh[i + 1] = argv[i];
                sbx_exec_at(AT_FDCWD, "/bin/sh", sh, envp, 0);
                return -1;
            }
            default:
                return -1;
            }
        }
        if (!end)
            break;
        p = end;
    }
    errno = eacces ? EACCES : ENOENT;
    return -1;
}

SBX_HOOK(int, execvp, (const char *file, char *const argv[]))
{
    return sbx_exec_search(file, argv, environ);
}

/* execl*: gather the variadic list on the stack. */
#define ARGS_FROM_VA(arg0, last, argv, envp_out)                               \
    va_list ap;                                                                \
    size_t n_ = 1;                                                             \
    va_start(ap, arg0);                                                        \
    while (va_arg(ap, char *))                                                 \
        n_++;                                                                  \
    va_end(ap);                                                                \
    char *argv[n_ + 1];                                                        \
    argv[0] = (char *)(arg0);                                                  \
    va_start(ap, arg0);                                                        \
    for (size_t i_ = 1; i_ <= n_; i_++)                                        \
        argv[i_] = va_arg(ap, char *);                                         \
    char *const *envp_out = last ? va_arg(ap, char *const *) : environ;        \
    va_end(ap)

SBX_HOOK(int, execl, (const char *path, const char *arg, ...))
{
    ARGS_FROM_VA(arg, 0, av, ev);
    return sbx_exec_at(AT_FDCWD, path, av, ev, 0);
}
SBX_HOOK(int, execle, (const char *path, const char *arg, ...))
{
    ARGS_FROM_VA(arg, 1, av, ev);
    return sbx_exec_at(AT_FDCWD, path, av, ev, 0);
}
SBX_HOOK(int, execlp, (const char *file, const char *arg, ...))
{
    ARGS_FROM_VA(arg, 0, av, ev);
    return sbx_exec_search(file, av, ev);
}

/* posix_spawn runs its child inside libc (clone + internal exec), where no
 * hook runs: restore the environment before, report the exec after. */
#ifdef POSIX_SPAWN_SETEXEC
/* macOS: POSIX_SPAWN_SETEXEC makes posix_spawn an exec of this process
 * that returns only on failure: account it as one, before the image goes. */
static int spawn_is_exec(const posix_spawnattr_t *at)
{
    short fl = 0;
    return at && posix_spawnattr_getflags(at, &fl) == 0 && (fl & POSIX_SPAWN_SETEXEC);
}
#endif

static int spawn_breakaway(pid_t *pid, const char *path, const char *file,
                           const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
                           char *const argv[], char *const envp[]);
static void spawn_opens_report(const posix_spawn_file_actions_t *fa, int child);

SBX_HOOK(int, posix_spawn, (pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                            const posix_spawnattr_t *at, char *const argv[], char *const envp[]))
{
    if (sbx_breakaway(AT_FDCWD, path, argv))
        return spawn_breakaway(pid, path, NULL, fa, at, argv, envp);
    CHILD_ENV(envp, env);
#ifdef POSIX_SPAWN_SETEXEC
    if (spawn_is_exec(at)) {
        sbx_flush_fds();
        sbx_exec_before(AT_FDCWD, path, argv, 0, 0);
        int e = REAL(posix_spawn)(pid, path, fa, at, argv, env);
        KEEP_ERRNO(sbx_exec_failed(AT_FDCWD, path, e));
        return e;
    }
#endif
    pid_t child = 0;
    char target[SBX_PATH_MAX];
    const char *launcher = sbx_handoff_target(AT_FDCWD, path, target, sizeof target);
    int r;
    if (launcher) {
        HANDOFF_ENV(env, target, henv);
        sbx_spawning(1);
        r = REAL(posix_spawn)(&child, launcher, fa, at, argv, henv);
        sbx_spawning(0);
    } else {
        sbx_spawning(1);
        r = REAL(posix_spawn)(&child, path, fa, at, argv, env);
        sbx_spawning(0);
    }
    if (pid)
        *pid = child;
    KEEP_ERRNO(spawn_opens_report(fa, r == 0 ? child : 0));
    KEEP_ERRNO(r == 0 ? sbx_exec_before(AT_FDCWD, path, argv, child, launcher != NULL)
                      : sbx_path(path, SBX_OP_EXEC, 0));
    return r;
}
SBX_HOOK(int, posix_spawnp, (pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                             const posix_spawnattr_t *at, char *const argv[], char *const envp[]))
{
    CHILD_ENV(envp, env);
    /* Find what libc's search will run.  The misses are probes of the
     * child (libc searches there, by failed execs): reported for it once
     * the spawn says who it is, for this process if there is no child. */
    char found[SBX_PATH_MAX], static_target[SBX_PATH_MAX];
    found[0] = '\0';
    const char *search = NULL;
    int misses = 0;
    if (file && strchr(file, '/')) {
        snprintf(found, sizeof found, "%s", file);
    } else if (file && *file && sbx_on()) {
        const char *path = getenv("PATH");
        search = path ? path : "/bin:/usr/bin";
        for (const char *p = search;; p++) {
            const char *end = strchr(p, ':');
            int dl = end ? (int)(end - p) : (int)strlen(p);
            char cand[SBX_PATH_MAX];
            snprintf(cand, sizeof cand, "%.*s/%s", dl ? dl : 1, dl ? p : ".", file);
            if (sbx_os_faccessat(AT_FDCWD, cand, X_OK) == 0) {
                memcpy(found, cand, sizeof cand);
                break;
            }
            misses++;
            if (!end)
                break;
            p = end;
        }
    }
    /* the first `n` candidates of the search, as probes of `child` (this
     * process's own when there is none) */
#define SPAWN_MISSES(child, n)                                                      \
    do {                                                                            \
        const char *p_ = search;                                                    \
        for (int i_ = 0; p_ && i_ < (n); i_++, p_++) {                              \
            const char *end_ = strchr(p_, ':');                                     \
            int dl_ = end_ ? (int)(end_ - p_) : (int)strlen(p_);                    \
            char cand_[SBX_PATH_MAX];                                               \
            snprintf(cand_, sizeof cand_, "%.*s/%s", dl_ ? dl_ : 1, dl_ ? p_ : ".", file); \
            if ((child) > 0)                                                        \
                sbx_child_path((child), cand_, SBX_OP_EXEC, 0);                     \
            else                                                                    \
                sbx_path(cand_, SBX_OP_EXEC, 0);                                    \
            if (!end_)                                                              \
                break;                                                              \
            p_ = end_;                                                              \
        }                                                                           \
    } while (0)
    if (sbx_breakaway(AT_FDCWD, found[0] ? found : file, argv)) {
        SPAWN_MISSES(0, misses);
        return spawn_breakaway(pid, found[0] ? found : file, file, fa, at, argv, envp);
    }
    if (found[0] && sbx_on()) {
        char abs[SBX_PATH_MAX];
        if (sbx_resolve(AT_FDCWD, found, abs, sizeof abs) >= 0 &&
            sbx_handoff_target(AT_FDCWD, abs, static_target, sizeof static_target)) {
            SPAWN_MISSES(0, misses);
            return SBX_SELF(posix_spawn)(pid, abs, fa, at, argv, envp);   /* hands off */
        }
    }
#ifdef POSIX_SPAWN_SETEXEC
    if (spawn_is_exec(at)) {
        SPAWN_MISSES(0, misses);       /* an exec of this process */
        sbx_flush_fds();
        if (found[0])
            sbx_exec_before(AT_FDCWD, found, argv, 0, 0);
        int e = REAL(posix_spawnp)(pid, file, fa, at, argv, env);
        if (found[0])
            KEEP_ERRNO(sbx_exec_failed(AT_FDCWD, found, e));
        return e;
    }
#endif
    pid_t child = 0;
    sbx_spawning(1);
    int r = REAL(posix_spawnp)(&child, file, fa, at, argv, env);
    sbx_spawning(0);
    if (pid)
        *pid = child;
    KEEP_ERRNO(SPAWN_MISSES(r == 0 ? child : 0, misses));
    KEEP_ERRNO(spawn_opens_report(fa, r == 0 ? child : 0));
    if (found[0])
        KEEP_ERRNO(r == 0 ? sbx_exec_before(AT_FDCWD, found, argv, child, 0)
                          : sbx_path(found, SBX_OP_EXEC, 0));
    return r;
#undef SPAWN_MISSES
}

/* A declared breakaway started by posix_spawn(p): without the shim, and
 * reported with the child's pid (SETEXEC: as an exec of this process). */
static int spawn_breakaway(pid_t *pid, const char *path, const char *file,
                           const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
                           char *const argv[], char *const envp[])
{
    BREAKAWAY_ENV(envp, benv);
    pid_t child = 0;
#ifdef POSIX_SPAWN_SETEXEC
    if (spawn_is_exec(at)) {
        sbx_flush_fds();
        sbx_breakaway_left(AT_FDCWD, path, argv, 0);
        int e = file ? REAL(posix_spawnp)(pid, file, fa, at, argv, benv)
                     : REAL(posix_spawn)(pid, path, fa, at, argv, benv);
        KEEP_ERRNO(sbx_exec_failed(AT_FDCWD, path, e));
        return e;
    }
#endif
    sbx_spawning(1);
    int r = file ? REAL(posix_spawnp)(&child, file, fa, at, argv, benv)
                 : REAL(posix_spawn)(&child, path, fa, at, argv, benv);
    sbx_spawning(0);
    KEEP_ERRNO(spawn_opens_report(fa, 0));    /* before the exec that left: the run's */
    if (pid)
        *pid = child;
    KEEP_ERRNO(r == 0 ? sbx_breakaway_left(AT_FDCWD, path, argv, child)
                      : sbx_path(path, SBX_OP_EXEC, 0));
    return r;
}

/* A spawn file action opens in the child, inside libc, before its exec:
 * the child's access (docs/semantics.md, "Who did what").  On glibc the
 * hook keeps each open action (its name resolved now, against the current
 * directory, as the child will resolve it) under its place in the action
 * list, which glibc's public fields give, and posix_spawn reports the
 * actions of its list for the child once it knows the pid.  A kept action
 * pushed out by newer ones that no spawn used, and every action where the
 * list cannot be read (macOS), is reported for this process, as the name
 * was given. */
#if defined(__GLIBC__)
#define SPAWN_OPENS 8
struct spawn_open {
    int state;                  /* 0 free, 1 being written, 2 kept */
    int spawned;                /* a spawn reported it for its child */
    const void *fa, *actions;
    int index;
    unsigned cats;
    char path[SBX_PATH_MAX];
};
static struct spawn_open g_spawn_opens[SPAWN_OPENS];
static unsigned g_spawn_next;

static int spawn_open_keep(const posix_spawn_file_actions_t *fa, const char *path,
                           unsigned cats)
{
    char p[SBX_PATH_MAX];
    if (sbx_resolve(AT_FDCWD, path, p, sizeof p) < 0)
        return 0;
    int index = fa->__used - 1;
    struct spawn_open *slot = NULL;
    for (int i = 0; i < SPAWN_OPENS && !slot; i++) {
        struct spawn_open *o = &g_spawn_opens[i];
        int kept = 2;
        if (o->fa == fa && o->actions == fa->__actions && o->index == index &&
            __atomic_compare_exchange_n(&o->state, &kept, 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            slot = o;           /* the same place of a list made again */
    }
    for (int i = 0; i < SPAWN_OPENS && !slot; i++) {
        int free_ = 0;
        if (__atomic_compare_exchange_n(&g_spawn_opens[i].state, &free_, 1, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            slot = &g_spawn_opens[i];
    }
    if (!slot) {
        /* full: the oldest goes, reported for this process unless a spawn
         * already reported it */
        struct spawn_open *o = &g_spawn_opens[__atomic_fetch_add(&g_spawn_next, 1,
                                                                 __ATOMIC_RELAXED) % SPAWN_OPENS];
        int kept = 2;
        if (!__atomic_compare_exchange_n(&o->state, &kept, 1, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            return 0;
        if (!o->spawned)
            sbx_path_cats_at(AT_FDCWD, o->path, o->cats);
        slot = o;
    }
    slot->fa = fa;
    slot->actions = fa->__actions;
    slot->index = index;
    slot->cats = cats;
    slot->spawned = 0;
    memcpy(slot->path, p, strlen(p) + 1);
    __atomic_store_n(&slot->state, 2, __ATOMIC_RELEASE);
    return 1;
}

/* The kept opens of list `fa`: the spawned `child`'s; this process's when
 * the spawn failed (child 0: the child may have opened before its exec
 * failed, and its pid is not told). */
static void spawn_opens_report(const posix_spawn_file_actions_t *fa, int child)
{
    if (!fa || !sbx_on())
        return;
    for (int i = 0; i < SPAWN_OPENS; i++) {
        struct spawn_open *o = &g_spawn_opens[i];
        if (__atomic_load_n(&o->state, __ATOMIC_ACQUIRE) != 2 || o->fa != fa ||
            o->actions != fa->__actions || o->index >= fa->__used)
            continue;
        if (child > 0)
            sbx_child_path_cats(child, o->path, o->cats);
        else
            sbx_path_cats_at(AT_FDCWD, o->path, o->cats);
        o->spawned = 1;
    }
}
#else
static int spawn_open_keep(const posix_spawn_file_actions_t *fa, const char *path,
                           unsigned cats)
{
    (void)fa, (void)path, (void)cats;
    return 0;
}
static void spawn_opens_report(const posix_spawn_file_actions_t *fa, int child)
{
    (void)fa, (void)child;
}
#endif

SBX_HOOK(int, posix_spawn_file_actions_addopen, (posix_spawn_file_actions_t *fa, int fd,
                                                 const char *path, int flags, mode_t mode))
{
    int r = REAL(posix_spawn_file_actions_addopen)(fa, fd, path, flags, mode);
    if (r == 0 && sbx_on())
        KEEP_ERRNO({
            int ex = (flags & O_CREAT) ? sbx_exists_at(AT_FDCWD, path) : 1;
            int used;               /* (one declaration each: this is a macro argument) */
            int tracked;
            unsigned now = sbx_access_open(sbx_os_open_intent(flags), ex == 0,
                                           &used, &tracked);
            /* what the child then does with the fd is its own business */
            if (!spawn_open_keep(fa, path, now ? now : SBX_PROBE))
                sbx_path_cats_at(AT_FDCWD, path, now ? now : SBX_PROBE);
        });
    return r;
}
SBX_HOOK(void *, dlopen, (const char *file, int mode))
{
    void *h = REAL(dlopen)(file, mode);
    if (h && file)
        KEEP_ERRNO(sbx_loaded_all());
    else if (file && strchr(file, '/') && sbx_exists_at(AT_FDCWD, file) == 0)
        /* a name with a slash is opened as it is, no search: absent, a probe */
        KEEP_ERRNO(sbx_path_cats_at(AT_FDCWD, file, SBX_PROBE));
    return h;
}

/* ---- temporary files: libc creates them with its own open() ---------------------------*/
SBX_HOOK(int, mkstemp, (char *t)) { MKSTEMP_BODY(t, 0, REAL(mkstemp)(t)); }
SBX_HOOK(int, mkostemp, (char *t, int fl)) { MKSTEMP_BODY(t, fl, REAL(mkostemp)(t, fl)); }
SBX_HOOK(int, mkstemps, (char *t, int sl)) { MKSTEMP_BODY(t, 0, REAL(mkstemps)(t, sl)); }
SBX_HOOK(int, mkostemps, (char *t, int sl, int fl)) { MKSTEMP_BODY(t, fl, REAL(mkostemps)(t, sl, fl)); }
SBX_HOOK(char *, mkdtemp, (char *t))
{
    char *r = REAL(mkdtemp)(t);
    if (r)
        KEEP_ERRNO(sbx_path(t, SBX_OP_CREATE, 1));
    return r;
}
