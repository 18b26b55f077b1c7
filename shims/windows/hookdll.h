/* hookdll.h — what the parts of the hook DLL share.
 *
 * dll_main.c      configuration, start-up, the table of hooks
 * pipe_client.c   event buffer, per-process de-duplication, named pipe
 * handle_table.c  handle -> path, so reads/writes on a handle are reported
 *                 once, with the name it was opened under; the open-file
 *                 ledger (an open never used is only a look)
 * nt_hooks.c      ntdll layer (what every program ends up calling)
 * win32_hooks.c   kernelbase layer (a Win32 call is recorded once, with its
 *                 own meaning: a copy is a read and a write)
 * process_hooks.c CreateProcessW/A: the child gets the DLL before it runs
 *
 * What a call counts as is the access model's to say (csrc/core/access.h):
 * the hooks only map each NT or Win32 call to one of its operations
 * (sbx_access_classify, sbx_access_open, sbx_access_use) and record the
 * answer; the ledger's rule is sbx_ledger_is_probe.
 */
#ifndef SBX_HOOKDLL_H
#define SBX_HOOKDLL_H

#include <windows.h>
#include <winternl.h>
#include <stddef.h>
#include <stdint.h>

#include "../../csrc/core/access.h"
#include "../../csrc/win/wire.h"

/* Longest path we record, in UTF-16 units.  Buffers of this size live on
 * the stack of hooked threads, so it is bounded well below the 32767 units
 * a \\?\ path may reach; a longer path is reported as a warning (the run
 * is then incomplete), never cut short silently. */
#define SBX_PATH_MAX 4096

/* ---- thread-local state (dll_main.c) --------------------------------------
 * SBX_GUARD: this thread is inside a hook; the calls our hook (or the
 * original it wraps) makes are not separate accesses.  SBX_IN_SPAWN: inside
 * CreateProcessA/W, so the W hook called by the A function stays out. */
#define SBX_GUARD 1u
#define SBX_IN_SPAWN 2u
unsigned sbx_tls_get(void);
void sbx_tls_set(unsigned v);
extern int sbx_active;                 /* 0 when loaded outside a trace */
extern struct sbx_wire_config sbx_cfg; /* copy of what the injector left */

/* Enter a hook body: returns 1 and sets the guard (the previous state in
 * *prev, for sbx_leave), or 0 when tracing is off or the thread is already
 * inside a hook.  The last error is kept by the macros below. */
static inline int sbx_enter(unsigned *prev)
{
    if (!sbx_active)
        return 0;
    *prev = sbx_tls_get();
    if (*prev & SBX_GUARD)
        return 0;
    sbx_tls_set(*prev | SBX_GUARD);
    return 1;
}
static inline void sbx_leave(unsigned prev)
{
    sbx_tls_set(prev);
}

/* The two shapes of a hook body.
 *
 * NT layer: the original is a system call stub that calls nothing hooked, so
 * it runs first and `record` runs after it unless the thread is inside
 * another hook (which records the access with its own meaning).
 *
 * Win32 layer: the guard is set *around* the original, so the NT calls it
 * makes pass through; `record` then sees `result` (the original's return
 * value) and `error` (its last error, restored for the caller afterwards). */
#define SBX_RECORD_AFTER(record)                                                 \
    do {                                                                         \
        unsigned prev_;                                                          \
        if (sbx_enter(&prev_)) {                                                 \
            DWORD error = GetLastError();                                        \
            record;                                                              \
            SetLastError(error);                                                 \
            sbx_leave(prev_);                                                    \
        }                                                                        \
    } while (0)

#define SBX_GUARDED_CALL(type, call, record)                                     \
    do {                                                                         \
        unsigned prev_;                                                          \
        if (!sbx_enter(&prev_))                                                  \
            return call;                                                         \
        type result = call;                                                      \
        DWORD error = GetLastError();                                            \
        record;                                                                  \
        SetLastError(error);                                                     \
        sbx_leave(prev_);                                                        \
        return result;                                                           \
    } while (0)

/* ---- events (pipe_client.c) ----------------------------------------------- */
int sbx_pipe_connect(void);
/* Record an already normal path (see csrc/win/winpath.h). */
void sbx_record(unsigned flags, const wchar_t *path, size_t len);
/* An open file of this process let go without its content used (the
 * ledger's candidate): the launcher settles it against the run's sets. */
void sbx_record_unused(const wchar_t *path, size_t len);
/* Process `pid` was created by `ppid` from image `path` with `cmdline`,
 * in directory `cwd` (normal; NULL or "" when unknown). */
void sbx_record_exec(DWORD pid, DWORD ppid, const wchar_t *path, const wchar_t *cmdline,
                     const wchar_t *cwd);
/* Process `pid` left the run at its creation (breakaway declaration). */
void sbx_record_breakaway(DWORD pid, DWORD ppid, const wchar_t *path, const wchar_t *cmdline);
void sbx_warn(const wchar_t *fmt, ...);
void sbx_flush(void);
/* Process exit: flush and say so (idempotent). */
void sbx_bye(void);

/* ---- paths (pipe_client.c) -------------------------------------------------- */
/* A Win32 path as the program gave it, made absolute against the current
 * directory (GetFullPathNameW) and normal; returns length or 0. */
size_t sbx_full_path(const wchar_t *in, wchar_t *out, size_t cap);
/* Replace 8.3 aliases among the components of a normal path (in place,
 * cap units) with the long names; components that do not exist, and all
 * below them, stay as written.  Returns the new length. */
size_t sbx_long_names(wchar_t *path, size_t len, size_t cap);
/* A name was renamed or deleted: forget the directories expanded so far. */
void sbx_long_names_forget(void);
/* Record a Win32 path given by the program. */
void sbx_record_win32(unsigned flags, const wchar_t *path);
/* An ANSI string in code page cp as UTF-16, on the process heap (free with
 * HeapFree(GetProcessHeap(), ...)); NULL for NULL or no memory. */
wchar_t *sbx_widen(const char *s, UINT cp);

/* ---- handles (handle_table.c) ---------------------------------------------- */
void sbx_handles_init(void);
/* A successful open of the normal `path` as handle h, in the model's terms
 * (access.h): `intent` (SBX_OPEN_*), whether the open `created` the file,
 * and `removes` when the file goes with its last handle (delete on close:
 * a removal).  Records what the open itself counts as and enters the
 * handle into the ledger. */
void sbx_handles_open(HANDLE h, const wchar_t *path, size_t len, unsigned intent, int created,
                      int removes);
/* Path of a handle (looked up, or asked of the system once); 0 if none. */
size_t sbx_handles_path(HANDLE h, wchar_t *out, size_t cap);
/* The handle's file was used in `cats` (what the model says of the call:
 * sbx_access_use, or a classification's categories); each category is
 * reported once per handle. */
void sbx_handles_use(HANDLE h, unsigned cats);
/* The handle is going away: the ledger settles an open never used. */
void sbx_handles_close(HANDLE h);
/* After a rename through the handle, later accesses use the new name. */
void sbx_handles_rename(HANDLE h, const wchar_t *path, size_t len);
/* Process exit: settle the opened handles still open. */
void sbx_handles_exit(void);

/* ---- hooks ----------------------------------------------------------------- */
struct sbx_hook_def {
    const char *module;   /* "ntdll.dll" or "kernelbase.dll" (falls back to kernel32) */
    const char *name;
    void *detour;
    void **original;
};
extern const struct sbx_hook_def sbx_nt_hooks[];
extern const struct sbx_hook_def sbx_win32_hooks[];
extern const struct sbx_hook_def sbx_process_hooks[];

#endif
