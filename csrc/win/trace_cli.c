/* trace_cli.c — `sbx-trace [options] -- CMD ARGS...`: the C core as a
 * command.  Runs CMD traced and writes the Result as JSON
 * (docs/json-schema.md) to stdout or to the file given with -o; exits with
 * CMD's exit status, 127 when CMD cannot be found, 125 on any other error
 * of its own (with one sentence on stderr).
 *
 * Options:  -o, --output FILE   write the JSON there instead of stdout
 *           --timeout SECONDS   kill the whole tree after that long
 *           --cwd DIR           run CMD in DIR
 *           --policy FILE       enforce a policy (csrc/win/winpolicy.h's text
 *                               form, what sandbox_py writes)
 *           --read/--write/--execute TREE   enforce these trees (repeatable;
 *                               added to --policy's); exactly these: the
 *                               system baseline and "execute defaults to the
 *                               read and write trees" are sandbox_py.Policy's
 *                               rules, and its resolved form spells them out
 *           --on-violation deny|report   default deny
 *
 * With a policy, accesses outside it are refused (deny) or only listed
 * (report), and the JSON gains "denied": [{"path", "category", "pid"}].
 *
 * The option handling and the output are portable; one function per OS,
 * trace_command(), does the run.  Only the Windows backend is built today;
 * the Linux one is to come as an #elif over csrc/linux/ebpf/ebpf.h.
 *
 * When CMD cannot be started and -o was given, the file receives
 * {"schema": "sandbox_py.start_error/1", "winerror": N, "message": "..."}
 * so a caller that only reads the file (detours.py) can raise
 * FileNotFoundError as subprocess does.
 *
 * Wrapper mode (Windows, used by sandbox_py/_backends/detours.py): with
 * SBX_TRACE_OUTPUT set in the environment and no options, sbx-trace takes
 * its whole command line as CMD, so Python's subprocess can start it in
 * place of the program (Popen(executable=...)) with the program's own
 * command line untouched.  SBX_TRACE_POLICY, when set, names the policy
 * file (as --policy); both variables are removed before CMD starts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "result.h"
#include "result_json.h"
#include "winpolicy.h"

struct cli {
    void *policy;             /* blob (winpolicy.h) or NULL */
    size_t policy_len;
    const char *on_violation; /* from --on-violation, applied after parsing */
    const char *output;       /* NULL: stdout */
    double timeout;           /* < 0: none */
    const char *cwd;
    char **argv;              /* CMD and its arguments (UTF-8) */
    size_t argc;
    char *cmdline_utf8;       /* wrapper mode: the command line as given */
    wchar_t breakaway[1024];  /* --breakaway / SBX_TRACE_BREAKAWAY, one per line */
};

#define EXIT_NOT_FOUND 127
#define EXIT_OWN_ERROR 125

static int usage(const char *why)
{
    fprintf(stderr, "sbx-trace: %s\nusage: sbx-trace [-o FILE] [--timeout SECONDS] [--cwd DIR] "
                    "[--breakaway PROGRAM]... [--policy FILE] [--read|--write|--execute TREE]... "
                    "[--on-violation deny|report] -- CMD [ARGS...]\n", why);
    return EXIT_OWN_ERROR;
}

static wchar_t *wide(const char *s);

static char *read_file(const char *path, size_t *len);

/* --policy FILE: the text form, parsed into the blob. */
static int load_policy(struct cli *cli, const char *path)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    char err[512];
    if (!text) {
        fprintf(stderr, "sbx-trace: cannot read the policy %s: %s\n", path, strerror(errno));
        return EXIT_OWN_ERROR;
    }
    free(cli->policy);
    int rc = sbx_policy_parse(text, len, &cli->policy, &cli->policy_len, err, sizeof err);
    free(text);
    if (rc < 0) {
        fprintf(stderr, "sbx-trace: %s: %s\n", path, err);
        return EXIT_OWN_ERROR;
    }
    return 0;
}

static int add_tree(struct cli *cli, char kind, const char *tree)
{
    char err[512];
    if (!cli->policy && !(cli->policy = sbx_policy_new(SBX_POLICY_DENY, &cli->policy_len)))
        return EXIT_OWN_ERROR;
    if (sbx_policy_add(&cli->policy, &cli->policy_len, kind, tree, err, sizeof err) < 0) {
        fprintf(stderr, "sbx-trace: %s\n", err);
        return EXIT_OWN_ERROR;
    }
    return 0;
}

/* --on-violation applies to the policy however it was given. */
static int finish_policy(struct cli *cli)
{
    if (!cli->on_violation)
        return 0;
    if (!cli->policy && !(cli->policy = sbx_policy_new(SBX_POLICY_DENY, &cli->policy_len)))
        return EXIT_OWN_ERROR;
    struct sbx_policy_hdr h;
    memcpy(&h, cli->policy, sizeof h);
    if (strcmp(cli->on_violation, "deny") == 0)
        h.mode = SBX_POLICY_DENY;
    else if (strcmp(cli->on_violation, "report") == 0)
        h.mode = SBX_POLICY_REPORT;
    else
        return usage("--on-violation is deny or report");
    memcpy(cli->policy, &h, sizeof h);
    return 0;
}

/* Returns 0, or an exit code after printing why. */
static int parse(int argc, char **argv, struct cli *cli)
{
    cli->timeout = -1;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc) {
            cli->output = argv[++i];
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            cli->timeout = strtod(argv[++i], &end);
            if (*end || errno || cli->timeout < 0)
                return usage("--timeout takes a number of seconds");
        } else if (strcmp(a, "--cwd") == 0 && i + 1 < argc) {
            cli->cwd = argv[++i];
        } else if (strcmp(a, "--breakaway") == 0 && i + 1 < argc) {
            /* a program (name or full path) that leaves the run when started */
            size_t have = wcslen(cli->breakaway);
            wchar_t *w = wide(argv[++i]);
            if (!w || have + wcslen(w) + 2 > sizeof cli->breakaway / sizeof(wchar_t)) {
                free(w);
                return usage("--breakaway: the declaration is too long");
            }
            if (have)
                cli->breakaway[have++] = L'\n';
            wcscpy(cli->breakaway + have, w);
            free(w);
        } else if (strcmp(a, "--policy") == 0 && i + 1 < argc) {
            int rc = load_policy(cli, argv[++i]);
            if (rc)
                return rc;
        } else if ((strcmp(a, "--read") == 0 || strcmp(a, "--write") == 0 ||
                    strcmp(a, "--execute") == 0) && i + 1 < argc) {
            int rc = add_tree(cli, a[2] == 'r' ? 'R' : a[2] == 'w' ? 'W' : 'X', argv[++i]);
            if (rc)
                return rc;
        } else if (strcmp(a, "--on-violation") == 0 && i + 1 < argc) {
            cli->on_violation = argv[++i];
        } else if (a[0] == '-') {
            return usage("unknown option or missing value");
        } else {
            break;          /* CMD without "--" */
        }
    }
    if (i >= argc)
        return usage("no command given");
    int prc = finish_policy(cli);
    if (prc)
        return prc;
    cli->argv = argv + i;
    cli->argc = (size_t)(argc - i);
    return 0;
}

/* Open the -o file; its name is UTF-8 (on Windows fopen would take it in
 * the ANSI code page, so it goes through _wfopen). */
static FILE *open_output(const char *path);

static int emit(const struct cli *cli, const struct sbx_result *r, const char *backend,
                double duration, void (*extra)(FILE *, void *), void *extra_arg)
{
    struct sbx_json_run run = {(const char *const *)cli->argv, cli->argc, backend, duration,
                               r->status, 0, extra, extra_arg};
#ifdef _WIN32
    run.status_is_dword = 1;
#endif
    FILE *f = cli->output ? open_output(cli->output) : stdout;
    if (!f) {
        fprintf(stderr, "sbx-trace: cannot write %s: %s\n", cli->output, strerror(errno));
        return -1;
    }
    int rc = sbx_result_write_json(f, r, &run);
    if (cli->output && fclose(f) != 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "sbx-trace: writing the JSON result failed\n");
    return rc;
}

#ifdef _WIN32
/* ---- Windows: csrc/win/launcher.c ---------------------------------------------- */
#include <windows.h>

#include "cmdline.h"
#include "launcher.h"

static wchar_t *wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof *w) : NULL;
    if (w)
        MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
    return w;
}

static FILE *open_output(const char *path)
{
    wchar_t *w = wide(path);
    FILE *f = w ? _wfopen(w, L"wb") : NULL;
    free(w);
    return f;
}

static char *read_file(const char *path, size_t *len)
{
    wchar_t *w = wide(path);
    FILE *f = w ? _wfopen(w, L"rb") : NULL;
    free(w);
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* "denied": the accesses outside the policy, as the DLLs reported them. */
static void write_denied(FILE *f, void *arg)
{
    const struct sbx_win_denials *d = arg;
    fputs(", \"denied\": [", f);
    for (size_t i = 0; i < d->n; i++) {
        fputs(i ? ", {\"path\": " : "{\"path\": ", f);
        sbx_json_string(f, d->v[i].path, strlen(d->v[i].path));
        fprintf(f, ", \"category\": \"%s\", \"pid\": %lu}", d->v[i].category,
                (unsigned long)d->v[i].pid);
    }
    fputs("]", f);
}

static char *narrow(const wchar_t *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = n > 0 ? malloc((size_t)n) : NULL;
    if (s)
        WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    return s;
}

/* Quote one argument so the C runtime's parser gives it back unchanged. */
static void append_quoted(wchar_t *out, size_t *n, const wchar_t *a)
{
    int needs = !*a || wcspbrk(a, L" \t\n\v\"") != NULL;
    if (!needs) {
        wcscpy(out + *n, a);
        *n += wcslen(a);
        return;
    }
    out[(*n)++] = '"';
    for (const wchar_t *p = a;; p++) {
        size_t bs = 0;
        while (*p == '\\') {
            bs++;
            p++;
        }
        if (!*p) {
            for (size_t i = 0; i < bs * 2; i++)
                out[(*n)++] = '\\';
            break;
        }
        if (*p == '"') {
            for (size_t i = 0; i < bs * 2 + 1; i++)
                out[(*n)++] = '\\';
        } else {
            for (size_t i = 0; i < bs; i++)
                out[(*n)++] = '\\';
        }
        out[(*n)++] = *p;
    }
    out[(*n)++] = '"';
}

static wchar_t *join_cmdline(const struct cli *cli)
{
    size_t cap = 1;
    for (size_t i = 0; i < cli->argc; i++)
        cap += strlen(cli->argv[i]) * 2 + 3;
    wchar_t *out = malloc(cap * sizeof *out);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < cli->argc; i++) {
        wchar_t *w = wide(cli->argv[i]);
        if (!w) {
            free(out);
            return NULL;
        }
        if (i)
            out[n++] = ' ';
        append_quoted(out, &n, w);
        free(w);
    }
    out[n] = 0;
    return out;
}

/* The hook DLL lives next to sbx-trace.exe. */
static wchar_t *hook_dll_path(void)
{
    wchar_t *p = malloc(32768 * sizeof *p);
    if (!p)
        return NULL;
    DWORD n = GetModuleFileNameW(NULL, p, 32768 - 16);
    while (n > 0 && p[n - 1] != '\\' && p[n - 1] != '/')
        n--;
    wcscpy(p + n, L"sbx_hook.dll");
    return p;
}

static void write_start_error(const struct cli *cli, DWORD code, const char *err)
{
    FILE *f = cli->output ? open_output(cli->output) : NULL;
    if (f) {
        fprintf(f, "{\"schema\": \"sandbox_py.start_error/1\", \"winerror\": %lu, "
                   "\"message\": ", (unsigned long)code);
        sbx_json_string(f, err, strlen(err));
        fputs("}\n", f);
        fclose(f);
    }
}

static int trace_command(const struct cli *cli, wchar_t *cmdline)
{
    wchar_t *dll = hook_dll_path();
    wchar_t *cwd = cli->cwd ? wide(cli->cwd) : NULL;
    if (!dll || GetFileAttributesW(dll) == INVALID_FILE_ATTRIBUTES) {
        fprintf(stderr, "sbx-trace: the hook DLL sbx_hook.dll is not next to sbx-trace.exe; "
                        "rebuild with shims/windows/winbuild.py\n");
        return EXIT_OWN_ERROR;
    }
    struct sbx_win_denials denied = {0};
    struct sbx_win_run run = {cmdline, cwd, dll, (const char *const *)cli->argv, cli->argc,
                              cli->timeout, cli->breakaway, cli->policy, cli->policy_len,
                              &denied};
    double duration = 0;
    DWORD start_error = 0;
    char err[1024];
    struct sbx_result *r = sbx_win_run(&run, &duration, &start_error, err, sizeof err);
    free(dll);
    free(cwd);
    if (!r) {
        sbx_win_denials_free(&denied);
        fprintf(stderr, "sbx-trace: %s: %s\n", cli->argv[0], err);
        write_start_error(cli, start_error, err);
        return (start_error == ERROR_FILE_NOT_FOUND || start_error == ERROR_PATH_NOT_FOUND)
                   ? EXIT_NOT_FOUND : EXIT_OWN_ERROR;
    }
    int status = r->status;
    if (emit(cli, r, "detours", duration, cli->policy ? write_denied : NULL, &denied) < 0)
        status = EXIT_OWN_ERROR;
    sbx_win_denials_free(&denied);
    sbx_result_free(r);
    return status;
}

int wmain(int argc, wchar_t **wargv)
{
    struct cli cli;
    memset(&cli, 0, sizeof cli);
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    if (!argv)
        return EXIT_OWN_ERROR;
    for (int i = 0; i < argc; i++)
        if (!(argv[i] = narrow(wargv[i])))
            return EXIT_OWN_ERROR;

    /* the breakaway declaration of sandbox_py's detours session; the
     * program inherits an environment without it */
    if (GetEnvironmentVariableW(L"SBX_TRACE_BREAKAWAY", cli.breakaway,
                                sizeof cli.breakaway / sizeof(wchar_t)) >=
        sizeof cli.breakaway / sizeof(wchar_t)) {
        fprintf(stderr, "sbx-trace: SBX_TRACE_BREAKAWAY is too long\n");
        return EXIT_OWN_ERROR;
    }
    SetEnvironmentVariableW(L"SBX_TRACE_BREAKAWAY", NULL);
    wchar_t output_env[32768];
    if (GetEnvironmentVariableW(L"SBX_TRACE_OUTPUT", output_env, 32768)) {
        /* Wrapper mode: our command line is the program's, untouched.  The
         * variables are ours; the program inherits an environment without
         * them. */
        cli.output = narrow(output_env);
        cli.timeout = -1;
        SetEnvironmentVariableW(L"SBX_TRACE_OUTPUT", NULL);
        if (GetEnvironmentVariableW(L"SBX_TRACE_POLICY", output_env, 32768)) {
            char *policy = narrow(output_env);
            SetEnvironmentVariableW(L"SBX_TRACE_POLICY", NULL);
            int prc = policy ? load_policy(&cli, policy) : EXIT_OWN_ERROR;
            free(policy);
            if (prc) {
                /* the caller reads only the file: say there why nothing ran */
                write_start_error(&cli, ERROR_INVALID_PARAMETER,
                                  "the policy could not be used (sbx-trace's stderr says why); "
                                  "the command was not started");
                return prc;
            }
        }
        wchar_t *cmdline = GetCommandLineW();
        cli.argc = sbx_win_split_cmdline((const uint16_t *)cmdline, &cli.argv);
        if (!cli.argc)
            return usage("empty command line");
        return trace_command(&cli, cmdline);
    }
    int rc = parse(argc, argv, &cli);
    if (rc)
        return rc;
    wchar_t *cmdline = join_cmdline(&cli);
    if (!cmdline)
        return EXIT_OWN_ERROR;
    return trace_command(&cli, cmdline);
}

#else
#error "sbx-trace: only the Windows front is written; the Linux one goes here, over csrc/linux/ebpf/ebpf.h"
#endif
