/* inject.c — see inject.h.
 *
 * Why a remote LoadLibraryW thread: it is the one injection both Windows and
 * Wine support for a process created suspended.  The first thread to run in
 * a new process performs the loader's process initialisation, so our thread
 * finds kernel32 mapped (at the same address as here: system DLLs share one
 * base per boot) and the process's own main thread still has not run.
 */
#include "inject.h"

#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "wire.h"

/* Generous: a cold Wine prefix can take seconds to start a process. */
#define INJECT_WAIT_MS 60000

static DWORD fail(wchar_t *err, size_t errlen, const wchar_t *what)
{
    DWORD e = GetLastError();
    if (!e)
        e = ERROR_GEN_FAILURE;
    if (err && errlen)
        _snwprintf(err, errlen, L"%ls failed (Win32 error %lu)", what, (unsigned long)e);
    if (err && errlen)
        err[errlen - 1] = 0;
    return e;
}

static HANDLE policy_section;

void sbx_inject_set_policy(HANDLE section)
{
    policy_section = section;
}

DWORD sbx_inject(HANDLE process, DWORD pid, DWORD ppid, const wchar_t *dll,
                 const wchar_t *pipe, const wchar_t *breakaway, wchar_t *err, size_t errlen)
{
    wchar_t name[64];
    _snwprintf(name, 64, SBX_CFG_PREFIX L"%lu", (unsigned long)pid);
    name[63] = 0;
    size_t dll_len = wcslen(dll), pipe_len = wcslen(pipe);
    size_t ba_len = breakaway ? wcslen(breakaway) : 0;
    if (dll_len >= SBX_CFG_MAX_PATH || pipe_len >= SBX_CFG_MAX_PATH ||
        ba_len >= SBX_CFG_MAX_PATH) {
        SetLastError(ERROR_FILENAME_EXCED_RANGE);
        return fail(err, errlen, L"hook DLL, pipe name or breakaway declaration too long:");
    }

    HANDLE map = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
                                    sizeof(struct sbx_wire_config), name);
    if (!map)
        return fail(err, errlen, L"CreateFileMappingW(config)");
    struct sbx_wire_config *cfg = MapViewOfFile(map, FILE_MAP_ALL_ACCESS, 0, 0, 0);
    if (!cfg) {
        DWORD e = fail(err, errlen, L"MapViewOfFile(config)");
        CloseHandle(map);
        return e;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->magic = SBX_CFG_MAGIC;
    cfg->ppid = ppid;
    memcpy(cfg->pipe, pipe, pipe_len * sizeof(wchar_t));
    memcpy(cfg->dll, dll, dll_len * sizeof(wchar_t));
    if (ba_len)
        memcpy(cfg->breakaway, breakaway, ba_len * sizeof(wchar_t));

    DWORD rc = 0;
    HANDLE thread = NULL;
    void *remote = NULL;
    if (policy_section) {
        HANDLE child_section = NULL;
        if (!DuplicateHandle(GetCurrentProcess(), policy_section, process, &child_section,
                             SECTION_MAP_READ | SECTION_QUERY, FALSE, 0)) {
            rc = fail(err, errlen, L"DuplicateHandle(policy section)");
            goto out;
        }
        cfg->policy = (uint64_t)(uintptr_t)child_section;
    }
    size_t bytes = (dll_len + 1) * sizeof(wchar_t);
    remote = VirtualAllocEx(process, NULL, bytes, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (!remote) {
        rc = fail(err, errlen, L"VirtualAllocEx");
        goto out;
    }
    if (!WriteProcessMemory(process, remote, dll, bytes, NULL)) {
        rc = fail(err, errlen, L"WriteProcessMemory");
        goto out;
    }
    FARPROC load = GetProcAddress(GetModuleHandleW(L"kernel32.dll"), "LoadLibraryW");
    thread = CreateRemoteThread(process, NULL, 0, (LPTHREAD_START_ROUTINE)(void *)load,
                                remote, 0, NULL);
    if (!thread) {
        rc = fail(err, errlen, L"CreateRemoteThread(LoadLibraryW)");
        goto out;
    }
    if (WaitForSingleObject(thread, INJECT_WAIT_MS) != WAIT_OBJECT_0) {
        SetLastError(WAIT_TIMEOUT);
        rc = fail(err, errlen, L"waiting for LoadLibraryW in the child");
        goto out;
    }
    if (!cfg->attached) {
        SetLastError(ERROR_DLL_INIT_FAILED);
        rc = fail(err, errlen, L"loading the hook DLL in the child");
    }
out:
    if (thread)
        CloseHandle(thread);
    if (remote)
        VirtualFreeEx(process, remote, 0, MEM_RELEASE);
    UnmapViewOfFile(cfg);
    CloseHandle(map);
    return rc;
}
