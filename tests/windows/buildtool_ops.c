/* buildtool_ops.c — the path spellings and calls that build tools (MSBuild,
 * cl.exe, link.exe, git) use and that a plain open/read/write test misses.
 *
 *     buildtool_ops.exe MODE DIR
 *
 * Each mode works on files the test prepared in DIR (a Windows path) and
 * exits 0 when every call that should succeed did; a few modes print what
 * the test needs to know about the system (the short name it was given), so
 * a test can tell "not exercised" from "passed".
 */
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <winternl.h>
#include <shellapi.h>

static wchar_t dir[4096];
static int failures;
static DWORD n_dummy;

static const wchar_t *in_dir(const wchar_t *name)
{
    static wchar_t buf[4][4096];
    static int k;
    wchar_t *b = buf[k++ % 4];
    _snwprintf(b, 4096, L"%ls\\%ls", dir, name);
    return b;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "buildtool_ops: %s failed (error %lu)\n", what, GetLastError());
        failures++;
    }
}

static void read_file(const wchar_t *path)
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    check(h != INVALID_HANDLE_VALUE, "CreateFileW(read)");
    char b[64];
    DWORD n;
    check(ReadFile(h, b, sizeof b, &n, NULL), "ReadFile");
    CloseHandle(h);
}

/* 8.3 names: what a tool gets from GetShortPathNameW (or from an old
 * response file) and then opens. */
static void mode_shortname(void)
{
    wchar_t sfile[4096], sdir[4096], p[4096];
    check(GetShortPathNameW(in_dir(L"c19_long_directory_name\\a_rather_long_file_name.text"),
                            sfile, 4096) > 0, "GetShortPathNameW(file)");
    check(GetShortPathNameW(in_dir(L"c19_long_directory_name"), sdir, 4096) > 0,
          "GetShortPathNameW(dir)");
    wprintf(L"short file: %ls\nshort dir: %ls\n", sfile, sdir);
    read_file(sfile);
    /* an absent file under a short directory name: a probe */
    _snwprintf(p, 4096, L"%ls\\absent_long_name.txt", sdir);
    check(GetFileAttributesW(p) == INVALID_FILE_ATTRIBUTES, "absent under short dir");
    /* an absent file whose own name looks short (and matches nothing) */
    _snwprintf(p, 4096, L"%ls\\NOPE~1.TXT", sdir);
    check(GetFileAttributesW(p) == INVALID_FILE_ATTRIBUTES, "absent short-looking name");
    /* a listing through the short directory name */
    WIN32_FIND_DATAW fd;
    _snwprintf(p, 4096, L"%ls\\*", sdir);
    HANDLE f = FindFirstFileW(p, &fd);
    check(f != INVALID_HANDLE_VALUE, "FindFirstFileW(short dir)");
    FindClose(f);
    /* a write through the short directory name */
    _snwprintf(p, 4096, L"%ls\\written_through_short.txt", sdir);
    HANDLE h = CreateFileW(p, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    DWORD n;
    check(h != INVALID_HANDLE_VALUE && WriteFile(h, "x", 1, &n, NULL), "write via short dir");
    CloseHandle(h);
}

/* NT-namespace spellings handed to Win32 calls. */
static void mode_nsprefix(void)
{
    wchar_t p[4096];
    _snwprintf(p, 4096, L"\\??\\%ls", in_dir(L"np.txt"));
    read_file(p);
    _snwprintf(p, 4096, L"\\??\\%ls", in_dir(L"missing.txt"));
    check(GetFileAttributesW(p) == INVALID_FILE_ATTRIBUTES, "GetFileAttributesW(\\??\\missing)");
    _snwprintf(p, 4096, L"\\??\\%ls", in_dir(L"out.txt"));
    HANDLE h = CreateFileW(p, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
    DWORD n;
    check(h != INVALID_HANDLE_VALUE && WriteFile(h, "x", 1, &n, NULL), "CreateFileW(\\??\\ new)");
    CloseHandle(h);
    _snwprintf(p, 4096, L"\\\\?\\%ls", in_dir(L"qp.txt"));
    read_file(p);
    _snwprintf(p, 4096, L"\\\\.\\%ls", in_dir(L"dp.txt"));
    read_file(p);
    /* \\?\UNC\server\share: may fail here (no such server); recorded either way */
    GetFileAttributesW(L"\\\\?\\UNC\\sbxnohost\\share\\unc_probe.txt");
}

typedef NTSTATUS(NTAPI *NtOpenFile_t)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                                      ULONG, ULONG);
typedef NTSTATUS(NTAPI *NtSetInformationFile_t)(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, ULONG);

/* FileLinkInformation through ntdll, as CreateHardLinkW does underneath. */
static void nt_link(const wchar_t *from, const wchar_t *to)
{
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    NtOpenFile_t pNtOpenFile = (NtOpenFile_t)(void *)GetProcAddress(nt, "NtOpenFile");
    NtSetInformationFile_t pNtSetInformationFile =
        (NtSetInformationFile_t)(void *)GetProcAddress(nt, "NtSetInformationFile");
    wchar_t name[4096];
    _snwprintf(name, 4096, L"\\??\\%ls", from);
    UNICODE_STRING us = {(USHORT)(wcslen(name) * 2), (USHORT)(wcslen(name) * 2), name};
    OBJECT_ATTRIBUTES oa;
    memset(&oa, 0, sizeof oa);
    oa.Length = sizeof oa;
    oa.ObjectName = &us;
    oa.Attributes = OBJ_CASE_INSENSITIVE;
    IO_STATUS_BLOCK io;
    HANDLE h = NULL;
    NTSTATUS st = pNtOpenFile(&h, SYNCHRONIZE | FILE_READ_ATTRIBUTES, &oa, &io,
                              FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, 0x20);
    check(st >= 0, "NtOpenFile(link source)");
    wchar_t target[4096];
    _snwprintf(target, 4096, L"\\??\\%ls", to);
    size_t tl = wcslen(target) * 2;
    struct {
        BOOLEAN replace;
        HANDLE root;
        ULONG len;
        WCHAR name[4096];
    } li;
    memset(&li, 0, sizeof li);
    li.len = (ULONG)tl;
    memcpy(li.name, target, tl);
    st = pNtSetInformationFile(h, &io, &li, (ULONG)(offsetof(__typeof__(li), name) + tl),
                               11 /* FileLinkInformation */);
    check(st >= 0, "NtSetInformationFile(FileLinkInformation)");
    CloseHandle(h);
}

/* The existing name of a hard link and the old name of a rename: their
 * content lives on under the new name, so they are reads (when they
 * existed before the run) as well as what the name change writes. */
static void mode_links(void)
{
    check(CreateHardLinkW(in_dir(L"hl_new.txt"), in_dir(L"hl_src.txt"), NULL), "CreateHardLinkW");
    nt_link(in_dir(L"nl_src.txt"), in_dir(L"nl_new.txt"));
    check(MoveFileExW(in_dir(L"mv_old.txt"), in_dir(L"mv_new.txt"), 0), "MoveFileExW");
    check(MoveFileW(in_dir(L"mw_old.txt"), in_dir(L"mw_new.txt")), "MoveFileW");
    /* made by the run, then renamed: its content came from the run */
    HANDLE h = CreateFileW(in_dir(L"made_tmp.txt"), GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
    DWORD n;
    check(h != INVALID_HANDLE_VALUE && WriteFile(h, "x", 1, &n, NULL), "create made_tmp");
    CloseHandle(h);
    check(MoveFileExW(in_dir(L"made_tmp.txt"), in_dir(L"made_final.txt"), 0), "rename made_tmp");
}

/* ReadFileScatter / WriteFileGather: unbuffered, overlapped, page-sized. */
static void mode_scatter(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    DWORD page = si.dwPageSize;
    char *buf = VirtualAlloc(NULL, page, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    FILE_SEGMENT_ELEMENT seg[2];
    memset(seg, 0, sizeof seg);
    seg[0].Buffer = PtrToPtr64(buf);
    OVERLAPPED ov;

    HANDLE h = CreateFileW(in_dir(L"scatter_in.bin"), GENERIC_READ, FILE_SHARE_READ, NULL,
                           OPEN_EXISTING, FILE_FLAG_NO_BUFFERING | FILE_FLAG_OVERLAPPED, NULL);
    check(h != INVALID_HANDLE_VALUE, "open scatter_in");
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD n = 0;
    BOOL ok = ReadFileScatter(h, seg, page, NULL, &ov);
    ok = (ok || GetLastError() == ERROR_IO_PENDING) && GetOverlappedResult(h, &ov, &n, TRUE);
    check(ok && n == page && buf[0] == 'S', "ReadFileScatter");
    CloseHandle(h);

    h = CreateFileW(in_dir(L"gather_out.bin"), GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                    FILE_FLAG_NO_BUFFERING | FILE_FLAG_OVERLAPPED, NULL);
    check(h != INVALID_HANDLE_VALUE, "open gather_out");
    memset(buf, 'G', page);
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    ok = WriteFileGather(h, seg, page, NULL, &ov);
    ok = (ok || GetLastError() == ERROR_IO_PENDING) && GetOverlappedResult(h, &ov, &n, TRUE);
    check(ok && n == page, "WriteFileGather");
    CloseHandle(h);
}

/* A child started with console flags, and waited for. */
static DWORD spawn_self(const wchar_t *self, const wchar_t *mode, DWORD flags)
{
    wchar_t cmd[8192];
    _snwprintf(cmd, 8192, L"\"%ls\" %ls \"%ls\"", self, mode, dir);
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessW(NULL, cmd, NULL, NULL, FALSE, flags, NULL, NULL, &si, &pi)) {
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

static void mode_console(const wchar_t *self)
{
    check(spawn_self(self, L"readchild_nowin", CREATE_NO_WINDOW) == 0, "CREATE_NO_WINDOW child");
    check(spawn_self(self, L"readchild_newcon", CREATE_NEW_CONSOLE) == 0,
          "CREATE_NEW_CONSOLE child");
}

static void mode_shellexec(const wchar_t *self)
{
    wchar_t params[4096];
    _snwprintf(params, 4096, L"readchild_shell \"%ls\"", dir);
    SHELLEXECUTEINFOW se;
    memset(&se, 0, sizeof se);
    se.cbSize = sizeof se;
    se.fMask = SEE_MASK_NOCLOSEPROCESS | SEE_MASK_FLAG_NO_UI;
    se.lpVerb = L"open";
    se.lpFile = self;
    se.lpParameters = params;
    se.nShow = SW_HIDE;
    check(ShellExecuteExW(&se), "ShellExecuteExW");
    check(se.hProcess != NULL, "ShellExecuteExW gave a process");
    if (se.hProcess) {
        WaitForSingleObject(se.hProcess, INFINITE);
        DWORD code = 1;
        GetExitCodeProcess(se.hProcess, &code);
        check(code == 0, "ShellExecuteExW child exit status");
        CloseHandle(se.hProcess);
    }
}

/* A child started through the 8.3 alias of its image (old makefiles and
 * response files carry C:\PROGRA~1\...): its exec and image read are
 * reported under the long name. */
static void mode_spawnshort(const wchar_t *self)
{
    wchar_t s[4096];
    check(GetShortPathNameW(self, s, 4096) > 0, "GetShortPathNameW(self)");
    wprintf(L"short self: %ls\n", s);
    fflush(stdout);
    check(spawn_self(s, L"readchild_short", 0) == 0, "child through its short name");
}

/* File-system controls that change a file (FSCTL_SET_SPARSE) through a
 * handle opened with no intent to write data; prints what the system
 * supports, so the test can tell "not supported here" from "not recorded". */
static void mode_fsctl(void)
{
    HANDLE h = CreateFileW(in_dir(L"sparse.bin"), GENERIC_READ | GENERIC_WRITE, 0, NULL,
                           OPEN_EXISTING, 0, NULL);
    check(h != INVALID_HANDLE_VALUE, "open sparse.bin");
    DWORD n;
    BOOL ok = DeviceIoControl(h, FSCTL_SET_SPARSE, NULL, 0, NULL, 0, &n, NULL);
    wprintf(L"set sparse: %ls\n", ok ? L"ok" : L"unsupported");
    CloseHandle(h);
}

/* SetFileSecurityW: a metadata change (like chmod), through ntdll. */
static void mode_security(void)
{
    SECURITY_DESCRIPTOR sd;
    check(InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION), "InitializeSD");
    check(SetSecurityDescriptorDacl(&sd, TRUE, NULL, FALSE), "SetSecurityDescriptorDacl");
    BOOL ok = SetFileSecurityW(in_dir(L"secured.txt"), DACL_SECURITY_INFORMATION, &sd);
    wprintf(L"set security: %ls\n", ok ? L"ok" : L"unsupported");
}

/* OpenFileById: the "name" in OBJECT_ATTRIBUTES is a binary file id. */
static void mode_byid(void)
{
    HANDLE h = CreateFileW(in_dir(L"byid.txt"), GENERIC_READ, FILE_SHARE_READ, NULL,
                           OPEN_EXISTING, 0, NULL);
    BY_HANDLE_FILE_INFORMATION bi;
    check(h != INVALID_HANDLE_VALUE && GetFileInformationByHandle(h, &bi), "file id");
    CloseHandle(h);
    HANDLE vol = CreateFileW(dir, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                             OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    check(vol != INVALID_HANDLE_VALUE, "open dir for OpenFileById");
    FILE_ID_DESCRIPTOR id;
    memset(&id, 0, sizeof id);
    id.dwSize = sizeof id;
    id.Type = FileIdType;
    id.FileId.QuadPart = ((LONGLONG)bi.nFileIndexHigh << 32) | bi.nFileIndexLow;
    h = OpenFileById(vol, &id, GENERIC_READ, FILE_SHARE_READ, NULL, 0);
    if (h == INVALID_HANDLE_VALUE) {
        wprintf(L"open by id: unsupported (%lu)\n", GetLastError());
    } else {
        char b[16];
        check(ReadFile(h, b, sizeof b, &n_dummy, NULL), "ReadFile(by id)");
        wprintf(L"open by id: ok\n");
        CloseHandle(h);
    }
    /* an id that names nothing */
    id.FileId.QuadPart = 0x7fffffff12345LL;
    h = OpenFileById(vol, &id, GENERIC_READ, FILE_SHARE_READ, NULL, 0);
    check(h == INVALID_HANDLE_VALUE, "OpenFileById(bogus id) fails");
    CloseHandle(vol);
}

/* CreateProcessAsUserW is not hooked: the child runs without the DLL, and
 * the run must say so rather than look complete. */
static void mode_untraced(const wchar_t *self)
{
    wchar_t cmd[8192];
    _snwprintf(cmd, 8192, L"\"%ls\" readchild_asuser \"%ls\"", self, dir);
    HANDLE token = NULL;
    check(OpenProcessToken(GetCurrentProcess(), TOKEN_ALL_ACCESS, &token), "OpenProcessToken");
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessAsUserW(token, NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        check(0, "CreateProcessAsUserW");
        return;
    }
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    check(code == 0, "untraced child exit status");
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    CloseHandle(token);
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: buildtool_ops MODE DIR\n");
        return 2;
    }
    wcsncpy(dir, argv[2], 4095);
    const wchar_t *m = argv[1];
    if (!wcscmp(m, L"shortname")) mode_shortname();
    else if (!wcscmp(m, L"nsprefix")) mode_nsprefix();
    else if (!wcscmp(m, L"links")) mode_links();
    else if (!wcscmp(m, L"scatter")) mode_scatter();
    else if (!wcscmp(m, L"exitcode")) ExitProcess(0xC0000135);
    else if (!wcscmp(m, L"console")) mode_console(argv[0]);
    else if (!wcscmp(m, L"shellexec")) mode_shellexec(argv[0]);
    else if (!wcscmp(m, L"untraced")) mode_untraced(argv[0]);
    else if (!wcscmp(m, L"spawnshort")) mode_spawnshort(argv[0]);
    else if (!wcscmp(m, L"fsctl")) mode_fsctl();
    else if (!wcscmp(m, L"byid")) mode_byid();
    else if (!wcscmp(m, L"security")) mode_security();
    else if (!wcsncmp(m, L"readchild_", 10)) {
        wchar_t name[64];
        _snwprintf(name, 64, L"%ls.txt", m + 10);
        read_file(in_dir(name));
    } else {
        fprintf(stderr, "buildtool_ops: unknown mode\n");
        return 2;
    }
    fflush(stdout);
    return failures ? 1 : 0;
}
