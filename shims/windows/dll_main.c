/* dll_main.c — start-up of the hook DLL inside a traced process.
 *
 * The injector (csrc/win/inject.c) left a configuration mapping named after
 * our process id; without it we were loaded by someone else and stay
 * inert.  With it we connect to the launcher's pipe, report the modules the
 * loader mapped before we arrived (the program's load-time DLLs are reads we
 * could not see happen), install every hook, and tell the injector we are
 * ready — all before the process's main thread runs its first instruction.
 */
#include <stdio.h>
#include <wchar.h>

#include "hookdll.h"
#include "enforce.h"
#include "hook_engine.h"
#include "../../csrc/win/inject.h"

int sbx_active;
struct sbx_wire_config sbx_cfg;
static DWORD tls_index = TLS_OUT_OF_INDEXES;
static HMODULE self_module;

/* TlsGetValue clears the thread's last error on success; hooks must leave
 * the program's last error alone, so keep it around the call. */
unsigned sbx_tls_get(void)
{
    DWORD e = GetLastError();
    unsigned v = (unsigned)(uintptr_t)TlsGetValue(tls_index);
    SetLastError(e);
    return v;
}

void sbx_tls_set(unsigned v)
{
    DWORD e = GetLastError();
    TlsSetValue(tls_index, (void *)(uintptr_t)v);
    SetLastError(e);
}

/* The configuration the injector left for this process; NULL when we were
 * not injected by sbx-trace.  Unmap with close_config. */
static struct sbx_wire_config *open_config(HANDLE *map)
{
    wchar_t name[64];
    _snwprintf(name, 64, SBX_CFG_PREFIX L"%lu", (unsigned long)GetCurrentProcessId());
    name[63] = 0;
    *map = OpenFileMappingW(FILE_MAP_ALL_ACCESS, FALSE, name);
    if (!*map)
        return NULL;
    struct sbx_wire_config *cfg = MapViewOfFile(*map, FILE_MAP_ALL_ACCESS, 0, 0, 0);
    if (!cfg || cfg->magic != SBX_CFG_MAGIC) {
        if (cfg)
            UnmapViewOfFile(cfg);
        CloseHandle(*map);
        return NULL;
    }
    return cfg;
}

static void close_config(struct sbx_wire_config *cfg, HANDLE map)
{
    UnmapViewOfFile(cfg);
    CloseHandle(map);
}

/* The loader mapped the executable's imports before our thread ran; their
 * opens happened unseen, so report the loaded images as reads now. */
static void report_loaded_modules(void)
{
    PPEB peb = NtCurrentTeb()->ProcessEnvironmentBlock;
    LIST_ENTRY *head = &peb->Ldr->InMemoryOrderModuleList;
    wchar_t *full = HeapAlloc(GetProcessHeap(), 0, SBX_PATH_MAX * sizeof(wchar_t));
    if (!full)
        return;
    for (LIST_ENTRY *e = head->Flink; e != head; e = e->Flink) {
        LDR_DATA_TABLE_ENTRY *m = CONTAINING_RECORD(e, LDR_DATA_TABLE_ENTRY, InMemoryOrderLinks);
        if (m->DllBase == (void *)self_module || !m->FullDllName.Buffer)
            continue;
        size_t n = m->FullDllName.Length / sizeof(wchar_t);
        if (n >= SBX_PATH_MAX)
            continue;
        memcpy(full, m->FullDllName.Buffer, n * sizeof(wchar_t));
        full[n] = 0;
        sbx_record_win32(sbx_access_classify(SBX_OP_LOAD, 1).first, full);
    }
    HeapFree(GetProcessHeap(), 0, full);
}

static void install(const struct sbx_hook_def *defs)
{
    for (const struct sbx_hook_def *d = defs; d->name; d++) {
        wchar_t wmod[32];
        MultiByteToWideChar(CP_ACP, 0, d->module, -1, wmod, 32);
        HMODULE m = GetModuleHandleW(wmod);
        void *fn = m ? (void *)GetProcAddress(m, d->name) : NULL;
        if (!fn && strcmp(d->module, "kernelbase.dll") == 0) {
            m = GetModuleHandleW(L"kernel32.dll");
            fn = m ? (void *)GetProcAddress(m, d->name) : NULL;
        }
        if (!fn)
            continue;   /* this system does not have it, so nothing can call it */
        const char *why = NULL;
        if (sbx_hook_install(sbx_hook_resolve(fn), d->detour, d->original, &why) < 0)
            sbx_warn(L"%hs!%hs could not be hooked (%hs): accesses through it are not seen",
                     d->module, d->name, why);
    }
}

static void attach(HMODULE module)
{
    self_module = module;
    HANDLE map;
    struct sbx_wire_config *cfg = open_config(&map);
    if (!cfg)
        return;
    sbx_cfg = *cfg;
    tls_index = TlsAlloc();
    /* A policy that cannot be mapped cannot be enforced: stay out (attached
     * stays 0), so the injector refuses to run this process. */
    HANDLE policy = (HANDLE)(uintptr_t)sbx_cfg.policy;
    if (tls_index != TLS_OUT_OF_INDEXES && sbx_enforce_attach(policy) == 0) {
        sbx_inject_set_policy(policy);   /* our children get it the same way */
        sbx_handles_init();
        /* Without the pipe we stay inert: the injector then reports that
         * the DLL did not start (attached stays 0). */
        if (sbx_pipe_connect() == 0) {
            sbx_active = 1;
            unsigned prev;
            sbx_enter(&prev);
            report_loaded_modules();
            install(sbx_nt_hooks);
            install(sbx_win32_hooks);
            install(sbx_process_hooks);
            sbx_flush();
            sbx_leave(prev);
            cfg->attached = 1;  /* the injector waits for this */
        }
    }
    close_config(cfg, map);
}

BOOL WINAPI DllMain(HINSTANCE module, DWORD reason, LPVOID reserved)
{
    if (reason == DLL_PROCESS_ATTACH) {
        DisableThreadLibraryCalls(module);
        attach(module);
    } else if (reason == DLL_PROCESS_DETACH && sbx_active && reserved) {
        /* Process exit (reserved != NULL): last chance to deliver events. */
        sbx_tls_set(SBX_GUARD);
        sbx_handles_exit();
        sbx_bye();
    }
    return TRUE;
}
