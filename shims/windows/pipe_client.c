/* pipe_client.c — how events leave a traced process.
 *
 * Events are de-duplicated per process (a build tool stats the same header
 * thousands of times; the launcher needs to hear it once), packed into a
 * 64 KB buffer in the wire format (csrc/win/wire.h) and written to the
 * launcher's pipe when the buffer fills, before the process exits, and when
 * the process starts a child.  The pipe write itself runs under the re-entry
 * guard, so it is never recorded.
 */
#include <stdarg.h>
#include <stdio.h>
#include <wchar.h>

#include "hookdll.h"
#include "../../csrc/win/winpath.h"

#define BUF_SIZE 65536

static CRITICAL_SECTION lock;
static HANDLE pipe = INVALID_HANDLE_VALUE;
static HANDLE heap;
static uint8_t buf[BUF_SIZE];
static size_t used;
static int said_bye;

/* ---- per-process de-duplication: (categories, path) seen before ------------ */
struct seen {
    uint32_t hash;
    uint32_t len;       /* units; 0 = empty slot */
    unsigned flags;
    wchar_t *path;
};
static struct seen *seen;
static size_t seen_cap, seen_count;

static uint32_t hash_path(unsigned flags, const wchar_t *p, size_t n)
{
    uint32_t h = 2166136261u ^ flags;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h ? h : 1;
}

static int seen_grow(void)
{
    size_t ncap = seen_cap ? seen_cap * 2 : 1024;
    struct seen *ns = HeapAlloc(heap, HEAP_ZERO_MEMORY, ncap * sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < seen_cap; i++) {
        if (!seen[i].len)
            continue;
        size_t j = seen[i].hash & (ncap - 1);
        while (ns[j].len)
            j = (j + 1) & (ncap - 1);
        ns[j] = seen[i];
    }
    if (seen)
        HeapFree(heap, 0, seen);
    seen = ns;
    seen_cap = ncap;
    return 0;
}

/* 1 when (flags, path) is new (and now remembered). Caller holds the lock. */
static int seen_insert(unsigned flags, const wchar_t *p, size_t n)
{
    if ((seen_count + 1) * 2 > seen_cap && seen_grow() < 0)
        return 1;       /* out of memory: send it again rather than lose it */
    uint32_t h = hash_path(flags, p, n);
    size_t i = h & (seen_cap - 1);
    for (; seen[i].len; i = (i + 1) & (seen_cap - 1))
        if (seen[i].hash == h && seen[i].flags == flags && seen[i].len == n &&
            memcmp(seen[i].path, p, n * sizeof *p) == 0)
            return 0;
    wchar_t *copy = HeapAlloc(heap, 0, n * sizeof *p);
    if (!copy)
        return 1;
    memcpy(copy, p, n * sizeof *p);
    seen[i].hash = h;
    seen[i].len = (uint32_t)n;
    seen[i].flags = flags;
    seen[i].path = copy;
    seen_count++;
    return 1;
}

/* ---- transport ------------------------------------------------------------- */
static void write_all(const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n && pipe != INVALID_HANDLE_VALUE) {
        DWORD w = 0;
        if (!WriteFile(pipe, p, (DWORD)(n > 0x100000 ? 0x100000 : n), &w, NULL) || !w) {
            /* The launcher is gone; nothing left to tell. */
            CloseHandle(pipe);
            pipe = INVALID_HANDLE_VALUE;
            return;
        }
        p += w;
        n -= w;
    }
}

static void flush_locked(void)
{
    if (used)
        write_all(buf, used);
    used = 0;
}

/* Append one record made of a header and up to two payload parts. */
static void emit(uint16_t type, uint16_t flags, const void *a, size_t alen,
                 const void *b, size_t blen)
{
    struct sbx_wire_hdr h;
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    h.type = type;
    h.flags = flags;
    h.len = (uint32_t)(sizeof h + alen + blen);
    h.time = (uint64_t)t.QuadPart;
    if (used + h.len > BUF_SIZE)
        flush_locked();
    if (h.len > BUF_SIZE) {
        write_all(&h, sizeof h);
        write_all(a, alen);
        write_all(b, blen);
        return;
    }
    memcpy(buf + used, &h, sizeof h);
    memcpy(buf + used + sizeof h, a, alen);
    if (blen)
        memcpy(buf + used + sizeof h + alen, b, blen);
    used += h.len;
}

int sbx_pipe_connect(void)
{
    heap = HeapCreate(0, 0, 0);
    if (!heap)
        return -1;
    InitializeCriticalSection(&lock);
    const wchar_t *name = (const wchar_t *)sbx_cfg.pipe;
    /* The launcher serves one pipe instance at a time; busy means another
     * process is connecting right now. */
    for (int tries = 0; tries < 600; tries++) {
        pipe = CreateFileW(name, GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (pipe != INVALID_HANDLE_VALUE)
            break;
        if (GetLastError() == ERROR_PIPE_BUSY)
            WaitNamedPipeW(name, 100);
        else
            Sleep(50);
    }
    if (pipe == INVALID_HANDLE_VALUE)
        return -1;
    struct sbx_wire_hello hello = {GetCurrentProcessId(), sbx_cfg.ppid};
    EnterCriticalSection(&lock);
    emit(SBX_MSG_HELLO, 0, &hello, sizeof hello, NULL, 0);
    flush_locked();
    LeaveCriticalSection(&lock);
    return 0;
}

void sbx_record(unsigned flags, const wchar_t *path, size_t len)
{
    if (!sbx_active || !len)
        return;
    EnterCriticalSection(&lock);
    if (seen_insert(flags, path, len))
        emit(SBX_MSG_PATH, (uint16_t)flags, path, len * sizeof *path, NULL, 0);
    LeaveCriticalSection(&lock);
}

void sbx_record_exec(DWORD pid, DWORD ppid, const wchar_t *path, const wchar_t *cmdline)
{
    struct sbx_wire_exec x = {pid, ppid, (uint32_t)wcslen(path)};
    size_t plen = x.path_chars * sizeof(wchar_t);
    size_t clen = wcslen(cmdline) * sizeof(wchar_t);
    uint8_t *tmp = HeapAlloc(heap, 0, sizeof x + plen);
    if (!tmp)
        return;
    memcpy(tmp, &x, sizeof x);
    memcpy(tmp + sizeof x, path, plen);
    EnterCriticalSection(&lock);
    emit(SBX_MSG_EXEC, 0, tmp, sizeof x + plen, cmdline, clen);
    LeaveCriticalSection(&lock);
    HeapFree(heap, 0, tmp);
}

void sbx_warn(const wchar_t *fmt, ...)
{
    wchar_t msg[512];
    va_list ap;
    va_start(ap, fmt);
    _vsnwprintf(msg, 512, fmt, ap);
    va_end(ap);
    msg[511] = 0;
    if (pipe == INVALID_HANDLE_VALUE)
        return;
    EnterCriticalSection(&lock);
    emit(SBX_MSG_WARN, 0, msg, wcslen(msg) * sizeof(wchar_t), NULL, 0);
    LeaveCriticalSection(&lock);
}

void sbx_flush(void)
{
    if (!sbx_active)
        return;
    EnterCriticalSection(&lock);
    flush_locked();
    LeaveCriticalSection(&lock);
}

/* At exit the other threads are already gone; one of them may have died
 * holding the lock.  Waiting would hang the exit, so give up after a while:
 * the launcher then misses our BYE and marks the run incomplete. */
static int lock_at_exit(void)
{
    for (int i = 0; i < 200; i++) {
        if (TryEnterCriticalSection(&lock))
            return 1;
        Sleep(1);
    }
    return 0;
}

void sbx_bye(void)
{
    if (!lock_at_exit())
        return;
    if (!said_bye) {
        said_bye = 1;
        emit(SBX_MSG_BYE, 0, NULL, 0, NULL, 0);
    }
    flush_locked();
    LeaveCriticalSection(&lock);
}

/* ---- Win32 paths ------------------------------------------------------------ */
size_t sbx_full_path(const wchar_t *in, wchar_t *out, size_t cap)
{
    wchar_t full[SBX_PATH_MAX];
    if (!in || !*in)
        return 0;
    DWORD n = GetFullPathNameW(in, SBX_PATH_MAX, full, NULL);
    if (n == 0)
        return 0;
    if (n >= SBX_PATH_MAX) {
        sbx_warn(L"a path longer than %d characters was not recorded", SBX_PATH_MAX);
        return 0;
    }
    long r = sbx_winpath_normal((uint16_t *)out, cap, (const uint16_t *)full, n);
    if (r < 0) {
        sbx_warn(L"a path longer than %d characters was not recorded", SBX_PATH_MAX);
        return 0;
    }
    return (size_t)r;
}

void sbx_record_win32(unsigned flags, const wchar_t *path)
{
    wchar_t norm[SBX_PATH_MAX];
    size_t n = sbx_full_path(path, norm, SBX_PATH_MAX);
    if (n)
        sbx_record(flags, norm, n);
}

wchar_t *sbx_widen(const char *s, UINT cp)
{
    if (!s)
        return NULL;
    int n = MultiByteToWideChar(cp, 0, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? HeapAlloc(GetProcessHeap(), 0, (size_t)n * sizeof *w) : NULL;
    if (w)
        MultiByteToWideChar(cp, 0, s, -1, w, n);
    return w;
}
