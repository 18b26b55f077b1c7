/* physpath.h — joining a name to its directory the way the kernel resolves
 * it: ".." after a symlinked directory goes to the *physical* parent
 * (/a/lnk/../x with lnk -> real/sub is /a/real/x), not the lexical one.
 * Linux user space only (it asks the file system); the preload shim has
 * its own allocation-free equivalent. */
#ifndef SBX_PHYSPATH_H
#define SBX_PHYSPATH_H

#include <stddef.h>

/* Like sbx_path_join_clean() (pathnorm.h), but each ".." of rel is applied
 * to the prefix as the file system resolves it now (its symlinks
 * followed).  Names without ".." cost nothing more.  A prefix that does not
 * resolve (absent) is left lexical: the kernel's lookup failed there.
 * Returns the length written or -1. */
long sbx_path_join_physical(char *out, size_t cap, const char *base, size_t base_len,
                            const char *rel, size_t rel_len);

#include "pathnorm.h"   /* sbx_path_is_fd_alias */

#endif
