/* ba_build.c — a build that starts a daemon (tests/windows/ba_daemon.c):
 *   ba_build.exe DAEMON DIR SECONDS [SLEEP]
 * reads DIR\input.txt, runs "DAEMON start DIR SECONDS" and waits for it,
 * writes DIR\out.txt, then sleeps SLEEP seconds (a build that overruns its
 * timeout). */
#include <windows.h>
#include <wchar.h>

int wmain(int argc, wchar_t **argv)
{
    if (argc < 4)
        return 2;
    wchar_t path[MAX_PATH * 2], cmd[MAX_PATH * 4];
    char buf[64];
    DWORD n;
    _snwprintf(path, MAX_PATH * 2, L"%ls\\input.txt", argv[2]);
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return 3;
    ReadFile(h, buf, sizeof buf, &n, NULL);
    CloseHandle(h);
    _snwprintf(cmd, MAX_PATH * 4, L"\"%ls\" start \"%ls\" %ls", argv[1], argv[2], argv[3]);
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessW(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
        return 4;
    WaitForSingleObject(pi.hProcess, INFINITE);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    _snwprintf(path, MAX_PATH * 2, L"%ls\\out.txt", argv[2]);
    h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return 5;
    WriteFile(h, "built\n", 6, &n, NULL);
    CloseHandle(h);
    if (argc > 4)
        Sleep((DWORD)_wtoi(argv[4]) * 1000);
    return 0;
}
