/* result.c — see result.h. */
#include "result.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sbx_result *sbx_result_new(void)
{
    struct sbx_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->paths = sbx_pathset_new();
    if (!r->paths) {
        free(r);
        return NULL;
    }
    r->complete = 1;
    return r;
}

void sbx_result_free(struct sbx_result *r)
{
    if (!r)
        return;
    sbx_pathset_free(r->paths);
    for (size_t i = 0; i < r->nexecs; i++) {
        free(r->execs[i].path);
        for (size_t j = 0; j < r->execs[i].argc; j++)
            free(r->execs[i].argv[j]);
        free(r->execs[i].argv);
    }
    free(r->execs);
    for (size_t i = 0; i < r->nwarnings; i++)
        free(r->warnings[i]);
    free(r->warnings);
    free(r);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

void sbx_result_warn(struct sbx_result *r, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    r->complete = 0;
    for (size_t i = 0; i < r->nwarnings; i++)
        if (strcmp(r->warnings[i], buf) == 0)
            return;
    if (r->nwarnings == r->cap_warnings) {
        size_t ncap = r->cap_warnings ? r->cap_warnings * 2 : 4;
        char **nw = realloc(r->warnings, ncap * sizeof *nw);
        if (!nw)
            return;
        r->warnings = nw;
        r->cap_warnings = ncap;
    }
    char *c = dup_str(buf);
    if (c)
        r->warnings[r->nwarnings++] = c;
}

int sbx_result_add_exec(struct sbx_result *r, int64_t pid, int64_t ppid,
                        const char *path, const char *const *argv, size_t argc)
{
    if (r->nexecs == r->cap_execs) {
        size_t ncap = r->cap_execs ? r->cap_execs * 2 : 16;
        struct sbx_exec *ne = realloc(r->execs, ncap * sizeof *ne);
        if (!ne)
            return -1;
        r->execs = ne;
        r->cap_execs = ncap;
    }
    struct sbx_exec *e = &r->execs[r->nexecs];
    memset(e, 0, sizeof *e);
    e->pid = pid;
    e->ppid = ppid;
    e->path = dup_str(path);
    e->argv = calloc(argc ? argc : 1, sizeof *e->argv);
    if (!e->path || !e->argv) {
        free(e->path);
        free(e->argv);
        return -1;
    }
    for (size_t i = 0; i < argc; i++) {
        e->argv[i] = dup_str(argv[i]);
        if (!e->argv[i])
            break;
        e->argc++;
    }
    r->nexecs++;
    return 0;
}

int sbx_result_add_breakaway(struct sbx_result *r, int64_t pid, int64_t ppid,
                             const char *path, const char *const *argv, size_t argc)
{
    if (sbx_result_add_exec(r, pid, ppid, path, argv, argc) < 0)
        return -1;
    r->execs[r->nexecs - 1].breakaway = 1;
    return 0;
}

void sbx_result_drop_last_exec(struct sbx_result *r)
{
    if (!r->nexecs)
        return;
    struct sbx_exec *e = &r->execs[--r->nexecs];
    free(e->path);
    for (size_t j = 0; j < e->argc; j++)
        free(e->argv[j]);
    free(e->argv);
}
