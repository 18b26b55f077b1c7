/* popen_like.c — start a program the way Python's subprocess.Popen does on
 * Windows when given executable=: CreateProcessW(APP, CMDLINE).  Lets the
 * test of sandbox_py/_backends/detours.py run sbx-trace.exe in wrapper mode
 * under Wine exactly as Popen would.
 *
 *     popen_like.exe APP CMDLINE      exits with the program's status
 */
#include <stdio.h>
#include <wchar.h>
#include <windows.h>

int wmain(int argc, wchar_t **argv)
{
    if (argc < 3)
        return 2;
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessW(argv[1], argv[2], NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "popen_like: CreateProcessW failed (%lu)\n", GetLastError());
        return 3;
    }
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    /* What Popen.returncode would be: the DWORD, unsigned (under Wine the
     * Unix exit status keeps only its low byte). */
    printf("exit code %lu\n", (unsigned long)code);
    return (int)code;
}
