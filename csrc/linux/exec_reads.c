/* exec_reads.c — see exec_reads.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "exec_reads.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfinterp.h"
#include "shebang.h"

/* Where the names go: the run's sets, or the run's and a process's. */
struct sink {
    sbx_pathset *ps;
    struct sbx_result *res;
    int64_t pid;
};

static int read_name(const struct sink *s, const char *p)
{
    if (!p || p[0] != '/')
        return 0;
    return s->res ? sbx_result_record(s->res, s->pid, p, strlen(p), SBX_READ)
                  : sbx_pathset_add(s->ps, p, strlen(p), SBX_READ);
}

static int exec_reads(const struct sink *s, const char *called, const char *exe,
                      const char *script_interp)
{
    int rc = 0;
    rc |= read_name(s, called);
    rc |= read_name(s, exe);
    rc |= read_name(s, script_interp);
    /* The kernel maps the ELF interpreter itself, without an open() any
     * tracer sees: ask the executed file which one it names.  A read
     * through a symlink reports the link and its target: the loader's
     * usual name (/lib64/ld-linux-x86-64.so.2) is a link. */
    char interp[PATH_MAX], real[PATH_MAX];
    if (exe && exe[0] == '/' && sbx_elf_interp(exe, interp, sizeof interp) > 0) {
        rc |= read_name(s, interp);
        if (realpath(interp, real) && strcmp(real, interp) != 0)
            rc |= read_name(s, real);
    }
    return rc ? -1 : 0;
}

int sbx_exec_reads(sbx_pathset *ps, const char *called, const char *exe,
                   const char *script_interp)
{
    struct sink s = {ps, NULL, 0};
    return exec_reads(&s, called, exe, script_interp);
}

int sbx_exec_reads_record(struct sbx_result *res, int64_t pid, const char *called,
                          const char *exe, const char *script_interp)
{
    struct sink s = {NULL, res, pid};
    return exec_reads(&s, called, exe, script_interp);
}

size_t sbx_exec_script_interp(const char *path, char *out, size_t cap)
{
    char buf[256];
    if (cap)
        out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n > 0 ? sbx_shebang_interp(buf, (size_t)n, out, cap) : 0;
}
