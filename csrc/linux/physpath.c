/* physpath.c — see physpath.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "physpath.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
