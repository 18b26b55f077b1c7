/* process_hooks.c — children get the DLL before they run.
 *
 * CreateProcessW/A are called with CREATE_SUSPENDED added; the new process
 * is reported as an exec, its image as a read, the DLL is injected with the
 * same code the launcher uses (csrc/win/inject.c), and only then is the
 * child resumed — unless the caller itself asked for it suspended.  The
 * original call runs unguarded: the executable search it performs along
 * PATH reaches the NT hooks as probes, as failed execs do on Linux.
 */
#include "hookdll.h"
#include "enforce.h"
#include "../../csrc/win/inject.h"
#include "../../csrc/win/winpath.h"

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
                       DWORD flags)
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
    if (plen)
        sbx_record(SBX_READ, path, plen);   /* the executed binary */
    sbx_record_exec(pi->dwProcessId, self, path, cmd ? cmd : (app ? app : L""));

    BOOL wow64 = FALSE;
    wchar_t err[256];
    int policed = 0;
    if (IsWow64Process(pi->hProcess, &wow64) && wow64)
        sbx_warn(L"process %lu is 32-bit; the 64-bit hook DLL cannot enter it, so its "
                 L"accesses are missing%ls", (unsigned long)pi->dwProcessId,
                 sbx_enforce_denies() ? L" (refused: the policy could not be enforced in it)"
                                      : L"");
    else if (sbx_inject(pi->hProcess, pi->dwProcessId, self, (const wchar_t *)sbx_cfg.dll,
                        (const wchar_t *)sbx_cfg.pipe, err, 256))
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
                        const wchar_t *app, const wchar_t *cmd, DWORD flags)
{
    DWORD err = GetLastError();
    if (ok) {
        sbx_tls_set(prev | SBX_IN_SPAWN | SBX_GUARD);
        if (after_spawn(pi, app, cmd, flags) < 0) {   /* refused by the policy */
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
    BOOL ok = o_CreateProcessW(app, cmd, pa, ta, inherit, flags | CREATE_SUSPENDED, env, cwd,
                               si, pi);
    return spawn_leave(prev, ok, pi, app, cmd, flags);
}

static BOOL WINAPI h_CreateProcessA(LPCSTR app, LPSTR cmd, LPSECURITY_ATTRIBUTES pa,
                                    LPSECURITY_ATTRIBUTES ta, BOOL inherit, DWORD flags,
                                    LPVOID env, LPCSTR cwd, LPSTARTUPINFOA si,
                                    LPPROCESS_INFORMATION pi)
{
    unsigned prev;
    if (!spawn_enter(&prev))
        return o_CreateProcessA(app, cmd, pa, ta, inherit, flags, env, cwd, si, pi);
    BOOL ok = o_CreateProcessA(app, cmd, pa, ta, inherit, flags | CREATE_SUSPENDED, env, cwd,
                               si, pi);
    DWORD err = GetLastError();
    wchar_t *wapp = ok ? sbx_widen(app, CP_ACP) : NULL;
    wchar_t *wcmd = ok ? sbx_widen(cmd, CP_ACP) : NULL;
    SetLastError(err);
    ok = spawn_leave(prev, ok, pi, wapp, wcmd, flags);
    err = GetLastError();
    if (wapp)
        HeapFree(GetProcessHeap(), 0, wapp);
    if (wcmd)
        HeapFree(GetProcessHeap(), 0, wcmd);
    SetLastError(err);
    return ok;
}

#define HOOK(name) {"kernelbase.dll", #name, (void *)h_##name, (void **)&o_##name}
const struct sbx_hook_def sbx_process_hooks[] = {
    HOOK(CreateProcessW),
    HOOK(CreateProcessA),
    {NULL, NULL, NULL, NULL},
};
