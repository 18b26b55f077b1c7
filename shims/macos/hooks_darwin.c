/* hooks_darwin.c — the libSystem entry points only macOS has (the shared
 * ones are in shims/core/hooks_posix.c): extended attributes (with
 * position and options), __getdirentries64 (the listing call under
 * readdir), getattrlist (how Foundation, Xcode's tools and many build
 * tools stat), clonefile and copyfile (APFS copies, cp -c, Finder),
 * renamex_np; and the constructor that says hello.
 */
#include <copyfile.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
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
/* copyfile(3) by name; with NULL names it works on fds already reported. */
SBX_HOOK(int, copyfile, (const char *from, const char *to, copyfile_state_t st,
                         copyfile_flags_t fl))
{
    int r = REAL(copyfile)(from, to, st, fl);
    if (from && to)
        KEEP_ERRNO(sbx_path2_at(AT_FDCWD, from, AT_FDCWD, to, SBX_OP_LINK, r >= 0));
    return r;
}

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
