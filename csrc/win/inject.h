/* inject.h — load the hook DLL into a suspended process.
 *
 * Used by the launcher for the root process and by the hook DLL itself for
 * every child it sees created, so the whole tree gets the DLL before its
 * first instruction runs.
 */
#ifndef SBX_WIN_INJECT_H
#define SBX_WIN_INJECT_H

#include <windows.h>

/* Leave the configuration for process `pid` (pipe name, DLL path, parent,
 * breakaway declaration or NULL)
 * and load `dll` into it with a remote LoadLibraryW thread; waits until the
 * DLL reports its hooks installed.  The process must be suspended (its main
 * thread not yet run).  Returns 0, or a Win32 error code with a sentence in
 * err. */
/* The run's policy section (csrc/win/winpolicy.h), or NULL: every later
 * sbx_inject hands the process a duplicate it can only map for reading
 * (SECTION_MAP_READ | SECTION_QUERY), so no process of the tree can change
 * the policy its children get.  Failing to hand it over fails the
 * injection: a child must not run unpoliced. */
void sbx_inject_set_policy(HANDLE section);

DWORD sbx_inject(HANDLE process, DWORD pid, DWORD ppid, const wchar_t *dll,
                 const wchar_t *pipe, const wchar_t *breakaway, wchar_t *err, size_t errlen);

#endif
