/* policy_match.c — the hook DLL's policy rule (csrc/win/winpolicy.c, with
 * ntdll's RtlUpcaseUnicodeChar as the DLL uses it) on a table of cases, so
 * tests/test_windows_enforce.py can check that it answers as
 * sandbox_py/policy.py does.
 *
 *     policy_match.exe POLICYFILE CATEGORY PATH [CATEGORY PATH ...]
 *
 * Prints one line per case: 1 (allowed) or 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

#include "../../csrc/win/winpolicy.h"

typedef WCHAR(NTAPI *upcase_t)(WCHAR);
static upcase_t upcase;

static uint16_t fold(uint16_t c)
{
    return upcase(c);
}

int wmain(int argc, wchar_t **argv)
{
    upcase = (upcase_t)(void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                                              "RtlUpcaseUnicodeChar");
    if (argc < 2)
        return 2;
    FILE *f = _wfopen(argv[1], L"rb");
    if (!f)
        return 2;
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    void *blob;
    size_t blen;
    char err[512];
    if (sbx_policy_parse(text, len, &blob, &blen, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    static const struct { const wchar_t *name; enum sbx_policy_need need; } needs[] = {
        {L"read", SBX_NEED_READ}, {L"probe", SBX_NEED_PROBE}, {L"enumeration", SBX_NEED_ENUM},
        {L"write", SBX_NEED_WRITE}, {L"exec", SBX_NEED_EXEC},
    };
    for (int i = 2; i + 1 < argc; i += 2) {
        int need = -1;
        for (size_t k = 0; k < sizeof needs / sizeof needs[0]; k++)
            if (!wcscmp(argv[i], needs[k].name))
                need = (int)needs[k].need;
        if (need < 0)
            return 2;
        printf("%d\n", sbx_policy_allows(blob, (enum sbx_policy_need)need,
                                         (const uint16_t *)argv[i + 1], wcslen(argv[i + 1]), fold));
    }
    return 0;
}
