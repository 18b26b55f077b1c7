/* hooks_darwin.c — the libSystem entry points only macOS has (the shared
 * ones are in shims/core/hooks_posix.c): extended attributes (with
 * position and options), __getdirentries64 (the listing call under
 * readdir), getattrlist (how Foundation, Xcode's tools and many build
 * tools stat), getattrlistbulk (how Foundation's enumerators list),
 * clonefile, copyfile and removefile (APFS copies, cp -c, Finder),
 * renamex_np, the opens by id and with data protection; the other
 * symbols libSystem exports the shared entry points under ($NOCANCEL,
 * $DARWIN_EXTSN, the 32-bit-inode names: darwin_decls.h); and the
 * constructor that says hello.
 */
#include <copyfile.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/attr.h>
#include <sys/clonefile.h>
#include "darwin_decls.h"
#include <unistd.h>

#include "../core/hook_bodies.h"

/* ---- extended attributes ------------------------------------------------------*/
SBX_HOOK(ssize_t, getxattr, (const char *p, const char *n, void *v, size_t s, u_int32_t pos,
                             int opt))
{
    ssize_t r = REAL(getxattr)(p, n, v, s, pos, opt);
    KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, r >= 0));
    return r;
}
SBX_HOOK(ssize_t, listxattr, (const char *p, char *l, size_t s, int opt))
{
    ssize_t r = REAL(listxattr)(p, l, s, opt);
    KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, r >= 0));
    return r;
}
SBX_HOOK(int, setxattr, (const char *p, const char *n, const void *v, size_t s, u_int32_t pos,
                         int opt))
{
    MODIFY_BODY(AT_FDCWD, p, REAL(setxattr)(p, n, v, s, pos, opt));
}
SBX_HOOK(int, removexattr, (const char *p, const char *n, int opt))
{
    MODIFY_BODY(AT_FDCWD, p, REAL(removexattr)(p, n, opt));
}
SBX_HOOK(int, fsetxattr, (int fd, const char *n, const void *v, size_t s, u_int32_t pos,
                          int opt))
{
    FD_BODY(int, fd, SBX_WRITE, REAL(fsetxattr)(fd, n, v, s, pos, opt));
}
SBX_HOOK(int, fremovexattr, (int fd, const char *n, int opt))
{
    FD_BODY(int, fd, SBX_WRITE, REAL(fremovexattr)(fd, n, opt));
}

/* ---- directory listings below readdir ------------------------------------------*/
SBX_HOOK(ssize_t, __getdirentries64, (int fd, void *buf, size_t n, off_t *basep))
{
    ssize_t r = REAL(__getdirentries64)(fd, buf, n, basep);
    if (r >= 0)
        KEEP_ERRNO(sbx_fd_use(fd, SBX_ENUM));
    return r;
}

SBX_HOOK(int, getdirentries_ino32, (int fd, char *buf, int n, long *basep))
{
    FD_BODY(int, fd, SBX_ENUM, REAL(getdirentries_ino32)(fd, buf, n, basep));
}
/* getattrlistbulk(2): a directory's entries with their attributes, the
 * listing Foundation's enumerators (and recent libsystem_c) use */
SBX_HOOK(int, getattrlistbulk, (int dirfd, void *al, void *buf, size_t n, uint64_t opt))
{
    FD_BODY(int, dirfd, SBX_ENUM, REAL(getattrlistbulk)(dirfd, al, buf, n, opt));
}
SBX_HOOK(int, getdirentriesattr, (int fd, void *al, void *buf, size_t n, unsigned int *count,
                                  unsigned int *base, unsigned int *newstate, unsigned int opt))
{
    FD_BODY(int, fd, SBX_ENUM,
            REAL(getdirentriesattr)(fd, al, buf, n, count, base, newstate, opt));
}

/* ---- attribute lists: metadata by name ------------------------------------------*/
SBX_HOOK(int, getattrlist, (const char *p, void *al, void *buf, size_t n, unsigned int opt))
{
    PROBE_BODY(AT_FDCWD, p, REAL(getattrlist)(p, al, buf, n, opt));
}
SBX_HOOK(int, getattrlistat, (int d, const char *p, void *al, void *buf, size_t n,
                              unsigned long opt))
{
    PROBE_BODY(d, p, REAL(getattrlistat)(d, p, al, buf, n, opt));
}
SBX_HOOK(int, setattrlist, (const char *p, void *al, void *buf, size_t n, unsigned int opt))
{
    MODIFY_BODY(AT_FDCWD, p, REAL(setattrlist)(p, al, buf, n, opt));
}
SBX_HOOK(int, setattrlistat, (int d, const char *p, void *al, void *buf, size_t n,
                              uint32_t opt))
{
    MODIFY_BODY(d, p, REAL(setattrlistat)(d, p, al, buf, n, opt));
}
SBX_HOOK(int, fsetattrlist, (int fd, void *al, void *buf, size_t n, unsigned int opt))
{
    FD_BODY(int, fd, SBX_WRITE, REAL(fsetattrlist)(fd, al, buf, n, opt));
}

/* ---- opens only macOS has ----------------------------------------------------------*/
SBX_HOOK(int, openx_np, (const char *p, int fl, filesec_t sec))
{
    OPEN_BODY(AT_FDCWD, p, fl, REAL(openx_np)(p, fl, sec));
}
SBX_HOOK(int, open_dprotected_np, (const char *p, int fl, int cls, int dpfl, ...))
{
    va_list ap;
    va_start(ap, dpfl);
    mode_t m = sbx_mode_of(fl, ap);
    va_end(ap);
    OPEN_BODY(AT_FDCWD, p, fl, REAL(open_dprotected_np)(p, fl, cls, dpfl, m));
}
SBX_HOOK(int, openat_dprotected_np, (int d, const char *p, int fl, int cls, int dpfl, ...))
{
    va_list ap;
    va_start(ap, dpfl);
    mode_t m = sbx_mode_of(fl, ap);
    va_end(ap);
    OPEN_BODY(d, p, fl, REAL(openat_dprotected_np)(d, p, fl, cls, dpfl, m));
}
SBX_HOOK(int, openat_authenticated_np, (int d, const char *p, int fl, int authfd))
{
    OPEN_BODY(d, p, fl, REAL(openat_authenticated_np)(d, p, fl, authfd));
}
/* By file-system and object id: the name is the one the kernel gives the
 * open file (F_GETPATH); the object existed. */
SBX_HOOK(int, openbyid_np, (fsid_t *fsid, fsobj_id_t *obj, int fl))
{
    int fd = REAL(openbyid_np)(fsid, obj, fl);
    if (fd >= 0 && sbx_on())
        KEEP_ERRNO({
            char name[SBX_PATH_MAX];
            if (sbx_os_fd_name(fd, name, sizeof name) > 0)
                sbx_opened(AT_FDCWD, name, fl, fd, 1);
        });
    return fd;
}
/* fsgetpath(2): the name of an object id; the program learns it exists */
SBX_HOOK(ssize_t, fsgetpath, (char *buf, size_t n, fsid_t *fsid, uint64_t obj))
{
    ssize_t r = REAL(fsgetpath)(buf, n, fsid, obj);
    if (r > 0 && buf && buf[0] == '/')
        KEEP_ERRNO(sbx_path(buf, SBX_OP_PROBE, 1));
    return r;
}
/* searchfs(2): a search of a whole volume's catalog.  The matches come
 * back as attribute records (names relative to parent ids), not paths:
 * they are not reported one by one, so the Result says so. */
SBX_HOOK(int, searchfs, (const char *p, struct fssearchblock *sb, unsigned long *nmatches,
                         unsigned int script, unsigned int opt, struct searchstate *state))
{
    SBX_STABLE(p);
    int r = REAL(searchfs)(p, sb, nmatches, script, opt, state);
    KEEP_ERRNO({
        sbx_path(p, SBX_OP_PROBE, 1);
        char abs[SBX_PATH_MAX];
        long n = p ? sbx_resolve(AT_FDCWD, p, abs, sizeof abs) : -1;
        if ((r == 0 || errno == EAGAIN) && nmatches && *nmatches && n >= 0) {
            static const char head[] = "searched the catalog of the volume at ";
            static const char tail[] = " with searchfs(2): the names it matched are not "
                                       "in the Result";
            char what[sizeof head + SBX_PATH_MAX + sizeof tail];
            memcpy(what, head, sizeof head - 1);
            memcpy(what + sizeof head - 1, abs, (size_t)n);
            memcpy(what + sizeof head - 1 + n, tail, sizeof tail);
            sbx_warn_process(what);
        }
    });
    return r;
}

/* ---- copies: the source's content read, the new name written and created
 * (the access model's LINK: existing name read, new name created) ----------*/
SBX_HOOK(int, clonefile, (const char *src, const char *dst, uint32_t fl))
{
    TWO_BODY(AT_FDCWD, src, AT_FDCWD, dst, SBX_OP_LINK, REAL(clonefile)(src, dst, fl));
}
SBX_HOOK(int, clonefileat, (int sd, const char *src, int dd, const char *dst, uint32_t fl))
{
    TWO_BODY(sd, src, dd, dst, SBX_OP_LINK, REAL(clonefileat)(sd, src, dd, dst, fl));
}
SBX_HOOK(int, fclonefileat, (int sfd, int dd, const char *dst, uint32_t fl))
{
    int r = REAL(fclonefileat)(sfd, dd, dst, fl);
    if (r >= 0)
        KEEP_ERRNO(sbx_fd_use(sfd, SBX_READ));
    KEEP_ERRNO(sbx_path_at(dd, dst, SBX_OP_CREATE, r >= 0));
    return r;
}
/* Whether `path` (against dirfd) names a directory, asked without a hook
 * (O_NONBLOCK: a FIFO never blocks the question). */
static int is_directory_at(int dirfd, const char *path)
{
    char abs[SBX_PATH_MAX];
    if (!path || sbx_resolve(dirfd, path, abs, sizeof abs) < 0)
        return 0;
    int fd = sbx_os_open(abs, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    sbx_os_close(fd);
    return 1;
}

/* copyfile(3) by name; with NULL names it works on fds already reported.
 * COPYFILE_RECURSIVE on a directory: the source tree is listed and the
 * destination created; what is copied inside goes through libcopyfile's
 * own opens, reads and writes, which cross into libsystem_kernel and so
 * reach the hooks (docs/macos.md). */
SBX_HOOK(int, copyfile, (const char *from, const char *to, copyfile_state_t st,
                         copyfile_flags_t fl))
{
    int tree = (fl & COPYFILE_RECURSIVE) && sbx_on() && is_directory_at(AT_FDCWD, from);
    int r = REAL(copyfile)(from, to, st, fl);
    if (from && to)
        KEEP_ERRNO({
            if (tree) {
                sbx_path(from, SBX_OP_LIST, r >= 0);
                sbx_path(to, SBX_OP_CREATE, r >= 0);
            } else {
                sbx_path2_at(AT_FDCWD, from, AT_FDCWD, to, SBX_OP_LINK, r >= 0);
            }
        });
    return r;
}
/* fcopyfile(3): from one open file to another */
SBX_HOOK(int, fcopyfile, (int from, int to, copyfile_state_t st, copyfile_flags_t fl))
{
    int r = REAL(fcopyfile)(from, to, st, fl);
    if (r >= 0)
        KEEP_ERRNO({
            sbx_fd_use(from, SBX_READ);
            sbx_fd_use(to, SBX_WRITE);
        });
    return r;
}

/* removefile(3): the name removed; REMOVEFILE_RECURSIVE on a directory
 * lists it too (what is inside is removed through libremovefile's own
 * unlink/rmdir calls into libsystem_kernel, which reach the hooks). */
static int remove_tree(int dirfd, const char *p, removefile_flags_t fl)
{
    return (fl & REMOVEFILE_RECURSIVE) && sbx_on() && is_directory_at(dirfd, p);
}
SBX_HOOK(int, removefile, (const char *p, removefile_state_t st, removefile_flags_t fl))
{
    SBX_STABLE(p);
    int tree = remove_tree(AT_FDCWD, p, fl);
    int r = REAL(removefile)(p, st, fl);
    KEEP_ERRNO({
        if (tree)
            sbx_path(p, SBX_OP_LIST, r >= 0);
        sbx_path(p, SBX_OP_REMOVE, r >= 0);
    });
    return r;
}
SBX_HOOK(int, removefileat, (int d, const char *p, removefile_state_t st,
                             removefile_flags_t fl))
{
    SBX_STABLE(p);
    int tree = remove_tree(d, p, fl);
    int r = REAL(removefileat)(d, p, st, fl);
    KEEP_ERRNO({
        if (tree)
            sbx_path_at(d, p, SBX_OP_LIST, r >= 0);
        sbx_path_at(d, p, SBX_OP_REMOVE, r >= 0);
    });
    return r;
}

/* exchangedata(2): the two files swap contents: both written */
SBX_HOOK(int, exchangedata, (const char *a, const char *b, unsigned int opt))
{
    SBX_STABLE(a);
    SBX_STABLE(b);
    int r = REAL(exchangedata)(a, b, opt);
    KEEP_ERRNO({
        sbx_path(a, SBX_OP_MODIFY, r >= 0);
        sbx_path(b, SBX_OP_MODIFY, r >= 0);
    });
    return r;
}

/* ---- a spawned child's working directory: the child looks at it inside
 * the kernel, before its image runs; named against this process's cwd,
 * as the child inherits it ---------------------------------------------*/
SBX_HOOK(int, posix_spawn_file_actions_addchdir_np, (posix_spawn_file_actions_t *fa,
                                                     const char *p))
{
    int r = REAL(posix_spawn_file_actions_addchdir_np)(fa, p);
    if (r == 0 && p)
        KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, 1));
    return r;
}
/* only reached where libSystem has it: dyld skips the pair of a weak
 * import it does not find */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunguarded-availability-new"
SBX_HOOK(int, posix_spawn_file_actions_addchdir, (posix_spawn_file_actions_t *fa,
                                                  const char *p))
{
    int r = REAL(posix_spawn_file_actions_addchdir)(fa, p);
    if (r == 0 && p)
        KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, 1));
    return r;
}
#pragma clang diagnostic pop

/* ---- the other symbols of shared entry points (darwin_decls.h): the same
 * bodies as shims/core/hooks_posix.c, each calling its own symbol ------*/
SBX_HOOK(int, open_nocancel, (const char *path, int flags, ...))
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = sbx_mode_of(flags, ap);
    va_end(ap);
    OPEN_BODY(AT_FDCWD, path, flags, REAL(open_nocancel)(path, flags, m));
}
SBX_HOOK(int, openat_nocancel, (int dirfd, const char *path, int flags, ...))
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = sbx_mode_of(flags, ap);
    va_end(ap);
    OPEN_BODY(dirfd, path, flags, REAL(openat_nocancel)(dirfd, path, flags, m));
}
SBX_HOOK(int, creat_nocancel, (const char *path, mode_t mode))
{
    OPEN_BODY(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, REAL(creat_nocancel)(path, mode));
}
SBX_HOOK(ssize_t, read_nocancel, (int fd, void *b, size_t n))
{
    FD_BODY(ssize_t, fd, SBX_READ, REAL(read_nocancel)(fd, b, n));
}
SBX_HOOK(ssize_t, pread_nocancel, (int fd, void *b, size_t n, off_t o))
{
    FD_BODY(ssize_t, fd, SBX_READ, REAL(pread_nocancel)(fd, b, n, o));
}
SBX_HOOK(ssize_t, readv_nocancel, (int fd, const struct iovec *v, int n))
{
    FD_BODY(ssize_t, fd, SBX_READ, REAL(readv_nocancel)(fd, v, n));
}
SBX_HOOK(ssize_t, preadv_nocancel, (int fd, const struct iovec *v, int n, off_t o))
{
    FD_BODY(ssize_t, fd, SBX_READ, REAL(preadv_nocancel)(fd, v, n, o));
}
SBX_HOOK(ssize_t, write_nocancel, (int fd, const void *b, size_t n))
{
    FD_BODY(ssize_t, fd, SBX_WRITE, REAL(write_nocancel)(fd, b, n));
}
SBX_HOOK(ssize_t, pwrite_nocancel, (int fd, const void *b, size_t n, off_t o))
{
    FD_BODY(ssize_t, fd, SBX_WRITE, REAL(pwrite_nocancel)(fd, b, n, o));
}
SBX_HOOK(ssize_t, writev_nocancel, (int fd, const struct iovec *v, int n))
{
    FD_BODY(ssize_t, fd, SBX_WRITE, REAL(writev_nocancel)(fd, v, n));
}
SBX_HOOK(ssize_t, pwritev_nocancel, (int fd, const struct iovec *v, int n, off_t o))
{
    FD_BODY(ssize_t, fd, SBX_WRITE, REAL(pwritev_nocancel)(fd, v, n, o));
}
SBX_HOOK(int, close_nocancel, (int fd))
{
    KEEP_ERRNO(sbx_fd_closing(fd));
    return REAL(close_nocancel)(fd);
}
SBX_HOOK(int, fcntl_nocancel, (int fd, int cmd, ...)) { FCNTL_BODY(REAL(fcntl_nocancel)); }
/* the system call stubs under them (darwin_decls.h) */
SBX_HOOK(int, __open_nocancel, (const char *path, int flags, int mode))
{
    OPEN_BODY(AT_FDCWD, path, flags, REAL(__open_nocancel)(path, flags, mode));
}
SBX_HOOK(int, __openat_nocancel, (int dirfd, const char *path, int flags, int mode))
{
    OPEN_BODY(dirfd, path, flags, REAL(__openat_nocancel)(dirfd, path, flags, mode));
}
SBX_HOOK(ssize_t, __read_nocancel, (int fd, void *b, size_t n))
{
    FD_BODY(ssize_t, fd, SBX_READ, REAL(__read_nocancel)(fd, b, n));
}
SBX_HOOK(ssize_t, __pread_nocancel, (int fd, void *b, size_t n, off_t o))
{
    FD_BODY(ssize_t, fd, SBX_READ, REAL(__pread_nocancel)(fd, b, n, o));
}
SBX_HOOK(ssize_t, __readv_nocancel, (int fd, const struct iovec *v, int n))
{
    FD_BODY(ssize_t, fd, SBX_READ, REAL(__readv_nocancel)(fd, v, n));
}
SBX_HOOK(ssize_t, __preadv_nocancel, (int fd, const struct iovec *v, int n, off_t o))
{
    FD_BODY(ssize_t, fd, SBX_READ, REAL(__preadv_nocancel)(fd, v, n, o));
}
SBX_HOOK(ssize_t, __write_nocancel, (int fd, const void *b, size_t n))
{
    FD_BODY(ssize_t, fd, SBX_WRITE, REAL(__write_nocancel)(fd, b, n));
}
SBX_HOOK(ssize_t, __pwrite_nocancel, (int fd, const void *b, size_t n, off_t o))
{
    FD_BODY(ssize_t, fd, SBX_WRITE, REAL(__pwrite_nocancel)(fd, b, n, o));
}
SBX_HOOK(ssize_t, __writev_nocancel, (int fd, const struct iovec *v, int n))
{
    FD_BODY(ssize_t, fd, SBX_WRITE, REAL(__writev_nocancel)(fd, v, n));
}
SBX_HOOK(ssize_t, __pwritev_nocancel, (int fd, const struct iovec *v, int n, off_t o))
{
    FD_BODY(ssize_t, fd, SBX_WRITE, REAL(__pwritev_nocancel)(fd, v, n, o));
}
SBX_HOOK(int, __close_nocancel, (int fd))
{
    KEEP_ERRNO(sbx_fd_closing(fd));
    return REAL(__close_nocancel)(fd);
}
SBX_HOOK(int, __fcntl_nocancel, (int fd, int cmd, long arg))
{
    int r = REAL(__fcntl_nocancel)(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
        KEEP_ERRNO(sbx_fd_dup(fd, r));
    return r;
}
SBX_HOOK(FILE *, fopen_extsn, (const char *path, const char *mode))
{
    FOPEN_BODY(path, mode, REAL(fopen_extsn)(path, mode));
}
SBX_HOOK(char *, realpath_compat, (const char *p, char *out))
{
    char *r = REAL(realpath_compat)(p, out);
    KEEP_ERRNO(sbx_path(p, SBX_OP_PROBE, 1));
    return r;
}
#if defined(__x86_64__)
/* pre-10.6 binaries: the same calls with 32-bit inodes in the buffers */
SBX_HOOK(int, stat_ino32, (const char *p, void *b)) { PROBE_BODY(AT_FDCWD, p, REAL(stat_ino32)(p, b)); }
SBX_HOOK(int, lstat_ino32, (const char *p, void *b)) { PROBE_BODY(AT_FDCWD, p, REAL(lstat_ino32)(p, b)); }
SBX_HOOK(int, fstatat_ino32, (int d, const char *p, void *b, int fl))
{
    PROBE_BODY(d, p, REAL(fstatat_ino32)(d, p, b, fl));
}
SBX_HOOK(int, statfs_ino32, (const char *p, void *b)) { PROBE_BODY(AT_FDCWD, p, REAL(statfs_ino32)(p, b)); }
SBX_HOOK(void *, opendir_ino32, (const char *name))
{
    unsigned long seq = sbx_os_open_seq();
    void *d = REAL(opendir_ino32)(name);
    if (!(d && sbx_os_open_marked_since(dirfd((DIR *)d), seq)))  /* see shim_os.h */
        KEEP_ERRNO(sbx_opened(AT_FDCWD, name, O_RDONLY | O_DIRECTORY,
                              d ? dirfd((DIR *)d) : -1, 0));
    return d;
}
SBX_HOOK(void *, fdopendir_ino32, (int fd))
{
    void *d = REAL(fdopendir_ino32)(fd);
    if (d)
        KEEP_ERRNO(sbx_fd_mark_dir(fd));
    return d;
}
/* DIR is the same object for both inode sizes: dirfd() works on either */
SBX_HOOK(void *, readdir_ino32, (void *d))
{
    void *e = REAL(readdir_ino32)(d);
    KEEP_ERRNO(sbx_fd_use(dirfd((DIR *)d), SBX_ENUM));
    return e;
}
SBX_HOOK(int, readdir_r_ino32, (void *d, void *entry, void **result))
{
    int r = REAL(readdir_r_ino32)(d, entry, result);
    KEEP_ERRNO(sbx_fd_use(dirfd((DIR *)d), SBX_ENUM));
    return r;
}
SBX_HOOK(int, scandir_ino32, (const char *dir, void *list, void *f, void *c))
{
    int r = REAL(scandir_ino32)(dir, list, f, c);
    KEEP_ERRNO(sbx_path(dir, SBX_OP_LIST, r >= 0));
    return r;
}
#endif

/* ---- renames with flags (RENAME_SWAP, RENAME_EXCL) ----------------------------------*/
SBX_HOOK(int, renamex_np, (const char *o, const char *n, unsigned int fl))
{
    TWO_BODY(AT_FDCWD, o, AT_FDCWD, n, SBX_OP_RENAME, REAL(renamex_np)(o, n, fl));
}
SBX_HOOK(int, renameatx_np, (int od, const char *o, int nd, const char *n, unsigned int fl))
{
    TWO_BODY(od, o, nd, n, SBX_OP_RENAME, REAL(renameatx_np)(od, o, nd, n, fl));
}

/* ---- life cycle -------------------------------------------------------------------------*/
/* The hello record: sbx_start() writes this image's START record.  A
 * process the reader saw being exec'd that never says hello ran without
 * the dylib (SIP or the hardened runtime stripped DYLD_*): the Result is
 * then incomplete and names it. */
__attribute__((constructor)) static void sbx_ctor(int argc, char **argv, char **envp)
{
    (void)envp;
    if (!sbx_on())
        return;
    pthread_atfork(NULL, NULL, sbx_forked_child);
    sbx_start(argc, argv);
}

__attribute__((destructor)) static void sbx_dtor(void)
{
    if (!sbx_on())
        return;
    fflush(NULL);       /* exit() would flush after us: show those writes now */
    sbx_flush_fds();
}
