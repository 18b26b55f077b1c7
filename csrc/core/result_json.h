/* result_json.h — write a struct sbx_result as the JSON of
 * docs/json-schema.md (`sandbox_py.result/1`).
 *
 * Portable C99: the Windows launcher (sbx-trace.exe) and a Linux build of
 * sbx-trace share it.  Strings are written with `ensure_ascii`: valid UTF-8
 * becomes \uXXXX escapes, and a byte that is not UTF-8 becomes the lone
 * surrogate \udcXX, which is what Python's os.fsdecode gives for it.
 */
#ifndef SBX_RESULT_JSON_H
#define SBX_RESULT_JSON_H

#include <stddef.h>
#include <stdio.h>

#include "result.h"

struct sbx_json_run {
    const char *const *args;  /* the command as given (UTF-8) */
    size_t nargs;
    const char *backend;      /* "detours", "ebpf", ... */
    double duration;          /* seconds, spawn to last exit */
    int returncode;           /* used when the result has no status */
    int status_is_dword;      /* Windows: an exit code is a DWORD (0xC0000135 is
                                 3221225781, as subprocess reports it), never negative;
                                 the run's and each process's */
    /* More members of the object, written after "execs" (each as ", \"name\":
     * value"): what one launcher knows beyond the sbx_result (the Windows
     * launcher's "denied").  NULL: none. */
    void (*extra)(FILE *f, void *arg);
    void *extra_arg;
};

/* Write the JSON object (one line, then a newline), "processes" included:
 * the records as they are, so settle them first (sbx_result_settle_processes,
 * which the Windows launcher calls when the run is over).  Returns 0, or -1
 * when the stream reported an error or memory ran out. */
int sbx_result_write_json(FILE *f, const struct sbx_result *r, const struct sbx_json_run *run);

/* Write one JSON string literal (quotes included) for len bytes of s. */
void sbx_json_string(FILE *f, const char *s, size_t len);

#endif
