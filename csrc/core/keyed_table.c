/* keyed_table.c — see keyed_table.h. */
#include "keyed_table.h"

#include <stdlib.h>
#include <string.h>

/* Kernel addresses share their low bits: mix before masking. */
static size_t home(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & (cap - 1);
}

static int grow(struct sbx_keyed_table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 256;
    struct sbx_keyed *n = calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].key)
            continue;
        size_t j = home(t->slots[i].key, ncap);
        while (n[j].key)
            j = (j + 1) & (ncap - 1);
        n[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = n;
    t->cap = ncap;
    return 0;
}

struct sbx_keyed *sbx_keyed_get(struct sbx_keyed_table *t, uint64_t key, int create)
{
    if (!key)
        return NULL;
    if (create && (t->count + 1) * 2 > t->cap && grow(t) < 0)
        return NULL;
    if (!t->cap)
        return NULL;
    size_t i = home(key, t->cap);
    while (t->slots[i].key && t->slots[i].key != key)
        i = (i + 1) & (t->cap - 1);
    if (!t->slots[i].key) {
        if (!create)
            return NULL;
        t->slots[i].key = key;
        t->count++;
    }
    return &t->slots[i];
}

void sbx_keyed_free(struct sbx_keyed_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i].path);
    free(t->slots);
    memset(t, 0, sizeof *t);
}
