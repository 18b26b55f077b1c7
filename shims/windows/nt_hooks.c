/* nt_hooks.c — the ntdll layer.
 *
 * Every file access of a Windows program ends in one of these functions,
 * including the ones made by runtimes that bypass Win32 (Cygwin, MSYS2) and
 * by Win32 functions we do not hook.  When the thread is already inside a
 * Win32 hook (the guard is set), the Win32 hook records the access with its
 * own meaning and these only pass through.
 *
 * Each hook says which operation of the access model (csrc/core/access.h)
 * its call is — a name probed, removed, renamed; an open with its intent;
 * content used through a handle — and records what the model answers.
 */
#include "hookdll.h"
#include "enforce.h"
#include "../../csrc/win/winpath.h"

#ifndef STATUS_END_OF_FILE
#define STATUS_END_OF_FILE ((NTSTATUS)0xC0000011L)
#endif
#ifndef STATUS_PENDING
#define STATUS_PENDING ((NTSTATUS)0x00000103L)
#endif
#define NT_OK(st) ((NTSTATUS)(st) >= 0)

/* CreateDisposition values asked for ... */
#define SBX_FILE_SUPERSEDE 0
#define SBX_FILE_OPEN 1
/* ... and what happened (IO_STATUS_BLOCK.Information). */
#define SBX_FILE_SUPERSEDED 0
#define SBX_FILE_CREATED 2
#define SBX_FILE_OVERWRITTEN 3
/* CreateOptions */
#define SBX_FILE_DELETE_ON_CLOSE 0x00001000
#define SBX_FILE_OPEN_BY_FILE_ID 0x00002000

/* Access rights to a file's content, as the model's open intent sees them
 * (metadata rights are not content: a handle opened for attributes only
 * and never used is a probe). */
#define SBX_CONTENT_READ (FILE_READ_DATA | FILE_EXECUTE | GENERIC_READ | GENERIC_EXECUTE |  \
                          GENERIC_ALL | MAXIMUM_ALLOWED)
#define SBX_CONTENT_WRITE (FILE_WRITE_DATA | FILE_APPEND_DATA | GENERIC_WRITE | GENERIC_ALL |  \
                           MAXIMUM_ALLOWED)

/* FILE_INFORMATION_CLASS values we interpret. */
enum {
    C_BASIC = 4, C_RENAME = 10, C_LINK = 11, C_DISPOSITION = 13,
    C_ALLOCATION = 19, C_END_OF_FILE = 20, C_VALID_DATA_LENGTH = 39,
    C_DISPOSITION_EX = 64, C_RENAME_EX = 65, C_LINK_EX = 72,
};

/* FILE_RENAME_INFORMATION and FILE_LINK_INFORMATION share this layout. */
struct name_info {
    union { BOOLEAN replace; ULONG flags; } u;
    HANDLE root;
    ULONG name_len;     /* bytes */
    WCHAR name[1];
};

struct basic_info {
    LARGE_INTEGER times[4];
    ULONG attributes;
};

typedef NTSTATUS(NTAPI *NtCreateFile_t)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                                        PLARGE_INTEGER, ULONG, ULONG, ULONG, ULONG, PVOID, ULONG);
typedef NTSTATUS(NTAPI *NtOpenFile_t)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                                      ULONG, ULONG);
typedef NTSTATUS(NTAPI *NtQueryAttributesFile_t)(POBJECT_ATTRIBUTES, PVOID);
typedef NTSTATUS(NTAPI *NtQueryDirectoryFile_t)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK,
                                                PVOID, ULONG, ULONG, BOOLEAN, PUNICODE_STRING,
                                                BOOLEAN);
typedef NTSTATUS(NTAPI *NtQueryDirectoryFileEx_t)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK,
                                                  PVOID, ULONG, ULONG, ULONG, PUNICODE_STRING);
typedef NTSTATUS(NTAPI *NtSetInformationFile_t)(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, ULONG);
typedef NTSTATUS(NTAPI *NtDeleteFile_t)(POBJECT_ATTRIBUTES);
typedef NTSTATUS(NTAPI *NtReadWriteFile_t)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID,
                                           ULONG, PLARGE_INTEGER, PULONG);
typedef NTSTATUS(NTAPI *NtClose_t)(HANDLE);
typedef NTSTATUS(NTAPI *NtSetEaFile_t)(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG);
typedef NTSTATUS(NTAPI *NtSetSecurityObject_t)(HANDLE, ULONG, PVOID);
typedef NTSTATUS(NTAPI *NtQueryInformationByName_t)(POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PVOID,
                                                    ULONG, ULONG);
typedef NTSTATUS(NTAPI *NtFsControlFile_t)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, ULONG,
                                           PVOID, ULONG, PVOID, ULONG);
typedef NTSTATUS(NTAPI *NtCopyFileChunk_t)(HANDLE, HANDLE, HANDLE, PIO_STATUS_BLOCK, ULONG,
                                           PLARGE_INTEGER, PLARGE_INTEGER, PULONG, PULONG, ULONG);
typedef NTSTATUS(NTAPI *NtCreateSection_t)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PLARGE_INTEGER,
                                           ULONG, ULONG, HANDLE);
typedef NTSTATUS(NTAPI *NtTerminateProcess_t)(HANDLE, NTSTATUS);
typedef NTSTATUS(NTAPI *NtDuplicateObject_t)(HANDLE, HANDLE, HANDLE, PHANDLE, ACCESS_MASK, ULONG,
                                             ULONG);

static NtCreateFile_t o_NtCreateFile;
static NtOpenFile_t o_NtOpenFile;
static NtQueryAttributesFile_t o_NtQueryAttributesFile, o_NtQueryFullAttributesFile;
static NtQueryDirectoryFile_t o_NtQueryDirectoryFile;
static NtQueryDirectoryFileEx_t o_NtQueryDirectoryFileEx;
static NtSetInformationFile_t o_NtSetInformationFile;
static NtDeleteFile_t o_NtDeleteFile;
static NtReadWriteFile_t o_NtReadFile, o_NtWriteFile, o_NtReadFileScatter, o_NtWriteFileGather;
static NtQueryInformationByName_t o_NtQueryInformationByName;
static NtFsControlFile_t o_NtFsControlFile;
static NtCopyFileChunk_t o_NtCopyFileChunk;
static NtSetEaFile_t o_NtSetEaFile;
static NtSetSecurityObject_t o_NtSetSecurityObject;
static NtClose_t o_NtClose;
static NtCreateSection_t o_NtCreateSection;
static NtTerminateProcess_t o_NtTerminateProcess;
static NtDuplicateObject_t o_NtDuplicateObject;

/* Join name (len units) onto the directory of handle root, or onto the
 * current directory when root is NULL and name is relative. */
static size_t join_name(HANDLE root, const wchar_t *name, size_t len, wchar_t *out)
{
    wchar_t base[SBX_PATH_MAX];
    size_t blen;
    long r;
    if (root) {
        blen = sbx_handles_path(root, base, SBX_PATH_MAX);
        if (!blen)
            return 0;
    } else if (len && name[0] == '\\') {
        r = sbx_winpath_normal((uint16_t *)out, SBX_PATH_MAX, (const uint16_t *)name, len);
        return r < 0 ? 0 : (size_t)r;
    } else {
        DWORD n = GetCurrentDirectoryW(SBX_PATH_MAX, base);
        if (n == 0 || n >= SBX_PATH_MAX)
            return 0;
        wchar_t norm[SBX_PATH_MAX];
        r = sbx_winpath_normal((uint16_t *)norm, SBX_PATH_MAX, (const uint16_t *)base, n);
        if (r < 0)
            return 0;
        memcpy(base, norm, ((size_t)r + 1) * sizeof *base);
        blen = (size_t)r;
    }
    if (!len) {
        memcpy(out, base, (blen + 1) * sizeof *out);
        return blen;
    }
    r = sbx_winpath_join((uint16_t *)out, SBX_PATH_MAX, (const uint16_t *)base, blen,
                         (const uint16_t *)name, len);
    return r < 0 ? 0 : (size_t)r;
}

/* The same, with 8.3 aliases among its components expanded to the long
 * names (one spelling per file). */
static size_t resolve_name(HANDLE root, const wchar_t *name, size_t len, wchar_t *out)
{
    size_t n = join_name(root, name, len, out);
    return n ? sbx_long_names(out, n, SBX_PATH_MAX) : 0;
}

static size_t oa_path(POBJECT_ATTRIBUTES oa, wchar_t *out)
{
    if (!oa)
        return 0;
    const UNICODE_STRING *u = oa->ObjectName;
    size_t len = u && u->Buffer ? u->Length / sizeof(wchar_t) : 0;
    return resolve_name(oa->RootDirectory, len ? u->Buffer : NULL, len, out);
}

/* The categories the model gives call `op`'s first name, succeeded or not. */
static unsigned first_name(enum sbx_op op, NTSTATUS st)
{
    return sbx_access_classify(op, NT_OK(st)).first;
}

/* What a finished NtCreateFile/NtOpenFile means. */
static void after_open(NTSTATUS st, PHANDLE fh, POBJECT_ATTRIBUTES oa, PIO_STATUS_BLOCK iosb,
                       ACCESS_MASK access, ULONG disposition, ULONG options)
{
    wchar_t path[SBX_PATH_MAX];
    size_t len;
    if (options & SBX_FILE_OPEN_BY_FILE_ID) {
        /* OpenFileById: the "name" is a binary file id, not a path; only the
         * opened handle can say which file it is. */
        if (!NT_OK(st) || !(len = sbx_handles_path(*fh, path, SBX_PATH_MAX))) {
            static LONG said;       /* once per process is enough to say it */
            if (!InterlockedExchange(&said, 1))
                sbx_warn(L"an open by file id %ls; that access cannot be named as a path and "
                         L"is missing", NT_OK(st) ? L"gave a file with no name" : L"failed");
            return;
        }
    } else {
        len = oa_path(oa, path);
        if (!len)
            return;
    }
    if (!NT_OK(st)) {
        sbx_record(first_name(SBX_OP_OPEN, st), path, len);
        return;
    }
    /* The intent from the access mask; what happened from the system's
     * answer (devices may leave Information at 0).  An overwrite discards
     * the content whatever the mask asked: a truncating write. */
    unsigned intent = ((access & SBX_CONTENT_READ) ? SBX_OPEN_READ : 0) |
                      ((access & SBX_CONTENT_WRITE) ? SBX_OPEN_WRITE : 0);
    ULONG_PTR info = iosb ? iosb->Information : 1;
    if (info == SBX_FILE_OVERWRITTEN ||
        (info == SBX_FILE_SUPERSEDED && disposition == SBX_FILE_SUPERSEDE))
        intent |= SBX_OPEN_WRITE | SBX_OPEN_TRUNC;
    sbx_handles_open(*fh, path, len, intent, info == SBX_FILE_CREATED,
                     (options & SBX_FILE_DELETE_ON_CLOSE) != 0);
}

/* ---- the policy (enforce.h): asked before the original runs ---------------- */
static int refuse_oa(enum sbx_policy_need need, POBJECT_ATTRIBUTES oa)
{
    wchar_t path[SBX_PATH_MAX];
    size_t len = oa_path(oa, path);
    return len && sbx_enforce(need, path, len);
}

/* An open by file id names no path before it is made: it is checked once
 * made (refuse_by_id).  One that deletes the file when its handle closes
 * cannot be undone that way, so a denying policy refuses it outright. */
static int refuse_open(POBJECT_ATTRIBUTES oa, ACCESS_MASK access, ULONG disposition,
                       ULONG options)
{
    if (options & SBX_FILE_OPEN_BY_FILE_ID)
        return (options & SBX_FILE_DELETE_ON_CLOSE) && sbx_enforce_denies();
    return refuse_oa(sbx_enforce_open_need(access, disposition, options), oa);
}

/* The file an open by id reached, named from its handle: outside the
 * policy, the handle is closed before the caller sees it (an open by id
 * creates and truncates nothing, so nothing happened to the file). */
static int refuse_by_id(HANDLE h, ACCESS_MASK access, ULONG disposition, ULONG options)
{
    wchar_t path[SBX_PATH_MAX];
    size_t len = sbx_handles_path(h, path, SBX_PATH_MAX);
    if (!len || !sbx_enforce(sbx_enforce_open_need(access, disposition, options), path, len))
        return 0;
    sbx_handles_close(h);
    o_NtClose(h);
    return 1;
}

#define SBX_CHECK_BY_ID(st, fh, iosb, access, disposition, options)                 \
    do {                                                                         \
        if (NT_OK(st) && ((options) & SBX_FILE_OPEN_BY_FILE_ID))                 \
            SBX_ENFORCE(refuse_by_id(*(fh), access, disposition, options),       \
                        { *(fh) = NULL; SBX_NT_REFUSED(iosb) });                 \
    } while (0)

static NTSTATUS NTAPI h_NtCreateFile(PHANDLE fh, ACCESS_MASK access, POBJECT_ATTRIBUTES oa,
                                     PIO_STATUS_BLOCK iosb, PLARGE_INTEGER alloc, ULONG attrs,
                                     ULONG share, ULONG disposition, ULONG options, PVOID ea,
                                     ULONG ealen)
{
    SBX_ENFORCE(refuse_open(oa, access, disposition, options), SBX_NT_REFUSED(iosb));
    NTSTATUS st = o_NtCreateFile(fh, access, oa, iosb, alloc, attrs, share, disposition, options,
                                 ea, ealen);
    SBX_CHECK_BY_ID(st, fh, iosb, access, disposition, options);
    SBX_RECORD_AFTER(after_open(st, fh, oa, iosb, access, disposition, options));
    return st;
}

static NTSTATUS NTAPI h_NtOpenFile(PHANDLE fh, ACCESS_MASK access, POBJECT_ATTRIBUTES oa,
                                   PIO_STATUS_BLOCK iosb, ULONG share, ULONG options)
{
    SBX_ENFORCE(refuse_open(oa, access, SBX_FILE_OPEN, options), SBX_NT_REFUSED(iosb));
    NTSTATUS st = o_NtOpenFile(fh, access, oa, iosb, share, options);
    SBX_CHECK_BY_ID(st, fh, iosb, access, SBX_FILE_OPEN, options);
    SBX_RECORD_AFTER(after_open(st, fh, oa, iosb, access, SBX_FILE_OPEN, options));
    return st;
}

/* A name given in OBJECT_ATTRIBUTES, in the categories given. */
static void record_oa(unsigned cats, POBJECT_ATTRIBUTES oa)
{
    wchar_t path[SBX_PATH_MAX];
    size_t len = oa_path(oa, path);
    if (len)
        sbx_record(cats, path, len);
}

static NTSTATUS NTAPI h_NtQueryAttributesFile(POBJECT_ATTRIBUTES oa, PVOID info)
{
    SBX_ENFORCE(refuse_oa(SBX_NEED_PROBE, oa), { return STATUS_ACCESS_DENIED; });
    NTSTATUS st = o_NtQueryAttributesFile(oa, info);
    SBX_RECORD_AFTER(record_oa(first_name(SBX_OP_PROBE, st), oa));
    return st;
}

static NTSTATUS NTAPI h_NtQueryFullAttributesFile(POBJECT_ATTRIBUTES oa, PVOID info)
{
    SBX_ENFORCE(refuse_oa(SBX_NEED_PROBE, oa), { return STATUS_ACCESS_DENIED; });
    NTSTATUS st = o_NtQueryFullAttributesFile(oa, info);
    SBX_RECORD_AFTER(record_oa(first_name(SBX_OP_PROBE, st), oa));
    return st;
}

static int has_wildcard(const wchar_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '*' || p[i] == '?' || p[i] == '<' || p[i] == '>' || p[i] == '"')
            return 1;
    return 0;
}

/* Listing a directory is a use of its content (getdents); asking it for
 * one exact name (FindFirstFile("C:\d\x.txt") does that) is a probe of
 * that name, found or not.  A listing that ends (no more entries) still
 * listed. */
static void after_query_directory(NTSTATUS st, HANDLE h, PUNICODE_STRING mask)
{
    size_t mlen = mask && mask->Buffer ? mask->Length / sizeof(wchar_t) : 0;
    if (mlen && !has_wildcard(mask->Buffer, mlen)) {
        wchar_t path[SBX_PATH_MAX];
        size_t len = resolve_name(h, mask->Buffer, mlen, path);
        if (len)
            sbx_record(first_name(SBX_OP_PROBE, st), path, len);
        return;
    }
    sbx_handles_use(h, sbx_access_use(SBX_USE_LIST));
}

static NTSTATUS NTAPI h_NtQueryDirectoryFile(HANDLE h, HANDLE ev, PVOID apc, PVOID ctx,
                                             PIO_STATUS_BLOCK iosb, PVOID info, ULONG len,
                                             ULONG cls, BOOLEAN single, PUNICODE_STRING mask,
                                             BOOLEAN restart)
{
    NTSTATUS st = o_NtQueryDirectoryFile(h, ev, apc, ctx, iosb, info, len, cls, single, mask,
                                         restart);
    SBX_RECORD_AFTER(after_query_directory(st, h, mask));
    return st;
}

static NTSTATUS NTAPI h_NtQueryDirectoryFileEx(HANDLE h, HANDLE ev, PVOID apc, PVOID ctx,
                                               PIO_STATUS_BLOCK iosb, PVOID info, ULONG len,
                                               ULONG cls, ULONG flags, PUNICODE_STRING mask)
{
    NTSTATUS st = o_NtQueryDirectoryFileEx(h, ev, apc, ctx, iosb, info, len, cls, flags, mask);
    SBX_RECORD_AFTER(after_query_directory(st, h, mask));
    return st;
}

/* Target of a rename or link: relative to its RootDirectory, absolute, or
 * (a bare name) in the source's directory. */
static size_t target_name(HANDLE h, const struct name_info *ni, ULONG infolen, wchar_t *out)
{
    if (infolen < offsetof(struct name_info, name) ||
        ni->name_len > infolen - offsetof(struct name_info, name))
        return 0;
    size_t n = ni->name_len / sizeof(wchar_t);
    if (ni->root || (n && ni->name[0] == '\\'))
        return resolve_name(ni->root, ni->name, n, out);
    wchar_t dir[SBX_PATH_MAX];
    size_t dlen = sbx_handles_path(h, dir, SBX_PATH_MAX);
    if (!dlen)
        return 0;
    dir[dlen] = 0;
    /* the source's directory: join "..", which the cleaner applies */
    static const wchar_t up[] = L"..";
    wchar_t parent[SBX_PATH_MAX];
    long r = sbx_winpath_join((uint16_t *)parent, SBX_PATH_MAX, (const uint16_t *)dir, dlen,
                              (const uint16_t *)up, 2);
    if (r < 0)
        return 0;
    r = sbx_winpath_join((uint16_t *)out, SBX_PATH_MAX, (const uint16_t *)parent, (size_t)r,
                         (const uint16_t *)ni->name, n);
    return r < 0 ? 0 : sbx_long_names(out, (size_t)r, SBX_PATH_MAX);
}

static void after_set_information(NTSTATUS st, HANDLE h, PVOID info, ULONG len, ULONG cls)
{
    wchar_t target[SBX_PATH_MAX];
    size_t tlen;
    enum sbx_op op;
    switch (cls) {
    case C_RENAME:
    case C_RENAME_EX:
    case C_LINK:
    case C_LINK_EX: {
        op = (cls == C_RENAME || cls == C_RENAME_EX) ? SBX_OP_RENAME : SBX_OP_LINK;
        if (NT_OK(st) && op == SBX_OP_RENAME)
            sbx_long_names_forget();
        tlen = target_name(h, info, len, target);
        if (!tlen)
            return;
        struct sbx_access a = sbx_access_classify(op, NT_OK(st));
        if (!NT_OK(st)) {
            sbx_record(a.second, target, tlen);     /* the handle's name was only looked at */
            return;
        }
        sbx_handles_use(h, a.first);
        if (op == SBX_OP_RENAME)
            sbx_handles_rename(h, target, tlen);
        sbx_record(a.second, target, tlen);
        return;
    }
    case C_DISPOSITION:
    case C_DISPOSITION_EX:
        /* delete on close set (not cleared): a removal */
        if (NT_OK(st) && (cls == C_DISPOSITION ? len >= 1 && *(BOOLEAN *)info
                                               : len >= 4 && (*(ULONG *)info & 1))) {
            sbx_long_names_forget();
            sbx_handles_use(h, first_name(SBX_OP_REMOVE, st));
        }
        return;
    case C_ALLOCATION:
    case C_END_OF_FILE:
    case C_VALID_DATA_LENGTH:
        if (NT_OK(st))                              /* ftruncate, fallocate */
            sbx_handles_use(h, sbx_access_use(SBX_USE_WRITE));
        return;
    case C_BASIC:
        /* times and attributes through the handle (futimens, fchmod); all-zero
         * fields mean "leave unchanged": not a metadata change. */
        if (NT_OK(st) && len >= sizeof(struct basic_info)) {
            const struct basic_info *b = info;
            if (b->times[0].QuadPart || b->times[1].QuadPart || b->times[2].QuadPart ||
                b->times[3].QuadPart || b->attributes)
                sbx_handles_use(h, sbx_access_use(SBX_USE_WRITE));
        }
        return;
    default:
        return;
    }
}

/* A rename or link brings a new name into existence: a write of it.  A
 * hard link is also a write of the file linked: through the new name,
 * inside a write tree, its content could be changed.  (The old name of a
 * rename, and a delete on close, need DELETE access, which the handle's
 * open was checked for.) */
static int refuse_set_information(HANDLE h, PVOID info, ULONG len, ULONG cls)
{
    if (cls != C_RENAME && cls != C_RENAME_EX && cls != C_LINK && cls != C_LINK_EX)
        return 0;
    wchar_t target[SBX_PATH_MAX];
    size_t tlen = target_name(h, info, len, target);
    int refuse = tlen && sbx_enforce(SBX_NEED_WRITE, target, tlen);
    if (cls == C_LINK || cls == C_LINK_EX) {
        size_t slen = sbx_handles_path(h, target, SBX_PATH_MAX);
        refuse |= slen && sbx_enforce(SBX_NEED_WRITE, target, slen);
    }
    return refuse;
}

static NTSTATUS NTAPI h_NtSetInformationFile(HANDLE h, PIO_STATUS_BLOCK iosb, PVOID info,
                                             ULONG len, ULONG cls)
{
    SBX_ENFORCE(refuse_set_information(h, info, len, cls), SBX_NT_REFUSED(iosb));
    NTSTATUS st = o_NtSetInformationFile(h, iosb, info, len, cls);
    SBX_RECORD_AFTER(after_set_information(st, h, info, len, cls));
    return st;
}

static NTSTATUS NTAPI h_NtDeleteFile(POBJECT_ATTRIBUTES oa)
{
    SBX_ENFORCE(refuse_oa(SBX_NEED_WRITE, oa), { return STATUS_ACCESS_DENIED; });
    NTSTATUS st = o_NtDeleteFile(oa);
    if (NT_OK(st) && sbx_active)
        sbx_long_names_forget();
    SBX_RECORD_AFTER(record_oa(first_name(SBX_OP_REMOVE, st), oa));
    return st;
}

/* Data moved (or is moving: STATUS_PENDING) or the end was reached. */
static int transferred(NTSTATUS st)
{
    return NT_OK(st) || st == STATUS_END_OF_FILE;
}

static NTSTATUS NTAPI h_NtReadFile(HANDLE h, HANDLE ev, PVOID apc, PVOID ctx,
                                   PIO_STATUS_BLOCK iosb, PVOID b, ULONG n, PLARGE_INTEGER off,
                                   PULONG key)
{
    NTSTATUS st = o_NtReadFile(h, ev, apc, ctx, iosb, b, n, off, key);
    if (transferred(st))
        SBX_RECORD_AFTER(sbx_handles_use(h, sbx_access_use(SBX_USE_READ)));
    return st;
}

static NTSTATUS NTAPI h_NtWriteFile(HANDLE h, HANDLE ev, PVOID apc, PVOID ctx,
                                    PIO_STATUS_BLOCK iosb, PVOID b, ULONG n, PLARGE_INTEGER off,
                                    PULONG key)
{
    NTSTATUS st = o_NtWriteFile(h, ev, apc, ctx, iosb, b, n, off, key);
    if (NT_OK(st))
        SBX_RECORD_AFTER(sbx_handles_use(h, sbx_access_use(SBX_USE_WRITE)));
    return st;
}

/* ReadFileScatter/WriteFileGather: the same arguments as NtReadFile and
 * NtWriteFile, with a segment array for the buffer. */
static NTSTATUS NTAPI h_NtReadFileScatter(HANDLE h, HANDLE ev, PVOID apc, PVOID ctx,
                                          PIO_STATUS_BLOCK iosb, PVOID segs, ULONG n,
                                          PLARGE_INTEGER off, PULONG key)
{
    NTSTATUS st = o_NtReadFileScatter(h, ev, apc, ctx, iosb, segs, n, off, key);
    if (transferred(st))
        SBX_RECORD_AFTER(sbx_handles_use(h, sbx_access_use(SBX_USE_READ)));
    return st;
}

static NTSTATUS NTAPI h_NtWriteFileGather(HANDLE h, HANDLE ev, PVOID apc, PVOID ctx,
                                          PIO_STATUS_BLOCK iosb, PVOID segs, ULONG n,
                                          PLARGE_INTEGER off, PULONG key)
{
    NTSTATUS st = o_NtWriteFileGather(h, ev, apc, ctx, iosb, segs, n, off, key);
    if (NT_OK(st))
        SBX_RECORD_AFTER(sbx_handles_use(h, sbx_access_use(SBX_USE_WRITE)));
    return st;
}

/* Metadata by name without opening (Windows 10 1709+, GetFileInformationByName):
 * a probe, like NtQueryAttributesFile. */
static NTSTATUS NTAPI h_NtQueryInformationByName(POBJECT_ATTRIBUTES oa, PIO_STATUS_BLOCK iosb,
                                                 PVOID info, ULONG len, ULONG cls)
{
    SBX_ENFORCE(refuse_oa(SBX_NEED_PROBE, oa), SBX_NT_REFUSED(iosb));
    NTSTATUS st = o_NtQueryInformationByName(oa, iosb, info, len, cls);
    SBX_RECORD_AFTER(record_oa(first_name(SBX_OP_PROBE, st), oa));
    return st;
}

/* A copy between two handles done by the file system (Windows 11 22H2+;
 * newer CopyFile implementations use it): the source is read, the
 * destination written. */
static NTSTATUS NTAPI h_NtCopyFileChunk(HANDLE src, HANDLE dst, HANDLE ev, PIO_STATUS_BLOCK iosb,
                                        ULONG len, PLARGE_INTEGER soff, PLARGE_INTEGER doff,
                                        PULONG skey, PULONG dkey, ULONG flags)
{
    NTSTATUS st = o_NtCopyFileChunk(src, dst, ev, iosb, len, soff, doff, skey, dkey, flags);
    if (NT_OK(st))
        SBX_RECORD_AFTER(sbx_handles_use(src, sbx_access_use(SBX_USE_READ));
                         sbx_handles_use(dst, sbx_access_use(SBX_USE_WRITE)));
    return st;
}

/* File-system controls that move content or change a file (CTL_CODE values
 * of winioctl.h, FILE_DEVICE_FILE_SYSTEM).  Reading a reparse point is
 * readlink(): a read of the link itself.  Block cloning
 * (DUPLICATE_EXTENTS, how Dev Drive/ReFS copies) reads the source handle
 * given in the input buffer, like a copy's source.  The others listed
 * change the file through its handle; the rest query or tune the volume
 * and touch no file content. */
#define FSCTL_SET_COMPRESSION_ 0x0009C040u
#define FSCTL_SET_REPARSE_POINT_ 0x000900A4u
#define FSCTL_GET_REPARSE_POINT_ 0x000900A8u
#define FSCTL_DELETE_REPARSE_POINT_ 0x000900ACu
#define FSCTL_SET_SPARSE_ 0x000900C4u
#define FSCTL_SET_ZERO_DATA_ 0x000980C8u
#define FSCTL_DUPLICATE_EXTENTS_TO_FILE_ 0x00098344u
#define FSCTL_DUPLICATE_EXTENTS_TO_FILE_EX_ 0x000983E8u

static void after_fs_control(HANDLE h, ULONG code, const void *in, ULONG inlen)
{
    HANDLE src = NULL;
    switch (code) {
    case FSCTL_GET_REPARSE_POINT_:
        sbx_handles_use(h, sbx_access_classify(SBX_OP_READLINK, 1).first);
        return;
    case FSCTL_DUPLICATE_EXTENTS_TO_FILE_:        /* DUPLICATE_EXTENTS_DATA: handle first */
        if (in && inlen >= sizeof(HANDLE))
            memcpy(&src, in, sizeof src);
        break;
    case FSCTL_DUPLICATE_EXTENTS_TO_FILE_EX_:     /* _EX: SIZE_T Size, then the handle */
        if (in && inlen >= sizeof(SIZE_T) + sizeof(HANDLE))
            memcpy(&src, (const char *)in + sizeof(SIZE_T), sizeof src);
        break;
    case FSCTL_SET_COMPRESSION_:
    case FSCTL_SET_REPARSE_POINT_:
    case FSCTL_DELETE_REPARSE_POINT_:
    case FSCTL_SET_SPARSE_:
    case FSCTL_SET_ZERO_DATA_:
        break;
    default:
        return;
    }
    if (src)
        sbx_handles_use(src, sbx_access_use(SBX_USE_READ));
    sbx_handles_use(h, sbx_access_use(SBX_USE_WRITE));
}

static NTSTATUS NTAPI h_NtFsControlFile(HANDLE h, HANDLE ev, PVOID apc, PVOID ctx,
                                        PIO_STATUS_BLOCK iosb, ULONG code, PVOID in, ULONG inlen,
                                        PVOID out, ULONG outlen)
{
    NTSTATUS st = o_NtFsControlFile(h, ev, apc, ctx, iosb, code, in, inlen, out, outlen);
    if (NT_OK(st))
        SBX_RECORD_AFTER(after_fs_control(h, code, in, inlen));
    return st;
}

/* Extended attributes and the security descriptor of a file are its
 * metadata: setting them is a write, as setxattr and chmod are on Linux.
 * (For handles that are not files — processes, registry keys — the handle
 * table answers "not a file" and nothing is recorded.) */
static NTSTATUS NTAPI h_NtSetEaFile(HANDLE h, PIO_STATUS_BLOCK iosb, PVOID buf, ULONG len)
{
    NTSTATUS st = o_NtSetEaFile(h, iosb, buf, len);
    if (NT_OK(st))
        SBX_RECORD_AFTER(sbx_handles_use(h, sbx_access_use(SBX_USE_WRITE)));
    return st;
}

static NTSTATUS NTAPI h_NtSetSecurityObject(HANDLE h, ULONG what, PVOID sd)
{
    NTSTATUS st = o_NtSetSecurityObject(h, what, sd);
    if (NT_OK(st))
        SBX_RECORD_AFTER(sbx_handles_use(h, sbx_access_use(SBX_USE_WRITE)));
    return st;
}

/* Forget a handle before its value can be reused by another open; done
 * even inside another hook, since the table must never hold a dead handle. */
static void forget_handle(HANDLE h)
{
    if (!sbx_active)
        return;
    unsigned prev = sbx_tls_get();
    sbx_tls_set(prev | SBX_GUARD);
    DWORD err = GetLastError();
    sbx_handles_close(h);
    SetLastError(err);
    sbx_tls_set(prev);
}

static NTSTATUS NTAPI h_NtClose(HANDLE h)
{
    forget_handle(h);
    return o_NtClose(h);
}

/* Mapping a file (how the loader reads a DLL) reads it; a writable mapping
 * of a file may also change it. */
static NTSTATUS NTAPI h_NtCreateSection(PHANDLE sh, ACCESS_MASK access, POBJECT_ATTRIBUTES oa,
                                        PLARGE_INTEGER size, ULONG protect, ULONG attrs,
                                        HANDLE file)
{
    NTSTATUS st = o_NtCreateSection(sh, access, oa, size, protect, attrs, file);
    if (file && NT_OK(st))
        SBX_RECORD_AFTER(sbx_handles_use(file, sbx_access_use(SBX_USE_READ));
                         if (protect & (PAGE_READWRITE | PAGE_EXECUTE_READWRITE))
                             sbx_handles_use(file, sbx_access_use(SBX_USE_WRITE)));
    return st;
}

static int is_self(HANDLE process)
{
    return process == GetCurrentProcess() || GetProcessId(process) == GetCurrentProcessId();
}

static NTSTATUS NTAPI h_NtTerminateProcess(HANDLE process, NTSTATUS code)
{
    /* NULL means "the other threads" (ExitProcess does that first); only the
     * process itself ending is the last moment to deliver events. */
    if (sbx_active && process && is_self(process)) {
        sbx_tls_set(SBX_GUARD);
        sbx_handles_exit();
        sbx_bye();
    }
    return o_NtTerminateProcess(process, code);
}

/* DUPLICATE_CLOSE_SOURCE closes a handle without NtClose: forget it, or its
 * value, reused later for something else, would carry the old name.  (The
 * duplicate itself is resolved when first used.) */
static NTSTATUS NTAPI h_NtDuplicateObject(HANDLE sp, HANDLE sh, HANDLE tp, PHANDLE th,
                                          ACCESS_MASK access, ULONG attrs, ULONG options)
{
    if (sbx_active && (options & DUPLICATE_CLOSE_SOURCE) && is_self(sp))
        forget_handle(sh);
    return o_NtDuplicateObject(sp, sh, tp, th, access, attrs, options);
}

#define HOOK(name) {"ntdll.dll", #name, (void *)h_##name, (void **)&o_##name}
const struct sbx_hook_def sbx_nt_hooks[] = {
    HOOK(NtClose),
    HOOK(NtCreateFile),
    HOOK(NtOpenFile),
    HOOK(NtQueryAttributesFile),
    HOOK(NtQueryFullAttributesFile),
    HOOK(NtQueryDirectoryFile),
    HOOK(NtQueryDirectoryFileEx),
    HOOK(NtSetInformationFile),
    HOOK(NtDeleteFile),
    HOOK(NtReadFile),
    HOOK(NtWriteFile),
    HOOK(NtReadFileScatter),
    HOOK(NtWriteFileGather),
    HOOK(NtQueryInformationByName),
    HOOK(NtCopyFileChunk),
    HOOK(NtFsControlFile),
    HOOK(NtSetEaFile),
    HOOK(NtSetSecurityObject),
    HOOK(NtCreateSection),
    HOOK(NtTerminateProcess),
    HOOK(NtDuplicateObject),
    {NULL, NULL, NULL, NULL},
};
