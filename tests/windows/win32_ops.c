/* win32_ops.c — Windows scenario program for tests/test_windows.py.
 *
 *     win32_ops.exe MODE DIR [EXTRA]
 *
 * Each MODE makes the Win32 calls a user's program would, on files the
 * test prepared in DIR (a Windows path), and exits 0 when every call that
 * should succeed did (so a test also notices when tracing broke the program).
 */
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

static wchar_t dir[4096];
static volatile LONG failures;

static const wchar_t *in_dir(const wchar_t *name)
{
    static __thread wchar_t buf[4][4096];   /* per thread: mode_threads */
    static __thread int k;
    wchar_t *b = buf[k++ % 4];
    _snwprintf(b, 4096, L"%ls\\%ls", dir, name);
    return b;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "win32_ops: %s failed (error %lu)\n", what, GetLastError());
        InterlockedIncrement(&failures);
    }
}

static void read_file(const wchar_t *path, DWORD access)
{
    HANDLE h = CreateFileW(path, access, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    check(h != INVALID_HANDLE_VALUE, "CreateFileW(read)");
    char b[64];
    DWORD n;
    for (int i = 0; i < 3; i++)
        check(ReadFile(h, b, sizeof b, &n, NULL), "ReadFile");
    CloseHandle(h);
}

static void write_file(const wchar_t *path)
{
    HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    check(h != INVALID_HANDLE_VALUE, "CreateFileW(write)");
    DWORD n;
    for (int i = 0; i < 3; i++)
        check(WriteFile(h, "data\n", 5, &n, NULL), "WriteFile");
    CloseHandle(h);
}

static void mode_open(void)
{
    read_file(in_dir(L"input.txt"), GENERIC_READ);
    /* opened read-write, only read: a read, not a write */
    read_file(in_dir(L"readwrite.txt"), GENERIC_READ | GENERIC_WRITE);
    write_file(in_dir(L"output.txt"));
    char a[4096];
    WideCharToMultiByte(CP_ACP, 0, in_dir(L"ansi.txt"), -1, a, sizeof a, NULL, NULL);
    HANDLE h = CreateFileA(a, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    char b[16];
    DWORD n;
    check(h != INVALID_HANDLE_VALUE && ReadFile(h, b, sizeof b, &n, NULL), "CreateFileA read");
    CloseHandle(h);
    /* opened, never read: only its existence was checked */
    h = CreateFileW(in_dir(L"untouched.txt"), GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    check(h != INVALID_HANDLE_VALUE, "open untouched");
    CloseHandle(h);
}

static void mode_probe(void)
{
    check(GetFileAttributesW(in_dir(L"absent1.txt")) == INVALID_FILE_ATTRIBUTES, "absent1 is absent");
    WIN32_FILE_ATTRIBUTE_DATA ad;
    check(!GetFileAttributesExW(in_dir(L"absent2.txt"), GetFileExInfoStandard, &ad), "absent2 is absent");
    HANDLE h = CreateFileW(in_dir(L"absent3.txt"), GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    check(h == INVALID_HANDLE_VALUE && GetLastError() == ERROR_FILE_NOT_FOUND, "absent3 open fails");
    check(GetFileAttributesW(in_dir(L"present.txt")) != INVALID_FILE_ATTRIBUTES, "present exists");
}

static void mode_list(void)
{
    WIN32_FIND_DATAW fd;
    int count = 0;
    HANDLE f = FindFirstFileW(in_dir(L"listed\\*"), &fd);
    check(f != INVALID_HANDLE_VALUE, "FindFirstFileW");
    do
        count++;
    while (FindNextFileW(f, &fd));
    FindClose(f);
    check(count >= 4, "listing sees . .. and two files");
    f = FindFirstFileExW(in_dir(L"other\\*.txt"), FindExInfoBasic, &fd, FindExSearchNameMatch, NULL, 0);
    check(f != INVALID_HANDLE_VALUE, "FindFirstFileExW");
    FindClose(f);
    /* no wildcard: asks whether one name exists; missing directory: a probe */
    f = FindFirstFileW(in_dir(L"listed\\a.txt"), &fd);
    check(f != INVALID_HANDLE_VALUE, "FindFirstFileW(exact name)");
    FindClose(f);
    check(FindFirstFileW(in_dir(L"no_such_dir\\*"), &fd) == INVALID_HANDLE_VALUE, "missing dir");
}

static void mode_rename(void)
{
    check(MoveFileExW(in_dir(L"old_name.txt"), in_dir(L"new_name.txt"), 0), "MoveFileExW");
}

static void mode_delete(void)
{
    check(DeleteFileW(in_dir(L"victim.txt")), "DeleteFileW");
    check(!DeleteFileW(in_dir(L"never_there.txt")), "DeleteFileW(absent) fails");
}

static void mode_copy(void)
{
    check(CopyFileW(in_dir(L"copy_src.txt"), in_dir(L"copy_dst.txt"), TRUE), "CopyFileW");
}

static void mode_mkdir(void)
{
    check(CreateDirectoryW(in_dir(L"made_dir"), NULL), "CreateDirectoryW");
    check(RemoveDirectoryW(in_dir(L"gone_dir")), "RemoveDirectoryW");
}

static void mode_cwd(void)
{
    check(SetCurrentDirectoryW(in_dir(L"sub")), "SetCurrentDirectoryW");
    read_file(L"rel.txt", GENERIC_READ);
    check(GetFileAttributesW(L"..\\up_absent.txt") == INVALID_FILE_ATTRIBUTES, "relative probe");
    FILE *f = fopen("crt.txt", "r");          /* the C runtime's path */
    char b[16];
    check(f && fgets(b, sizeof b, f), "fopen relative");
    if (f)
        fclose(f);
}

static void mode_long(const wchar_t *rel)
{
    wchar_t p[4096];
    _snwprintf(p, 4096, L"\\\\?\\%ls\\%ls", dir, rel);
    read_file(p, GENERIC_READ);
}

static void mode_unicode(void)
{
    /* h\u00e9llo-w\u00f6rld-\u65e5\u672c.txt, read; \u00f1ew-\U0001F600.txt, written */
    read_file(in_dir(L"h\u00e9llo-w\u00f6rld-\u65e5\u672c.txt"), GENERIC_READ);
    write_file(in_dir(L"\u00f1ew-\U0001F600.txt"));
}

static DWORD run_child(wchar_t *cmdline)
{
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessW(NULL, cmdline, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        check(0, "CreateProcessW");
        return 1;
    }
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    return code;
}

static void mode_spawn(const wchar_t *self)
{
    /* parent -> child (CreateProcessW) -> grandchild (CreateProcessA) */
    wchar_t cmd[8192];
    _snwprintf(cmd, 8192, L"\"%ls\" child \"%ls\"", self, dir);
    check(run_child(cmd) == 0, "child exit status");
}

static void mode_child(const wchar_t *self)
{
    read_file(in_dir(L"child_input.txt"), GENERIC_READ);
    char cmd[8192];
    WideCharToMultiByte(CP_ACP, 0, self, -1, cmd, 4096, NULL, NULL);
    char a[4096];
    WideCharToMultiByte(CP_ACP, 0, dir, -1, a, sizeof a, NULL, NULL);
    char line[8192];
    snprintf(line, sizeof line, "\"%s\" grandchild \"%s\"", cmd, a);
    STARTUPINFOA si = {sizeof si};
    PROCESS_INFORMATION pi;
    check(CreateProcessA(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi), "CreateProcessA");
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    check(code == 0, "grandchild exit status");
}

/* Who did what: the root reads its own input, starts two children at once
 * (one in its own directory through CreateProcessW, one in DIR\sub through
 * CreateProcessA), each reading a file of its own and only opening others
 * (mode_readone), waits for both, then writes.  The second child exits 7. */
static void mode_fanout(const wchar_t *self)
{
    read_file(in_dir(L"parent_input.txt"), GENERIC_READ);
    wchar_t cmd[8192];
    _snwprintf(cmd, 8192, L"\"%ls\" readone \"%ls\" one.txt 0", self, dir);
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION one, two;
    check(CreateProcessW(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &one),
          "CreateProcessW");
    char aself[4096], adir[4096], line[8192], sub[4096];
    WideCharToMultiByte(CP_ACP, 0, self, -1, aself, sizeof aself, NULL, NULL);
    WideCharToMultiByte(CP_ACP, 0, dir, -1, adir, sizeof adir, NULL, NULL);
    snprintf(line, sizeof line, "\"%s\" readone \"%s\" two.txt 7", aself, adir);
    snprintf(sub, sizeof sub, "%s\\sub", adir);
    STARTUPINFOA sia = {sizeof sia};
    check(CreateProcessA(NULL, line, NULL, NULL, FALSE, 0, NULL, sub, &sia, &two),
          "CreateProcessA");
    HANDLE both[2] = {one.hProcess, two.hProcess};
    WaitForMultipleObjects(2, both, TRUE, INFINITE);
    DWORD c1 = 1, c2 = 1;
    GetExitCodeProcess(one.hProcess, &c1);
    GetExitCodeProcess(two.hProcess, &c2);
    check(c1 == 0 && c2 == 7, "children's exit codes");
    write_file(in_dir(L"parent_output.txt"));
}

static void open_only(const wchar_t *path)
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    check(h != INVALID_HANDLE_VALUE, "CreateFileW(open only)");
    CloseHandle(h);
}

/* Read NAME; open, and close unread, a file of its own and the one the
 * root read before it started us. */
static int mode_readone(const wchar_t *name, int code)
{
    read_file(in_dir(name), GENERIC_READ);
    wchar_t other[256];
    _snwprintf(other, 256, L"only_opened_by_%ls", name);
    open_only(in_dir(other));
    open_only(in_dir(L"parent_input.txt"));
    return failures ? 1 : code;
}

/* Win32 calls that are not hooked themselves reach the NT hooks. */
static void mode_ntfallback(void)
{
    check(MoveFileW(in_dir(L"fb_old.txt"), in_dir(L"fb_new.txt")), "MoveFileW");
    check(SetFileAttributesW(in_dir(L"fb_attr.txt"), FILE_ATTRIBUTE_READONLY), "SetFileAttributesW");
    HANDLE h = CreateFileW(in_dir(L"fb_time.txt"), FILE_WRITE_ATTRIBUTES, 0, NULL, OPEN_EXISTING, 0, NULL);
    FILETIME ft = {0x12345678, 0x01d00000};
    check(h != INVALID_HANDLE_VALUE && SetFileTime(h, NULL, NULL, &ft), "SetFileTime");
    CloseHandle(h);
}

/* A child killed from outside cannot deliver its last events. */
static void mode_killchild(const wchar_t *self)
{
    wchar_t cmd[8192];
    _snwprintf(cmd, 8192, L"\"%ls\" sleep \"%ls\"", self, dir);
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    check(CreateProcessW(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi), "CreateProcessW");
    Sleep(500);
    check(TerminateProcess(pi.hProcess, 9), "TerminateProcess");
    WaitForSingleObject(pi.hProcess, INFINITE);
}

/* A tree that outlives any sensible timeout: root waits for a sleeping child. */
static void mode_sleeptree(const wchar_t *self)
{
    wchar_t cmd[8192];
    _snwprintf(cmd, 8192, L"\"%ls\" sleep \"%ls\"", self, dir);
    run_child(cmd);
}

/* Many threads at once: every file read must be reported. */
#define THREADS 8
#define PER_THREAD 40
static DWORD WINAPI reader_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        wchar_t name[64];
        _snwprintf(name, 64, L"t%d_%d.txt", t, i);
        read_file(in_dir(name), GENERIC_READ);
        if (i % 2) {
            _snwprintf(name, 64, L"missing_t%d_%d.txt", t, i);
            GetFileAttributesW(in_dir(name));
        }
    }
    return 0;
}

static void mode_threads(void)
{
    HANDLE th[THREADS];
    for (int t = 0; t < THREADS; t++)
        th[t] = CreateThread(NULL, 0, reader_thread, (void *)(intptr_t)t, 0, NULL);
    WaitForMultipleObjects(THREADS, th, TRUE, INFINITE);
}

static void mode_grandchild(void)
{
    read_file(in_dir(L"grandchild_input.txt"), GENERIC_READ);
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: win32_ops MODE DIR [EXTRA]\n");
        return 2;
    }
    wcsncpy(dir, argv[2], 4095);
    const wchar_t *m = argv[1];
    if (!wcscmp(m, L"open")) mode_open();
    else if (!wcscmp(m, L"probe")) mode_probe();
    else if (!wcscmp(m, L"list")) mode_list();
    else if (!wcscmp(m, L"rename")) mode_rename();
    else if (!wcscmp(m, L"delete")) mode_delete();
    else if (!wcscmp(m, L"copy")) mode_copy();
    else if (!wcscmp(m, L"mkdir")) mode_mkdir();
    else if (!wcscmp(m, L"cwd")) mode_cwd();
    else if (!wcscmp(m, L"long") && argc > 3) mode_long(argv[3]);
    else if (!wcscmp(m, L"unicode")) mode_unicode();
    else if (!wcscmp(m, L"spawn")) mode_spawn(argv[0]);
    else if (!wcscmp(m, L"child")) mode_child(argv[0]);
    else if (!wcscmp(m, L"grandchild")) mode_grandchild();
    else if (!wcscmp(m, L"sleep")) Sleep(60000);
    else if (!wcscmp(m, L"killchild")) mode_killchild(argv[0]);
    else if (!wcscmp(m, L"threads")) mode_threads();
    else if (!wcscmp(m, L"sleeptree")) mode_sleeptree(argv[0]);
    else if (!wcscmp(m, L"ntfallback")) mode_ntfallback();
    else if (!wcscmp(m, L"fanout")) mode_fanout(argv[0]);
    else if (!wcscmp(m, L"readone") && argc > 4) return mode_readone(argv[3], _wtoi(argv[4]));
    else {
        fprintf(stderr, "win32_ops: unknown mode\n");
        return 2;
    }
    return failures ? 1 : 0;
}
