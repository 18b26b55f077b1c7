/* interpose.c — the dylib's __DATA,__interpose table, generated from
 * shims/core/hooks.def: one {replacement, replacee} pair per POSIX and
 * DARWIN entry.  The replacee is taken from the real libSystem headers, so
 * it is the symbol a program compiled against them binds to: on x86_64
 * _stat$INODE64, _opendir$INODE64, _realpath$DARWIN_EXTSN ...; on arm64 the
 * plain names (realpath keeps its $DARWIN_EXTSN there too).  The other
 * symbols of an entry point ($NOCANCEL, the 32-bit-inode names ...) are
 * entries of their own, named in darwin_decls.h.  A hook listed here
 * without a body fails the link.
 */
#include <copyfile.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/attr.h>
#include <sys/clonefile.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/uio.h>
#include "darwin_decls.h"
#include <unistd.h>
#include <utime.h>

/* a weak import younger than the oldest macOS supported (darwin_decls.h)
 * is only its address here: dyld skips the pair where it is missing */
#pragma clang diagnostic ignored "-Wunguarded-availability-new"

#define SBX_IP_POSIX(name) SBX_IP(name)
#define SBX_IP_DARWIN(name) SBX_IP(name)
#define SBX_IP_LINUX(name)
#if defined(__x86_64__)
#define SBX_IP_DARWIN_X86_64(name) SBX_IP(name)
#else
#define SBX_IP_DARWIN_X86_64(name)
#endif

/* the replacements: same type as the function they replace */
#define SBX_IP(name) extern __typeof__(name) sbx_hook_##name __attribute__((visibility("hidden")));
#define SBX_HOOK_ENTRY(name, where) SBX_IP_##where(name)
#include "../core/hooks.def"
#undef SBX_IP

struct sbx_interpose {
    const void *replacement;
    const void *replacee;
};

#define SBX_IP(name) {(const void *)&sbx_hook_##name, (const void *)&name},
#define SBX_HOOK_ENTRY(name, where) SBX_IP_##where(name)
__attribute__((used, section("__DATA,__interpose")))
static const struct sbx_interpose sbx_interpose_table[] = {
#include "../core/hooks.def"
};
