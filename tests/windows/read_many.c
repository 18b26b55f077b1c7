/* read_many.c — the workload of bench/bench_windows.py.
 *
 *     read_many.exe DIR COUNT
 *
 * Opens DIR\f<i>.txt for i < COUNT, reads each to the end in 4 KB blocks
 * and closes it, then prints the seconds the loop took and the CPU seconds
 * the process used (user + kernel, hooks included; wineserver's share of
 * the work is not in it), so the benchmark can compare the loop alone as
 * well as the whole command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>
#include <windows.h>

int wmain(int argc, wchar_t **argv)
{
    if (argc < 3)
        return 2;
    int count = _wtoi(argv[2]);
    LARGE_INTEGER f, t0, t1;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t0);
    static char buf[4096];
    long long total = 0;
    for (int i = 0; i < count; i++) {
        wchar_t p[4096];
        _snwprintf(p, 4096, L"%ls\\f%d.txt", argv[1], i);
        HANDLE h = CreateFileW(p, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
        if (h == INVALID_HANDLE_VALUE) {
            fwprintf(stderr, L"read_many: CreateFileW(%ls) failed (error %lu)\n", p,
                     GetLastError());
            return 1;
        }
        DWORD n;
        while (ReadFile(h, buf, sizeof buf, &n, NULL) && n)
            total += n;
        CloseHandle(h);
    }
    QueryPerformanceCounter(&t1);
    FILETIME created, exited, kernel, user;
    GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user);
    ULARGE_INTEGER k = {{kernel.dwLowDateTime, kernel.dwHighDateTime}};
    ULARGE_INTEGER u = {{user.dwLowDateTime, user.dwHighDateTime}};
    printf("%.6f %.6f %lld\n", (double)(t1.QuadPart - t0.QuadPart) / f.QuadPart,
           (double)(k.QuadPart + u.QuadPart) / 1e7, total);
    return 0;
}
