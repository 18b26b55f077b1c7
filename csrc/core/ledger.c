/* ledger.c — the open-file ledger's rule (access.h).  Apart from access.c
 * because the preload shim, which links access.c, keeps no ledger; pure and
 * libc-free like it, so that the Windows hook DLL links it as it is.  The
 * settling into a pathset (sbx_ledger_settle) is pathset.c's. */
#include "access.h"

int sbx_ledger_is_probe(int used, unsigned has)
{
    return !used && !(has & (SBX_READ | SBX_WRITE));
}
