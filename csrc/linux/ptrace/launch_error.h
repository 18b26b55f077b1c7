/* launch_error.h — the record the ptrace launcher writes to run()'s error
 * pipe when it cannot start the command: {kind, errno, what}.  kind 0 is
 * the command's exec failing (run() raises what subprocess would), kind 1
 * the launcher's own set-up (gate, fork, seccomp: run() raises OSError with
 * this sentence).  The Python side reads its layout from the extension
 * (sandbox_py._unpriv.LAUNCH_ERROR_FORMAT), never types it again. */
#ifndef SBX_LAUNCH_ERROR_H
#define SBX_LAUNCH_ERROR_H

#define SBX_LAUNCH_ERROR_WHAT 240

struct sbx_launch_error {
    int kind, err;
    char what[SBX_LAUNCH_ERROR_WHAT];
};

/* the struct module's format of the same bytes: no padding in between */
_Static_assert(sizeof(struct sbx_launch_error) == 2 * sizeof(int) + SBX_LAUNCH_ERROR_WHAT,
               "struct sbx_launch_error has padding: LAUNCH_ERROR_FORMAT would be wrong");
#define SBX_LAUNCH_ERROR_FORMAT "ii240s"

#endif
