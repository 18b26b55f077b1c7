/* pathnorm.h — POSIX path joining and lexical cleaning.
 *
 * Every path in a Result is absolute and lexically clean: no ".", no "..",
 * no repeated or trailing "/".  ".." is applied lexically (as Go's
 * path.Clean does); the access was resolved by the kernel against the real
 * directory, so the cleaned name is the one the user wrote, made absolute.
 *
 * Portable C99 (no allocation): used by every Linux backend and by the
 * command-line front.
 */
#ifndef SBX_PATHNORM_H
#define SBX_PATHNORM_H

#include <stddef.h>

/* Write base + "/" + rel, cleaned, into out (capacity cap, NUL-terminated).
 * When rel is absolute, base is ignored; when rel is empty the result is
 * base itself (AT_EMPTY_PATH).  Returns the length written, or -1 when the
 * result does not fit or base is not absolute. */
long sbx_path_join_clean(char *out, size_t cap,
                         const char *base, size_t base_len,
                         const char *rel, size_t rel_len);

/* The longest path the joins below work on. */
#define SBX_PATHNORM_MAX 4096

/* `dir`'s symlinks followed (the directory the kernel reaches by that
 * name) into out: its length, or <= 0 when it does not resolve. */
typedef long (*sbx_dir_resolver)(void *ctx, const char *dir, char *out, size_t cap);

/* Like sbx_path_join_clean(), but each ".." of rel is applied the way the
 * kernel walks it: to the physical directory the prefix leads to (asked of
 * `resolve`), not lexically: /a/lnk/../x with lnk -> real/sub is /a/real/x.
 * A prefix that does not resolve is left lexical (the kernel's lookup
 * failed there).  Names without ".." cost nothing more.  Returns the length
 * written or -1. */
long sbx_path_join_resolving(char *out, size_t cap, const char *base, size_t base_len,
                             const char *rel, size_t rel_len, sbx_dir_resolver resolve,
                             void *ctx);

/* 1 when path names an open file descriptor rather than a file
 * (/proc/self/fd/N, /proc/PID/fd/N, /proc/PID/task/TID/fd/N, /dev/fd/N,
 * /dev/stdin ...): the file behind the descriptor is what was used, and the
 * alias itself is never reported. */
int sbx_path_is_fd_alias(const char *path);

/* Length of the prefix of `path` that is a magic link of the process using
 * it -- /proc/self/fd/N, /proc/self/root, /proc/self/cwd, the same under
 * /proc/thread-self and /proc/PID, /dev/fd/N -- or 0.  What follows it is
 * walked from what the link points to in that process. */
size_t sbx_path_magic_prefix(const char *path);

/* The name the kernel reached when it refused a call on `name` (absolute,
 * clean, as traced): the file a symlink on the way, /proc/self/root, or a
 * descriptor alias (/proc/self/fd/N) led to -- what the system's policy
 * judged, and so what Result.denied must name.  The last component is
 * followed when `follow_last` (an open without O_NOFOLLOW); a name that
 * does not exist (a create) is its directory reached, plus that component.
 * `resolve` answers for an existing name, in the view of the process that
 * made the call (its /proc/self, its descriptors), the name the kernel
 * gives it.  Returns the length written to out when the reached name
 * differs from `name`, 0 when it is `name` itself or a pseudo file of
 * /proc (/proc/self/status reached as /proc/PID/status: the name given
 * says it), -1 when it cannot be told (the process is gone, the name is
 * not a file's). */
long sbx_path_reached(const char *name, int follow_last, sbx_dir_resolver resolve, void *ctx,
                      char *out, size_t cap);

#endif
