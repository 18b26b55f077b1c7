/* physpath.c — see physpath.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "physpath.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "pathnorm.h"

static int has_dotdot(const char *rel, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (rel[i] == '.' && rel[i + 1] == '.' && (i == 0 || rel[i - 1] == '/') &&
            (i + 2 == n || rel[i + 2] == '/'))
            return 1;
    return 0;
}

long sbx_path_join_physical(char *out, size_t cap, const char *base, size_t base_len,
                            const char *rel, size_t rel_len)
{
    if (!has_dotdot(rel, rel_len))
        return sbx_path_join_clean(out, cap, base, base_len, rel, rel_len);
    /* start from the directory (absolute names start from "/") */
    char cur[PATH_MAX], real[PATH_MAX], next[PATH_MAX];
    long n = rel_len && rel[0] == '/' ? sbx_path_join_clean(cur, sizeof cur, "/", 1, "", 0)
                                      : sbx_path_join_clean(cur, sizeof cur, base, base_len, "", 0);
    if (n < 0)
        return -1;
    size_t i = 0;
    while (i < rel_len) {
        while (i < rel_len && rel[i] == '/')
            i++;
        size_t j = i;
        while (j < rel_len && rel[j] != '/')
            j++;
        size_t len = j - i;
        if (len == 2 && rel[i] == '.' && rel[i + 1] == '.') {
            /* the kernel follows the prefix's symlinks, then takes ".." */
            if (realpath(cur, real) && strlen(real) < sizeof cur)
                strcpy(cur, real);
            n = sbx_path_join_clean(next, sizeof next, cur, strlen(cur), "..", 2);
        } else if (len) {
            n = sbx_path_join_clean(next, sizeof next, cur, strlen(cur), rel + i, len);
        } else {
            n = 0;
            strcpy(next, cur);
        }
        if (n < 0)
            return -1;
        strcpy(cur, next);
        i = j;
    }
    size_t l = strlen(cur);
    if (l + 1 > cap)
        return -1;
    memcpy(out, cur, l + 1);
    return (long)l;
}
