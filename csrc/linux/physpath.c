/* physpath.c — see physpath.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "physpath.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pathnorm.h"

static long by_realpath(void *ctx, const char *dir, char *out, size_t cap)
{
    (void)ctx;
    char real[PATH_MAX];
    if (!realpath(dir, real) || strlen(real) + 1 > cap)
        return -1;
    strcpy(out, real);
    return (long)strlen(out);
}

long sbx_path_join_physical(char *out, size_t cap, const char *base, size_t base_len,
                            const char *rel, size_t rel_len)
{
    return sbx_path_join_resolving(out, cap, base, base_len, rel, rel_len, by_realpath, NULL);
}

/* `name` with the names that mean "the calling process" spelled with its
 * pid, so that they mean that process here too. */
static int proc_own_name(const struct sbx_proc_view *v, const char *name, char *out,
                         size_t cap)
{
    static const char *const std[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
    int n;
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, std[i]))
            return snprintf(out, cap, "/proc/%d/fd/%d", v->pid, i) < (int)cap ? 0 : -1;
    if (!strncmp(name, "/proc/self", 10) && (name[10] == '/' || !name[10]))
        n = snprintf(out, cap, "/proc/%d%s", v->pid, name + 10);
    else if (!strncmp(name, "/proc/thread-self", 17) && (name[17] == '/' || !name[17]))
        n = snprintf(out, cap, "/proc/%d/task/%d%s", v->pid, v->tid, name + 17);
    else if (!strncmp(name, "/dev/fd", 7) && (name[7] == '/' || !name[7]))
        n = snprintf(out, cap, "/proc/%d/fd%s", v->pid, name + 7);
    else
        n = snprintf(out, cap, "%s", name);
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

long sbx_proc_view_resolve(void *ctx, const char *name, char *out, size_t cap)
{
    const struct sbx_proc_view *v = ctx;
    char own[PATH_MAX], link[64];
    if (proc_own_name(v, name, own, sizeof own) < 0)
        return -1;
    int fd = open(own, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return -1;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    close(fd);
    if (n <= 0 || (size_t)n >= cap - 1 || out[0] != '/')
        return -1;
    out[n] = '\0';
    if (n > 10 && !memcmp(out + n - 10, " (deleted)", 10))
        return -1;
    return (long)n;
}

long sbx_refused_reached(int pid, int tid, const char *name, int follow_last, char *out,
                         size_t cap)
{
    struct sbx_proc_view v = {pid, tid};
    long n = sbx_path_reached(name, follow_last, sbx_proc_view_resolve, &v, out, cap);
    if (n >= 0)
        return n;
    /* a link that means something only in that process */
    return sbx_path_magic_prefix(name) || !strncmp(name, "/dev/std", 8) ? -2 : -1;
}
