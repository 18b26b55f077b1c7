/* unit_native.c — the portable parts of the Windows backend, compiled with
 * the host's gcc and run natively by tests/test_windows.py: path normal
 * form, command-line splitting, the x86-64 decoder and relocator of the
 * hook engine, JSON string escaping and the processes of a result in JSON.
 * Prints one line per failure and exits 1 if there was any.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/core/result_json.h"
#include "../../csrc/win/cmdline.h"
#include "../../csrc/win/winpath.h"
#include "../../shims/windows/x64_decode.h"

static int failures;

#define EXPECT(cond, ...)                                  \
    do {                                                   \
        if (!(cond)) {                                     \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
            printf(__VA_ARGS__);                           \
            printf("\n");                                  \
            failures++;                                    \
        }                                                  \
    } while (0)

/* ASCII/UTF-8 to UTF-16 (BMP only, enough for the cases here). */
static size_t u16(uint16_t *out, const char *s)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x80)
            out[n++] = *p++;
        else if ((*p & 0xE0) == 0xC0) {
            out[n++] = (uint16_t)(((p[0] & 0x1F) << 6) | (p[1] & 0x3F));
            p += 2;
        } else {
            out[n++] = (uint16_t)(((p[0] & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F));
            p += 3;
        }
    }
    out[n] = 0;
    return n;
}

static const char *u8(const uint16_t *w, long n)
{
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ % 4];
    if (n < 0)
        return "(error)";
    sbx_utf16_to_utf8(b, sizeof buf[0], w, (size_t)n);
    return b;
}

static void normal(const char *in, const char *want)
{
    uint16_t w[512], out[512];
    size_t n = u16(w, in);
    long r = sbx_winpath_normal(out, 512, w, n);
    const char *got = r < 0 ? NULL : u8(out, r);
    if (!want)
        EXPECT(r < 0, "normal(%s) = %s, want an error", in, got);
    else
        EXPECT(got && strcmp(got, want) == 0, "normal(%s) = %s, want %s", in, got ? got : "(error)", want);
}

static void join(const char *base, const char *rel, const char *want)
{
    uint16_t b[512], r[512], out[512];
    size_t bn = u16(b, base), rn = u16(r, rel);
    long n = sbx_winpath_join(out, 512, b, bn, r, rn);
    const char *got = u8(out, n);
    EXPECT(strcmp(got, want) == 0, "join(%s, %s) = %s, want %s", base, rel, got, want);
}

static void test_winpath(void)
{
    normal("c:\\Dir\\File.txt", "C:\\Dir\\File.txt");
    normal("C:/a/./b//c/", "C:\\a\\b\\c");
    normal("C:\\a\\..\\..\\b", "C:\\b");
    normal("C:\\", "C:\\");
    normal("c:", "C:\\");
    normal("\\??\\z:\\tmp\\x", "Z:\\tmp\\x");
    normal("\\\\?\\C:\\long\\..\\path", "C:\\path");
    normal("\\\\.\\C:\\x", "C:\\x");
    normal("\\DosDevices\\d:\\x", "D:\\x");
    normal("\\GLOBAL??\\E:\\x", "E:\\x");
    normal("\\??\\UNC\\srv\\share\\a\\..\\..\\b", "\\\\srv\\share\\b");
    normal("\\\\?\\UNC\\srv\\share", "\\\\srv\\share");
    normal("\\\\srv\\share\\dir\\f", "\\\\srv\\share\\dir\\f");
    normal("\\??\\pipe\\sbx", "\\\\.\\pipe\\sbx");
    normal("\\\\.\\CONIN$", "\\\\.\\CONIN$");
    normal("\\Device\\HarddiskVolume1\\x", "\\Device\\HarddiskVolume1\\x");
    normal("relative\\x", NULL);
    normal("", NULL);
    normal("C:\\h\xc3\xa9llo\\\xe6\x97\xa5", "C:\\h\xc3\xa9llo\\\xe6\x97\xa5");
    join("C:\\base\\dir", "file.txt", "C:\\base\\dir\\file.txt");
    join("C:\\base\\dir", "..\\up.txt", "C:\\base\\up.txt");
    join("C:\\base\\dir", "\\rooted", "C:\\rooted");
    join("C:\\base\\dir", "D:\\abs", "D:\\abs");
    join("C:\\base\\dir", "\\??\\E:\\nt", "E:\\nt");
    join("C:\\base\\dir", "c:rel", "C:\\base\\dir\\rel");
    join("C:\\base\\dir", "d:rel", "D:\\rel");
    join("\\\\srv\\share\\d", "..\\..\\x", "\\\\srv\\share\\x");
    join("C:\\base", "", "C:\\base");

    /* UTF-16 -> UTF-8: a surrogate pair, and a lone surrogate kept */
    uint16_t pair[] = {'a', 0xD83D, 0xDE00, 0};
    char out[32];
    EXPECT(sbx_utf16_to_utf8(out, sizeof out, pair, 3) == 5 && strcmp(out, "a\xf0\x9f\x98\x80") == 0,
           "surrogate pair");
    uint16_t lone[] = {0xD800, 'x'};
    EXPECT(sbx_utf16_to_utf8(out, sizeof out, lone, 2) == 4 && memcmp(out, "\xed\xa0\x80x", 4) == 0,
           "lone surrogate");
    EXPECT(sbx_utf16_to_utf8(out, 3, pair, 3) < 0, "overflow reported");
}

static void split(const char *cmd, int want_argc, const char *const *want)
{
    uint16_t w[512];
    u16(w, cmd);
    char **argv = NULL;
    size_t argc = sbx_win_split_cmdline(w, &argv);
    EXPECT((int)argc == want_argc, "split(%s): argc %zu, want %d", cmd, argc, want_argc);
    for (size_t i = 0; i < argc && (int)i < want_argc; i++)
        EXPECT(strcmp(argv[i], want[i]) == 0, "split(%s)[%zu] = [%s], want [%s]", cmd, i, argv[i], want[i]);
    free(argv);
}

static void test_cmdline(void)
{
    split("prog a b", 3, (const char *const[]){"prog", "a", "b"});
    split("\"C:\\Program Files\\x.exe\" \"two words\"  tab\there", 4,
          (const char *const[]){"C:\\Program Files\\x.exe", "two words", "tab", "here"});
    split("p a\\\\\\\"b c\\\\\"d e\"", 3, (const char *const[]){"p", "a\\\"b", "c\\d e"});
    split("p \"\" x\\y\\", 3, (const char *const[]){"p", "", "x\\y\\"});
    split("p \"a\"\"b\"", 2, (const char *const[]){"p", "a\"b"});
    split("C:\\dir\\prog.exe", 1, (const char *const[]){"C:\\dir\\prog.exe"});
    split("   ", 0, NULL);
}

static void decode_len_n(const char *name, const uint8_t *code, size_t size, unsigned want,
                         enum sbx_insn_kind kind)
{
    uint8_t buf[32] = {0};
    memcpy(buf, code, size);
    struct sbx_insn in;
    unsigned n = sbx_x64_decode(buf, &in);
    EXPECT(n == want, "%s: length %u, want %u", name, n, want);
    if (want)
        EXPECT(in.kind == kind, "%s: kind %d, want %d", name, in.kind, kind);
}

static void test_decoder(void)
{
#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})
#define decode_len decode_len_n
    decode_len("mov r10,rcx", B(0x4c, 0x8b, 0xd1), 3, SBX_INSN_PLAIN);
    decode_len("mov eax,imm32", B(0xb8, 0x1d, 0, 0, 0), 5, SBX_INSN_PLAIN);
    decode_len("test byte [abs],1", B(0xf6, 0x04, 0x25, 0x08, 0x03, 0xfe, 0x7f, 0x01), 8, SBX_INSN_PLAIN);
    decode_len("jne rel8", B(0x75, 0x03), 2, SBX_INSN_JCC);
    decode_len("syscall", B(0x0f, 0x05), 2, SBX_INSN_PLAIN);
    decode_len("ret", B(0xc3), 1, SBX_INSN_RET);
    decode_len("lea rsp,[rsp+0]", B(0x48, 0x8d, 0xa4, 0x24, 0, 0, 0, 0), 8, SBX_INSN_PLAIN);
    decode_len("push r15", B(0x41, 0x57), 2, SBX_INSN_PLAIN);
    decode_len("sub rsp,0x38", B(0x48, 0x83, 0xec, 0x38), 4, SBX_INSN_PLAIN);
    decode_len("sub rsp,imm32", B(0x48, 0x81, 0xec, 0xa0, 0, 0, 0), 7, SBX_INSN_PLAIN);
    decode_len("mov [rsp+0x20],r8d", B(0x44, 0x89, 0x44, 0x24, 0x20), 5, SBX_INSN_PLAIN);
    decode_len("mov rax,[rip+x]", B(0x48, 0x8b, 0x05, 1, 2, 3, 4), 7, SBX_INSN_RIPREL);
    decode_len("call rel32", B(0xe8, 0x6c, 0xf7, 0xff, 0xff), 5, SBX_INSN_CALL);
    decode_len("jmp rel32", B(0xe9, 0, 0, 0, 0), 5, SBX_INSN_JMP);
    decode_len("mov rax,imm64", B(0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8), 10, SBX_INSN_PLAIN);
    decode_len("movaps [rsp+x],xmm6", B(0x0f, 0x29, 0x74, 0x24, 0x20), 5, SBX_INSN_PLAIN);
    decode_len("jmp [rip+x] refused", B(0xff, 0x25, 0, 0, 0, 0), 0, SBX_INSN_PLAIN);
    decode_len("unknown opcode refused", B(0x06), 0, SBX_INSN_PLAIN);

    /* Wine's syscall stub: 8 bytes stolen, then a jump back. */
    uint8_t stub[32] = {0x4c, 0x8b, 0xd1, 0xb8, 0x1d, 0, 0, 0, 0xf6, 0x04, 0x25, 0x08, 0x03,
                        0xfe, 0x7f, 0x01, 0x75, 0x03, 0x0f, 0x05, 0xc3};
    uint8_t out[96];
    size_t taken = 0;
    size_t n = sbx_x64_relocate(stub, 0x170000000ull, 5, out, 0x16fff0000ull, sizeof out, &taken);
    EXPECT(taken == 8 && n == 8 + SBX_ABS_JMP_LEN, "stub relocation: taken %zu, n %zu", taken, n);
    EXPECT(memcmp(out, stub, 8) == 0, "stub bytes copied as they are");
    uint64_t back;
    memcpy(&back, out + 8 + 6, 8);
    EXPECT(out[8] == 0xff && out[9] == 0x25 && back == 0x170000008ull, "jump back to target+8");

    /* RIP-relative operand re-aimed: same absolute address from the new place. */
    uint8_t rip[32] = {0x48, 0x8b, 0x05, 0x10, 0, 0, 0, 0x90, 0x90};
    n = sbx_x64_relocate(rip, 0x1000, 5, out, 0x2000, sizeof out, &taken);
    int32_t disp;
    memcpy(&disp, out + 3, 4);
    EXPECT(taken == 7 && 0x2000 + 7 + disp == 0x1000 + 7 + 0x10, "rip-relative re-aimed (disp %d)", disp);

    /* A call rel32 keeps its target; a short jcc becomes a near jcc. */
    uint8_t cj[32] = {0x74, 0x10, 0xe8, 0x00, 0x01, 0, 0};
    n = sbx_x64_relocate(cj, 0x10000, 5, out, 0x20000, sizeof out, &taken);
    int32_t r1, r2;
    memcpy(&r1, out + 2, 4);
    memcpy(&r2, out + 7, 4);
    EXPECT(taken == 7 && out[0] == 0x0f && out[1] == 0x84 && 0x20000 + 6 + r1 == 0x10000 + 2 + 0x10,
           "jcc rel8 -> rel32 to the same target");
    EXPECT(out[6] == 0xe8 && 0x20000 + 11 + r2 == 0x10000 + 7 + 0x100, "call target kept");

    /* Too short: a ret within the stolen bytes refuses the hook. */
    uint8_t shortfn[32] = {0x31, 0xc0, 0xc3};
    EXPECT(sbx_x64_relocate(shortfn, 0x1000, 5, out, 0x2000, sizeof out, &taken) == 0,
           "function shorter than the patch refused");
    /* Out of rel32 range from the trampoline: the relocation fails, not truncates. */
    EXPECT(sbx_x64_relocate(rip, 0x1000, 5, out, 0x7ff000000000ull, sizeof out, &taken) == 0,
           "unreachable rip-relative refused");
#undef B
}

static void json_str(const char *in, size_t len, const char *want)
{
    /* tmpfile, not open_memstream: the same test runs natively on Windows,
     * whose C runtime has no memory streams */
    char buf[256];
    FILE *f = tmpfile();
    sbx_json_string(f, in, len);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    EXPECT(strcmp(buf, want) == 0, "json(%s) = %s, want %s", in, buf, want);
}

static void test_json(void)
{
    json_str("C:\\a\"b", 6, "\"C:\\\\a\\\"b\"");
    json_str("h\xc3\xa9", 3, "\"h\\u00e9\"");
    json_str("\xf0\x9f\x98\x80", 4, "\"\\ud83d\\ude00\"");
    json_str("\xff", 1, "\"\\udcff\"");
    json_str("\xed\xa0\x80", 3, "\"\\udced\\udca0\\udc80\"");
    json_str("\t\x01", 2, "\"\\t\\u0001\"");
}

static void record(struct sbx_result *r, int64_t pid, const char *path, unsigned flags)
{
    sbx_result_record(r, pid, path, strlen(path), flags);
}

/* The processes of a result as the JSON writer gives them: in start order,
 * the child under the root, a DWORD exit code unsigned, an unknown one
 * null, each record's own sorted sets. */
static void test_json_processes(void)
{
    struct sbx_result *r = sbx_result_new();
    const char *root_argv[] = {"C:\\b\\make.exe", "-j2"}, *cc_argv[] = {"cc", "-c", "x.c"};
    sbx_result_add_exec(r, 10, 1, "C:\\b\\make.exe", root_argv, 2);
    sbx_result_proc_cwd(r, 10, "C:\\w");
    record(r, 10, "C:\\w\\Makefile", SBX_READ);
    sbx_result_add_exec(r, 11, 10, "C:\\b\\cc.exe", cc_argv, 3);
    record(r, 11, "C:\\w\\x.o", SBX_WRITE | SBX_CREATED);
    record(r, 11, "C:\\w\\x.c", SBX_READ);
    record(r, 11, "C:\\w\\a.h", SBX_READ);
    sbx_result_proc_exit(r, 11, (int)0xC0000135u);
    sbx_result_settle_processes(r);
    const char *args[] = {"make"};
    struct sbx_json_run run = {args, 1, "detours", 0.5, 0, 1, NULL, NULL};
    FILE *f = tmpfile();
    EXPECT(sbx_result_write_json(f, r, &run) == 0, "JSON written");
    rewind(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    const char *want =
        "\"processes\": [{\"pid\": 10, \"ppid\": 1, \"parent\": null, "
        "\"path\": \"C:\\\\b\\\\make.exe\", \"argv\": [\"C:\\\\b\\\\make.exe\", \"-j2\"], "
        "\"cwd\": \"C:\\\\w\", \"returncode\": null, \"reads\": [\"C:\\\\w\\\\Makefile\"], "
        "\"writes\": [], \"probes\": [], \"enumerations\": []}, "
        "{\"pid\": 11, \"ppid\": 10, \"parent\": 0, \"path\": \"C:\\\\b\\\\cc.exe\", "
        "\"argv\": [\"cc\", \"-c\", \"x.c\"], \"cwd\": null, \"returncode\": 3221225781, "
        "\"reads\": [\"C:\\\\w\\\\a.h\", \"C:\\\\w\\\\x.c\"], \"writes\": [\"C:\\\\w\\\\x.o\"], "
        "\"probes\": [], \"enumerations\": []}]";
    EXPECT(strstr(buf, want) != NULL, "processes in %s", buf);
    sbx_result_free(r);
}

int main(void)
{
    test_winpath();
    test_cmdline();
    test_decoder();
    test_json();
    test_json_processes();
    if (failures)
        printf("%d failure(s)\n", failures);
    else
        printf("all native checks passed\n");
    return failures ? 1 : 0;
}
