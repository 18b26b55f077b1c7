/* access.c — see access.h.  Changing what counts as what is a change here
 * and in docs/semantics.md, nowhere else (tests/test_syscall_rows.py holds
 * every backend to it). */
#include "access.h"

#include <errno.h>

struct sbx_access sbx_access_classify(enum sbx_op op, int ok)
{
    struct sbx_access a = {0, 0};
    if (!ok) {
        /* A failed call only tells that its names were looked at (an
         * absent header, a directory that was not there): a probe. */
        a.first = a.second = SBX_PROBE;
        return a;
    }
    switch (op) {
    case SBX_OP_OPEN:          /* sbx_access_open() knows the flags */
    case SBX_OP_PROBE:
        a.first = SBX_PROBE;
        break;
    case SBX_OP_READLINK:
        a.first = SBX_READ | SBX_NOFOLLOW;
        break;
    case SBX_OP_LIST:
        a.first = SBX_ENUM;
        break;
    case SBX_OP_CREATE:
        a.first = SBX_WRITE | SBX_CREATED;
        break;
    case SBX_OP_REMOVE:
    case SBX_OP_MODIFY:
        a.first = SBX_WRITE;
        break;
    case SBX_OP_RENAME:
        /* The old name's content lives on under the new name: when it came
         * from outside the run it is an input (the pathset drops the read
         * when the run itself created the old name). */
        a.first = SBX_READ | SBX_WRITE | SBX_NOFOLLOW;
        a.second = SBX_WRITE | SBX_CREATED;
        break;
    case SBX_OP_LINK:
        a.first = SBX_READ | SBX_NOFOLLOW;
        a.second = SBX_WRITE | SBX_CREATED;
        break;
    case SBX_OP_EXEC:
    case SBX_OP_LOAD:
        a.first = SBX_READ;
        break;
    case SBX_OP_NONE:
    case SBX_OP_COUNT:
        break;
    }
    return a;
}

int sbx_access_refusal(int err)
{
    return err == EACCES || err == EPERM;
}

int sbx_access_follows(enum sbx_op op)
{
    switch (op) {
    case SBX_OP_OPEN: case SBX_OP_PROBE: case SBX_OP_LIST: case SBX_OP_MODIFY:
    case SBX_OP_EXEC: case SBX_OP_LOAD:
        return 1;
    default:
        /* creating, removing, renaming, linking and reading a link act on
         * the name in its directory, a symlink included */
        return 0;
    }
}

static unsigned refused(unsigned wanted)
{
    wanted &= SBX_READ | SBX_WRITE | SBX_ENUM;
    return wanted ? wanted | SBX_REFUSED : SBX_PROBE;
}

struct sbx_access sbx_access_refused(enum sbx_op op, unsigned open_intent)
{
    struct sbx_access a = sbx_access_classify(op, 1);
    if (op == SBX_OP_OPEN) {
        if (open_intent & (SBX_OPEN_NODATA | SBX_OPEN_NONAME))
            a.first = 0;        /* asked for no content: only a look */
        else
            a.first = ((open_intent & SBX_OPEN_READ) ? SBX_READ : 0) |
                      ((open_intent & (SBX_OPEN_WRITE | SBX_OPEN_TRUNC)) ? SBX_WRITE : 0);
    }
    a.first = refused(a.first);
    a.second = a.second ? refused(a.second) : 0;
    return a;
}

unsigned sbx_access_open(unsigned intent, int created, int *used, int *tracked)
{
    *used = 0;
    *tracked = 1;
    if (intent & (SBX_OPEN_NODATA | SBX_OPEN_NONAME)) {
        *tracked = 0;
        return SBX_PROBE;
    }
    if (created) {
        *used = 1;
        return SBX_WRITE | SBX_CREATED;
    }
    if ((intent & SBX_OPEN_TRUNC) && (intent & SBX_OPEN_WRITE)) {
        *used = 1;
        return SBX_WRITE;
    }
    return 0;
}

unsigned sbx_access_use(enum sbx_use use)
{
    switch (use) {
    case SBX_USE_READ: return SBX_READ;
    case SBX_USE_WRITE: return SBX_WRITE;
    case SBX_USE_LIST: return SBX_ENUM;
    }
    return 0;
}

const char *sbx_op_name(enum sbx_op op)
{
    static const char *const names[SBX_OP_COUNT] = {
        "none", "open", "probe", "readlink", "list", "create", "remove", "modify",
        "rename", "link", "exec", "load",
    };
    return (unsigned)op < SBX_OP_COUNT ? names[op] : "?";
}
