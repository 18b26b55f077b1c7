/* result.h — what one traced run produced, in C, the same for every backend.
 *
 * The Python extension turns it into a sandbox_py.Result; the command-line
 * front (sbx-trace) writes it as the JSON schema of docs/json-schema.md.
 * Portable C99 (Linux extension and Windows launcher share it).
 */
#ifndef SBX_RESULT_H
#define SBX_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "pathset.h"

struct sbx_exec {
    int64_t pid, ppid;
    char *path;              /* absolute, clean; UTF-8 on Windows */
    char **argv;             /* argc strings */
    size_t argc;
    int breakaway;           /* left the run at this exec, by declaration:
                              * Result.breakaways, not Result.execs */
};

struct sbx_result {
    sbx_pathset *paths;
    struct sbx_exec *execs;
    size_t nexecs, cap_execs;
    char **warnings;         /* human-readable, one reason each */
    size_t nwarnings, cap_warnings;
    int complete;            /* 0 as soon as anything may be missing */
    int has_status;          /* set by launchers that reap the root */
    int status;              /* subprocess convention: <0 = killed by signal */
};

struct sbx_result *sbx_result_new(void);
void sbx_result_free(struct sbx_result *r);

/* Record a warning and mark the result incomplete (printf-style).  The same
 * warning text is kept once. */
void sbx_result_warn(struct sbx_result *r, const char *fmt, ...);

/* Append an exec record (strings are copied).  Returns 0 or -1. */
int sbx_result_add_exec(struct sbx_result *r, int64_t pid, int64_t ppid,
                        const char *path, const char *const *argv, size_t argc);

/* Record that process `pid` left the run at its exec of `path` (breakaway
 * declaration): an exec record marked breakaway, listed apart. */
/* Forget the last exec record (an announced breakaway whose exec failed). */
void sbx_result_drop_last_exec(struct sbx_result *r);
int sbx_result_add_breakaway(struct sbx_result *r, int64_t pid, int64_t ppid,
                             const char *path, const char *const *argv, size_t argc);

#endif
