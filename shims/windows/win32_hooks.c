/* win32_hooks.c — the kernelbase layer.
 *
 * A Win32 call is one access with one meaning, made of several NT calls: a
 * CopyFileW reads one file and writes another; a GetFileAttributesW opens
 * nothing the program can see.  Each hook records that meaning once and
 * sets the guard, so the NT calls underneath pass through unrecorded.
 * Names are made absolute against the current directory with
 * GetFullPathNameW, the rule Win32 itself applies.
 */
#include "hookdll.h"
#include "../../csrc/win/winpath.h"

typedef HANDLE(WINAPI *CreateFileW_t)(LPCWSTR, DWORD, DWORD, LPSECURITY_ATTRIBUTES, DWORD, DWORD,
                                      HANDLE);
typedef HANDLE(WINAPI *CreateFileA_t)(LPCSTR, DWORD, DWORD, LPSECURITY_ATTRIBUTES, DWORD, DWORD,
                                      HANDLE);
typedef DWORD(WINAPI *GetFileAttributesW_t)(LPCWSTR);
typedef BOOL(WINAPI *GetFileAttributesExW_t)(LPCWSTR, GET_FILEEX_INFO_LEVELS, LPVOID);
typedef HANDLE(WINAPI *FindFirstFileW_t)(LPCWSTR, LPWIN32_FIND_DATAW);
typedef HANDLE(WINAPI *FindFirstFileExW_t)(LPCWSTR, FINDEX_INFO_LEVELS, LPVOID, FINDEX_SEARCH_OPS,
                                           LPVOID, DWORD);
typedef BOOL(WINAPI *FindNextFileW_t)(HANDLE, LPWIN32_FIND_DATAW);
typedef BOOL(WINAPI *MoveFileExW_t)(LPCWSTR, LPCWSTR, DWORD);
typedef BOOL(WINAPI *OneName_t)(LPCWSTR);
typedef BOOL(WINAPI *CopyFileW_t)(LPCWSTR, LPCWSTR, BOOL);
typedef BOOL(WINAPI *CreateDirectoryW_t)(LPCWSTR, LPSECURITY_ATTRIBUTES);

static CreateFileW_t o_CreateFileW;
static CreateFileA_t o_CreateFileA;
static GetFileAttributesW_t o_GetFileAttributesW;
static GetFileAttributesExW_t o_GetFileAttributesExW;
static FindFirstFileW_t o_FindFirstFileW;
static FindFirstFileExW_t o_FindFirstFileExW;
static FindNextFileW_t o_FindNextFileW;
static MoveFileExW_t o_MoveFileExW;
static OneName_t o_DeleteFileW, o_RemoveDirectoryW;
static CopyFileW_t o_CopyFileW;
static CreateDirectoryW_t o_CreateDirectoryW;

/* ---- CreateFile -------------------------------------------------------------- */
static void after_create_file(HANDLE h, DWORD err, const wchar_t *name, DWORD disposition,
                              DWORD flags)
{
    wchar_t path[SBX_PATH_MAX];
    size_t len = sbx_full_path(name, path, SBX_PATH_MAX);
    if (!len)
        return;
    if (h == INVALID_HANDLE_VALUE) {
        sbx_record(SBX_PROBE, path, len);
        return;
    }
    unsigned cats = 0;
    int existed = err == ERROR_ALREADY_EXISTS;
    if (disposition == CREATE_NEW || ((disposition == CREATE_ALWAYS || disposition == OPEN_ALWAYS) && !existed))
        cats = SBX_WRITE | SBX_CREATED;
    else if (disposition == CREATE_ALWAYS || disposition == TRUNCATE_EXISTING)
        cats = SBX_WRITE;
    if (flags & FILE_FLAG_DELETE_ON_CLOSE)
        cats |= SBX_WRITE;
    if (cats)
        sbx_record(cats, path, len);
    sbx_handles_put(h, path, len, cats & SBX_CATEGORIES);
}

static HANDLE WINAPI h_CreateFileW(LPCWSTR name, DWORD access, DWORD share,
                                   LPSECURITY_ATTRIBUTES sa, DWORD disposition, DWORD flags,
                                   HANDLE tmpl)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_CreateFileW(name, access, share, sa, disposition, flags, tmpl);
    HANDLE h = o_CreateFileW(name, access, share, sa, disposition, flags, tmpl);
    DWORD err = GetLastError();
    after_create_file(h, err, name, disposition, flags);
    SetLastError(err);
    sbx_leave(prev);
    return h;
}

/* ANSI names, decoded as the file APIs decode them (ANSI or OEM code page). */
static wchar_t *widen(const char *s, wchar_t *buf, size_t cap)
{
    if (!s)
        return NULL;
    UINT cp = AreFileApisANSI() ? CP_ACP : CP_OEMCP;
    if (!MultiByteToWideChar(cp, 0, s, -1, buf, (int)cap))
        return NULL;
    return buf;
}

static HANDLE WINAPI h_CreateFileA(LPCSTR name, DWORD access, DWORD share,
                                   LPSECURITY_ATTRIBUTES sa, DWORD disposition, DWORD flags,
                                   HANDLE tmpl)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_CreateFileA(name, access, share, sa, disposition, flags, tmpl);
    HANDLE h = o_CreateFileA(name, access, share, sa, disposition, flags, tmpl);
    DWORD err = GetLastError();
    wchar_t wname[SBX_PATH_MAX];
    if (widen(name, wname, SBX_PATH_MAX))
        after_create_file(h, err, wname, disposition, flags);
    SetLastError(err);
    sbx_leave(prev);
    return h;
}

/* ---- metadata --------------------------------------------------------------- */
static DWORD WINAPI h_GetFileAttributesW(LPCWSTR name)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_GetFileAttributesW(name);
    DWORD r = o_GetFileAttributesW(name);
    DWORD err = GetLastError();
    sbx_record_win32(SBX_PROBE, name);
    SetLastError(err);
    sbx_leave(prev);
    return r;
}

static BOOL WINAPI h_GetFileAttributesExW(LPCWSTR name, GET_FILEEX_INFO_LEVELS level, LPVOID out)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_GetFileAttributesExW(name, level, out);
    BOOL r = o_GetFileAttributesExW(name, level, out);
    DWORD err = GetLastError();
    sbx_record_win32(SBX_PROBE, name);
    SetLastError(err);
    sbx_leave(prev);
    return r;
}

/* ---- directory listing ---------------------------------------------------------- */
/* FindFirstFile("d\*.c") lists d; FindFirstFile("d\x.c") (no wildcard)
 * only asks whether d\x.c exists. A missing directory is a probe of it. */
static void after_find_first(HANDLE h, DWORD err, const wchar_t *pattern)
{
    wchar_t path[SBX_PATH_MAX];
    size_t len = sbx_full_path(pattern, path, SBX_PATH_MAX);
    if (!len)
        return;
    size_t base = len;
    while (base > 0 && path[base - 1] != '\\')
        base--;
    int wild = 0;
    for (size_t i = base; i < len; i++)
        if (path[i] == '*' || path[i] == '?')
            wild = 1;
    if (!wild) {
        sbx_record(SBX_PROBE, path, len);
        return;
    }
    wchar_t dir[SBX_PATH_MAX];
    static const wchar_t up[] = L"..";
    long dlen = sbx_winpath_join((uint16_t *)dir, SBX_PATH_MAX, (const uint16_t *)path, len,
                                 (const uint16_t *)up, 2);
    if (dlen <= 0)
        return;
    if (h != INVALID_HANDLE_VALUE || err == ERROR_FILE_NOT_FOUND || err == ERROR_NO_MORE_FILES)
        sbx_record(SBX_ENUM, dir, (size_t)dlen);
    else
        sbx_record(SBX_PROBE, dir, (size_t)dlen);
}

static HANDLE WINAPI h_FindFirstFileExW(LPCWSTR pattern, FINDEX_INFO_LEVELS level, LPVOID data,
                                        FINDEX_SEARCH_OPS op, LPVOID filter, DWORD flags)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_FindFirstFileExW(pattern, level, data, op, filter, flags);
    HANDLE h = o_FindFirstFileExW(pattern, level, data, op, filter, flags);
    DWORD err = GetLastError();
    after_find_first(h, err, pattern);
    SetLastError(err);
    sbx_leave(prev);
    return h;
}

static HANDLE WINAPI h_FindFirstFileW(LPCWSTR pattern, LPWIN32_FIND_DATAW data)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_FindFirstFileW(pattern, data);
    HANDLE h = o_FindFirstFileW(pattern, data);
    DWORD err = GetLastError();
    after_find_first(h, err, pattern);
    SetLastError(err);
    sbx_leave(prev);
    return h;
}

static BOOL WINAPI h_FindNextFileW(HANDLE h, LPWIN32_FIND_DATAW data)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_FindNextFileW(h, data);
    BOOL r = o_FindNextFileW(h, data);
    /* Already reported by FindFirstFile; kept guarded so the directory
     * reads underneath are not taken for a second listing. */
    sbx_leave(prev);
    return r;
}

/* ---- changes to names -------------------------------------------------------------- */
static BOOL WINAPI h_MoveFileExW(LPCWSTR from, LPCWSTR to, DWORD flags)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_MoveFileExW(from, to, flags);
    BOOL ok = o_MoveFileExW(from, to, flags);
    DWORD err = GetLastError();
    sbx_record_win32(ok ? SBX_WRITE : SBX_PROBE, from);
    if (to)   /* NULL with MOVEFILE_DELAY_UNTIL_REBOOT: delete at reboot */
        sbx_record_win32(ok ? SBX_WRITE | SBX_CREATED : SBX_PROBE, to);
    SetLastError(err);
    sbx_leave(prev);
    return ok;
}

static BOOL one_name(OneName_t fn, LPCWSTR name, unsigned ok_cats)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return fn(name);
    BOOL ok = fn(name);
    DWORD err = GetLastError();
    sbx_record_win32(ok ? ok_cats : SBX_PROBE, name);
    SetLastError(err);
    sbx_leave(prev);
    return ok;
}

static BOOL WINAPI h_DeleteFileW(LPCWSTR name)
{
    return one_name(o_DeleteFileW, name, SBX_WRITE);
}

static BOOL WINAPI h_RemoveDirectoryW(LPCWSTR name)
{
    return one_name(o_RemoveDirectoryW, name, SBX_WRITE);
}

static BOOL WINAPI h_CreateDirectoryW(LPCWSTR name, LPSECURITY_ATTRIBUTES sa)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_CreateDirectoryW(name, sa);
    BOOL ok = o_CreateDirectoryW(name, sa);
    DWORD err = GetLastError();
    sbx_record_win32(ok ? SBX_WRITE | SBX_CREATED : SBX_PROBE, name);
    SetLastError(err);
    sbx_leave(prev);
    return ok;
}

static BOOL WINAPI h_CopyFileW(LPCWSTR from, LPCWSTR to, BOOL fail_if_exists)
{
    unsigned prev;
    if (!sbx_enter(&prev))
        return o_CopyFileW(from, to, fail_if_exists);
    /* Whether the copy brings a new name into existence decides "created". */
    int existed = to && GetFileAttributesW(to) != INVALID_FILE_ATTRIBUTES;
    BOOL ok = o_CopyFileW(from, to, fail_if_exists);
    DWORD err = GetLastError();
    if (ok) {
        sbx_record_win32(SBX_READ, from);
        sbx_record_win32(existed ? SBX_WRITE : SBX_WRITE | SBX_CREATED, to);
    } else {
        sbx_record_win32(SBX_PROBE, from);
        sbx_record_win32(SBX_PROBE, to);
    }
    SetLastError(err);
    sbx_leave(prev);
    return ok;
}

#define HOOK(name) {"kernelbase.dll", #name, (void *)h_##name, (void **)&o_##name}
const struct sbx_hook_def sbx_win32_hooks[] = {
    HOOK(CreateFileW),
    HOOK(CreateFileA),
    HOOK(GetFileAttributesW),
    HOOK(GetFileAttributesExW),
    HOOK(FindFirstFileW),
    HOOK(FindFirstFileExW),
    HOOK(FindNextFileW),
    HOOK(MoveFileExW),
    HOOK(DeleteFileW),
    HOOK(CopyFileW),
    HOOK(CreateDirectoryW),
    HOOK(RemoveDirectoryW),
    {NULL, NULL, NULL, NULL},
};
