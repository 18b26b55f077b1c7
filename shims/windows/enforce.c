/* enforce.c — see enforce.h. */
#include "enforce.h"

const void *sbx_policy;
static uint32_t policy_mode;

typedef WCHAR(NTAPI *RtlUpcaseUnicodeChar_t)(WCHAR);
static RtlUpcaseUnicodeChar_t upcase;

/* The comparison policy.windows_fold describes: ntdll's simple upper-case
 * mapping, one UTF-16 unit at a time. */
static uint16_t fold(uint16_t c)
{
    return upcase(c);
}

int sbx_enforce_attach(HANDLE section)
{
    if (!section)
        return 0;
    upcase = (RtlUpcaseUnicodeChar_t)(void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                                                            "RtlUpcaseUnicodeChar");
    /* Read-only: the handle allows no more (SECTION_MAP_READ), so no
     * process of the tree can rewrite what its children will be held to. */
    const void *view = MapViewOfFile(section, FILE_MAP_READ, 0, 0, 0);
    MEMORY_BASIC_INFORMATION mbi;
    if (!upcase || !view || !VirtualQuery(view, &mbi, sizeof mbi) ||
        !sbx_policy_valid(view, mbi.RegionSize)) {
        if (view)
            UnmapViewOfFile(view);
        return -1;
    }
    struct sbx_policy_hdr h;
    memcpy(&h, view, sizeof h);
    policy_mode = h.mode;
    sbx_policy = view;
    return 0;
}

int sbx_enforce_denies(void)
{
    return sbx_policy && policy_mode == SBX_POLICY_DENY;
}

int sbx_enforce(enum sbx_policy_need need, const wchar_t *path, size_t len)
{
    if (!sbx_policy || !len ||
        sbx_policy_allows(sbx_policy, need, (const uint16_t *)path, len, fold))
        return 0;
    sbx_record_denied(need, path, len);
    return policy_mode == SBX_POLICY_DENY;
}

int sbx_enforce_win32(enum sbx_policy_need need, const wchar_t *name)
{
    wchar_t path[SBX_PATH_MAX];
    size_t len = sbx_full_path(name, path, SBX_PATH_MAX);
    return len ? sbx_enforce(need, path, len) : 0;
}

int sbx_enforce_exec(const wchar_t *image, size_t len)
{
    return sbx_enforce(SBX_NEED_EXEC, image, len);
}

/* Access rights that change a file or its metadata, or may (MAXIMUM_ALLOWED
 * gives write access wherever the file system would). */
#define SBX_WRITE_RIGHTS (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_EA |               \
                          FILE_WRITE_ATTRIBUTES | DELETE | WRITE_DAC | WRITE_OWNER |         \
                          GENERIC_WRITE | GENERIC_ALL | MAXIMUM_ALLOWED)
/* Rights that read content (FILE_LIST_DIRECTORY is FILE_READ_DATA on a
 * directory: a listing), as opposed to attributes only (a probe). */
#define SBX_READ_RIGHTS (FILE_READ_DATA | FILE_READ_EA | FILE_EXECUTE | GENERIC_READ |        \
                         GENERIC_EXECUTE)

enum sbx_policy_need sbx_enforce_open_need(ACCESS_MASK access, ULONG disposition, ULONG options)
{
    /* FILE_OPEN (1) only opens; every other disposition may create,
     * replace or truncate (FILE_OPEN_IF creates when absent). */
    if ((access & SBX_WRITE_RIGHTS) || disposition != 1 || (options & 0x00001000))
        return SBX_NEED_WRITE;
    if (access & SBX_READ_RIGHTS)
        return SBX_NEED_READ;
    return SBX_NEED_PROBE;
}
