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

/* Kept apart from the path records' de-duplication keys by a bit no path
 * category uses (as SBX_DENIED_KEY below). */
#define SBX_UNUSED_KEY 0x20000u

void sbx_record_unused(const wchar_t *path, size_t len)
{
    if (!sbx_active || !len)
        return;
    /* Once per path is enough: the launcher settles the first one against
     * the run's sets as they were then, and categories only grow. */
    EnterCriticalSection(&lock);
    if (seen_insert(SBX_UNUSED_KEY, path, len))
        emit(SBX_MSG_UNUSED, 0, path, len * sizeof *path, NULL, 0);
    LeaveCriticalSection(&lock);
}

static void record_exec(uint16_t flags, DWORD pid, DWORD ppid, const wchar_t *path,
                        const wchar_t *cmdline, const wchar_t *cwd);

void sbx_record_exec(DWORD pid, DWORD ppid, const wchar_t *path, const wchar_t *cmdline,
                     const wchar_t *cwd)
{
    record_exec(0, pid, ppid, path, cmdline, cwd);
}

void sbx_record_breakaway(DWORD pid, DWORD ppid, const wchar_t *path, const wchar_t *cmdline)
{
    record_exec(SBX_WIRE_BREAKAWAY, pid, ppid, path, cmdline, NULL);
}

static void record_exec(uint16_t flags, DWORD pid, DWORD ppid, const wchar_t *path,
                        const wchar_t *cmdline, const wchar_t *cwd)
{
    struct sbx_wire_exec x = {pid, ppid, (uint32_t)wcslen(path),
                              (uint32_t)(cwd ? wcslen(cwd) : 0)};
    size_t plen = x.path_chars * sizeof(wchar_t), dlen = x.cwd_chars * sizeof(wchar_t);
    size_t clen = wcslen(cmdline) * sizeof(wchar_t);
    uint8_t *tmp = HeapAlloc(heap, 0, sizeof x + plen + dlen);
    if (!tmp)
        return;
    memcpy(tmp, &x, sizeof x);
    memcpy(tmp + sizeof x, path, plen);
    if (dlen)
        memcpy(tmp + sizeof x + plen, cwd, dlen);
    EnterCriticalSection(&lock);
    emit(SBX_MSG_EXEC, flags, tmp, sizeof x + plen + dlen, cmdline, clen);
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

/* ---- 8.3 short names -------------------------------------------------------- */
/* A component with a '~' may be an 8.3 alias (A_RA~QOE.TEX) of a long name;
 * a cache keyed on paths must see one spelling per file, so each such
 * component is replaced by the name the directory itself lists for it
 * (FindFirstFileExW on the exact name matches the long or the short name
 * and returns the long one).  Only those components are looked up, so the
 * letter case of the others stays as written.  A component that is not
 * found (an absent file, a name that merely contains '~') is kept as
 * written, and so is everything below it: what does not exist has no
 * other spelling.  Runs with the guard set, so its own lookups are not
 * recorded. */
static int has_tilde(const wchar_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] == '~')
            return 1;
    return 0;
}

/* Directories already expanded.  A build works in a few directories, and
 * one under a short name (a CI runner's TEMP is C:\Users\RUNNER~1\...)
 * would otherwise cost a directory query on every access below it.  Only
 * directories that were found are kept; a short name stays bound to its
 * long name for as long as the directory exists, and the cache is emptied
 * whenever this process renames or deletes something (sbx_long_names_forget),
 * since that is how an alias could come to name another directory. */
#define LONG_CACHE 8
static struct {
    wchar_t *s, *l;
    size_t sl, ll;
} long_cache[LONG_CACHE];
static unsigned long_cache_next;
static SRWLOCK long_lock = SRWLOCK_INIT;

/* The longest cached directory that starts path (at a component boundary):
 * its long form goes to out; returns how much of path it covers (0: none). */
static size_t cache_lookup(const wchar_t *path, size_t len, wchar_t *out, size_t ocap,
                           size_t *nout)
{
    size_t best = 0;
    AcquireSRWLockShared(&long_lock);
    for (int i = 0; i < LONG_CACHE; i++) {
        size_t sl = long_cache[i].sl;
        if (!long_cache[i].s || sl <= best || sl > len || (sl < len && path[sl] != '\\') ||
            long_cache[i].ll >= ocap)
            continue;
        if (CompareStringOrdinal(path, (int)sl, long_cache[i].s, (int)sl, TRUE) != CSTR_EQUAL)
            continue;
        memcpy(out, long_cache[i].l, long_cache[i].ll * sizeof *out);
        *nout = long_cache[i].ll;
        best = sl;
    }
    ReleaseSRWLockShared(&long_lock);
    return best;
}

static void cache_store(const wchar_t *sp, size_t sl, const wchar_t *lp, size_t ll)
{
    wchar_t *s2 = HeapAlloc(heap, 0, sl * sizeof *s2), *l2 = HeapAlloc(heap, 0, ll * sizeof *l2);
    if (!s2 || !l2) {
        if (s2)
            HeapFree(heap, 0, s2);
        if (l2)
            HeapFree(heap, 0, l2);
        return;
    }
    memcpy(s2, sp, sl * sizeof *s2);
    memcpy(l2, lp, ll * sizeof *l2);
    AcquireSRWLockExclusive(&long_lock);
    unsigned k = long_cache_next++ % LONG_CACHE;
    if (long_cache[k].s) {
        HeapFree(heap, 0, long_cache[k].s);
        HeapFree(heap, 0, long_cache[k].l);
    }
    long_cache[k].s = s2;
    long_cache[k].l = l2;
    long_cache[k].sl = sl;
    long_cache[k].ll = ll;
    ReleaseSRWLockExclusive(&long_lock);
}

void sbx_long_names_forget(void)
{
    AcquireSRWLockExclusive(&long_lock);
    for (int k = 0; k < LONG_CACHE; k++) {
        if (long_cache[k].s) {
            HeapFree(heap, 0, long_cache[k].s);
            HeapFree(heap, 0, long_cache[k].l);
        }
        long_cache[k].s = long_cache[k].l = NULL;
        long_cache[k].sl = long_cache[k].ll = 0;
    }
    ReleaseSRWLockExclusive(&long_lock);
}

size_t sbx_long_names(wchar_t *path, size_t len, size_t cap)
{
    if (!has_tilde(path, len))
        return len;
    /* The root that never changes: "C:\" or "\\server\share". */
    size_t root;
    int unc = 0;
    if (len >= 3 && path[1] == ':' && path[2] == '\\') {
        root = 3;
    } else if (len >= 3 && path[0] == '\\' && path[1] == '\\' && path[2] != '.' &&
               path[2] != '?') {
        unc = 1;
        root = 2;
        for (int part = 0; part < 2; part++) {
            while (root < len && path[root] != '\\')
                root++;
            if (part == 0 && root < len)
                root++;
        }
    } else {
        return len;         /* devices, NT object names: no short names */
    }
    /* FindFirstFileExW is given \\?\C:\... or \\?\UNC\server\share\...,
     * so long paths work too. */
    const wchar_t *prefix = unc ? L"\\\\?\\UNC\\" : L"\\\\?\\";
    size_t skip = unc ? 2 : 0;      /* the UNC prefix replaces the "\\" of \\server */
    size_t plen = wcslen(prefix);
    size_t qcap = SBX_PATH_MAX + 16;
    wchar_t *q = HeapAlloc(heap, 0, 2 * qcap * sizeof *q);
    WIN32_FIND_DATAW *fd = HeapAlloc(heap, 0, sizeof *fd);
    if (!q || !fd) {
        if (q)
            HeapFree(heap, 0, q);
        if (fd)
            HeapFree(heap, 0, fd);
        return len;
    }
    wchar_t *out = q + qcap;        /* the long path built so far */
    size_t n = root;
    memcpy(out, path, root * sizeof *out);
    size_t i = root;
    size_t cached_n, cached = cache_lookup(path, len, out, qcap, &cached_n);
    if (cached > root) {
        i = cached;
        n = cached_n;
    }
    size_t keep_s = 0, keep_l = 0;  /* deepest directory expanded here: cache it */
    unsigned prev = sbx_active ? sbx_tls_get() : 0;
    if (sbx_active)
        sbx_tls_set(prev | SBX_GUARD);
    int exists = 1;
    while (i < len) {
        while (i < len && path[i] == '\\')
            i++;
        size_t s = i;
        while (i < len && path[i] != '\\')
            i++;
        size_t clen = i - s;
        if (!clen)
            break;
        const wchar_t *comp = path + s;
        wchar_t found[MAX_PATH];
        int expanded = 0;
        if (exists && has_tilde(comp, clen) && plen + n + 1 + clen + 1 <= qcap) {
            int wild = 0;
            for (size_t k = 0; k < clen; k++)
                wild |= comp[k] == '*' || comp[k] == '?';
            size_t qn = plen;
            memcpy(q, prefix, plen * sizeof *q);
            memcpy(q + qn, out + skip, (n - skip) * sizeof *q);
            qn += n - skip;
            if (q[qn - 1] != '\\')
                q[qn++] = '\\';
            memcpy(q + qn, comp, clen * sizeof *q);
            q[qn + clen] = 0;
            HANDLE f = wild ? INVALID_HANDLE_VALUE
                            : FindFirstFileExW(q, FindExInfoBasic, fd, FindExSearchNameMatch,
                                               NULL, 0);
            if (f != INVALID_HANDLE_VALUE) {
                FindClose(f);
                size_t fl = wcslen(fd->cFileName);
                if (fl < MAX_PATH) {
                    memcpy(found, fd->cFileName, (fl + 1) * sizeof *found);
                    comp = found;
                    clen = fl;
                    expanded = 1;
                }
            } else {
                exists = 0;
            }
        }
        if (n + 1 + clen + 1 > qcap) {
            n = 0;              /* does not fit: keep the path as it was */
            break;
        }
        if (out[n - 1] != '\\')
            out[n++] = '\\';
        memcpy(out + n, comp, clen * sizeof *out);
        n += clen;
        if (expanded && i < len) {  /* a directory, since more follows */
            keep_s = i;
            keep_l = n;
        }
    }
    if (sbx_active)
        sbx_tls_set(prev);
    if (n && keep_s)
        cache_store(path, keep_s, out, keep_l);
    if (n && n < cap) {
        memcpy(path, out, n * sizeof *path);
        path[n] = 0;
        len = n;
    }
    HeapFree(heap, 0, q);
    HeapFree(heap, 0, fd);
    return len;
}

/* ---- Win32 paths ------------------------------------------------------------ */
/* Names in the NT namespace given to a Win32 call: "\??\C:\x" is passed to
 * the system unchanged (RtlDosPathNameToNtPathName_U lets a \??\ prefix
 * through) and "\\?\C:\x" turns off all Win32 processing.  GetFullPathNameW
 * would take the first for a path rooted on the current drive
 * ("Z:\??\Z:\x"), so neither goes through it; "\\.\C:\x" is processed like
 * any Win32 name and does. */
static int nt_namespace(const wchar_t *p)
{
    return p[0] == '\\' && (p[1] == '?' || p[1] == '\\') && p[2] == '?' && p[3] == '\\';
}

size_t sbx_full_path(const wchar_t *in, wchar_t *out, size_t cap)
{
    wchar_t full[SBX_PATH_MAX];
    if (!in || !*in)
        return 0;
    DWORD n;
    if (nt_namespace(in)) {
        size_t l = wcslen(in);
        if (l >= SBX_PATH_MAX) {
            sbx_warn(L"a path longer than %d characters was not recorded", SBX_PATH_MAX);
            return 0;
        }
        memcpy(full, in, (l + 1) * sizeof *full);
        n = (DWORD)l;
    } else {
        n = GetFullPathNameW(in, SBX_PATH_MAX, full, NULL);
        if (n == 0)
            return 0;
        if (n >= SBX_PATH_MAX) {
            sbx_warn(L"a path longer than %d characters was not recorded", SBX_PATH_MAX);
            return 0;
        }
    }
    long r = sbx_winpath_normal((uint16_t *)out, cap, (const uint16_t *)full, n);
    if (r < 0) {
        sbx_warn(L"a path longer than %d characters was not recorded", SBX_PATH_MAX);
        return 0;
    }
    return sbx_long_names(out, (size_t)r, cap);
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

/* ---- policy violations (enforce.h) ------------------------------------------- */
#include "enforce.h"

/* Kept apart from the path records' de-duplication keys by a bit no path
 * category uses. */
#define SBX_DENIED_KEY 0x10000u

void sbx_record_denied(unsigned need, const wchar_t *path, size_t len)
{
    if (!sbx_active || !len)
        return;
    uint32_t pid = GetCurrentProcessId();
    EnterCriticalSection(&lock);
    if (seen_insert(SBX_DENIED_KEY | need, path, len))
        emit(SBX_MSG_DENIED, (uint16_t)need, &pid, sizeof pid, path, len * sizeof *path);
    LeaveCriticalSection(&lock);
}
