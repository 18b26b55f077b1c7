/* result_json.c — see result_json.h. */
#include "result_json.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4) and its code point, or 0
 * when the bytes are not valid UTF-8 (overlong, surrogate, out of range,
 * truncated) — the same rules as Python's strict decoder. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned long *cp)
{
    unsigned char b = s[0];
    size_t k;
    unsigned long c, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if ((b & 0xE0) == 0xC0) {
        k = 2; c = b & 0x1F; min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
        k = 3; c = b & 0x0F; min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
        k = 4; c = b & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return k;
}

void sbx_json_string(FILE *f, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    size_t i = 0;
    while (i < len) {
        unsigned long c;
        size_t k = utf8_seq(s + i, len - i, &c);
        if (k == 0) {                       /* surrogateescape */
            fprintf(f, "\\udc%02x", s[i]);
            i++;
            continue;
        }
        i += k;
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20 || (c > 0x7F && c < 0x10000))
                fprintf(f, "\\u%04lx", c);
            else if (c >= 0x10000) {
                c -= 0x10000;
                fprintf(f, "\\u%04lx\\u%04lx", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
            } else
                fputc((int)c, f);
        }
    }
    fputc('"', f);
}

struct cat_ctx {
    FILE *f;
    unsigned cat;
    int first;
};

static int write_if_in(void *vctx, const char *path, size_t len, unsigned cats)
{
    struct cat_ctx *ctx = vctx;
    if (!(cats & ctx->cat))
        return 0;
    if (!ctx->first)
        fputs(", ", ctx->f);
    ctx->first = 0;
    sbx_json_string(ctx->f, path, len);
    return 0;
}

static void cstr(FILE *f, const char *s)
{
    sbx_json_string(f, s, strlen(s));
}

static void cstr_or_null(FILE *f, const char *s)
{
    if (s)
        cstr(f, s);
    else
        fputs("null", f);
}

/* A JSON list of n strings. */
static void strings_json(FILE *f, const char *const *v, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", f);
        cstr(f, v[i]);
    }
    fputc(']', f);
}

static void status_json(FILE *f, int status, int is_dword)
{
    if (is_dword)
        fprintf(f, "%lu", (unsigned long)(uint32_t)status);
    else
        fprintf(f, "%d", status);
}

static const struct {
    const char *name;
    unsigned cat;
} cats[] = {
    {"reads", SBX_READ}, {"writes", SBX_WRITE},
    {"probes", SBX_PROBE}, {"enumerations", SBX_ENUM},
};

/* ", \"reads\": [...], ..." of one pathset, each list sorted. */
static int write_sets(FILE *f, const sbx_pathset *ps)
{
    int rc = 0;
    for (size_t c = 0; c < sizeof cats / sizeof cats[0]; c++) {
        struct cat_ctx ctx = {f, cats[c].cat, 1};
        fprintf(f, ", \"%s\": [", cats[c].name);
        if (sbx_pathset_foreach_sorted(ps, write_if_in, &ctx) < 0)
            rc = -1;
        fputs("]", f);
    }
    return rc;
}

/* "processes": one object per record, in start order. */
static int write_processes(FILE *f, const struct sbx_result *r, int is_dword)
{
    int rc = 0;
    fputs(", \"processes\": [", f);
    for (size_t i = 0; i < r->nprocs; i++) {
        const struct sbx_process *p = &r->procs[i];
        fprintf(f, "%s{\"pid\": %lld, \"ppid\": %lld, \"parent\": ", i ? ", " : "",
                (long long)p->pid, (long long)p->ppid);
        if (p->parent >= 0)
            fprintf(f, "%lld", (long long)p->parent);
        else
            fputs("null", f);
        fputs(", \"path\": ", f);
        cstr_or_null(f, p->path);
        fputs(", \"argv\": ", f);
        strings_json(f, (const char *const *)p->argv, p->argc);
        fputs(", \"cwd\": ", f);
        cstr_or_null(f, p->cwd);
        fputs(", \"returncode\": ", f);
        if (p->has_status)
            status_json(f, p->status, is_dword);
        else
            fputs("null", f);
        if (write_sets(f, p->paths) < 0)
            rc = -1;
        fputs("}", f);
    }
    fputs("]", f);
    return rc;
}

int sbx_result_write_json(FILE *f, const struct sbx_result *r, const struct sbx_json_run *run)
{
    int rc = 0;
    fputs("{\"schema\": \"sandbox_py.result/1\", \"args\": ", f);
    strings_json(f, run->args, run->nargs);
    fputs(", \"returncode\": ", f);
    status_json(f, r->has_status ? r->status : run->returncode, run->status_is_dword);
    fputs(", \"backend\": ", f);
    cstr(f, run->backend);
    fprintf(f, ", \"duration\": %.6f, \"complete\": %s, \"warnings\": [",
            run->duration, r->complete ? "true" : "false");
    for (size_t i = 0; i < r->nwarnings; i++) {
        if (i)
            fputs(", ", f);
        cstr(f, r->warnings[i]);
    }
    fputs("]", f);
    if (write_sets(f, r->paths) < 0)
        rc = -1;
    /* execs, then the processes that left the run (breakaway) apart */
    static const char *const lists[2] = {"execs", "breakaways"};
    for (int b = 0; b < 2; b++) {
        fprintf(f, "%s\"%s\": [", b ? "], " : ", ", lists[b]);
        int n = 0;
        for (size_t i = 0; i < r->nexecs; i++) {
            const struct sbx_exec *e = &r->execs[i];
            if (!e->breakaway != !b)
                continue;
            if (b)
                fprintf(f, "%s{\"pid\": %lld, \"path\": ", n++ ? ", " : "",
                        (long long)e->pid);
            else
                fprintf(f, "%s{\"pid\": %lld, \"ppid\": %lld, \"path\": ", n++ ? ", " : "",
                        (long long)e->pid, (long long)e->ppid);
            cstr(f, e->path);
            fputs(", \"argv\": ", f);
            strings_json(f, (const char *const *)e->argv, e->argc);
            fputs("}", f);
        }
    }
    fputs("]", f);
    if (write_processes(f, r, run->status_is_dword) < 0)
        rc = -1;
    if (run->extra)
        run->extra(f, run->extra_arg);
    fputs(", \"stdout\": null, \"stderr\": null}\n", f);
    if (fflush(f) != 0 || ferror(f))
        rc = -1;
    return rc;
}
