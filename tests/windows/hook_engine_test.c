/* hook_engine_test.c — the inline hook engine on functions whose first
 * instructions need relocating: a RIP-relative load, a short conditional
 * jump, a call, and one too short to patch.  Built for Windows with
 * shims/windows/hook_engine.c and x64_decode.c, run under Wine by
 * tests/test_windows.py.  Prints one line per failure; exits 1 if any.
 */
#include <stdio.h>
#include <windows.h>

#include "../../shims/windows/hook_engine.h"

/* The functions under test, written in assembly so their prologues are
 * exactly the forms we want (Microsoft x64 convention: argument in rcx,
 * result in rax). */
__asm__(
    ".text\n"
    ".globl f_riprel\n"
    "f_riprel:\n"                 /* return *(&value) + arg */
    "  movq value(%rip), %rax\n"
    "  addq %rcx, %rax\n"
    "  ret\n"
    ".globl f_jcc\n"
    "f_jcc:\n"                    /* return arg == 0 ? 2 : 1 */
    "  testl %ecx, %ecx\n"
    "  je 1f\n"
    "  movl $1, %eax\n"
    "  ret\n"
    "1: movl $2, %eax\n"
    "  ret\n"
    ".globl f_call\n"
    "f_call:\n"                   /* return helper(arg) = arg * 3 */
    "  subq $40, %rsp\n"
    "  call helper\n"
    "  addq $40, %rsp\n"
    "  ret\n"
    ".globl f_short\n"
    "f_short:\n"                  /* too short: xor eax,eax; ret */
    "  xorl %eax, %eax\n"
    "  ret\n"
    "  int3\n  int3\n  int3\n  int3\n");

long long value = 40;
long long helper(long long x)
{
    return x * 3;
}

long long f_riprel(long long), f_jcc(long long), f_call(long long), f_short(long long);
typedef long long (*fn_t)(long long);

static fn_t o_riprel, o_jcc, o_call, o_short;
static long long d_riprel(long long x) { return o_riprel(x) + 1000; }
static long long d_jcc(long long x) { return o_jcc(x) + 1000; }
static long long d_call(long long x) { return o_call(x) + 1000; }
static long long d_short(long long x) { return o_short(x) + 1000; }

static int failures;

static void expect(const char *what, long long got, long long want)
{
    if (got != want) {
        printf("FAIL %s: got %lld, want %lld\n", what, got, want);
        failures++;
    }
}

static void hook(const char *name, fn_t target, fn_t detour, fn_t *orig, int want_ok)
{
    const char *why = NULL;
    int rc = sbx_hook_install((void *)target, (void *)detour, (void **)orig, &why);
    if ((rc == 0) != want_ok) {
        printf("FAIL install %s: rc %d (%s)\n", name, rc, why ? why : "");
        failures++;
    }
    if (!want_ok && !why) {
        printf("FAIL %s refused without a reason\n", name);
        failures++;
    }
}

int main(void)
{
    /* through volatile pointers, so the compiler calls the patched code */
    fn_t volatile riprel = f_riprel, jcc = f_jcc, call = f_call, shrt = f_short;
    hook("riprel", f_riprel, d_riprel, &o_riprel, 1);
    hook("jcc", f_jcc, d_jcc, &o_jcc, 1);
    hook("call", f_call, d_call, &o_call, 1);
    hook("short", f_short, d_short, &o_short, 0);
    expect("riprel(2)", riprel(2), 1042);
    value = 7;                              /* the trampoline reads the same variable */
    expect("riprel(2) after change", riprel(2), 1009);
    expect("jcc(0)", jcc(0), 1002);
    expect("jcc(5)", jcc(5), 1001);
    expect("call(4)", call(4), 1012);
    expect("short(9) unhooked", shrt(9), 0);
    /* the Win32 thunk kernel32!CreateFileW leads to the function doing the work */
    void *k32 = (void *)GetProcAddress(GetModuleHandleW(L"kernel32.dll"), "CreateFileW");
    void *kb = (void *)GetProcAddress(GetModuleHandleW(L"kernelbase.dll"), "CreateFileW");
    if (kb && sbx_hook_resolve(k32) != kb) {
        printf("FAIL resolve: kernel32!CreateFileW -> %p, kernelbase has %p\n",
               sbx_hook_resolve(k32), kb);
        failures++;
    }
    if (!failures)
        printf("all hook engine checks passed\n");
    return failures ? 1 : 0;
}
