/* nt_ops.c — file access through ntdll only, as Cygwin and MSYS2 programs
 * do (they open relative to a directory handle and never call CreateFileW).
 *
 *     nt_ops.exe DIR
 *
 * Exits 0 when every call that should succeed did.
 */
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <winternl.h>

#ifndef FILE_OPEN
#define FILE_OPEN 1
#define FILE_CREATE 2
#endif
#define SYNC_NONALERT 0x20
#define DIRECTORY_FILE 0x1
#define NON_DIRECTORY_FILE 0x40

typedef NTSTATUS(NTAPI *NtCreateFile_t)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                                        PLARGE_INTEGER, ULONG, ULONG, ULONG, ULONG, PVOID, ULONG);
typedef NTSTATUS(NTAPI *NtReadWrite_t)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG,
                                       PLARGE_INTEGER, PULONG);
typedef NTSTATUS(NTAPI *NtQueryAttributesFile_t)(POBJECT_ATTRIBUTES, PVOID);
typedef NTSTATUS(NTAPI *NtQueryDirectoryFile_t)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID,
                                                ULONG, ULONG, BOOLEAN, PUNICODE_STRING, BOOLEAN);
typedef NTSTATUS(NTAPI *NtSetInformationFile_t)(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, ULONG);
typedef NTSTATUS(NTAPI *NtDeleteFile_t)(POBJECT_ATTRIBUTES);
typedef NTSTATUS(NTAPI *NtClose_t)(HANDLE);

static NtCreateFile_t pNtCreateFile;
static NtReadWrite_t pNtReadFile, pNtWriteFile;
static NtQueryAttributesFile_t pNtQueryAttributesFile;
static NtQueryDirectoryFile_t pNtQueryDirectoryFile;
static NtSetInformationFile_t pNtSetInformationFile;
static NtDeleteFile_t pNtDeleteFile;
static NtClose_t pNtClose;
static int failures;

static void check(NTSTATUS st, int want_ok, const char *what)
{
    if ((st >= 0) != want_ok) {
        fprintf(stderr, "nt_ops: %s: status 0x%08lx\n", what, (unsigned long)st);
        failures++;
    }
}

static void init_oa(OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us, HANDLE root, const wchar_t *name)
{
    us->Buffer = (PWSTR)name;
    us->Length = (USHORT)(wcslen(name) * sizeof(wchar_t));
    us->MaximumLength = us->Length;
    memset(oa, 0, sizeof *oa);
    oa->Length = sizeof *oa;
    oa->RootDirectory = root;
    oa->ObjectName = us;
    oa->Attributes = OBJ_CASE_INSENSITIVE;
}

static HANDLE nt_open(HANDLE root, const wchar_t *name, ACCESS_MASK access, ULONG disp, ULONG opts,
                      int want_ok, const char *what)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    IO_STATUS_BLOCK io;
    HANDLE h = NULL;
    init_oa(&oa, &us, root, name);
    NTSTATUS st = pNtCreateFile(&h, access | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL,
                                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, disp,
                                opts | SYNC_NONALERT, NULL, 0);
    check(st, want_ok, what);
    return st >= 0 ? h : NULL;
}

static void nt_read(HANDLE h)
{
    char b[64];
    IO_STATUS_BLOCK io;
    for (int i = 0; i < 3; i++)
        pNtReadFile(h, NULL, NULL, NULL, &io, b, sizeof b, NULL, NULL);
}

struct rename_info {
    union { BOOLEAN replace; ULONG flags; } u;
    HANDLE root;
    ULONG len;
    WCHAR name[64];
};

int wmain(int argc, wchar_t **argv)
{
    if (argc < 2)
        return 2;
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    pNtCreateFile = (NtCreateFile_t)(void *)GetProcAddress(nt, "NtCreateFile");
    pNtReadFile = (NtReadWrite_t)(void *)GetProcAddress(nt, "NtReadFile");
    pNtWriteFile = (NtReadWrite_t)(void *)GetProcAddress(nt, "NtWriteFile");
    pNtQueryAttributesFile = (NtQueryAttributesFile_t)(void *)GetProcAddress(nt, "NtQueryAttributesFile");
    pNtQueryDirectoryFile = (NtQueryDirectoryFile_t)(void *)GetProcAddress(nt, "NtQueryDirectoryFile");
    pNtSetInformationFile = (NtSetInformationFile_t)(void *)GetProcAddress(nt, "NtSetInformationFile");
    pNtDeleteFile = (NtDeleteFile_t)(void *)GetProcAddress(nt, "NtDeleteFile");
    pNtClose = (NtClose_t)(void *)GetProcAddress(nt, "NtClose");

    wchar_t path[4096];
    /* absolute NT name */
    _snwprintf(path, 4096, L"\\??\\%ls\\nt_input.txt", argv[1]);
    HANDLE h = nt_open(NULL, path, GENERIC_READ, FILE_OPEN, NON_DIRECTORY_FILE, 1, "open nt_input");
    nt_read(h);
    pNtClose(h);

    /* the directory handle, then names relative to it */
    _snwprintf(path, 4096, L"\\??\\%ls", argv[1]);
    HANDLE d = nt_open(NULL, path, FILE_LIST_DIRECTORY | FILE_TRAVERSE, FILE_OPEN, DIRECTORY_FILE, 1, "open dir");
    h = nt_open(d, L"nt_rel.txt", GENERIC_READ, FILE_OPEN, NON_DIRECTORY_FILE, 1, "open relative");
    nt_read(h);
    pNtClose(h);
    nt_open(d, L"nt_absent.txt", GENERIC_READ, FILE_OPEN, NON_DIRECTORY_FILE, 0, "open absent");

    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    FILE_BASIC_INFORMATION bi;
    _snwprintf(path, 4096, L"\\??\\%ls\\nt_absent_attr.txt", argv[1]);
    init_oa(&oa, &us, NULL, path);
    check(pNtQueryAttributesFile(&oa, &bi), 0, "query absent attributes");

    /* create and write, then rename it */
    h = nt_open(d, L"nt_new.txt", GENERIC_WRITE | DELETE, FILE_CREATE, NON_DIRECTORY_FILE, 1, "create");
    IO_STATUS_BLOCK io;
    check(pNtWriteFile(h, NULL, NULL, NULL, &io, "x", 1, NULL, NULL), 1, "write");
    struct rename_info ri;
    memset(&ri, 0, sizeof ri);
    ri.root = d;        /* Wine needs a root or a full name for the target */
    wcscpy(ri.name, L"nt_renamed.txt");
    ri.len = (ULONG)(wcslen(ri.name) * sizeof(wchar_t));
    check(pNtSetInformationFile(h, &io, &ri, sizeof ri, 10 /* FileRenameInformation */), 1, "rename");
    pNtClose(h);

    /* delete through the disposition, and by name */
    h = nt_open(d, L"nt_delete.txt", DELETE, FILE_OPEN, NON_DIRECTORY_FILE, 1, "open for delete");
    BOOLEAN del = TRUE;
    check(pNtSetInformationFile(h, &io, &del, sizeof del, 13 /* FileDispositionInformation */), 1, "dispose");
    pNtClose(h);
    _snwprintf(path, 4096, L"\\??\\%ls\\nt_delete2.txt", argv[1]);
    init_oa(&oa, &us, NULL, path);
    check(pNtDeleteFile(&oa), 1, "NtDeleteFile");

    /* list the subdirectory */
    HANDLE sub = nt_open(d, L"nt_listed", FILE_LIST_DIRECTORY, FILE_OPEN, DIRECTORY_FILE, 1, "open nt_listed");
    char buf[4096];
    check(pNtQueryDirectoryFile(sub, NULL, NULL, NULL, &io, buf, sizeof buf, 1 /* FileDirectoryInformation */,
                                FALSE, NULL, TRUE), 1, "list");
    pNtClose(sub);
    pNtClose(d);
    return failures ? 1 : 0;
}
