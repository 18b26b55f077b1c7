/* win32_hooks.c — the kernelbase layer.
 *
 * A Win32 call is one access with one meaning, made of several NT calls: a
 * CopyFileW reads one file and writes another; a GetFileAttributesW opens
 * nothing the program can see.  Each hook records that meaning once and
 * sets the guard, so the NT calls underneath pass through unrecorded.
 * Names are made absolute against the current directory with
 * GetFullPathNameW, the rule Win32 itself applies.  What the meaning
 * counts as is the access model's answer (csrc/core/access.h) for the
 * operation the call is.
 */
#include "hookdll.h"
#include "enforce.h"
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
typedef BOOL(WINAPI *OneName_t)(LPCWSTR);  /* DeleteFileW, RemoveDirectoryW */
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

/* The categories the model gives each name of call `op`, succeeded or not. */
static struct sbx_access names_of(enum sbx_op op, BOOL ok)
{
    return sbx_access_classify(op, ok != 0);
}

/* ---- CreateFile -------------------------------------------------------------- */
static void after_create_file(HANDLE h, DWORD err, const wchar_t *name, DWORD access,
                              DWORD disposition, DWORD flags)
{
    wchar_t path[SBX_PATH_MAX];
    size_t len = sbx_full_path(name, path, SBX_PATH_MAX);
    if (!len)
        return;
    if (h == INVALID_HANDLE_VALUE) {
        sbx_record(names_of(SBX_OP_OPEN, FALSE).first, path, len);
        return;
    }
    /* OPEN_ALWAYS and CREATE_ALWAYS say ERROR_ALREADY_EXISTS when the file
     * was there; CREATE_ALWAYS then overwrote it, as TRUNCATE_EXISTING does. */
    int existed = err == ERROR_ALREADY_EXISTS;
    int created = disposition == CREATE_NEW ||
                  ((disposition == CREATE_ALWAYS || disposition == OPEN_ALWAYS) && !existed);
    unsigned intent =
        ((access & (GENERIC_READ | GENERIC_EXECUTE | GENERIC_ALL | FILE_READ_DATA |
                    FILE_EXECUTE | MAXIMUM_ALLOWED)) ? SBX_OPEN_READ : 0) |
        ((access & (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA | FILE_APPEND_DATA |
                    MAXIMUM_ALLOWED)) ? SBX_OPEN_WRITE : 0);
    if (disposition == CREATE_ALWAYS || disposition == TRUNCATE_EXISTING)
        intent |= SBX_OPEN_WRITE | SBX_OPEN_TRUNC;
    sbx_handles_open(h, path, len, intent, created, (flags & FILE_FLAG_DELETE_ON_CLOSE) != 0);
}

/* ---- the policy (enforce.h): asked before the original runs ---------------- */
/* What CreateFile needs: OPEN_EXISTING only opens (NT's FILE_OPEN); every
 * other disposition may create or truncate. */
static int refuse_create_file(const wchar_t *name, DWORD access, DWORD disposition,
                              DWORD flags)
{
    enum sbx_policy_need need = sbx_enforce_open_need(
        access, disposition == OPEN_EXISTING ? 1 : 0,
        (flags & FILE_FLAG_DELETE_ON_CLOSE) ? 0x00001000 : 0);
    return sbx_enforce_win32(need, name);
}

static int refuse_create_file_a(const char *name, DWORD access, DWORD disposition, DWORD flags)
{
    wchar_t *wname = sbx_widen(name, AreFileApisANSI() ? CP_ACP : CP_OEMCP);
    if (!wname)
        return 0;
    int r = refuse_create_file(wname, access, disposition, flags);
    HeapFree(GetProcessHeap(), 0, wname);
    return r;
}

/* What a FindFirstFile pattern names: FindFirstFile("d\*.c") lists d (the
 * directory goes to `dir', its length returned); FindFirstFile("d\x.c")
 * (no wildcard) only asks whether d\x.c exists (the name goes to `path',
 * 0 returned).  -1: no usable name.  Both the policy check and the record
 * read the pattern this one way. */
static long find_first_target(const wchar_t *pattern, wchar_t *path, size_t *plen,
                              wchar_t *dir)
{
    size_t len = sbx_full_path(pattern, path, SBX_PATH_MAX);
    if (!len)
        return -1;
    *plen = len;
    size_t base = len;
    while (base > 0 && path[base - 1] != '\\')
        base--;
    int wild = 0;
    for (size_t i = base; i < len; i++)
        if (path[i] == '*' || path[i] == '?')
            wild = 1;
    if (!wild)
        return 0;
    static const wchar_t up[] = L"..";
    long dlen = sbx_winpath_join((uint16_t *)dir, SBX_PATH_MAX, (const uint16_t *)path, len,
                                 (const uint16_t *)up, 2);
    return dlen > 0 ? dlen : -1;
}

/* FindFirstFile lists the pattern's directory, or probes one exact name. */
static int refuse_find_first(const wchar_t *pattern)
{
    wchar_t path[SBX_PATH_MAX], dir[SBX_PATH_MAX];
    size_t len = 0;
    long dlen = find_first_target(pattern, path, &len, dir);
    if (dlen == 0)
        return sbx_enforce(SBX_NEED_PROBE, path, len);
    return dlen > 0 && sbx_enforce(SBX_NEED_ENUM, dir, (size_t)dlen);
}

static HANDLE WINAPI h_CreateFileW(LPCWSTR name, DWORD access, DWORD share,
                                   LPSECURITY_ATTRIBUTES sa, DWORD disposition, DWORD flags,
                                   HANDLE tmpl)
{
    SBX_ENFORCE(refuse_create_file(name, access, disposition, flags),
                SBX_WIN32_REFUSED(INVALID_HANDLE_VALUE));
    SBX_GUARDED_CALL(HANDLE, o_CreateFileW(name, access, share, sa, disposition, flags, tmpl),
                     after_create_file(result, error, name, access, disposition, flags));
}

/* ANSI names, decoded as the file APIs decode them (ANSI or OEM code page). */
static void after_create_file_a(HANDLE h, DWORD err, const char *name, DWORD access,
                                DWORD disposition, DWORD flags)
{
    wchar_t *wname = sbx_widen(name, AreFileApisANSI() ? CP_ACP : CP_OEMCP);
    if (!wname)
        return;
    after_create_file(h, err, wname, access, disposition, flags);
    HeapFree(GetProcessHeap(), 0, wname);
}

static HANDLE WINAPI h_CreateFileA(LPCSTR name, DWORD access, DWORD share,
                                   LPSECURITY_ATTRIBUTES sa, DWORD disposition, DWORD flags,
                                   HANDLE tmpl)
{
    SBX_ENFORCE(refuse_create_file_a(name, access, disposition, flags),
                SBX_WIN32_REFUSED(INVALID_HANDLE_VALUE));
    SBX_GUARDED_CALL(HANDLE, o_CreateFileA(name, access, share, sa, disposition, flags, tmpl),
                     after_create_file_a(result, error, name, access, disposition, flags));
}

/* ---- metadata --------------------------------------------------------------- */
static DWORD WINAPI h_GetFileAttributesW(LPCWSTR name)
{
    SBX_ENFORCE(sbx_enforce_win32(SBX_NEED_PROBE, name),
                SBX_WIN32_REFUSED(INVALID_FILE_ATTRIBUTES));
    SBX_GUARDED_CALL(DWORD, o_GetFileAttributesW(name),
                     sbx_record_win32(names_of(SBX_OP_PROBE, result != INVALID_FILE_ATTRIBUTES)
                                          .first, name));
}

static BOOL WINAPI h_GetFileAttributesExW(LPCWSTR name, GET_FILEEX_INFO_LEVELS level, LPVOID out)
{
    SBX_ENFORCE(sbx_enforce_win32(SBX_NEED_PROBE, name), SBX_WIN32_REFUSED(FALSE));
    SBX_GUARDED_CALL(BOOL, o_GetFileAttributesExW(name, level, out),
                     sbx_record_win32(names_of(SBX_OP_PROBE, result).first, name));
}

/* ---- directory listing ---------------------------------------------------------- */
/* FindFirstFile("d\*.c") lists d (scandir); FindFirstFile("d\x.c") (no
 * wildcard) only asks whether d\x.c exists.  A listing that matched
 * nothing still listed; a missing directory was only looked at. */
static void after_find_first(HANDLE h, DWORD err, const wchar_t *pattern)
{
    wchar_t path[SBX_PATH_MAX], dir[SBX_PATH_MAX];
    size_t len = 0;
    long dlen = find_first_target(pattern, path, &len, dir);
    BOOL found = h != INVALID_HANDLE_VALUE;
    if (dlen == 0) {
        sbx_record(names_of(SBX_OP_PROBE, found).first, path, len);
        return;
    }
    if (dlen < 0)
        return;
    BOOL listed = found || err == ERROR_FILE_NOT_FOUND || err == ERROR_NO_MORE_FILES;
    sbx_record(names_of(SBX_OP_LIST, listed).first, dir, (size_t)dlen);
}

static HANDLE WINAPI h_FindFirstFileExW(LPCWSTR pattern, FINDEX_INFO_LEVELS level, LPVOID data,
                                        FINDEX_SEARCH_OPS op, LPVOID filter, DWORD flags)
{
    SBX_ENFORCE(refuse_find_first(pattern), SBX_WIN32_REFUSED(INVALID_HANDLE_VALUE));
    SBX_GUARDED_CALL(HANDLE, o_FindFirstFileExW(pattern, level, data, op, filter, flags),
                     after_find_first(result, error, pattern));
}

static HANDLE WINAPI h_FindFirstFileW(LPCWSTR pattern, LPWIN32_FIND_DATAW data)
{
    SBX_ENFORCE(refuse_find_first(pattern), SBX_WIN32_REFUSED(INVALID_HANDLE_VALUE));
    SBX_GUARDED_CALL(HANDLE, o_FindFirstFileW(pattern, data),
                     after_find_first(result, error, pattern));
}

static BOOL WINAPI h_FindNextFileW(HANDLE h, LPWIN32_FIND_DATAW data)
{
    /* Already reported by FindFirstFile; guarded so the directory reads
     * underneath are not taken for a second listing. */
    SBX_GUARDED_CALL(BOOL, o_FindNextFileW(h, data), (void)0);
}

/* ---- changes to names -------------------------------------------------------------- */
/* A rename: the old name's content lives on under the new one (a read
 * unless the run made it) and the old name is gone; the new name is
 * created.  Without a new name, a removal. */
static void after_move(BOOL ok, const wchar_t *from, const wchar_t *to)
{
    if (ok)
        sbx_long_names_forget();
    struct sbx_access a = names_of(to ? SBX_OP_RENAME : SBX_OP_REMOVE, ok);
    sbx_record_win32(a.first, from);
    if (to)
        sbx_record_win32(a.second, to);
}

static BOOL WINAPI h_MoveFileExW(LPCWSTR from, LPCWSTR to, DWORD flags)
{
    /* both names change: the old one goes, the new one comes */
    SBX_ENFORCE(sbx_enforce_win32(SBX_NEED_WRITE, from) |
                (to ? sbx_enforce_win32(SBX_NEED_WRITE, to) : 0),
                SBX_WIN32_REFUSED(FALSE));
    /* to == NULL (MOVEFILE_DELAY_UNTIL_REBOOT) deletes at reboot: a removal */
    SBX_GUARDED_CALL(BOOL, o_MoveFileExW(from, to, flags), after_move(result, from, to));
}

static BOOL WINAPI h_DeleteFileW(LPCWSTR name)
{
    SBX_ENFORCE(sbx_enforce_win32(SBX_NEED_WRITE, name), SBX_WIN32_REFUSED(FALSE));
    SBX_GUARDED_CALL(BOOL, o_DeleteFileW(name),
                     sbx_record_win32(names_of(SBX_OP_REMOVE, result).first, name));
}

static BOOL WINAPI h_RemoveDirectoryW(LPCWSTR name)
{
    SBX_ENFORCE(sbx_enforce_win32(SBX_NEED_WRITE, name), SBX_WIN32_REFUSED(FALSE));
    SBX_GUARDED_CALL(BOOL, o_RemoveDirectoryW(name),
                     if (result) sbx_long_names_forget();
                     sbx_record_win32(names_of(SBX_OP_REMOVE, result).first, name));
}

static BOOL WINAPI h_CreateDirectoryW(LPCWSTR name, LPSECURITY_ATTRIBUTES sa)
{
    SBX_ENFORCE(sbx_enforce_win32(SBX_NEED_WRITE, name), SBX_WIN32_REFUSED(FALSE));
    SBX_GUARDED_CALL(BOOL, o_CreateDirectoryW(name, sa),
                     sbx_record_win32(names_of(SBX_OP_CREATE, result).first, name));
}

/* A copy opens the source and reads it, and opens the destination for
 * writing, creating it unless it `existed` (truncating it if it did), and
 * writes it.  A copy that failed only looked at both names. */
static void after_copy(BOOL ok, const wchar_t *from, const wchar_t *to, int existed)
{
    if (!ok) {
        sbx_record_win32(names_of(SBX_OP_OPEN, FALSE).first, from);
        sbx_record_win32(names_of(SBX_OP_OPEN, FALSE).first, to);
        return;
    }
    int used, tracked;
    sbx_record_win32(sbx_access_use(SBX_USE_READ), from);
    sbx_record_win32(sbx_access_open(SBX_OPEN_WRITE | SBX_OPEN_TRUNC, !existed, &used, &tracked) |
                         sbx_access_use(SBX_USE_WRITE), to);
}

static BOOL WINAPI h_CopyFileW(LPCWSTR from, LPCWSTR to, BOOL fail_if_exists)
{
    SBX_ENFORCE(sbx_enforce_win32(SBX_NEED_READ, from) | sbx_enforce_win32(SBX_NEED_WRITE, to),
                SBX_WIN32_REFUSED(FALSE));
    /* Whether the copy brings a new name into existence decides "created";
     * asked before the guarded call, so this query is not a probe. */
    unsigned prev = sbx_active ? sbx_tls_get() : 0;
    int existed = 0;
    if (sbx_active && !(prev & SBX_GUARD)) {
        sbx_tls_set(prev | SBX_GUARD);
        existed = to && GetFileAttributesW(to) != INVALID_FILE_ATTRIBUTES;
        sbx_tls_set(prev);
    }
    SBX_GUARDED_CALL(BOOL, o_CopyFileW(from, to, fail_if_exists),
                     after_copy(result, from, to, existed));
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
