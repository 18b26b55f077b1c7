/* hook_bodies.h — what every hook does around the real call, shared by the
 * portable hooks (hooks_posix.c) and each system's own (shims/linux,
 * shims/macos).  A hook calls the real function first, keeps errno, and
 * tells shim_core.c what happened.
 *
 * SBX_HOOK(ret, name, params) and REAL(name) come from the system's hook
 * header: an exported symbol and dlsym(RTLD_NEXT) on Linux, a
 * __DATA,__interpose entry and the symbol itself on macOS.  SBX_SELF(name)
 * calls our own hook (not the real function) from inside the shim.
 */
#ifndef SBX_HOOK_BODIES_H
#define SBX_HOOK_BODIES_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "shim.h"
#if defined(__APPLE__)
#include "../macos/hook_darwin.h"
#else
#include "../linux/hook_linux.h"
#endif

#ifndef O_TMPFILE
#define O_TMPFILE 0
#endif

#define KEEP_ERRNO(stmt) do { int sbx_e_ = errno; stmt; errno = sbx_e_; } while (0)

/* The one name both the kernel and the record see.  The kernel copies a
 * path string at some instant during the call and the shim reads it at
 * another; another thread rewriting the string in between would make the
 * record name a file that was never opened.  So a hook copies the string
 * first and hands its private copy to the real call and to the record.
 * A string of PATH_MAX bytes or more goes as it is: the kernel refuses it
 * (ENAMETOOLONG) without opening anything.  `p' must be a variable. */
#define SBX_STABLE_MAX 4096
#define SBX_STABLE(p)                                                          \
    char p##_stable_[SBX_STABLE_MAX];                                          \
    p = sbx_stable_copy(p, p##_stable_)

static inline const char *sbx_stable_copy(const char *p, char *buf)
{
    /* libc declares most path parameters nonnull, so the compiler would
     * drop this test; programs pass NULL all the same (Rust probes statx
     * with one and expects EFAULT): hide where p came from */
    __asm__("" : "+r"(p));
    if (!p)
        return p;
    size_t n = strnlen(p, SBX_STABLE_MAX);
    if (n >= SBX_STABLE_MAX)
        return p;
    memcpy(buf, p, n + 1);
    buf[n] = 0;     /* the terminator we measured, not one written since */
    return buf;
}

/* ---- opens ------------------------------------------------------------------*/
/* One open, one record: an open already reported from inside `call` (a
 * libSystem body opening through another interposed symbol: shim_os.h)
 * is not reported again. */
#define OPEN_BODY(dirfd, path, flags, call)                                    \
    SBX_STABLE(path);                                                          \
    int ex_ = ((flags) & O_CREAT) && !((flags) & O_EXCL)                       \
                  ? sbx_exists_at(dirfd, path) : 0;                            \
    unsigned long seq_ = sbx_os_open_seq();                                    \
    int fd_ = call;                                                            \
    if (!(fd_ >= 0 && sbx_os_open_marked_since(fd_, seq_))) {                  \
        KEEP_ERRNO(sbx_opened(dirfd, path, flags, fd_, ex_));                  \
        sbx_os_open_mark(fd_);                                                 \
    }                                                                          \
    return fd_

/* open's third argument exists only with O_CREAT or O_TMPFILE */
static inline mode_t sbx_mode_of(int flags, va_list ap)
{
    return (flags & O_CREAT) || (O_TMPFILE && (flags & O_TMPFILE) == O_TMPFILE)
               ? (mode_t)va_arg(ap, int) : 0;
}

static inline int sbx_fopen_flags(const char *mode)
{
    int fl;
    switch (mode ? mode[0] : 'r') {
    case 'w': fl = O_WRONLY | O_CREAT | O_TRUNC; break;
    case 'a': fl = O_WRONLY | O_CREAT | O_APPEND; break;
    default: fl = O_RDONLY; break;
    }
    for (const char *m = mode ? mode + 1 : ""; *m && *m != ','; m++) {
        if (*m == '+')
            fl = (fl & ~O_ACCMODE) | O_RDWR;
        else if (*m == 'x')
            fl |= O_EXCL;
    }
    return fl;
}

/* A mode with 'c' makes glibc open through __open_nocancel, which reports
 * the open itself once glibc_internal.c has patched it. */
#define FOPEN_BODY(path, mode, call)                                           \
    SBX_STABLE(path);                                                          \
    int fl_ = sbx_fopen_flags(mode);                                           \
    int ex_ = (fl_ & O_CREAT) && !(fl_ & O_EXCL) ? sbx_exists_at(AT_FDCWD, path) : 0; \
    unsigned long seq_ = sbx_os_open_seq();                                    \
    FILE *f_ = call;                                                           \
    if (!(sbx_open_body_patched && mode && strchr(mode, 'c')) &&              \
        !(f_ && sbx_os_open_marked_since(fileno(f_), seq_)))                   \
        KEEP_ERRNO(sbx_opened(AT_FDCWD, path, fl_, f_ ? fileno(f_) : -1, ex_)); \
    return f_

/* A stream is being closed or reused: settle its fd (hooks_posix.c). */
void sbx_stream_closing(FILE *f);

typedef int (*scan_filter)(const struct dirent *);
typedef int (*scan_cmp)(const struct dirent **, const struct dirent **);

/* ---- path-taking calls --------------------------------------------------------*/
#define PROBE_BODY(dirfd, path, call)                                          \
    SBX_STABLE(path);                                                          \
    int r_ = call;                                                             \
    if ((path) && (path)[0])                                                   \
        KEEP_ERRNO(sbx_path_at(dirfd, path, SBX_OP_PROBE, 1));                    \
    return r_

#define NAME_BODY(dirfd, path, op, call)                                       \
    SBX_STABLE(path);                                                          \
    int r_ = call;                                                             \
    KEEP_ERRNO(sbx_path_at(dirfd, path, op, r_ >= 0));                         \
    return r_
#define MODIFY_BODY(dirfd, path, call) NAME_BODY(dirfd, path, SBX_OP_MODIFY, call)
#define REMOVE_BODY(dirfd, path, call) NAME_BODY(dirfd, path, SBX_OP_REMOVE, call)
#define CREATE_BODY(dirfd, path, call) NAME_BODY(dirfd, path, SBX_OP_CREATE, call)
#define TWO_BODY(od, o, nd, n, op, call)                                       \
    SBX_STABLE(o);                                                             \
    SBX_STABLE(n);                                                             \
    int r_ = call;                                                             \
    KEEP_ERRNO(sbx_path2_at(od, o, nd, n, op, r_ >= 0));                       \
    return r_

/* ---- file descriptors -----------------------------------------------------------*/
#define FD_BODY(type, fd, kind, call)                                          \
    type r_ = call;                                                            \
    if (r_ >= 0)                                                               \
        KEEP_ERRNO(sbx_fd_use(fd, kind));                                      \
    return r_

#define FCNTL_BODY(real)                                                       \
    va_list ap;                                                                \
    va_start(ap, cmd);                                                         \
    void *arg = va_arg(ap, void *);                                            \
    va_end(ap);                                                                \
    int r = real(fd, cmd, arg);                                                \
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))                  \
        KEEP_ERRNO(sbx_fd_dup(fd, r));                                         \
    return r

/* ---- temporary files: libc creates them with its own open() -------------------*/
#define MKSTEMP_BODY(tmpl, extra, call)                                        \
    unsigned long seq_ = sbx_os_open_seq();                                    \
    int fd_ = call;                                                            \
    if (fd_ >= 0 && !sbx_os_open_marked_since(fd_, seq_))                      \
        KEEP_ERRNO(sbx_opened(AT_FDCWD, tmpl, O_RDWR | O_CREAT | O_EXCL | (extra), fd_, 0)); \
    return fd_

/* ---- exec (hooks_posix.c) ----------------------------------------------------------*/
/* exec relative to dirfd with execveat flags (AT_FDCWD and 0: plain execve). */
int sbx_exec_at(int dirfd, const char *path, char *const argv[], char *const envp[],
                int flags);
/* execvp's $PATH search, every candidate reported. */
int sbx_exec_search(const char *file, char *const argv[], char *const envp[]);

#endif
