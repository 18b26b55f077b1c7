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

#include "pathnorm.h"   /* sbx_path_is_fd_alias, sbx_path_reached */

/* A resolver (sbx_dir_resolver) answering for an existing name as process
 * `pid` (thread `tid`) sees it, asked from outside that process: its
 * /proc/self, /proc/thread-self, /dev/fd/N and /dev/std* are its own, and
 * the answer is the kernel's (an O_PATH open, which no Landlock rule
 * refuses, named through /proc).  ctx points to a struct sbx_proc_view.
 * A process that has exited no longer answers for its own names. */
struct sbx_proc_view {
    int pid, tid;
};
long sbx_proc_view_resolve(void *ctx, const char *name, char *out, size_t cap);

/* sbx_path_reached() for a refused call of process pid/tid, seen from
 * outside it (the ptrace and eBPF backends): > 0 the reached name is in
 * out, 0 it is `name` itself, -1 it could not be told and `name` already
 * says what was refused, -2 it could not be told and `name` says nothing
 * (a magic link of a process that has exited, sbx_path_magic_prefix): the backend
 * warns with SBX_REFUSED_UNNAMED (pid, name). */
long sbx_refused_reached(int pid, int tid, const char *name, int follow_last, char *out,
                         size_t cap);
#define SBX_REFUSED_UNNAMED "process %d was refused an access through %s, and the file " \
    "it led to could not be named (the process had exited when its event was read): " \
    "Result.denied does not list that refusal"

#endif
