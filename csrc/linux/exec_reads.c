/* exec_reads.c — see exec_reads.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "exec_reads.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "elfinterp.h"

static int read_name(sbx_pathset *ps, const char *p)
{
    if (!p || p[0] != '/')
        return 0;
    return sbx_pathset_add(ps, p, strlen(p), SBX_READ);
}

int sbx_exec_reads(sbx_pathset *ps, const char *called, const char *exe,
                   const char *script_interp)
{
    int rc = 0;
    rc |= read_name(ps, called);
    rc |= read_name(ps, exe);
    rc |= read_name(ps, script_interp);
    /* The kernel maps the ELF interpreter itself, without an open() any
     * tracer sees: ask the executed file which one it names.  A read
     * through a symlink reports the link and its target: the loader's
     * usual name (/lib64/ld-linux-x86-64.so.2) is a link. */
    char interp[PATH_MAX], real[PATH_MAX];
    if (exe && exe[0] == '/' && sbx_elf_interp(exe, interp, sizeof interp) > 0) {
        rc |= read_name(ps, interp);
        if (realpath(interp, real) && strcmp(real, interp) != 0)
            rc |= read_name(ps, real);
    }
    return rc ? -1 : 0;
}
