/* audit_nolibc.c — the few C library functions the loader audit module
 * needs, so that it links no C library at all.
 *
 * Why: glibc loads an LD_AUDIT module into a link-map namespace of its own
 * and loads the module's dependencies there, libc.so.6 included: a second
 * libc mapped and relocated in every process of a run, before the program
 * starts (about 0.3 ms of CPU per exec here).  The module's own code
 * (loader_audit.c and the record writer it shares with the shim) already
 * makes raw system calls; what it took from libc is string functions,
 * getenv and two snprintf formats.  Built with -nostdlib against the
 * dynamic loader alone (for __libc_stack_end), the module brings nothing
 * into its namespace.  The shim (LD_PRELOAD) does not use this file.
 *
 * Everything here is hidden: the definitions bind inside the module and
 * interpose on nothing.  Loops are compiled without
 * -ftree-loop-distribute-patterns (setup.py), which would turn them back
 * into calls to memcpy and strlen.
 */
#include <stdarg.h>
#include <stddef.h>

#define LOCAL __attribute__((visibility("hidden")))

LOCAL void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

LOCAL void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

LOCAL void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

LOCAL int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

LOCAL size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

LOCAL char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return NULL;
    }
}

LOCAL char *strrchr(const char *s, int c)
{
    const char *last = NULL;
    for (;; s++) {
        if (*s == (char)c)
            last = s;
        if (!*s)
            return (char *)last;
    }
}

LOCAL int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

LOCAL int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

LOCAL char *strstr(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (!strncmp(hay, needle, n))
            return (char *)hay;
    return n ? NULL : (char *)hay;
}

/* The process's initial stack, as the loader found it: argc, argv[],
 * NULL, envp[], NULL.  The environment is read from there: the module runs
 * before the program could change it, and has no libc `environ`. */
extern void *__libc_stack_end;

LOCAL char *getenv(const char *name)
{
    long *sp = __libc_stack_end;
    if (!sp)
        return NULL;
    char **env = (char **)(sp + 1 + sp[0] + 1);
    size_t n = strlen(name);
    for (; *env; env++)
        if (!strncmp(*env, name, n) && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

/* %s, %d, %u, %ld, %lu and %% : what the module formats. */
LOCAL int vsnprintf(char *out, size_t cap, const char *fmt, va_list ap)
{
    size_t len = 0;
#define PUT(ch) do { if (len + 1 < cap) out[len] = (ch); len++; } while (0)
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            PUT(*fmt);
            continue;
        }
        int lng = 0;
        fmt++;
        if (*fmt == 'l') {
            lng = 1;
            fmt++;
        }
        if (*fmt == 's') {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                PUT(*s);
        } else if (*fmt == 'd' || *fmt == 'u') {
            unsigned long v;
            if (*fmt == 'd') {
                long x = lng ? va_arg(ap, long) : va_arg(ap, int);
                if (x < 0) {
                    PUT('-');
                    v = 0UL - (unsigned long)x;
                } else {
                    v = (unsigned long)x;
                }
            } else {
                v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            }
            char digits[24];
            int k = 0;
            do
                digits[k++] = (char)('0' + v % 10);
            while ((v /= 10) != 0);
            while (k)
                PUT(digits[--k]);
        } else if (*fmt == '%') {
            PUT('%');
        } else {
            break;                  /* not used by the module */
        }
    }
    if (cap)
        out[len < cap ? len : cap - 1] = '\0';
#undef PUT
    return (int)len;
}

LOCAL int snprintf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n;
}
