/* launcher.h — run one command under the Windows backend.
 *
 * CreateProcessW(CREATE_SUSPENDED) inside a job object, inject the hook
 * DLL, resume, collect the events every process of the tree sends over a
 * named pipe, wait until the whole job is empty (killing it on timeout), and
 * turn the events into a struct sbx_result.
 */
#ifndef SBX_WIN_LAUNCHER_H
#define SBX_WIN_LAUNCHER_H

#include <windows.h>

#include "result.h"

struct sbx_win_run {
    const wchar_t *cmdline;   /* the command line the root is started with */
    const wchar_t *cwd;       /* NULL: ours */
    const wchar_t *dll;       /* full path of sbx_hook.dll */
    const char *const *argv;  /* UTF-8 argv for the root's exec record */
    size_t argc;
    double timeout;           /* seconds; < 0: none */
    const wchar_t *breakaway; /* programs that leave the run, one per line, or NULL */
    /* The policy blob (csrc/win/winpolicy.h) or NULL; accesses outside it
     * are appended to *denied (which must then be given). */
    const void *policy;
    size_t policy_len;
    struct sbx_win_denials *denied;
};

/* Accesses outside the policy, as the hook DLLs reported them. */
struct sbx_win_denial {
    char *path;               /* UTF-8, normal form */
    const char *category;     /* "read", "write", "probe", "enumeration", "exec" */
    uint32_t pid;
};
struct sbx_win_denials {
    struct sbx_win_denial *v;
    size_t n, cap;
};
void sbx_win_denials_free(struct sbx_win_denials *d);

/* Returns the result (status set), or NULL with a sentence in err when the
 * command could not be started; *start_error is then the Win32 error. */
struct sbx_result *sbx_win_run(const struct sbx_win_run *run, double *duration,
                               DWORD *start_error, char *err, size_t errlen);

#endif
