/* exec_reads.c — see exec_reads.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "exec_reads.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "elfinterp.h"

/* Where the reads go: a run's pathset, or a process of a result. */
struct sink {
    sbx_pathset *ps;
    struct sbx_result *res;
    int64_t pid;
};

static int read_name(const struct sink *k, const char *p)
{
    if (!p || p[0] != '/')
        return 0;
    if (k->res)
        return sbx_result_record(k->res, k->pid, p, strlen(p), SBX_READ);
    return sbx_pathset_add(k->ps, p, strlen(p), SBX_READ);
}

static int exec_reads(const struct sink *k, const char *called, const char *exe,
                      const char *script_interp)
{
    int rc = 0;
    rc |= read_name(k, called);
    rc |= read_name(k, exe);
    rc |= read_name(k, script_interp);
    /* The kernel maps the ELF interpreter itself, without an open() any
     * tracer sees: ask the executed file which one it names.  A read
     * through a symlink reports the link and its target: the loader's
     * usual name (/lib64/ld-linux-x86-64.so.2) is a link. */
    char interp[PATH_MAX], real[PATH_MAX];
    if (exe && exe[0] == '/' && sbx_elf_interp(exe, interp, sizeof interp) > 0) {
        rc |= read_name(k, interp);
        if (realpath(interp, real) && strcmp(real, interp) != 0)
            rc |= read_name(k, real);
    }
    return rc ? -1 : 0;
}

int sbx_exec_reads(sbx_pathset *ps, const char *called, const char *exe,
                   const char *script_interp)
{
    struct sink k = {.ps = ps};
    return exec_reads(&k, called, exe, script_interp);
}

int sbx_exec_reads_of(struct sbx_result *res, int64_t pid, const char *called,
                      const char *exe, const char *script_interp)
{
    struct sink k = {.res = res, .pid = pid};
    return exec_reads(&k, called, exe, script_interp);
}
