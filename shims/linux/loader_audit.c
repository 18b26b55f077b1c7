/* loader_audit.c — what the dynamic loader does before the shim runs
 * (glibc only, loaded through LD_AUDIT next to the LD_PRELOAD shim).
 *
 * The loader searches for every library a program needs (LD_LIBRARY_PATH,
 * RUNPATH, glibc-hwcaps and tls subdirectories, /etc/ld.so.cache, the
 * default directories) before any code of the program or of the shim runs.
 * The failed candidates are probes a build cache needs: a library that
 * appears in an earlier directory changes what the program runs.  glibc's
 * rtld-audit interface tells each candidate (la_objsearch) as the loader is
 * about to try it; this module checks the name at that moment and records
 * it, and the directory the loader then checks once to prune its search.
 *
 * It is a separate object because audit modules live in their own link-map
 * namespace (with their own copy of libc): it shares the record writer
 * (shim_core.c) with the shim, not the hooks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim_linux.h"

static int g_cache_seen, g_caps_warned;

/* rtld's fixed names (glibc elf/dl-load.c, elf/rtld.c) */
#define LD_SO_CACHE   "/etc/ld.so.cache"
#define LD_SO_PRELOAD "/etc/ld.so.preload"

static int exists(const char *path)
{
    return SBX_SYS4(SYS_faccessat, AT_FDCWD, path, F_OK, 0) == 0;
}

static int g_off;                   /* the image is sandbox_py's launcher */

SBX_EXPORT unsigned la_version(unsigned version)
{
    char exe[SBX_PATH_MAX];
    long n = SBX_SYS4(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    g_off = !sbx_on() || sbx_is_launcher(exe);
    /* Called as the loader starts, right before it looks for
     * /etc/ld.so.preload (which it reads when it is there). */
    if (!g_off)
        sbx_path_cats_at(AT_FDCWD, LD_SO_PRELOAD, exists(LD_SO_PRELOAD) ? SBX_READ : SBX_PROBE);
    return version < LAV_CURRENT ? version : LAV_CURRENT;
}

/* io_uring requests never pass through libc: a program that loads liburing
 * (which makes its system calls itself) may read and write files this
 * backend never hears of.  Said when the library is mapped, so that the
 * Result is incomplete rather than silently short. */
SBX_EXPORT unsigned la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
    (void)lmid;
    (void)cookie;
    const char *name = map && map->l_name ? map->l_name : "";
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (!g_off && strncmp(base, "liburing.so", 11) == 0)
        sbx_warn_process("loaded liburing: file accesses it submits through io_uring "
                         "are not seen by the preload backend");
    return 0;
}

/* The capability subdirectories the loader tries inside every directory of
 * LD_LIBRARY_PATH, RUNPATH and its defaults before the directory itself
 * (glibc-hwcaps/x86-64-v3, tls, x86_64 ...).  The loader calls la_objsearch
 * in one of two ways, and the module must tell them apart:
 *   - once per directory, with the bare directory (the search lists of the
 *     start-up, whose capability subdirectories the loader already walked
 *     unaudited while loading this module): the subdirectories it tries
 *     without an audit module are modelled here;
 *   - once per candidate, the capability subdirectory included, then the
 *     bare directory last (a dlopen'd library's RUNPATH): each call is one
 *     name the loader tries, nothing is to be added (adding the
 *     subdirectories again invented names such as
 *     .../glibc-hwcaps/x86-64-v2/glibc-hwcaps/x86-64-v2/libX.so).
 * sandbox_py asks this machine's loader for its list once (LD_DEBUG=libs)
 * and passes it in SBX_PRELOAD_CAPDIRS, so the candidates are the ones this
 * loader tries, in its order. */
#define MAX_CAPS 32
static char g_caps_buf[SBX_PATH_MAX];
static const char *g_caps[MAX_CAPS];
static int g_ncaps = -1;

/* The loader's memory of which (directory, subdirectory) it found absent:
 * it checks each once and skips it for later libraries. */
#define DIR_MEMO 256
static uint64_t g_absent[DIR_MEMO], g_present[DIR_MEMO];

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h ? h : 1;
}

static int memo_has(const uint64_t *m, uint64_t h)
{
    for (size_t i = h % DIR_MEMO, n = 0; n < DIR_MEMO && m[i]; i = (i + 1) % DIR_MEMO, n++)
        if (m[i] == h)
            return 1;
    return 0;
}

static void memo_put(uint64_t *m, uint64_t h)
{
    for (size_t i = h % DIR_MEMO, n = 0; n < DIR_MEMO; i = (i + 1) % DIR_MEMO, n++)
        if (!m[i] || m[i] == h) {
            m[i] = h;
            return;
        }
}

static void load_caps(void)
{
    g_ncaps = 0;
    const char *v = getenv("SBX_PRELOAD_CAPDIRS");
    if (!v || strlen(v) >= sizeof g_caps_buf)
        return;
    strcpy(g_caps_buf, v);
    for (char *p = g_caps_buf; *p && g_ncaps < MAX_CAPS;) {
        g_caps[g_ncaps++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
}

/* A directory the loader checks after a miss in it: probed once. */
static int dir_exists_once(const char *dir)
{
    uint64_t h = hash_str(dir);
    if (memo_has(g_absent, h))
        return 0;
    if (memo_has(g_present, h))
        return 1;
    int ok = exists(dir);
    memo_put(ok ? g_present : g_absent, h);
    if (!ok)
        sbx_path_cats_at(AT_FDCWD, dir, SBX_PROBE);
    return ok;
}

/* The loader tries dir/name: absent, a probe, and the directory checked. */
static int try_candidate(const char *dir, const char *name)
{
    char cand[SBX_PATH_MAX];
    size_t dl = strlen(dir), nl = strlen(name);
    if (dl + 1 + nl + 1 > sizeof cand)
        return 0;
    uint64_t h = hash_str(dir);
    if (memo_has(g_absent, h))
        return 0;                   /* known absent: the loader skips it */
    memcpy(cand, dir, dl);
    cand[dl] = '/';
    memcpy(cand + dl + 1, name, nl + 1);
    if (exists(cand))
        return 1;                   /* it loads this one; reported as loaded */
    sbx_path_cats_at(AT_FDCWD, cand, SBX_PROBE);
    dir_exists_once(dir);
    return 0;
}

/* The length of `dir` without a trailing capability subdirectory
 * ("/glibc-hwcaps/x86-64-v2", "/tls/x86_64" ...), dl when it has none. */
static size_t cap_base(const char *dir, size_t dl)
{
    size_t best = dl;
    for (int i = 0; i < g_ncaps; i++) {
        size_t cl = strlen(g_caps[i]);
        if (cl && cl + 1 < dl && dir[dl - cl - 1] == '/' &&
            memcmp(dir + dl - cl, g_caps[i], cl) == 0 && dl - cl - 1 < best)
            best = dl - cl - 1;
    }
    return best;
}

/* The (base directory, library name) of the per-candidate series under way. */
static uint64_t g_series;

static uint64_t hash_pair(const char *dir, size_t dl, const char *name)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < dl; i++)
        h = (h ^ (unsigned char)dir[i]) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211ULL;
    return h ? h : 1;
}

SBX_EXPORT char *la_objsearch(const char *name, uintptr_t *cookie, unsigned int flag)
{
    (void)cookie;
    if (flag == LA_SER_ORIG || !name || name[0] != '/' || g_off)
        return (char *)name;
    if (flag == LA_SER_CONFIG) {
        if (!g_cache_seen) {
            /* the candidate came out of the loader's cache file */
            g_cache_seen = 1;
            sbx_path_cats_at(AT_FDCWD, LD_SO_CACHE, SBX_READ);
        }
        if (!exists(name))
            sbx_path_cats_at(AT_FDCWD, name, SBX_PROBE);
        return (char *)name;
    }
    const char *slash = strrchr(name, '/');
    if (!slash || slash == name || (size_t)(slash - name) >= SBX_PATH_MAX)
        return (char *)name;
    char dir[SBX_PATH_MAX], sub[SBX_PATH_MAX];
    size_t dl = (size_t)(slash - name);
    memcpy(dir, name, dl);
    dir[dl] = '\0';
    if (g_ncaps < 0)
        load_caps();
    if (g_ncaps == 0 && !g_caps_warned) {
        g_caps_warned = 1;
        sbx_warn("the dynamic loader's capability subdirectories (glibc-hwcaps, tls) "
                 "are not known here: its search in them is not seen");
    }
    /* One candidate of a per-candidate search: in a capability
     * subdirectory, or the bare directory that ends such a series. */
    size_t base_len = cap_base(dir, dl);
    uint64_t series = hash_pair(dir, base_len, slash + 1);
    if (base_len < dl || series == g_series) {
        g_series = base_len < dl ? series : 0;
        try_candidate(dir, slash + 1);
        return (char *)name;
    }
    for (int i = 0; i < g_ncaps; i++) {
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, g_caps[i]) >= sizeof sub)
            continue;
        if (try_candidate(sub, slash + 1))
            return (char *)name;    /* found in a subdirectory */
    }
    try_candidate(dir, slash + 1);
    /* a candidate that exists is opened and loaded: the shim reports the
     * objects that were loaded (dl_iterate_phdr) as reads */
    return (char *)name;
}
