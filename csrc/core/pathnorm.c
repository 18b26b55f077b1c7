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

static int has_dotdot(const char *rel, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (rel[i] == '.' && rel[i + 1] == '.' && (i == 0 || rel[i - 1] == '/') &&
            (i + 2 == n || rel[i + 2] == '/'))
            return 1;
    return 0;
}

long sbx_path_join_resolving(char *out, size_t cap, const char *base, size_t base_len,
                             const char *rel, size_t rel_len, sbx_dir_resolver resolve,
                             void *ctx)
{
    if (!has_dotdot(rel, rel_len))
        return sbx_path_join_clean(out, cap, base, base_len, rel, rel_len);
    /* start from the directory (absolute names start from "/"), then walk
     * the name a component at a time as the kernel does */
    char cur[SBX_PATHNORM_MAX], real[SBX_PATHNORM_MAX], next[SBX_PATHNORM_MAX];
    long n = rel_len && rel[0] == '/'
                 ? sbx_path_join_clean(cur, sizeof cur, "/", 1, "", 0)
                 : sbx_path_join_clean(cur, sizeof cur, base, base_len, "", 0);
    if (n < 0)
        return -1;
    for (size_t i = 0; i < rel_len;) {
        while (i < rel_len && rel[i] == '/')
            i++;
        size_t j = i;
        while (j < rel_len && rel[j] != '/')
            j++;
        if (j == i)
            break;
        if (j - i == 2 && rel[i] == '.' && rel[i + 1] == '.') {
            /* the prefix's symlinks are followed first, then ".." taken */
            long rl = resolve(ctx, cur, real, sizeof real);
            if (rl > 0 && (size_t)rl < sizeof cur)
                memcpy(cur, real, (size_t)rl + 1);
            n = sbx_path_join_clean(next, sizeof next, cur, strlen(cur), "..", 2);
        } else {
            n = sbx_path_join_clean(next, sizeof next, cur, strlen(cur), rel + i, j - i);
        }
        if (n < 0)
            return -1;
        memcpy(cur, next, (size_t)n + 1);
        i = j;
    }
    size_t l = strlen(cur);
    if (l + 1 > cap)
        return -1;
    memcpy(out, cur, l + 1);
    return (long)l;
}

long sbx_path_reached(const char *name, int follow_last, sbx_dir_resolver resolve, void *ctx,
                      char *out, size_t cap)
{
    size_t len = strlen(name);
    if (name[0] != '/' || len >= SBX_PATHNORM_MAX || cap < 2)
        return -1;
    long n = follow_last ? resolve(ctx, name, out, cap) : -1;
    if (n <= 0 || out[0] != '/') {
        /* not followed, or absent (a create): the directory it is in */
        const char *slash = strrchr(name, '/');
        if (!slash[1])
            return -1;                      /* "/" itself */
        char dir[SBX_PATHNORM_MAX];
        size_t dl = slash == name ? 1 : (size_t)(slash - name);
        memcpy(dir, name, dl);
        dir[dl] = '\0';
        n = resolve(ctx, dir, out, cap);
        if (n <= 0 || out[0] != '/')
            return -1;
        size_t bl = len - (size_t)(slash + 1 - name);
        if ((size_t)n + 1 + bl + 1 > cap)
            return -1;
        if (n > 1)
            out[n++] = '/';
        memcpy(out + n, slash + 1, bl + 1);
        n += (long)bl;
    }
    if (sbx_path_is_fd_alias(out))
        return -1;
    if (!strncmp(out, "/proc/", 6))
        return 0;
    return (size_t)n == len && memcmp(out, name, len) == 0 ? 0 : n;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

size_t sbx_path_magic_prefix(const char *path)
{
    const char *p;
    if (!strncmp(path, "/proc/self/", 11))
        p = path + 11;
    else if (!strncmp(path, "/proc/thread-self/", 18))
        p = path + 18;
    else if (!strncmp(path, "/dev/fd/", 8))
        p = path + 5;
    else if (!strncmp(path, "/proc/", 6) && is_digit(path[6])) {
        for (p = path + 6; is_digit(*p); p++)
            ;
        if (*p++ != '/')
            return 0;
    } else {
        return 0;
    }
    if (!strncmp(p, "fd/", 3) && is_digit(p[3]))
        for (p += 3; is_digit(*p); p++)
            ;
    else if (!strncmp(p, "root", 4))
        p += 4;
    else if (!strncmp(p, "cwd", 3))
        p += 3;
    else
        return 0;
    return *p == '/' || !*p ? (size_t)(p - path) : 0;
}
