/* enforce_ops.c — file operations a policy may refuse, through the Win32
 * and the NT layer, each reported on stdout as "<op> ok" or "<op> error N"
 * (N: GetLastError(), or the NTSTATUS in hex for the nt* operations).
 *
 *     enforce_ops.exe OP PATH [PATH2] [OP PATH ...]
 *
 * OP: w32read (CreateFileW + ReadFile), w32write (CreateFileW CREATE_ALWAYS
 * + WriteFile), w32append (OPEN_EXISTING for writing), ntread / ntwrite
 * (NtCreateFile, \??\ names), delete (DeleteFileW), ntdelete
 * (NtDeleteFile), rename PATH PATH2 (MoveFileExW), ntrename PATH PATH2
 * (NtSetInformationFile FileRenameInformation), link EXISTING NEW
 * (CreateHardLinkW), byidwrite (OpenFileById for writing), stat
 * (GetFileAttributesW),
 * list (FindFirstFileW DIR\*), mkdir (CreateDirectoryW), exec
 * (CreateProcessW, waits; "ok" when it started), run NAME (CreateProcessW
 * with a bare name, searched for as Windows does), spawn PROGRAM ARGS...
 * (CreateProcessW with the rest of the command line, which this program
 * then does not run itself), policyhack - (looks through its own handles for
 * the policy section and tries to get it writable: mapping it for writing,
 * duplicating the handle with more rights, making the read-only view
 * writable; prints "policyhack found N writable M", N 0 or 1).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <winternl.h>

#define SYNC_NONALERT 0x20
#define NON_DIRECTORY_FILE 0x40

typedef NTSTATUS(NTAPI *NtCreateFile_t)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                                        PLARGE_INTEGER, ULONG, ULONG, ULONG, ULONG, PVOID, ULONG);
typedef NTSTATUS(NTAPI *NtReadWrite_t)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG,
                                       PLARGE_INTEGER, PULONG);
typedef NTSTATUS(NTAPI *NtSetInformationFile_t)(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, ULONG);
typedef NTSTATUS(NTAPI *NtDeleteFile_t)(POBJECT_ATTRIBUTES);
typedef NTSTATUS(NTAPI *NtClose_t)(HANDLE);

static NtCreateFile_t pNtCreateFile;
static NtReadWrite_t pNtReadFile, pNtWriteFile;
static NtSetInformationFile_t pNtSetInformationFile;
static NtDeleteFile_t pNtDeleteFile;
static NtClose_t pNtClose;

static void say_w32(const char *op, BOOL ok)
{
    if (ok)
        printf("%s ok\n", op);
    else
        printf("%s error %lu\n", op, (unsigned long)GetLastError());
}

static void say_nt(const char *op, NTSTATUS st)
{
    if (st >= 0)
        printf("%s ok\n", op);
    else
        printf("%s error 0x%08lx\n", op, (unsigned long)st);
}

/* \??\ + the full Win32 path */
static void nt_name(const wchar_t *path, wchar_t *out, UNICODE_STRING *us, OBJECT_ATTRIBUTES *oa)
{
    wchar_t full[MAX_PATH * 4];
    GetFullPathNameW(path, MAX_PATH * 4, full, NULL);
    _snwprintf(out, MAX_PATH * 4, L"\\??\\%ls", full);
    us->Buffer = out;
    us->Length = (USHORT)(wcslen(out) * sizeof(wchar_t));
    us->MaximumLength = us->Length;
    memset(oa, 0, sizeof *oa);
    oa->Length = sizeof *oa;
    oa->ObjectName = us;
    oa->Attributes = OBJ_CASE_INSENSITIVE;
}

static NTSTATUS nt_open(const wchar_t *path, ACCESS_MASK access, ULONG disposition, HANDLE *h)
{
    wchar_t name[MAX_PATH * 4];
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK io;
    nt_name(path, name, &us, &oa);
    return pNtCreateFile(h, access | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, disposition,
                         SYNC_NONALERT | NON_DIRECTORY_FILE, NULL, 0);
}

int wmain(int argc, wchar_t **argv)
{
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    pNtCreateFile = (NtCreateFile_t)(void *)GetProcAddress(nt, "NtCreateFile");
    pNtReadFile = (NtReadWrite_t)(void *)GetProcAddress(nt, "NtReadFile");
    pNtWriteFile = (NtReadWrite_t)(void *)GetProcAddress(nt, "NtWriteFile");
    pNtSetInformationFile = (NtSetInformationFile_t)(void *)GetProcAddress(nt, "NtSetInformationFile");
    pNtDeleteFile = (NtDeleteFile_t)(void *)GetProcAddress(nt, "NtDeleteFile");
    pNtClose = (NtClose_t)(void *)GetProcAddress(nt, "NtClose");
    setvbuf(stdout, NULL, _IONBF, 0);

    for (int i = 1; i + 1 < argc; i += 2) {
        char op[32];
        WideCharToMultiByte(CP_UTF8, 0, argv[i], -1, op, sizeof op, NULL, NULL);
        const wchar_t *p = argv[i + 1];
        char buf[64];
        DWORD n;
        IO_STATUS_BLOCK io;
        HANDLE h;
        if (!strcmp(op, "w32read") || !strcmp(op, "w32write") || !strcmp(op, "w32append")) {
            int write = op[3] != 'r';
            h = CreateFileW(p, write ? GENERIC_WRITE : GENERIC_READ, FILE_SHARE_READ, NULL,
                            !strcmp(op, "w32write") ? CREATE_ALWAYS : OPEN_EXISTING, 0, NULL);
            BOOL ok = h != INVALID_HANDLE_VALUE;
            if (ok) {
                ok = write ? WriteFile(h, "changed\n", 8, &n, NULL) : ReadFile(h, buf, sizeof buf, &n, NULL);
                CloseHandle(h);
            }
            say_w32(op, ok);
        } else if (!strcmp(op, "ntread") || !strcmp(op, "ntwrite")) {
            int write = op[2] == 'w';
            NTSTATUS st = nt_open(p, write ? FILE_GENERIC_WRITE : FILE_GENERIC_READ,
                                  write ? 5 /* FILE_OVERWRITE_IF */ : 1 /* FILE_OPEN */, &h);
            if (st >= 0) {
                st = write ? pNtWriteFile(h, NULL, NULL, NULL, &io, "changed\n", 8, NULL, NULL)
                           : pNtReadFile(h, NULL, NULL, NULL, &io, buf, sizeof buf, NULL, NULL);
                pNtClose(h);
            }
            say_nt(op, st);
        } else if (!strcmp(op, "delete")) {
            say_w32(op, DeleteFileW(p));
        } else if (!strcmp(op, "ntdelete")) {
            wchar_t name[MAX_PATH * 4];
            UNICODE_STRING us;
            OBJECT_ATTRIBUTES oa;
            nt_name(p, name, &us, &oa);
            say_nt(op, pNtDeleteFile(&oa));
        } else if (!strcmp(op, "rename") && i + 2 < argc) {
            say_w32(op, MoveFileExW(p, argv[i + 2], MOVEFILE_REPLACE_EXISTING));
            i++;
        } else if (!strcmp(op, "ntrename") && i + 2 < argc) {
            NTSTATUS st = nt_open(p, DELETE, 1, &h);
            if (st >= 0) {
                wchar_t target[MAX_PATH * 4], full[MAX_PATH * 4];
                GetFullPathNameW(argv[i + 2], MAX_PATH * 4, full, NULL);
                _snwprintf(target, MAX_PATH * 4, L"\\??\\%ls", full);
                size_t tl = wcslen(target) * sizeof(wchar_t);
                struct {
                    BOOLEAN replace;
                    HANDLE root;
                    ULONG len;
                    WCHAR name[MAX_PATH * 4];
                } ri;
                memset(&ri, 0, sizeof ri);
                ri.replace = TRUE;
                ri.len = (ULONG)tl;
                memcpy(ri.name, target, tl);
                st = pNtSetInformationFile(h, &io, &ri, sizeof ri, 10 /* FileRenameInformation */);
                pNtClose(h);
            }
            say_nt(op, st);
            i++;
        } else if (!strcmp(op, "byidwrite")) {
            /* OpenFileById(GENERIC_WRITE) of PATH, its id asked with an
             * attributes-only open, its directory as the volume hint */
            BOOL ok = FALSE;
            h = CreateFileW(p, FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                            OPEN_EXISTING, 0, NULL);
            BY_HANDLE_FILE_INFORMATION bi;
            if (h != INVALID_HANDLE_VALUE && GetFileInformationByHandle(h, &bi)) {
                CloseHandle(h);
                wchar_t dir[MAX_PATH * 4];
                wcsncpy(dir, p, MAX_PATH * 4 - 1);
                dir[MAX_PATH * 4 - 1] = 0;
                wchar_t *slash = wcsrchr(dir, L'\\');
                if (slash)
                    *slash = 0;
                HANDLE vol = CreateFileW(dir, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE,
                                         NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
                FILE_ID_DESCRIPTOR id;
                memset(&id, 0, sizeof id);
                id.dwSize = sizeof id;
                id.Type = FileIdType;
                id.FileId.QuadPart = ((LONGLONG)bi.nFileIndexHigh << 32) | bi.nFileIndexLow;
                h = OpenFileById(vol, &id, GENERIC_WRITE, FILE_SHARE_READ, NULL, 0);
                ok = h != INVALID_HANDLE_VALUE;
                if (ok) {
                    ok = WriteFile(h, "changed\n", 8, &n, NULL);
                    CloseHandle(h);
                }
                DWORD e = GetLastError();
                CloseHandle(vol);
                SetLastError(e);
            }
            say_w32(op, ok);
        } else if (!strcmp(op, "link") && i + 2 < argc) {
            /* link EXISTING NEW */
            say_w32(op, CreateHardLinkW(argv[i + 2], p, NULL));
            i++;
        } else if (!strcmp(op, "stat")) {
            say_w32(op, GetFileAttributesW(p) != INVALID_FILE_ATTRIBUTES);
        } else if (!strcmp(op, "list")) {
            wchar_t pattern[MAX_PATH * 4];
            WIN32_FIND_DATAW fd;
            _snwprintf(pattern, MAX_PATH * 4, L"%ls\\*", p);
            h = FindFirstFileW(pattern, &fd);
            if (h != INVALID_HANDLE_VALUE)
                FindClose(h);
            say_w32(op, h != INVALID_HANDLE_VALUE);
        } else if (!strcmp(op, "mkdir")) {
            say_w32(op, CreateDirectoryW(p, NULL));
        } else if (!strcmp(op, "policyhack")) {
            int found = 0, writable = 0;
            for (uintptr_t v = 4; v < 0x4000 && !found; v += 4) {
                HANDLE s = (HANDLE)v;
                const uint32_t *view = MapViewOfFile(s, FILE_MAP_READ, 0, 0, 0);
                if (!view)
                    continue;
                if (view[0] == 0x50584253u) {     /* "SBXP": csrc/win/winpolicy.h */
                    found++;
                    void *w = MapViewOfFile(s, FILE_MAP_WRITE, 0, 0, 0);
                    if (w) {
                        writable++;
                        UnmapViewOfFile(w);
                    }
                    HANDLE more;
                    if (DuplicateHandle(GetCurrentProcess(), s, GetCurrentProcess(), &more,
                                        SECTION_ALL_ACCESS, FALSE, 0)) {
                        w = MapViewOfFile(more, FILE_MAP_WRITE, 0, 0, 0);
                        if (w) {
                            writable++;
                            UnmapViewOfFile(w);
                        }
                        CloseHandle(more);
                    }
                    DWORD old;
                    if (VirtualProtect((void *)view, 4096, PAGE_READWRITE, &old))
                        writable++;
                }
                UnmapViewOfFile(view);
            }
            printf("policyhack found %d writable %d\n", found, writable);
        } else if (!strcmp(op, "spawn")) {
            static wchar_t cmd[32768];
            size_t n = 0;
            for (int k = i + 1; k < argc && n + wcslen(argv[k]) + 4 < 32768; k++)
                n += (size_t)_snwprintf(cmd + n, 32768 - n, L"%ls\"%ls\"", n ? L" " : L"", argv[k]);
            STARTUPINFOW si = {sizeof si};
            PROCESS_INFORMATION pi;
            BOOL ok = CreateProcessW(p, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
            DWORD e = GetLastError();
            if (ok) {
                WaitForSingleObject(pi.hProcess, INFINITE);
                CloseHandle(pi.hProcess);
                CloseHandle(pi.hThread);
            }
            SetLastError(e);
            say_w32(op, ok);
            break;
        } else if (!strcmp(op, "run")) {
            /* a bare name: CreateProcessW searches for it (the program's
             * directory, the current one, the system's, PATH) */
            STARTUPINFOW si = {sizeof si};
            PROCESS_INFORMATION pi;
            static wchar_t cmd[32768];
            _snwprintf(cmd, 32768, L"%ls", p);
            BOOL ok = CreateProcessW(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi);
            DWORD e = GetLastError();
            if (ok) {
                WaitForSingleObject(pi.hProcess, INFINITE);
                CloseHandle(pi.hProcess);
                CloseHandle(pi.hThread);
            }
            SetLastError(e);
            say_w32(op, ok);
        } else if (!strcmp(op, "exec")) {
            STARTUPINFOW si = {sizeof si};
            PROCESS_INFORMATION pi;
            wchar_t cmd[MAX_PATH * 4];
            _snwprintf(cmd, MAX_PATH * 4, L"\"%ls\"", p);
            BOOL ok = CreateProcessW(p, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi);
            DWORD e = GetLastError();
            if (ok) {
                WaitForSingleObject(pi.hProcess, INFINITE);
                CloseHandle(pi.hProcess);
                CloseHandle(pi.hThread);
            }
            SetLastError(e);
            say_w32(op, ok);
        } else {
            printf("%s unknown\n", op);
        }
    }
    return 0;
}
