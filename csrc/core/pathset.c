/* pathset.c — open-addressing hash table of interned paths.
 *
 * Paths are copied once into the table; lookups hash the bytes (FNV-1a) and
 * probe linearly.  The table doubles at 50% load, so a run that touches a
 * million files costs a handful of reallocations, not one per path.
 */
#include "pathset.h"

#include "access.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    char *path;          /* NULL marks an empty slot */
    uint32_t len;
    uint32_t hash;
    unsigned flags;      /* public categories + SBX_CREATED */
};

/* Stored in an entry's flags, not public: its path is another set's
 * (sbx_pathset_add_both), not freed with this one. */
#define BORROWED 0x8000u

struct sbx_pathset {
    struct entry *slots;
    size_t cap;          /* power of two */
    size_t count;
};

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

sbx_pathset *sbx_pathset_new(void)
{
    return sbx_pathset_new_sized(128);
}

sbx_pathset *sbx_pathset_new_sized(size_t n)
{
    sbx_pathset *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    ps->cap = 8;
    while (ps->cap < n * 2)
        ps->cap *= 2;
    ps->slots = calloc(ps->cap, sizeof *ps->slots);
    if (!ps->slots) {
        free(ps);
        return NULL;
    }
    return ps;
}

size_t sbx_pathset_count(const sbx_pathset *ps)
{
    return ps->count;
}

void sbx_pathset_free(sbx_pathset *ps)
{
    if (!ps)
        return;
    for (size_t i = 0; i < ps->cap; i++)
        if (!(ps->slots[i].flags & BORROWED))
            free(ps->slots[i].path);
    free(ps->slots);
    free(ps);
}

static int grow(sbx_pathset *ps)
{
    size_t ncap = ps->cap * 2;
    struct entry *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < ps->cap; i++) {
        struct entry *e = &ps->slots[i];
        if (!e->path)
            continue;
        size_t j = e->hash & (ncap - 1);
        while (ns[j].path)
            j = (j + 1) & (ncap - 1);
        ns[j] = *e;
    }
    free(ps->slots);
    ps->slots = ns;
    ps->cap = ncap;
    return 0;
}

/* Apply the order-dependent precision rules to an entry's flags. */
static unsigned merge(unsigned have, unsigned add)
{
    if ((add & SBX_READ) && (have & SBX_CREATED))
        add &= ~SBX_READ;               /* reading back our own output */
    if ((add & SBX_CREATED) && (have & SBX_READ))
        add &= ~SBX_CREATED;            /* existed and was read first */
    return have | add;
}

/* Stored, not public: what a refused access asked for (SBX_REFUSED). */
#define REFUSED_READ  0x1000u
#define REFUSED_WRITE 0x2000u

/* Add to `ps`, with `path`'s hash `h`; `borrow`: keep the pointer `path`
 * itself (another set's string that outlives this one: not copied, not
 * freed here).  *stored is the string the entry keeps. */
static int add_hashed(sbx_pathset *ps, const char *path, size_t len, uint32_t h,
                      unsigned flags, int borrow, const char **stored)
{
    if (len > UINT32_MAX)
        return -1;
    flags &= ~SBX_NOFOLLOW;
    if (flags & SBX_REFUSED)
        flags = SBX_PROBE | ((flags & (SBX_READ | SBX_ENUM)) ? REFUSED_READ : 0) |
                ((flags & SBX_WRITE) ? REFUSED_WRITE : 0);
    if ((ps->count + 1) * 2 > ps->cap && grow(ps) < 0)
        return -1;
    size_t i = h & (ps->cap - 1);
    for (;;) {
        struct entry *e = &ps->slots[i];
        if (!e->path) {
            char *copy = (char *)path;
            if (!borrow) {
                if (!(copy = malloc(len + 1)))
                    return -1;
                memcpy(copy, path, len);
                copy[len] = '\0';
            }
            e->path = copy;
            e->len = (uint32_t)len;
            e->hash = h;
            e->flags = merge(0, flags) | (borrow ? BORROWED : 0);
            ps->count++;
            if (stored)
                *stored = copy;
            return 0;
        }
        if (e->hash == h && e->len == len && memcmp(e->path, path, len) == 0) {
            e->flags = merge(e->flags, flags);
            if (stored)
                *stored = e->path;
            return 0;
        }
        i = (i + 1) & (ps->cap - 1);
    }
}

int sbx_pathset_add(sbx_pathset *ps, const char *path, size_t len, unsigned flags)
{
    return add_hashed(ps, path, len, hash_bytes(path, len), flags, 0, NULL);
}

int sbx_pathset_add_both(sbx_pathset *owner, sbx_pathset *borrower, const char *path,
                         size_t len, unsigned flags)
{
    const char *kept = NULL;
    uint32_t h = hash_bytes(path, len);
    if (add_hashed(owner, path, len, h, flags, 0, &kept) < 0)
        return -1;
    return add_hashed(borrower, kept, len, h, flags, 1, NULL);
}

unsigned sbx_pathset_get(const sbx_pathset *ps, const char *path, size_t len)
{
    uint32_t h = hash_bytes(path, len);
    for (size_t i = h & (ps->cap - 1); ps->slots[i].path; i = (i + 1) & (ps->cap - 1)) {
        const struct entry *e = &ps->slots[i];
        if (e->hash == h && e->len == len && memcmp(e->path, path, len) == 0)
            return e->flags & SBX_CATEGORIES;
    }
    return 0;
}

static int cmp_entry_ptr(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a;
    const struct entry *y = *(const struct entry *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->path, y->path, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

int sbx_pathset_foreach(const sbx_pathset *ps, sbx_pathset_visit fn, void *ctx)
{
    int rc = 0;
    for (size_t i = 0; i < ps->cap && rc == 0; i++) {
        const struct entry *e = &ps->slots[i];
        unsigned cats = e->path ? e->flags & SBX_CATEGORIES : 0;
        if (cats)
            rc = fn(ctx, e->path, e->len, cats);
    }
    return rc;
}

static int foreach_sorted(const sbx_pathset *ps, sbx_pathset_visit fn, void *ctx,
                          int refused);

int sbx_pathset_foreach_sorted(const sbx_pathset *ps, sbx_pathset_visit fn, void *ctx)
{
    return foreach_sorted(ps, fn, ctx, 0);
}

int sbx_pathset_foreach_refused(const sbx_pathset *ps, sbx_pathset_visit fn, void *ctx)
{
    return foreach_sorted(ps, fn, ctx, 1);
}

static int foreach_sorted(const sbx_pathset *ps, sbx_pathset_visit fn, void *ctx,
                          int refused)
{
    if (ps->count == 0)
        return 0;
    const struct entry **order = malloc(ps->count * sizeof *order);
    if (!order)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < ps->cap; i++)
        if (ps->slots[i].path)
            order[n++] = &ps->slots[i];
    qsort(order, n, sizeof *order, cmp_entry_ptr);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned f = order[i]->flags;
        unsigned cats = !refused ? f & SBX_CATEGORIES
                                 : ((f & REFUSED_READ) ? SBX_READ : 0) |
                                   ((f & REFUSED_WRITE) ? SBX_WRITE : 0);
        if (cats)
            rc = fn(ctx, order[i]->path, order[i]->len, cats);
    }
    free(order);
    return rc;
}

int sbx_ledger_settle(sbx_pathset *ps, const char *path, size_t len, int used)
{
    if (!path || !len || !sbx_ledger_is_probe(used, used ? 0 : sbx_pathset_get(ps, path, len)))
        return 0;
    return sbx_pathset_add(ps, path, len, SBX_PROBE);
}
