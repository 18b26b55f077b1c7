/* process_hooks.c — children get the DLL before they run.
 *
 * Except a declared breakaway (csrc/core/breakaway.h, the run's declaration
 * in the injector's configuration): it is created with
 * CREATE_BREAKAWAY_FROM_JOB (the launcher's job allows it) and without the
 * DLL, so it and its children are neither traced nor waited for nor killed
 * with the job; its creation is reported as a breakaway.
 *
 * CreateProcessW/A are called with CREATE_SUSPENDED added; the new process
 * is reported as an exec (a fork and an exec at once: the launcher hangs
 * its record under its creator's, and records the image as the child's
 * exec of it) with its starting directory; the DLL is injected with the
 * same code the launcher uses (csrc/win/inject.c), and only then is the
 * child resumed —
 * unless the caller itself asked for it suspended.  The
 * original call runs unguarded: the executable search it performs along
 * PATH reaches the NT hooks as probes, as failed execs do on Linux.
 */
#include "hookdll.h"
#include "enforce.h"
#include "../../csrc/win/inject.h"
#include "../../csrc/win/winpath.h"
#include "../../csrc/core/breakaway.h"

typedef BOOL(WINAPI *CreateProcessW_t)(LPCWSTR, LPWSTR, LPSECURITY_ATTRIBUTES,
                                       LPSECURITY_ATTRIBUTES, BOOL, DWORD, LPVOID, LPCWSTR,
                                       LPSTARTUPINFOW, LPPROCESS_INFORMATION);
typedef BOOL(WINAPI *CreateProcessA_t)(LPCSTR, LPSTR, LPSECURITY_ATTRIBUTES,
                                       LPSECURITY_ATTRIBUTES, BOOL, DWORD, LPVOID, LPCSTR,
                                       LPSTARTUPINFOA, LPPROCESS_INFORMATION);
static CreateProcessW_t o_CreateProcessW;
static CreateProcessA_t o_CreateProcessA;

/* Under a policy that denies: 1 when the new process must not run (its
 * image is outside the execute trees, or it cannot be policed), after
 * terminating it; it never ran an instruction. */
static int refuse_spawn(const PROCESS_INFORMATION *pi, const wchar_t *path, size_t plen,
                        int policed)
{
    if (!sbx_policy || ((!plen || !sbx_enforce_exec(path, plen)) &&
                        (policed || !sbx_enforce_denies())))
        return 0;
    TerminateProcess(pi->hProcess, ERROR_ACCESS_DENIED);
    return 1;
}

static int after_spawn(const PROCESS_INFORMATION *pi, const wchar_t *app, const wchar_t *cmd,
                       const wchar_t *cwd, DWORD flags)
{
    DWORD self = GetCurrentProcessId();
    wchar_t image[SBX_PATH_MAX], path[SBX_PATH_MAX];
    DWORD n = SBX_PATH_MAX;
    size_t plen = 0;
    if (QueryFullProcessImageNameW(pi->hProcess, 0, image, &n)) {
        long r = sbx_winpath_normal((uint16_t *)path, SBX_PATH_MAX, (const uint16_t *)image, n);
        /* the image name is the one the process was created with, which
         * may be an 8.3 alias (C:\PROGRA~1\...) */
        plen = r < 0 ? 0 : sbx_long_names(path, (size_t)r, SBX_PATH_MAX);
    }
    if (!plen && app)
        plen = sbx_full_path(app, path, SBX_PATH_MAX);
    path[plen] = 0;
    if (refuse_spawn(pi, path, plen, 1))
        return -1;
    /* The child starts in the directory asked for, made absolute against
     * ours as CreateProcess does, or in ours. */
    wchar_t dir[SBX_PATH_MAX];
    size_t dlen = sbx_full_path(cwd && *cwd ? cwd : L".", dir, SBX_PATH_MAX);
    dir[dlen] = 0;
    sbx_record_exec(pi->dwProcessId, self, path, cmd ? cmd : (app ? app : L""), dir);

    BOOL wow64 = FALSE;
    wchar_t err[256];
    int policed = 0;
    if (IsWow64Process(pi->hProcess, &wow64) && wow64)
        sbx_warn(L"process %lu is 32-bit; the 64-bit hook DLL cannot enter it, so its "
                 L"accesses are missing%ls", (unsigned long)pi->dwProcessId,
                 sbx_enforce_denies() ? L" (refused: the policy could not be enforced in it)"
                                      : L"");
    else if (sbx_inject(pi->hProcess, pi->dwProcessId, self, (const wchar_t *)sbx_cfg.dll,
                        (const wchar_t *)sbx_cfg.pipe, (const wchar_t *)sbx_cfg.breakaway,
                        err, 256))
        sbx_warn(L"could not trace child process %lu (%ls); its accesses are missing%ls",
                 (unsigned long)pi->dwProcessId, err,
                 sbx_enforce_denies() ? L" (refused: the policy could not be enforced in it)"
                                      : L"");
    else
        policed = 1;
    sbx_flush();
    if (refuse_spawn(pi, NULL, 0, policed))
        return -1;
    if (!(flags & CREATE_SUSPENDED))
        ResumeThread(pi->hThread);
    return 0;
}

/* UTF-8 of w (at most cap bytes, NUL included); "" when it does not fit. */
static const char *narrow_to(const wchar_t *w, size_t wn, char *out, int cap)
{
    int n = w ? WideCharToMultiByte(CP_UTF8, 0, w, (int)wn, out, cap - 1, NULL, NULL) : 0;
    out[n > 0 ? n : 0] = 0;
    return out;
}

/* Does this CreateProcess start a declared breakaway?  The program is the
 * application name, else the command line's first token; found along the
 * search path for its full name. */
static int is_breakaway(const wchar_t *app, const wchar_t *cmd)
{
    const wchar_t *decl_w = (const wchar_t *)sbx_cfg.breakaway;
    if (!decl_w[0] || (!app && !cmd))
        return 0;
    wchar_t first[SBX_PATH_MAX];
    size_t n = 0;
    const wchar_t *c = cmd ? cmd : L"";
    while (*c == L' ' || *c == L'\t')
        c++;
    if (*c == L'"') {
        for (c++; *c && *c != L'"' && n + 1 < SBX_PATH_MAX; c++)
            first[n++] = *c;
    } else {
        for (; *c && *c != L' ' && *c != L'\t' && n + 1 < SBX_PATH_MAX; c++)
            first[n++] = *c;
    }
    first[n] = 0;
    const wchar_t *called = app ? app : first;
    wchar_t full[SBX_PATH_MAX];
    DWORD fl = SearchPathW(NULL, called, L".exe", SBX_PATH_MAX, full, NULL);
    if (!fl || fl >= SBX_PATH_MAX)
        full[0] = 0;
    char decl[4 * SBX_CFG_MAX_PATH], u_called[4 * SBX_PATH_MAX], u_full[4 * SBX_PATH_MAX],
        u_first[4 * SBX_PATH_MAX];
    narrow_to(decl_w, wcslen(decl_w), decl, sizeof decl);
    narrow_to(called, wcslen(called), u_called, sizeof u_called);
    narrow_to(full, wcslen(full), u_full, sizeof u_full);
    narrow_to(first, n, u_first, sizeof u_first);
    return sbx_breakaway_match(decl, u_called, u_full[0] ? u_full : NULL,
                               u_first[0] ? u_first : NULL, 1);
}

/* The declared breakaway was created (outside the job, without the DLL). */
static void broke_away(const PROCESS_INFORMATION *pi, const wchar_t *app, const wchar_t *cmd)
{
    wchar_t image[SBX_PATH_MAX];
    DWORD n = SBX_PATH_MAX;
    if (!QueryFullProcessImageNameW(pi->hProcess, 0, image, &n))
        n = 0;
    image[n] = 0;
    sbx_record_breakaway(pi->dwProcessId, GetCurrentProcessId(), n ? image : (app ? app : L""),
                         cmd ? cmd : (app ? app : L""));
    sbx_flush();
}

/* 0 when this thread is already inside a spawn (CreateProcessA calling
 * CreateProcessW) or another hook: the outer one does the work. */
static int spawn_enter(unsigned *prev)
{
    *prev = sbx_active ? sbx_tls_get() : SBX_IN_SPAWN;
    if (*prev & (SBX_IN_SPAWN | SBX_GUARD))
        return 0;
    sbx_tls_set(*prev | SBX_IN_SPAWN);
    return 1;
}

static BOOL spawn_leave(unsigned prev, BOOL ok, PROCESS_INFORMATION *pi,
                        const wchar_t *app, const wchar_t *cmd, const wchar_t *cwd, DWORD flags)
{
    DWORD err = GetLastError();
    if (ok) {
        sbx_tls_set(prev | SBX_IN_SPAWN | SBX_GUARD);
        if (after_spawn(pi, app, cmd, cwd, flags) < 0) {   /* refused by the policy */
            CloseHandle(pi->hThread);
            CloseHandle(pi->hProcess);
            memset(pi, 0, sizeof *pi);
            ok = FALSE;
            err = ERROR_ACCESS_DENIED;
        }
    }
    sbx_tls_set(prev);
    SetLastError(err);
    return ok;
}

static BOOL WINAPI h_CreateProcessW(LPCWSTR app, LPWSTR cmd, LPSECURITY_ATTRIBUTES pa,
                                    LPSECURITY_ATTRIBUTES ta, BOOL inherit, DWORD flags,
                                    LPVOID env, LPCWSTR cwd, LPSTARTUPINFOW si,
                                    LPPROCESS_INFORMATION pi)
{
    unsigned prev;
    if (!spawn_enter(&prev))
        return o_CreateProcessW(app, cmd, pa, ta, inherit, flags, env, cwd, si, pi);
    if (is_breakaway(app, cmd)) {
        BOOL ok = o_CreateProcessW(app, cmd, pa, ta, inherit, flags | CREATE_BREAKAWAY_FROM_JOB,
                                   env, cwd, si, pi);
        DWORD err = GetLastError();
        if (ok)
            broke_away(pi, app, cmd);
        sbx_tls_set(prev);
        SetLastError(err);
        return ok;
    }
    BOOL ok = o_CreateProcessW(app, cmd, pa, ta, inherit, flags | CREATE_SUSPENDED, env, cwd,
                               si, pi);
    return spawn_leave(prev, ok, pi, app, cmd, cwd, flags);
}

static BOOL WINAPI h_CreateProcessA(LPCSTR app, LPSTR cmd, LPSECURITY_ATTRIBUTES pa,
                                    LPSECURITY_ATTRIBUTES ta, BOOL inherit, DWORD flags,
                                    LPVOID env, LPCSTR cwd, LPSTARTUPINFOA si,
                                    LPPROCESS_INFORMATION pi)
{
    unsigned prev;
    if (!spawn_enter(&prev))
        return o_CreateProcessA(app, cmd, pa, ta, inherit, flags, env, cwd, si, pi);
    if (sbx_cfg.breakaway[0]) {
        wchar_t *bapp = sbx_widen(app, CP_ACP), *bcmd = sbx_widen(cmd, CP_ACP);
        BOOL ok = FALSE, leaves = is_breakaway(bapp, bcmd);
        DWORD err = 0;
        if (leaves) {
            ok = o_CreateProcessA(app, cmd, pa, ta, inherit, flags | CREATE_BREAKAWAY_FROM_JOB,
                                  env, cwd, si, pi);
            err = GetLastError();
            if (ok)
                broke_away(pi, bapp, bcmd);
        }
        if (bapp)
            HeapFree(GetProcessHeap(), 0, bapp);
        if (bcmd)
            HeapFree(GetProcessHeap(), 0, bcmd);
        if (leaves) {
            sbx_tls_set(prev);
            SetLastError(err);
            return ok;
        }
    }
    BOOL ok = o_CreateProcessA(app, cmd, pa, ta, inherit, flags | CREATE_SUSPENDED, env, cwd,
                               si, pi);
    DWORD err = GetLastError();
    wchar_t *wapp = ok ? sbx_widen(app, CP_ACP) : NULL;
    wchar_t *wcmd = ok ? sbx_widen(cmd, CP_ACP) : NULL;
    wchar_t *wcwd = ok ? sbx_widen(cwd, CP_ACP) : NULL;
    SetLastError(err);
    ok = spawn_leave(prev, ok, pi, wapp, wcmd, wcwd, flags);
    err = GetLastError();
    if (wapp)
        HeapFree(GetProcessHeap(), 0, wapp);
    if (wcmd)
        HeapFree(GetProcessHeap(), 0, wcmd);
    if (wcwd)
        HeapFree(GetProcessHeap(), 0, wcwd);
    SetLastError(err);
    return ok;
}

#define HOOK(name) {"kernelbase.dll", #name, (void *)h_##name, (void **)&o_##name}
const struct sbx_hook_def sbx_process_hooks[] = {
    HOOK(CreateProcessW),
    HOOK(CreateProcessA),
    {NULL, NULL, NULL, NULL},
};
