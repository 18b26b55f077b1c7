/* enforce.h — the hook DLL refusing what the run's policy does not allow.
 *
 * The launcher hands every process a read-only handle to the policy
 * section (csrc/win/inject.c); sbx_enforce_attach maps it.  Hooks then ask
 * before calling the original (enforce.c) whether the access is inside the
 * policy (csrc/win/winpolicy.c, the mirror of sandbox_py/policy.py).  An
 * access outside it is reported (SBX_MSG_DENIED, with our pid) and, when
 * the policy says deny, refused: the Win32 hook returns its failure value
 * with ERROR_ACCESS_DENIED, the NT hook STATUS_ACCESS_DENIED (which Win32
 * turns into ERROR_ACCESS_DENIED), and the original is never called.  A
 * refused access is not recorded as a probe: it did not happen, and
 * Result.denied is where it is named.
 *
 * The check runs when the thread is not inside another hook (the guard):
 * a Win32 hook checks with its own meaning and the NT calls underneath
 * pass, as for recording.
 */
#ifndef SBX_ENFORCE_H
#define SBX_ENFORCE_H

#include "hookdll.h"
#include "../../csrc/win/winpolicy.h"

/* Map the policy section (a handle from the configuration; NULL: none).
 * Returns 0, or -1 when a policy was given and cannot be used: the DLL
 * must then not start (fail closed). */
int sbx_enforce_attach(HANDLE section);
/* Non-NULL while a policy is in force (read without a call in hot paths). */
extern const void *sbx_policy;
/* 1 when the policy says deny (refuse), 0 when it says report. */
int sbx_enforce_denies(void);

/* 1 when the access to the normal path must be refused; reports it when
 * it is outside the policy.  Call with the guard held. */
int sbx_enforce(enum sbx_policy_need need, const wchar_t *path, size_t len);
/* The same for a Win32 name (made absolute as the recorder does). */
int sbx_enforce_win32(enum sbx_policy_need need, const wchar_t *name);

/* What an open with this access, NT create disposition and options needs. */
enum sbx_policy_need sbx_enforce_open_need(ACCESS_MASK access, ULONG disposition, ULONG options);

/* Run `check` (an int expression, 1 = refuse) under the guard, then leave
 * the hook with `refused` when it said so: `refused` is a statement such
 * as `{ SetLastError(ERROR_ACCESS_DENIED); return FALSE; }`. */
#define SBX_ENFORCE(check, refused)                                              \
    do {                                                                         \
        unsigned eprev_;                                                         \
        if (sbx_policy && sbx_enter(&eprev_)) {                                  \
            DWORD eerr_ = GetLastError();                                        \
            int refuse_ = (check);                                               \
            SetLastError(eerr_);                                                 \
            sbx_leave(eprev_);                                                   \
            if (refuse_)                                                         \
                refused                                                          \
        }                                                                        \
    } while (0)

#define SBX_WIN32_REFUSED(value)                                                 \
    {                                                                            \
        SetLastError(ERROR_ACCESS_DENIED);                                       \
        return value;                                                            \
    }

#ifndef STATUS_ACCESS_DENIED
#define STATUS_ACCESS_DENIED ((NTSTATUS)0xC0000022L)
#endif
#define SBX_NT_REFUSED(iosb)                                                     \
    {                                                                            \
        if (iosb) {                                                              \
            (iosb)->Status = STATUS_ACCESS_DENIED;                               \
            (iosb)->Information = 0;                                             \
        }                                                                        \
        return STATUS_ACCESS_DENIED;                                             \
    }

/* A process about to be resumed (CreateProcess hooks): 1 when its image is
 * not in an execute tree (or, in deny mode, when it cannot be policed: it
 * could not be injected); the caller then terminates it before it ran and
 * fails the call with ERROR_ACCESS_DENIED. */
int sbx_enforce_exec(const wchar_t *image, size_t len);

/* pipe_client.c: one SBX_MSG_DENIED record (de-duplicated per process). */
void sbx_record_denied(unsigned need, const wchar_t *path, size_t len);

#endif
