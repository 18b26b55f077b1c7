/* darwin_decls.h — libSystem functions the shim hooks that a header does
 * not declare everywhere:
 *   - <sys/xattr.h>, which the Xcode SDK has and zig's copy of the macOS
 *     headers (used for the Linux cross-build) lacks.  The prototypes are
 *     Apple's (sys/xattr.h, xnu); none has a $INODE64 or $DARWIN_EXTSN
 *     variant, so both builds bind the same symbols;
 *   - __getdirentries64, libsystem_kernel's directory listing call (no
 *     public header): readdir in libsystem_c and programs that list
 *     directories themselves (fts, some runtimes) reach it across an image
 *     boundary, where dyld's interposition applies. */
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

#endif
