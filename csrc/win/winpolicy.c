/* winpolicy.c — see winpolicy.h. */
#include "winpolicy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sbx_policy_need_name(enum sbx_policy_need need)
{
    switch (need) {
    case SBX_NEED_READ: return "read";
    case SBX_NEED_PROBE: return "probe";
    case SBX_NEED_ENUM: return "enumeration";
    case SBX_NEED_WRITE: return "write";
    case SBX_NEED_EXEC: return "exec";
    }
    return "?";
}

void *sbx_policy_new(uint32_t mode, size_t *len)
{
    struct sbx_policy_hdr *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->magic = SBX_POLICY_MAGIC;
    h->mode = mode;
    h->bytes = sizeof *h;
    *len = sizeof *h;
    return h;
}

/* UTF-8 to UTF-16 units; returns the count or -1 on malformed input. */
static long utf8_to_utf16(uint16_t *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = (unsigned char)s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) { cp = c; k = 1; }
        else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; k = 2; }
        else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; k = 3; }
        else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; k = 4; }
        else return -1;
        if (i + k > n)
            return -1;
        for (size_t j = 1; j < k; j++) {
            if (((unsigned char)s[i + j] & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | ((unsigned char)s[i + j] & 0x3F);
        }
        i += k;
        if (cp >= 0x10000) {
            if (o + 2 > cap)
                return -1;
            cp -= 0x10000;
            out[o++] = (uint16_t)(0xD800 + (cp >> 10));
            out[o++] = (uint16_t)(0xDC00 + (cp & 0x3FF));
        } else {
            if (o + 1 > cap)
                return -1;
            out[o++] = (uint16_t)cp;
        }
    }
    return (long)o;
}

/* The trees are given in the normal form (policy.windows_normal): a drive
 * root, a drive path, UNC or a device, never relative. */
static int normal_form(const uint16_t *p, size_t n)
{
    if (n >= 3 && p[1] == ':' && p[2] == '\\')
        return 1;
    return n >= 3 && p[0] == '\\' && p[1] == '\\';
}

int sbx_policy_add(void **blob, size_t *len, char kind, const char *path, char *err,
                   size_t errlen)
{
    size_t plen = strlen(path);
    uint16_t *w = malloc((plen + 1) * sizeof *w);
    long n = w ? utf8_to_utf16(w, plen + 1, path, plen) : -1;
    if (n <= 0 || n > 0xFFFF || !normal_form(w, (size_t)n)) {
        snprintf(err, errlen, "policy: %s is not an absolute Windows path (C:\\dir, "
                              "\\\\server\\share\\dir)", path);
        free(w);
        return -1;
    }
    size_t add = 4 + (size_t)n * 2;
    uint8_t *b = realloc(*blob, *len + add);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        free(w);
        return -1;
    }
    uint16_t head[2] = {(uint16_t)kind, (uint16_t)n};
    memcpy(b + *len, head, 4);
    memcpy(b + *len + 4, w, (size_t)n * 2);
    free(w);
    *len += add;
    struct sbx_policy_hdr h;
    memcpy(&h, b, sizeof h);
    h.count++;
    h.bytes = (uint32_t)*len;
    memcpy(b, &h, sizeof h);
    *blob = b;
    return 0;
}

int sbx_policy_parse(const char *text, size_t len, void **out, size_t *outlen, char *err,
                     size_t errlen)
{
    static const char head[] = "sandbox_py.winpolicy/1";
    *out = NULL;
    void *blob = sbx_policy_new(SBX_POLICY_DENY, outlen);
    if (!blob) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        free(blob);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(copy, text, len);
    copy[len] = 0;
    int lineno = 0, rc = 0;
    for (char *line = copy, *next; line && *line && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = 0;
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, head) != 0) {
                snprintf(err, errlen, "policy: the first line must be %s", head);
                rc = -1;
            }
            continue;
        }
        if (!l)
            continue;
        char *sp = strchr(line, ' ');
        if (!sp) {
            snprintf(err, errlen, "policy line %d: expected \"<what> <value>\"", lineno);
            rc = -1;
            break;
        }
        *sp = 0;
        const char *value = sp + 1;
        if (strcmp(line, "on_violation") == 0) {
            struct sbx_policy_hdr *h = blob;
            if (strcmp(value, "deny") == 0)
                h->mode = SBX_POLICY_DENY;
            else if (strcmp(value, "report") == 0)
                h->mode = SBX_POLICY_REPORT;
            else {
                snprintf(err, errlen, "policy line %d: on_violation is deny or report", lineno);
                rc = -1;
            }
        } else if (strcmp(line, "read") == 0 || strcmp(line, "write") == 0 ||
                   strcmp(line, "execute") == 0 || strcmp(line, "search") == 0) {
            char kind = line[0] == 'r' ? 'R' : line[0] == 'w' ? 'W' : line[0] == 'e' ? 'X' : 'S';
            rc = sbx_policy_add(&blob, outlen, kind, value, err, errlen);
        } else {
            snprintf(err, errlen, "policy line %d: unknown item %s", lineno, line);
            rc = -1;
        }
    }
    if (lineno == 0 && rc == 0) {
        snprintf(err, errlen, "policy: empty");
        rc = -1;
    }
    free(copy);
    if (rc < 0) {
        free(blob);
        return -1;
    }
    *out = blob;
    return 0;
}

int sbx_policy_valid(const void *blob, size_t len)
{
    struct sbx_policy_hdr h;
    if (!blob || len < sizeof h)
        return 0;
    memcpy(&h, blob, sizeof h);
    if (h.magic != SBX_POLICY_MAGIC || h.bytes > len || h.bytes < sizeof h)
        return 0;
    const uint8_t *p = (const uint8_t *)blob + sizeof h, *end = (const uint8_t *)blob + h.bytes;
    for (uint32_t i = 0; i < h.count; i++) {
        uint16_t e[2];
        if ((size_t)(end - p) < 4)
            return 0;
        memcpy(e, p, 4);
        if ((size_t)(end - p - 4) < (size_t)e[1] * 2)
            return 0;
        p += 4 + (size_t)e[1] * 2;
    }
    return 1;
}

/* Whether `path` is `tree` or below it (Windows rule, see winpolicy.h). */
static int under(const uint16_t *path, size_t plen, const uint16_t *tree, size_t tlen,
                 uint16_t (*fold)(uint16_t))
{
    if (tlen && tree[tlen - 1] == '\\') {   /* a drive's root, C:\ */
        if (plen == tlen - 1) {
            tlen--;
        } else if (plen < tlen) {
            return 0;
        }
    } else if (plen < tlen || (plen > tlen && path[tlen] != '\\')) {
        return 0;
    }
    for (size_t i = 0; i < tlen; i++)
        if (path[i] != tree[i] && fold(path[i]) != fold(tree[i]))
            return 0;
    return 1;
}

/* Whether `path` names an entry directly in directory `dir`. */
static int entry_of(const uint16_t *path, size_t plen, const uint16_t *dir, size_t dlen,
                    uint16_t (*fold)(uint16_t))
{
    size_t start = dlen && dir[dlen - 1] == '\\' ? dlen : dlen + 1;   /* C:\ or C:\d\ */
    if (plen <= start || !under(path, plen, dir, dlen, fold))
        return 0;
    for (size_t i = start; i < plen; i++)
        if (path[i] == '\\')
            return 0;
    return 1;
}

int sbx_policy_allows(const void *blob, enum sbx_policy_need need, const uint16_t *path,
                      size_t len, uint16_t (*fold)(uint16_t))
{
    struct sbx_policy_hdr h;
    memcpy(&h, blob, sizeof h);
    const uint8_t *p = (const uint8_t *)blob + sizeof h;
    for (uint32_t i = 0; i < h.count; i++) {
        uint16_t e[2];
        memcpy(e, p, 4);
        const uint16_t *tree = (const uint16_t *)(const void *)(p + 4);
        size_t tlen = e[1];
        p += 4 + tlen * 2;
        if (e[0] == 'S') {      /* a search directory: probes of its entries */
            if (need == SBX_NEED_PROBE && entry_of(path, len, tree, tlen, fold))
                return 1;
            continue;
        }
        int relevant = need == SBX_NEED_EXEC ? e[0] == 'X'
                       : need == SBX_NEED_WRITE ? e[0] == 'W'
                       : 1;   /* read, probe, listing: any tree */
        if (relevant && under(path, len, tree, tlen, fold))
            return 1;
        /* a directory on the way to a tree may be probed */
        if (need == SBX_NEED_PROBE && under(tree, tlen, path, len, fold))
            return 1;
    }
    return 0;
}
