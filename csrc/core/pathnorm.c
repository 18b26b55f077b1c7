/* pathnorm.c — see pathnorm.h. */
#include "pathnorm.h"

#include <string.h>

/* Append the components of `p` to out[0..*n), applying "." and "..".
 * out always starts with "/" and never ends with "/" unless it is "/". */
static int append_components(char *out, size_t cap, size_t *n,
                             const char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && p[i] == '/')
            i++;
        size_t start = i;
        while (i < len && p[i] != '/')
            i++;
        size_t clen = i - start;
        if (clen == 0 || (clen == 1 && p[start] == '.'))
            continue;
        if (clen == 2 && p[start] == '.' && p[start + 1] == '.') {
            /* drop the last component; "/.." is "/" */
            while (*n > 1 && out[*n - 1] != '/')
                (*n)--;
            if (*n > 1)
                (*n)--;
            continue;
        }
        size_t need = (*n > 1 ? 1 : 0) + clen;
        if (*n + need + 1 > cap)
            return -1;
        if (*n > 1)
            out[(*n)++] = '/';
        memcpy(out + *n, p + start, clen);
        *n += clen;
    }
    return 0;
}

long sbx_path_join_clean(char *out, size_t cap,
                         const char *base, size_t base_len,
                         const char *rel, size_t rel_len)
{
    if (cap < 2)
        return -1;
    size_t n = 1;
    out[0] = '/';
    if (rel_len == 0 || rel[0] != '/') {
        if (base_len == 0 || base[0] != '/')
            return -1;
        if (append_components(out, cap, &n, base, base_len) < 0)
            return -1;
    }
    if (append_components(out, cap, &n, rel, rel_len) < 0)
        return -1;
    out[n] = '\0';
    return (long)n;
}
