/* winpath.c — see winpath.h. */
#include "winpath.h"

#include <string.h>

static int is_sep(uint16_t c)
{
    return c == '\\' || c == '/';
}

static int is_letter(uint16_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static uint16_t upper(uint16_t c)
{
    return (c >= 'a' && c <= 'z') ? (uint16_t)(c - 'a' + 'A') : c;
}

/* Case-insensitive ASCII prefix test (separators match either slash). */
static int has_prefix(const uint16_t *p, size_t len, const char *pre)
{
    size_t n = strlen(pre);
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (pre[i] == '\\') {
            if (!is_sep(p[i]))
                return 0;
        } else if (upper(p[i]) != upper((uint16_t)(unsigned char)pre[i])) {
            return 0;
        }
    }
    return 1;
}

static int drive_at(const uint16_t *p, size_t len)
{
    return len >= 2 && is_letter(p[0]) && p[1] == ':' && (len == 2 || is_sep(p[2]));
}

/* Append components of p[0..len) to out[0..*n) whose first `root` units are
 * the root that ".." may not climb above.  Returns 0 or -1 (no room). */
static int append_clean(uint16_t *out, size_t cap, size_t *n, size_t root,
                        const uint16_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && is_sep(p[i]))
            i++;
        size_t s = i;
        while (i < len && !is_sep(p[i]))
            i++;
        size_t clen = i - s;
        if (clen == 0 || (clen == 1 && p[s] == '.'))
            continue;
        if (clen == 2 && p[s] == '.' && p[s + 1] == '.') {
            while (*n > root && out[*n - 1] != '\\')
                (*n)--;
            if (*n > root)
                (*n)--;            /* the separator before the dropped name */
            continue;
        }
        int need_sep = *n > 0 && out[*n - 1] != '\\';
        if (*n + need_sep + clen + 1 > cap)
            return -1;
        if (need_sep)
            out[(*n)++] = '\\';
        memcpy(out + *n, p + s, clen * sizeof *p);
        *n += clen;
    }
    return 0;
}

static long put(uint16_t *out, size_t cap, size_t *n, const char *s)
{
    size_t k = strlen(s);
    if (*n + k + 1 > cap)
        return -1;
    for (size_t i = 0; i < k; i++)
        out[(*n)++] = (uint16_t)(unsigned char)s[i];
    return 0;
}

/* Parse the root of an absolute path.  On success writes the normal root
 * into out, sets *n to its length, *root_keep to how far ".." may climb, and
 * returns the offset in `in` where the relative rest starts; for device
 * names that are copied verbatim, returns len with the whole name in out.
 * Returns -1 when not absolute or no room. */
static long parse_root(uint16_t *out, size_t cap, size_t *n, size_t *root_keep,
                       const uint16_t *in, size_t len)
{
    size_t i = 0;
    *n = 0;
    int namespace_prefix = 0;
    if (has_prefix(in, len, "\\??\\") || has_prefix(in, len, "\\\\?\\") ||
        has_prefix(in, len, "\\\\.\\")) {
        i = 4;
        namespace_prefix = 1;
    } else if (has_prefix(in, len, "\\DosDevices\\")) {
        i = 12;
        namespace_prefix = 1;
    } else if (has_prefix(in, len, "\\GLOBAL??\\")) {
        i = 10;
        namespace_prefix = 1;
    }
    const uint16_t *r = in + i;
    size_t rlen = len - i;
    if (drive_at(r, rlen)) {
        if (*n + 4 > cap)
            return -1;
        out[0] = upper(r[0]);
        out[1] = ':';
        out[2] = '\\';
        *n = 3;
        *root_keep = 3;
        return (long)(i + 2);
    }
    int unc = 0;
    size_t srv = 0;
    if (namespace_prefix && has_prefix(r, rlen, "UNC\\")) {
        unc = 1;
        srv = i + 4;
    } else if (!namespace_prefix && len >= 2 && is_sep(in[0]) && is_sep(in[1])) {
        unc = 1;
        srv = 2;
    }
    if (unc) {
        /* \\server\share is the root; ".." never climbs above the share. */
        if (put(out, cap, n, "\\\\") < 0)
            return -1;
        size_t j = srv;
        for (int part = 0; part < 2; part++) {
            while (j < len && is_sep(in[j]))
                j++;
            size_t s = j;
            while (j < len && !is_sep(in[j]))
                j++;
            if (j == s)
                return part == 0 ? -1 : (long)j;
            if (part == 1 && put(out, cap, n, "\\") < 0)
                return -1;
            if (*n + (j - s) + 1 > cap)
                return -1;
            memcpy(out + *n, in + s, (j - s) * sizeof *in);
            *n += j - s;
            *root_keep = *n;
        }
        return (long)j;
    }
    if (namespace_prefix) {
        /* A device in the DOS namespace: \\.\pipe\x, \\.\CONIN$ ... */
        if (put(out, cap, n, "\\\\.\\") < 0)
            return -1;
        *root_keep = *n;
        if (*n + rlen + 1 > cap)
            return -1;
        for (size_t k = 0; k < rlen; k++)
            out[(*n)++] = is_sep(r[k]) ? '\\' : r[k];
        return (long)len;
    }
    if (len >= 1 && in[0] == '\\') {
        /* Other NT object names (\Device\HarddiskVolume1\x): kept verbatim. */
        if (len + 1 > cap)
            return -1;
        memcpy(out, in, len * sizeof *in);
        *n = len;
        *root_keep = len;
        return (long)len;
    }
    return -1;
}

int sbx_winpath_is_absolute(const uint16_t *p, size_t len)
{
    return drive_at(p, len) || (len >= 1 && is_sep(p[0]) && (len >= 2 && is_sep(p[1]))) ||
           has_prefix(p, len, "\\??\\") || (len >= 1 && p[0] == '\\' && !drive_at(p, len) &&
                                            has_prefix(p, len, "\\Device\\"));
}

long sbx_winpath_normal(uint16_t *out, size_t cap, const uint16_t *in, size_t len)
{
    size_t n, keep;
    long rest = parse_root(out, cap, &n, &keep, in, len);
    if (rest < 0)
        return -1;
    if (append_clean(out, cap, &n, keep, in + rest, len - (size_t)rest) < 0)
        return -1;
    out[n] = 0;
    return (long)n;
}

long sbx_winpath_join(uint16_t *out, size_t cap, const uint16_t *base, size_t blen,
                      const uint16_t *rel, size_t rlen)
{
    if (rlen >= 2 && is_sep(rel[0]) && is_sep(rel[1]))
        return sbx_winpath_normal(out, cap, rel, rlen);        /* UNC or \\?\ */
    if (rlen >= 4 && has_prefix(rel, rlen, "\\??\\"))
        return sbx_winpath_normal(out, cap, rel, rlen);
    if (drive_at(rel, rlen))
        return sbx_winpath_normal(out, cap, rel, rlen);
    size_t n, keep;
    long rest = parse_root(out, cap, &n, &keep, base, blen);
    if (rest < 0)
        return -1;
    if (rlen >= 2 && is_letter(rel[0]) && rel[1] == ':') {
        /* D:x — relative to the current directory of drive D; we only know
         * the current directory itself, so another drive means its root. */
        if (!(n >= 3 && out[1] == ':' && out[0] == upper(rel[0]))) {
            out[0] = upper(rel[0]);
            out[1] = ':';
            out[2] = '\\';
            n = keep = 3;
            rest = (long)blen;
        }
        rel += 2;
        rlen -= 2;
    }
    if (rlen >= 1 && is_sep(rel[0]))
        rest = (long)blen;                                      /* rooted: base's root only */
    if (append_clean(out, cap, &n, keep, base + rest, blen - (size_t)rest) < 0 ||
        append_clean(out, cap, &n, keep, rel, rlen) < 0)
        return -1;
    out[n] = 0;
    return (long)n;
}

long sbx_utf16_to_utf8(char *out, size_t cap, const uint16_t *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t c = in[i];
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < len && in[i + 1] >= 0xDC00 && in[i + 1] <= 0xDFFF) {
            c = 0x10000 + ((c - 0xD800) << 10) + (in[i + 1] - 0xDC00);
            i++;
        }
        unsigned char b[4];
        size_t k;
        if (c < 0x80) {
            b[0] = (unsigned char)c;
            k = 1;
        } else if (c < 0x800) {
            b[0] = (unsigned char)(0xC0 | (c >> 6));
            b[1] = (unsigned char)(0x80 | (c & 0x3F));
            k = 2;
        } else if (c < 0x10000) {
            b[0] = (unsigned char)(0xE0 | (c >> 12));
            b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            b[2] = (unsigned char)(0x80 | (c & 0x3F));
            k = 3;
        } else {
            b[0] = (unsigned char)(0xF0 | (c >> 18));
            b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            b[3] = (unsigned char)(0x80 | (c & 0x3F));
            k = 4;
        }
        if (o + k + 1 > cap)
            return -1;
        memcpy(out + o, b, k);
        o += k;
    }
    if (o + 1 > cap)
        return -1;
    out[o] = 0;
    return (long)o;
}
