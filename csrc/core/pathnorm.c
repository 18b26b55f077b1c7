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

static int digits(const char *s, const char **end)
{
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    *end = p;
    return p > s;
}

int sbx_path_is_fd_alias(const char *p)
{
    const char *e;
    if (!strcmp(p, "/dev/stdin") || !strcmp(p, "/dev/stdout") || !strcmp(p, "/dev/stderr"))
        return 1;
    if (!strncmp(p, "/dev/fd/", 8))
        return digits(p + 8, &e) && !*e;
    if (strncmp(p, "/proc/", 6))
        return 0;
    p += 6;
    if (!strncmp(p, "self/", 5))
        p += 5;
    else if (!strncmp(p, "thread-self/", 12))
        p += 12;
    else if (digits(p, &e) && *e == '/')
        p = e + 1;
    else
        return 0;
    if (!strncmp(p, "task/", 5) && digits(p + 5, &e) && *e == '/')
        p = e + 1;
    return !strncmp(p, "fd/", 3) && digits(p + 3, &e) && !*e;
}
