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
};

/* Returns the result (status set), or NULL with a sentence in err when the
 * command could not be started; *start_error is then the Win32 error. */
struct sbx_result *sbx_win_run(const struct sbx_win_run *run, double *duration,
                               DWORD *start_error, char *err, size_t errlen);

#endif
