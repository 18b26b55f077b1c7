/* access.h — the access model: which call counts as a read, write, probe or
 * enumeration (docs/semantics.md).  This is the one place where that is
 * decided.  Every backend only maps its raw event (a Linux syscall, a libc
 * call in the preload shim, an NT or Win32 call in the Windows DLL) to an
 * operation below and asks here what to record.
 *
 * Allocation-free portable C99 with no libc dependency beyond <stddef.h>:
 * the preload shim (which runs inside signal handlers and half-initialised
 * processes) and the Windows hook DLL link it as they are.
 */
#ifndef SBX_ACCESS_H
#define SBX_ACCESS_H

#include "access_ops.h"
#include "pathset.h"

/* Categories (SBX_READ ... | SBX_CREATED) of the first and the second name
 * of a call that took `op` and succeeded (`ok` != 0) or failed.  A failed
 * call only looked at its names: both are probes.  For SBX_OP_OPEN this
 * gives the open's immediate categories with created = 0 and no flags;
 * use sbx_access_open() instead. */
struct sbx_access {
    unsigned first, second;
};
struct sbx_access sbx_access_classify(enum sbx_op op, int ok);

/* A call the system refused (EACCES or EPERM on POSIX, ACCESS_DENIED on
 * Windows): what each of its names asked for, with SBX_REFUSED, so that
 * the pathset records them as probes and keeps the request for
 * Result.denied.  `open_intent' (SBX_OPEN_*) is used for SBX_OP_OPEN. */
struct sbx_access sbx_access_refused(enum sbx_op op, unsigned open_intent);
/* Whether a call taking `op' follows a symlink that is its name's last
 * component (an open does unless O_NOFOLLOW, which the caller checks): a
 * refusal is then the target's, not the link's (sbx_path_reached). */
int sbx_access_follows(enum sbx_op op);
/* Whether a call that failed with errno `err' was refused by the system
 * (EACCES, EPERM: a policy or permissions) rather than failing otherwise. */
int sbx_access_refusal(int err);

/* What an open asked for, in platform-free bits (each system's glue turns
 * its own flags into these: csrc/linux/syscalls.h for open(2) flags). */
#define SBX_OPEN_READ    0x1u   /* content may be read */
#define SBX_OPEN_WRITE   0x2u   /* content may be written */
#define SBX_OPEN_TRUNC   0x4u   /* existing content discarded at open */
#define SBX_OPEN_NODATA  0x8u   /* a handle without content access (O_PATH) */
#define SBX_OPEN_NONAME  0x10u  /* the file has no name (O_TMPFILE): the path is
                                 * its directory, which is only looked at */

/* A successful open with intent `intent` (SBX_OPEN_*) that `created` the
 * file (1) or found it (0).  Returns what to record for the name now;
 * *used tells the ledger whether the open already counts as a use of the
 * file (a creation or a truncation), so that closing it unused does not
 * turn it into a probe.  *tracked is 0 when the open file must not enter
 * the ledger at all (no content behind it: O_PATH, a nameless file). */
unsigned sbx_access_open(unsigned intent, int created, int *used, int *tracked);

/* The category a use of an open file's content records. */
unsigned sbx_access_use(enum sbx_use use);

/* The ledger's one rule: an open file whose content was never used (never
 * read, written or listed, and neither created nor truncated by the open:
 * `used` = 0, as kept by the backend) was only looked at: a probe, unless
 * the path already carries a read or a write (`has`: its categories so far
 * in the set it is settled into, 0 where the caller holds none).  Asked
 * when the file is closed or the record of it is dropped.  A pure
 * predicate (ledger.c): the Windows hook DLL's handle table asks it too. */
int sbx_ledger_is_probe(int used, unsigned has);

/* The rule applied to a pathset (pathset.c): adds the probe to `ps` when
 * sbx_ledger_is_probe() says so.  Returns 0 or -1 (out of memory). */
int sbx_ledger_settle(sbx_pathset *ps, const char *path, size_t len, int used);

/* Human-readable name of an operation (warnings, debugging). */
const char *sbx_op_name(enum sbx_op op);

#endif
