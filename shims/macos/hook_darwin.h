/* hook_darwin.h — how a hook is registered on macOS (DYLD_INSERT_LIBRARIES).
 *
 * SBX_HOOK(ret, name, params) defines sbx_hook_<name>; the dylib's
 * __DATA,__interpose section (interpose.c, generated from
 * shims/core/hooks.def) pairs it with the libSystem symbol `name` binds to
 * under these headers — on x86_64 that is e.g. _stat$INODE64 or
 * _realpath$DARWIN_EXTSN, on arm64 plain _stat — so dyld rebinds every
 * other image's calls to ours.  dyld never rebinds calls made from the
 * interposing image itself, so REAL(name) is simply `name`.
 */
#ifndef SBX_HOOK_DARWIN_H
#define SBX_HOOK_DARWIN_H

#include <crt_externs.h>

#define SBX_HOOK(ret, name, params) \
    __attribute__((visibility("hidden"))) ret sbx_hook_##name params

#define REAL(name) name
/* Our own hook, called from inside the dylib (a plain call would reach
 * libSystem: the interposing image is never rebound). */
#define SBX_SELF(name) sbx_hook_##name

/* A dylib cannot link against the program's `environ`. */
#define environ (*_NSGetEnviron())

#endif
