/* breakaway.h — the breakaway rule of sandbox_py/breakaway.py, in C, for
 * the mechanisms that decide at the exec itself (the preload/interpose shim,
 * the ptrace tracer, the Windows hook DLL; the BPF program has its own form
 * in sandbox.bpf.c).
 *
 * The declaration is one entry per line: program names (no '/') and
 * absolute paths.  A name matches the basename of the file as exec'd or of
 * argv[0]; a path matches the file as exec'd (made absolute) or as resolved
 * (symlinks followed), when the mechanism knows it.
 *
 * Header-only and allocation-free: the shim runs it in vfork children.
 */
#ifndef SBX_BREAKAWAY_H
#define SBX_BREAKAWAY_H

#include <string.h>

/* Windows names: ASCII case folded, a trailing ".exe" optional, '\\' a
 * separator too.  Elsewhere: bytes as they are. */
static inline size_t sbx_breakaway_stem(const char *s, size_t n, int win)
{
    if (win && n > 4 && s[n - 4] == '.' && (s[n - 3] | 32) == 'e' && (s[n - 2] | 32) == 'x' &&
        (s[n - 1] | 32) == 'e')
        return n - 4;
    return n;
}

static inline int sbx_breakaway_eq(const char *a, size_t an, const char *b, size_t bn, int win)
{
    an = sbx_breakaway_stem(a, an, win);
    bn = sbx_breakaway_stem(b, bn, win);
    if (an != bn || !an)
        return 0;
    for (size_t i = 0; i < an; i++) {
        char x = a[i], y = b[i];
        if (win) {
            x = x >= 'A' && x <= 'Z' ? (char)(x + 32) : x == '/' ? '\\' : x;
            y = y >= 'A' && y <= 'Z' ? (char)(y + 32) : y == '/' ? '\\' : y;
        }
        if (x != y)
            return 0;
    }
    return 1;
}

/* `s` (n bytes) is one line of `decl`. */
static inline int sbx_breakaway_line(const char *decl, const char *s, size_t n, int win)
{
    for (const char *p = decl; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (sbx_breakaway_eq(p, l, s, n, win))
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static inline int sbx_breakaway_base(const char *decl, const char *s, int win)
{
    if (!s)
        return 0;
    const char *b = s;
    for (const char *p = s; *p; p++)
        if (*p == '/' || (win && (*p == '\\' || *p == ':')))
            b = p + 1;
    return sbx_breakaway_line(decl, b, strlen(b), win);
}

static inline int sbx_breakaway_abs(const char *s, int win)
{
    if (!s)
        return 0;
    if (!win)
        return *s == '/';
    return (s[0] == '\\' && s[1] == '\\') || (s[0] && s[1] == ':' && (s[2] == '\\' || s[2] == '/'));
}

/* Does the exec of `called` (absolute where known), resolved to `resolved`
 * (or NULL), with argv[0] `argv0` (or NULL), match the declaration?  `win`:
 * Windows names (see sbx_breakaway_eq). */
static inline int sbx_breakaway_match(const char *decl, const char *called, const char *resolved,
                                      const char *argv0, int win)
{
    if (!decl || !*decl)
        return 0;
    return sbx_breakaway_base(decl, called, win) || sbx_breakaway_base(decl, argv0, win) ||
           (sbx_breakaway_abs(called, win) && sbx_breakaway_line(decl, called, strlen(called), win)) ||
           (sbx_breakaway_abs(resolved, win) &&
            sbx_breakaway_line(decl, resolved, strlen(resolved), win));
}

static inline int sbx_breakaway_matches(const char *decl, const char *called,
                                        const char *resolved, const char *argv0)
{
    return sbx_breakaway_match(decl, called, resolved, argv0, 0);
}

#endif
