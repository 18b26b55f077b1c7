/* keyed_table.h — paths keyed by a 64-bit identity.
 *
 * The Linux backends remember, per run, the name an open file was opened
 * under (keyed by a kernel struct file address or a shim's open id) and
 * the paths of directories sent once and referred to by token.  Open
 * addressing, grows at 50% load; key 0 is reserved for empty slots.
 */
#ifndef SBX_KEYED_TABLE_H
#define SBX_KEYED_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct sbx_keyed {
    uint64_t key;           /* 0 = empty slot */
    char *path;             /* owned; NULL until set */
    unsigned flags;         /* the user's */
    int used;               /* the user's: e.g. "data was read or written" */
    int64_t pid;            /* the user's: e.g. the process that opened it */
};

struct sbx_keyed_table {
    struct sbx_keyed *slots;
    size_t cap, count;
};

/* The entry for `key`; with create, a new zeroed entry when absent.
 * NULL when absent (without create), for key 0, or when memory ran out. */
struct sbx_keyed *sbx_keyed_get(struct sbx_keyed_table *t, uint64_t key, int create);

/* Free every path and the slots; the table is empty and reusable. */
void sbx_keyed_free(struct sbx_keyed_table *t);

#endif
