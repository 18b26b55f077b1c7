/* ledger.c — the open-file ledger's rule (access.h).  Apart from access.c
 * because it records into a pathset, which the preload shim does not link. */
#include "access.h"

int sbx_ledger_settle(sbx_pathset *ps, const char *path, size_t len, int used)
{
    if (used || !path || !len)
        return 0;
    if (sbx_pathset_get(ps, path, len) & (SBX_READ | SBX_WRITE))
        return 0;
    return sbx_pathset_add(ps, path, len, SBX_PROBE);
}
