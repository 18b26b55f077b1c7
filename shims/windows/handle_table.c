/* handle_table.c — which file each handle stands for.
 *
 * Reads and writes arrive as handles; the path is known only at open time.
 * Each open handle maps to its normal path and to the categories already
 * reported for it, so the thousandth read on a handle costs one table
 * lookup and no event.  Handles we did not see opened (inherited, made by
 * DuplicateHandle, opened inside a guarded call) are asked of the system
 * once (GetFinalPathNameByHandleW); a handle that is not a disk file (pipe,
 * console) is remembered as such so it is never asked again.
 *
 * The table is also the DLL's open-file ledger (access.h): a handle a
 * hooked call opened is settled when it closes, or when the process ends
 * with it open.  What to do with one whose content was never used is
 * sbx_ledger_is_probe's to say; the candidate goes to the launcher, which
 * weighs it against the whole run's sets (sbx_result_settle), in time order
 * with every other process's events, as the Linux backends do.
 */
#include "hookdll.h"
#include "../../csrc/win/winpath.h"

/* Open addressing with linear probing; a removal shifts the rest of its
 * probe run back instead of leaving a tombstone, since programs open and
 * close handles endlessly and tombstones would make every lookup walk. */
struct slot {
    HANDLE h;           /* NULL: empty */
    wchar_t *path;      /* NULL: not a file */
    uint32_t len;
    unsigned state;     /* categories reported | H_OPENED | H_USED */
};

#define H_OPENED 0x1000u    /* opened by a hooked call: in the ledger */
#define H_USED 0x2000u      /* the ledger's `used`: content used, or the open
                             * itself counted as a use (sbx_access_open) */

static SRWLOCK lock = SRWLOCK_INIT;
static HANDLE heap;
static struct slot *slots;
static size_t cap, live;

static size_t hash_handle(HANDLE h)
{
    uint64_t v = (uint64_t)(uintptr_t)h;
    v ^= v >> 17;
    v *= 0x9E3779B97F4A7C15ull;
    return (size_t)(v >> 20);
}

void sbx_handles_init(void)
{
    heap = HeapCreate(0, 0, 0);
    cap = 1024;
    slots = HeapAlloc(heap, HEAP_ZERO_MEMORY, cap * sizeof *slots);
}

static struct slot *find(HANDLE h)
{
    if (!slots)
        return NULL;
    for (size_t i = hash_handle(h) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (slots[i].h == h)
            return &slots[i];
        if (!slots[i].h)
            return NULL;
    }
}

static void rehash(size_t ncap)
{
    struct slot *ns = HeapAlloc(heap, HEAP_ZERO_MEMORY, ncap * sizeof *ns);
    if (!ns)
        return;
    for (size_t i = 0; i < cap; i++) {
        if (!slots[i].h)
            continue;
        size_t j = hash_handle(slots[i].h) & (ncap - 1);
        while (ns[j].h)
            j = (j + 1) & (ncap - 1);
        ns[j] = slots[i];
    }
    HeapFree(heap, 0, slots);
    slots = ns;
    cap = ncap;
}

static void drop(struct slot *s)
{
    if (s->path)
        HeapFree(heap, 0, s->path);
    live--;
    size_t i = (size_t)(s - slots), j = i;
    for (;;) {
        slots[i].h = NULL;
        slots[i].path = NULL;
        size_t home;
        do {
            j = (j + 1) & (cap - 1);
            if (!slots[j].h)
                return;
            home = hash_handle(slots[j].h) & (cap - 1);
            /* slot j may fill the hole at i unless its home lies cyclically in (i, j] */
        } while (i <= j ? (home > i && home <= j) : (home > i || home <= j));
        slots[i] = slots[j];
        i = j;
    }
}

/* Insert or replace; caller holds the lock exclusively. */
static void put_locked(HANDLE h, const wchar_t *path, size_t len, unsigned state)
{
    if (!slots)
        return;
    struct slot *old = find(h);
    if (old)
        drop(old);
    if ((live + 1) * 2 > cap)
        rehash(cap * 2);
    if (live + 1 >= cap)
        return;                 /* could not grow: better unknown than a full table */
    size_t i = hash_handle(h) & (cap - 1);
    while (slots[i].h)
        i = (i + 1) & (cap - 1);
    wchar_t *copy = NULL;
    if (path) {
        copy = HeapAlloc(heap, 0, (len + 1) * sizeof *copy);
        if (!copy)
            return;
        memcpy(copy, path, len * sizeof *copy);
        copy[len] = 0;
    }
    slots[i].h = h;
    slots[i].path = copy;
    slots[i].len = (uint32_t)len;
    slots[i].state = state;
    live++;
}

void sbx_handles_open(HANDLE h, const wchar_t *path, size_t len, unsigned intent, int created,
                      int removes)
{
    int used, tracked;
    unsigned cats = sbx_access_open(intent, created, &used, &tracked);
    if (removes) {
        cats |= sbx_access_classify(SBX_OP_REMOVE, 1).first;
        used = 1;
    }
    if (cats)
        sbx_record(cats, path, len);
    unsigned state = (cats & SBX_CATEGORIES) | (tracked ? H_OPENED : 0) | (used ? H_USED : 0);
    AcquireSRWLockExclusive(&lock);
    put_locked(h, path, len, state);
    ReleaseSRWLockExclusive(&lock);
}

/* Ask the system for the path of a handle we did not see opened. */
static size_t resolve(HANDLE h, wchar_t *out, size_t cap_units)
{
    if (GetFileType(h) != FILE_TYPE_DISK)
        return 0;
    wchar_t raw[SBX_PATH_MAX];
    DWORD n = GetFinalPathNameByHandleW(h, raw, SBX_PATH_MAX, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    if (n == 0 || n >= SBX_PATH_MAX)
        return 0;
    long r = sbx_winpath_normal((uint16_t *)out, cap_units, (const uint16_t *)raw, n);
    return r < 0 ? 0 : (size_t)r;
}

/* Look up h, resolving it once if unknown. Copies the path when out is
 * given. Returns the slot state, or -1 when h is not a file. */
static long lookup(HANDLE h, wchar_t *out, size_t cap_units, size_t *len)
{
    AcquireSRWLockShared(&lock);
    struct slot *s = find(h);
    if (s) {
        long state = s->path ? (long)s->state : -1;
        *len = s->path ? s->len : 0;
        if (s->path && out && s->len < cap_units) {
            memcpy(out, s->path, s->len * sizeof *out);
            out[s->len] = 0;
        }
        ReleaseSRWLockShared(&lock);
        return state;
    }
    ReleaseSRWLockShared(&lock);
    wchar_t tmp[SBX_PATH_MAX];
    size_t n = resolve(h, tmp, SBX_PATH_MAX);
    AcquireSRWLockExclusive(&lock);
    put_locked(h, n ? tmp : NULL, n, 0);
    ReleaseSRWLockExclusive(&lock);
    *len = n;
    if (!n)
        return -1;
    if (out && n < cap_units) {
        memcpy(out, tmp, n * sizeof *out);
        out[n] = 0;
    }
    return 0;
}

size_t sbx_handles_path(HANDLE h, wchar_t *out, size_t cap_units)
{
    size_t len = 0;
    if (lookup(h, out, cap_units, &len) < 0 || len >= cap_units)
        return 0;
    return len;
}

void sbx_handles_use(HANDLE h, unsigned cats)
{
    cats &= SBX_CATEGORIES;
    /* Fast path: known handle, every category already reported. */
    AcquireSRWLockShared(&lock);
    struct slot *s = find(h);
    int done = s && (!s->path || !(cats & ~s->state));
    ReleaseSRWLockShared(&lock);
    if (done)
        return;
    wchar_t path[SBX_PATH_MAX];
    size_t len = 0;
    long state = lookup(h, path, SBX_PATH_MAX, &len);
    if (state < 0 || len >= SBX_PATH_MAX)
        return;
    unsigned fresh = cats & ~(unsigned)state;
    AcquireSRWLockExclusive(&lock);
    s = find(h);
    if (s)
        s->state |= cats | H_USED;
    ReleaseSRWLockExclusive(&lock);
    if (fresh)
        sbx_record(fresh, path, len);
}

/* An opened handle whose file the ledger would call only looked at. */
static int unused(const struct slot *s)
{
    return s->h && s->path && (s->state & H_OPENED) &&
           sbx_ledger_is_probe(!!(s->state & H_USED), 0);
}

void sbx_handles_close(HANDLE h)
{
    wchar_t *path = NULL;
    uint32_t len = 0;
    AcquireSRWLockExclusive(&lock);
    struct slot *s = find(h);
    if (s) {
        if (unused(s)) {
            path = s->path;         /* keep it past the drop */
            len = s->len;
            s->path = NULL;
        }
        drop(s);
    }
    ReleaseSRWLockExclusive(&lock);
    if (path) {
        sbx_record_unused(path, len);
        HeapFree(heap, 0, path);
    }
}

void sbx_handles_rename(HANDLE h, const wchar_t *path, size_t len)
{
    AcquireSRWLockExclusive(&lock);
    struct slot *s = find(h);
    unsigned state = s ? s->state : H_OPENED | H_USED;
    put_locked(h, path, len, state);
    ReleaseSRWLockExclusive(&lock);
}

void sbx_handles_exit(void)
{
    /* As in sbx_bye: a thread killed by the exit may hold the lock. */
    int locked = 0;
    for (int i = 0; i < 200 && !(locked = TryAcquireSRWLockExclusive(&lock)); i++)
        Sleep(1);
    if (!locked)
        return;
    for (size_t i = 0; slots && i < cap; i++)
        if (unused(&slots[i]))
            sbx_record_unused(slots[i].path, slots[i].len);
    ReleaseSRWLockExclusive(&lock);
}
