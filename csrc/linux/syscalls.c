/* syscalls.c — see syscalls.h; every answer comes from syscalls.def. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "syscalls.h"

#include <fcntl.h>
#include <sys/syscall.h>

int sbx_linux_path_call(long nr, struct sbx_sc_layout *out)
{
    switch (nr) {
#define SBX_SC_PATH(name, o, np, a, b, c, d)                                  \
    case __NR_##name:                                                           \
        out->op = o; out->npath = np; out->d0 = a; out->p0 = b; out->d1 = c;   \
        out->p1 = d;                                                            \
        return 0;
#include "syscalls.def"
    }
    return -1;
}

enum sbx_op sbx_linux_path_op(long nr)
{
    struct sbx_sc_layout l;
    return sbx_linux_path_call(nr, &l) == 0 ? l.op : SBX_OP_NONE;
}

int sbx_linux_fd_call(long nr, enum sbx_use *use, int *fd, int *hot)
{
    switch (nr) {
#define SBX_SC_FD(name, u, f, h)                                               \
    case __NR_##name:                                                           \
        *use = u; *fd = f; *hot = h;                                            \
        return 1;
#include "syscalls.def"
    }
    return 0;
}

int sbx_linux_fd2_call(long nr, int *fd_in, int *fd_out)
{
    switch (nr) {
#define SBX_SC_FD2(name, i, o)                                                 \
    case __NR_##name:                                                           \
        *fd_in = i; *fd_out = o;                                                \
        return 1;
#include "syscalls.def"
    }
    return 0;
}

unsigned sbx_linux_open_intent(unsigned oflags)
{
    unsigned acc = oflags & O_ACCMODE, in = 0;
    if (acc != O_WRONLY)
        in |= SBX_OPEN_READ;
    if (acc != O_RDONLY)
        in |= SBX_OPEN_WRITE;
    if (oflags & O_TRUNC)
        in |= SBX_OPEN_TRUNC;
    if (oflags & O_PATH)
        in |= SBX_OPEN_NODATA;
    if ((oflags & O_TMPFILE) == O_TMPFILE)
        in |= SBX_OPEN_NONAME;
    return in;
}

const char *sbx_linux_syscall_name(long nr)
{
    switch (nr) {
#define SBX_SC_PATH(name, o, np, a, b, c, d) case __NR_##name: return #name;
#define SBX_SC_FD(name, u, f, h) case __NR_##name: return #name;
#define SBX_SC_FD2(name, i, o) case __NR_##name: return #name;
#define SBX_SC_UNSEEN(name) case __NR_##name: return #name;
#include "syscalls.def"
    case __NR_mmap: return "mmap";
    }
    return "syscall";
}
