/* darwin_decls.h — libSystem functions the shim hooks that a header does
 * not declare everywhere:
 *   - <sys/xattr.h>, which the Xcode SDK has and zig's copy of the macOS
 *     headers (used for the Linux cross-build) lacks.  The prototypes are
 *     Apple's (sys/xattr.h, xnu); none has a $INODE64 or $DARWIN_EXTSN
 *     variant, so both builds bind the same symbols;
 *   - __getdirentries64, libsystem_kernel's directory listing call (no
 *     public header): readdir in libsystem_c and programs that list
 *     directories themselves (fts, some runtimes) reach it across an image
 *     boundary, where dyld's interposition applies;
 *   - the other names libSystem exports an entry point by, which a header
 *     chooses only under some settings: the non-cancellable variants
 *     (`open$NOCANCEL` ...: what libSystem's own libraries call, and
 *     programs built with __DARWIN_NON_CANCELABLE), `fopen$DARWIN_EXTSN`
 *     (_DARWIN_C_SOURCE), the plain `realpath` (pre-10.5 binaries) and, on
 *     x86_64 only, the 32-bit-inode entry points of pre-10.6 binaries
 *     (`_stat`, `_opendir` ... where today's headers bind `$INODE64`).
 *     Each gets its own C name here, bound to that symbol by an asm label;
 *     buffers whose layout differs (struct stat, struct dirent) are void *:
 *     the hooks never look into them;
 *   - calls a header of the SDK declares but zig's copy lacks or hides
 *     (<removefile.h>, <sys/fsgetpath.h>, openbyid_np). */
#ifndef SBX_DARWIN_DECLS_H
#define SBX_DARWIN_DECLS_H

#include <sys/types.h>

ssize_t __getdirentries64(int fd, void *buf, size_t bufsize, off_t *basep);

#if __has_include(<sys/xattr.h>)
#include <sys/xattr.h>
#else
#include <sys/types.h>
ssize_t getxattr(const char *path, const char *name, void *value, size_t size,
                 u_int32_t position, int options);
ssize_t listxattr(const char *path, char *namebuff, size_t size, int options);
int setxattr(const char *path, const char *name, const void *value, size_t size,
             u_int32_t position, int options);
int removexattr(const char *path, const char *name, int options);
int fsetxattr(int fd, const char *name, const void *value, size_t size, u_int32_t position,
              int options);
int fremovexattr(int fd, const char *name, int options);
#endif

#include <stdint.h>
#include <stdio.h>
#include <sys/attr.h>
#include <sys/mount.h>
#include <sys/uio.h>

#define SBX_SYM(s) __asm("_" s)
int open_nocancel(const char *path, int flags, ...) SBX_SYM("open$NOCANCEL");
int openat_nocancel(int dirfd, const char *path, int flags, ...) SBX_SYM("openat$NOCANCEL");
int creat_nocancel(const char *path, mode_t mode) SBX_SYM("creat$NOCANCEL");
ssize_t read_nocancel(int fd, void *buf, size_t n) SBX_SYM("read$NOCANCEL");
ssize_t pread_nocancel(int fd, void *buf, size_t n, off_t off) SBX_SYM("pread$NOCANCEL");
ssize_t readv_nocancel(int fd, const struct iovec *v, int n) SBX_SYM("readv$NOCANCEL");
ssize_t preadv_nocancel(int fd, const struct iovec *v, int n, off_t off)
    SBX_SYM("preadv$NOCANCEL");
ssize_t write_nocancel(int fd, const void *buf, size_t n) SBX_SYM("write$NOCANCEL");
ssize_t pwrite_nocancel(int fd, const void *buf, size_t n, off_t off)
    SBX_SYM("pwrite$NOCANCEL");
ssize_t writev_nocancel(int fd, const struct iovec *v, int n) SBX_SYM("writev$NOCANCEL");
ssize_t pwritev_nocancel(int fd, const struct iovec *v, int n, off_t off)
    SBX_SYM("pwritev$NOCANCEL");
int close_nocancel(int fd) SBX_SYM("close$NOCANCEL");
int fcntl_nocancel(int fd, int cmd, ...) SBX_SYM("fcntl$NOCANCEL");
FILE *fopen_extsn(const char *path, const char *mode) SBX_SYM("fopen$DARWIN_EXTSN");
char *realpath_compat(const char *path, char *resolved) SBX_SYM("realpath");
/* getdirentries(2) exists only for 32-bit inodes (dirent.h makes it a link
 * error otherwise), on both architectures */
int getdirentries_ino32(int fd, char *buf, int n, long *basep) SBX_SYM("getdirentries");
#if defined(__x86_64__)
int stat_ino32(const char *path, void *sb) SBX_SYM("stat");
int lstat_ino32(const char *path, void *sb) SBX_SYM("lstat");
int fstatat_ino32(int dirfd, const char *path, void *sb, int flags) SBX_SYM("fstatat");
int statfs_ino32(const char *path, void *sb) SBX_SYM("statfs");
void *opendir_ino32(const char *path) SBX_SYM("opendir");
void *fdopendir_ino32(int fd) SBX_SYM("fdopendir");
void *readdir_ino32(void *dir) SBX_SYM("readdir");
int readdir_r_ino32(void *dir, void *entry, void **result) SBX_SYM("readdir_r");
int scandir_ino32(const char *dir, void *list, void *filter, void *compar) SBX_SYM("scandir");
#endif

/* libsystem_kernel's non-cancellable system call stubs, which its
 * `$NOCANCEL` wrappers call inside the image and which it exports to
 * libSystem's other libraries: plain register arguments (no variadic
 * mode: these are the system calls' own entry points). */
int __open_nocancel(const char *path, int flags, int mode);
int __openat_nocancel(int dirfd, const char *path, int flags, int mode);
ssize_t __read_nocancel(int fd, void *buf, size_t n);
ssize_t __pread_nocancel(int fd, void *buf, size_t n, off_t off);
ssize_t __readv_nocancel(int fd, const struct iovec *v, int n);
ssize_t __preadv_nocancel(int fd, const struct iovec *v, int n, off_t off);
ssize_t __write_nocancel(int fd, const void *buf, size_t n);
ssize_t __pwrite_nocancel(int fd, const void *buf, size_t n, off_t off);
ssize_t __writev_nocancel(int fd, const struct iovec *v, int n);
ssize_t __pwritev_nocancel(int fd, const struct iovec *v, int n, off_t off);
int __close_nocancel(int fd);
int __fcntl_nocancel(int fd, int cmd, long arg);

/* <sys/fcntl.h> keeps openbyid_np private; <sys/fsgetpath.h> and
 * <removefile.h> are the SDK's, not in zig's headers (Apple's prototypes) */
int openbyid_np(fsid_t *fsid, fsobj_id_t *objid, int flags);
ssize_t fsgetpath(char *buf, size_t bufsize, fsid_t *fsid, uint64_t objid);
#if __has_include(<removefile.h>)
#include <removefile.h>
#else
typedef struct _removefile_state *removefile_state_t;
typedef uint32_t removefile_flags_t;
#define REMOVEFILE_RECURSIVE (1 << 0)
int removefile(const char *path, removefile_state_t state, removefile_flags_t flags);
int removefileat(int fd, const char *path, removefile_state_t state, removefile_flags_t flags);
#endif

/* Entry points younger than the oldest macOS the dylib loads on
 * (machobuild.MIN_MACOS): imported weakly, so that dyld, finding none,
 * skips their interpose pair instead of refusing the dylib. */
#include <fcntl.h>
#include <spawn.h>
int removefileat(int fd, const char *path, removefile_state_t state, removefile_flags_t flags)
    __attribute__((weak_import));
int openat_dprotected_np(int, const char *, int, int, int, ...) __attribute__((weak_import));
int openat_authenticated_np(int, const char *, int, int) __attribute__((weak_import));
int posix_spawn_file_actions_addchdir(posix_spawn_file_actions_t *, const char *__restrict)
    __attribute__((weak_import));

#endif
