/* xattr_decls.h — <sys/xattr.h>, which the Xcode SDK has and zig's copy of
 * the macOS headers (used for the Linux cross-build) lacks.  The
 * prototypes are Apple's (sys/xattr.h, xnu); none of these functions has
 * a $INODE64 or $DARWIN_EXTSN variant, so both builds bind the same
 * symbols. */
#ifndef SBX_XATTR_DECLS_H
#define SBX_XATTR_DECLS_H

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
