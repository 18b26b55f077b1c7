/* pathset.h — the one structure every backend fills.
 *
 * A pathset maps each absolute, lexically clean path to the set of categories
 * it was seen in (reads, writes, probes, enumerations).  Paths are byte
 * strings (UTF-8 on Windows, whatever the file system holds on POSIX); the
 * Python layer decodes them with os.fsdecode.
 *
 * The precision rules of docs/semantics.md that depend on the order of accesses
 * live here, so that every backend applies them identically:
 *   - a file the run itself created (SBX_CREATED with SBX_WRITE) and later
 *     read is not a read: the content came from the run, not from outside.
 *
 * Portable C99: compiled into the Linux extension and into the Windows
 * launcher (mingw) from the same source.
 */
#ifndef SBX_PATHSET_H
#define SBX_PATHSET_H

#include <stddef.h>
#include <stdint.h>

/* Public categories (bit flags, a path may carry several). */
#define SBX_READ      0x01u
#define SBX_WRITE     0x02u
#define SBX_PROBE     0x04u
#define SBX_ENUM      0x08u
#define SBX_CATEGORIES (SBX_READ | SBX_WRITE | SBX_PROBE | SBX_ENUM)

/* Qualifier passed with SBX_WRITE: the access brought the name into
 * existence (O_CREAT of a new file, mkdir, rename target, link, symlink). */
#define SBX_CREATED   0x100u

/* Qualifier passed with SBX_READ: the name itself was read (readlink, the
 * old name of a rename, the existing name of a link), not a file reached
 * through it, so a backend that adds a read's symlink target must not.  It
 * is a property of one access, not stored. */
#define SBX_NOFOLLOW  0x200u

/* Qualifier: the system refused the access (a policy or permissions:
 * EACCES, EPERM).  The other bits say what was asked for.  A refused call
 * only looked at its name, so the path is recorded as a probe; what it
 * asked for is kept apart for Result.denied (sbx_pathset_foreach_refused).
 * Build it with sbx_access_refused() (access.h). */
#define SBX_REFUSED   0x400u

typedef struct sbx_pathset sbx_pathset;

sbx_pathset *sbx_pathset_new(void);
/* The same with room for about `n` paths before it first grows (a
 * process's own set starts small: most processes touch few files). */
sbx_pathset *sbx_pathset_new_sized(size_t n);
/* How many paths it holds. */
size_t sbx_pathset_count(const sbx_pathset *ps);
void sbx_pathset_free(sbx_pathset *ps);

/* Record `path` (len bytes, need not be NUL-terminated) in `flags`
 * categories.  Returns 0, or -1 when memory ran out (the caller marks the
 * run incomplete). */
int sbx_pathset_add(sbx_pathset *ps, const char *path, size_t len, unsigned flags);

/* The same access into two sets at once: `owner` keeps its own copy of the
 * path, `borrower` refers to that copy (one hash, one copy: the run's set
 * and a process's own).  `owner` must outlive `borrower`.  0 or -1. */
int sbx_pathset_add_both(sbx_pathset *owner, sbx_pathset *borrower, const char *path,
                         size_t len, unsigned flags);

/* The categories `path` has so far (0 when absent). */
unsigned sbx_pathset_get(const sbx_pathset *ps, const char *path, size_t len);

/* Visit every path in byte-wise sorted order with its public categories.
 * Stops early and returns the callback's value when it is non-zero. */
typedef int (*sbx_pathset_visit)(void *ctx, const char *path, size_t len,
                                 unsigned categories);
int sbx_pathset_foreach_sorted(const sbx_pathset *ps, sbx_pathset_visit fn, void *ctx);

/* Visit, in the same order, every path an access to which was refused,
 * with what was asked for (SBX_READ and/or SBX_WRITE; a refused listing
 * counts as a read). */
int sbx_pathset_foreach_refused(const sbx_pathset *ps, sbx_pathset_visit fn, void *ctx);

/* The same in no particular order: for consumers that build sets anyway
 * (the Python Result), a million paths need no sort. */
int sbx_pathset_foreach(const sbx_pathset *ps, sbx_pathset_visit fn, void *ctx);

#endif
