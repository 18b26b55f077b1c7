/* ba_daemon.c — a build daemon for the breakaway test (tests/test_windows.py).
 *
 *   ba_daemon.exe start DIR SECONDS   starts "serve" detached and returns
 *   ba_daemon.exe serve DIR SECONDS   writes DIR\daemon_state.txt (a file of
 *                                      its own), lives SECONDS, then appends
 *                                      "done": proof it outlived the run
 */
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

static void note(const wchar_t *dir, const char *what)
{
    wchar_t path[MAX_PATH * 2];
    _snwprintf(path, MAX_PATH * 2, L"%ls\\daemon_state.txt", dir);
    HANDLE h = CreateFileW(path, FILE_APPEND_DATA, FILE_SHARE_READ, NULL, OPEN_ALWAYS,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return;
    char line[64];
    int n = snprintf(line, sizeof line, "%s %lu\n", what, (unsigned long)GetCurrentProcessId());
    DWORD w;
    WriteFile(h, line, (DWORD)n, &w, NULL);
    CloseHandle(h);
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 4)
        return 2;
    if (wcscmp(argv[1], L"serve") == 0) {
        note(argv[2], "started");
        Sleep((DWORD)_wtoi(argv[3]) * 1000);
        note(argv[2], "done");
        return 0;
    }
    wchar_t self[MAX_PATH], cmd[MAX_PATH * 4];
    GetModuleFileNameW(NULL, self, MAX_PATH);
    _snwprintf(cmd, MAX_PATH * 4, L"\"%ls\" serve \"%ls\" %ls", self, argv[2], argv[3]);
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessW(NULL, cmd, NULL, NULL, FALSE, DETACHED_PROCESS, NULL, NULL, &si, &pi))
        return 3;
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return 0;
}
