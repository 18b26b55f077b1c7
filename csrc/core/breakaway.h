/* breakaway.h — the breakaway rule of sandbox_py/breakaway.py, in C, for
 * the mechanisms that decide at the exec itself (the preload/interpose shim,
 * the ptrace tracer; the BPF program has its own form in sandbox.bpf.c).
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

/* `s` (n bytes) is one line of `decl`. */
static inline int sbx_breakaway_line(const char *decl, const char *s, size_t n)
{
    for (const char *p = decl; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (n && l == n && memcmp(p, s, n) == 0)
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static inline int sbx_breakaway_base(const char *decl, const char *s)
{
    if (!s)
        return 0;
    const char *b = strrchr(s, '/');
    b = b ? b + 1 : s;
    return sbx_breakaway_line(decl, b, strlen(b));
}

/* Does the exec of `called` (absolute), resolved to `resolved` (or NULL),
 * with argv[0] `argv0` (or NULL), match the declaration? */
static inline int sbx_breakaway_matches(const char *decl, const char *called,
                                        const char *resolved, const char *argv0)
{
    if (!decl || !*decl)
        return 0;
    return sbx_breakaway_base(decl, called) || sbx_breakaway_base(decl, argv0) ||
           (called && *called == '/' && sbx_breakaway_line(decl, called, strlen(called))) ||
           (resolved && *resolved == '/' && sbx_breakaway_line(decl, resolved, strlen(resolved)));
}

#endif
