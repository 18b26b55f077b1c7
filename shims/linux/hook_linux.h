/* hook_linux.h — how a hook is registered on Linux (LD_PRELOAD).
 *
 * SBX_HOOK(ret, name, params) defines the exported function `name` that the
 * dynamic linker binds the program to instead of libc's, and REAL(name)
 * calls the next definition (libc's), found with dlsym(RTLD_NEXT).
 *
 * The pointer is bound by a constructor that runs before anything else in
 * the shim, so that a hook first called from a signal handler never enters
 * the dynamic linker (which takes a lock); REAL() still binds lazily for
 * hooks that run before the constructors (other libraries' initialisers).
 *
 * The macOS interpose dylib provides the same macros in
 * shims/macos/hook_darwin.h (REAL(name) is then `name` itself, and the
 * __DATA,__interpose table is generated from shims/core/hooks.def).
 */
#ifndef SBX_HOOK_LINUX_H
#define SBX_HOOK_LINUX_H

void *sbx_next(const char *name);

#define SBX_HOOK(ret, name, params)                                        \
    static ret(*sbx_real_##name) params;                                   \
    static __typeof__(sbx_real_##name) sbx_get_##name(void)                \
    {                                                                      \
        if (!sbx_real_##name)                                              \
            sbx_real_##name = (__typeof__(sbx_real_##name))sbx_next(#name);\
        return sbx_real_##name;                                            \
    }                                                                      \
    __attribute__((constructor(101))) static void sbx_bind_##name(void)    \
    {                                                                      \
        sbx_get_##name();                                                  \
    }                                                                      \
    SBX_EXPORT ret name params

#define REAL(name) (sbx_get_##name())
/* Our own hook, called from inside the shim: the exported symbol. */
#define SBX_SELF(name) name

#endif
