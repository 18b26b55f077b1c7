/* winpolicy.h — the Policy of sandbox_py/policy.py on the Windows side.
 *
 * sandbox_py/policy.py is the rule; this file mirrors Policy.allows() for
 * the hook DLL, which must decide inside a hooked call whether to refuse
 * it.  Python resolves the policy (cwd, system baseline, normal form) and
 * hands it to sbx-trace as text; the launcher packs it into a blob in a
 * section that every process of the tree can map only for reading
 * (csrc/win/inject.c), and the DLL matches against that blob.
 *
 * The text (UTF-8, one item per line, written by detours.py or given with
 * sbx-trace --policy):
 *     sandbox_py.winpolicy/1
 *     on_violation deny            (or report)
 *     read C:\src                  (a tree: the path and everything below)
 *     write C:\build
 *     execute C:\Windows
 *     search C:\Tools              (a directory whose entries may be probed:
 *                                   a $PATH directory, policy.Policy.search)
 *
 * The rule, as policy.py states it: a write needs a write tree; an exec an
 * execute tree; a read, probe or listing any tree; a probe of a directory
 * on the way to a tree (an ancestor of one) is allowed too, and so is a
 * probe of a name directly in a search directory.  Names compare
 * one UTF-16 unit at a time through `fold` (the DLL passes
 * RtlUpcaseUnicodeChar; policy.windows_fold is the same mapping), and a
 * tree C:\a holds C:\a and C:\a\..., never C:\ab.
 *
 * Portable C99 on uint16_t units, like winpath.c.
 */
#ifndef SBX_WIN_WINPOLICY_H
#define SBX_WIN_WINPOLICY_H

#include <stddef.h>
#include <stdint.h>

#define SBX_POLICY_MAGIC 0x50584253u     /* "SBXP" */
#define SBX_POLICY_DENY 1u
#define SBX_POLICY_REPORT 2u

/* What an access needs (the Result categories, plus exec). */
enum sbx_policy_need {
    SBX_NEED_READ = 1, SBX_NEED_PROBE = 2, SBX_NEED_ENUM = 3, SBX_NEED_WRITE = 4,
    SBX_NEED_EXEC = 5,
};

/* The blob: this header, then `count` entries, each a uint16_t kind ('R',
 * 'W', 'X', 'S'), a uint16_t length in units, and that many UTF-16 units. */
struct sbx_policy_hdr {
    uint32_t magic;
    uint32_t mode;      /* SBX_POLICY_DENY or SBX_POLICY_REPORT */
    uint32_t count;
    uint32_t bytes;     /* the whole blob, header included */
};

/* Parse the text form into a malloc'd blob (*out, *outlen bytes).  Returns
 * 0, or -1 with a sentence in err (a line it does not understand, a path
 * that is not absolute in the normal form). */
int sbx_policy_parse(const char *text, size_t len, void **out, size_t *outlen, char *err,
                     size_t errlen);

/* Add one tree ('R', 'W', 'X' or 'S'; UTF-8) to a blob made by sbx_policy_parse
 * or sbx_policy_new (realloc'd).  Returns 0 or -1 (err says why). */
int sbx_policy_add(void **blob, size_t *len, char kind, const char *path, char *err,
                   size_t errlen);
/* An empty blob with that mode. */
void *sbx_policy_new(uint32_t mode, size_t *len);

/* 1 when the blob is well formed (bytes in range, entries inside it). */
int sbx_policy_valid(const void *blob, size_t len);

/* The rule: 1 when the access is inside the policy. */
int sbx_policy_allows(const void *blob, enum sbx_policy_need need, const uint16_t *path,
                      size_t len, uint16_t (*fold)(uint16_t));

/* The name of a need, as Denied.category spells it ("read", "write", ...). */
const char *sbx_policy_need_name(enum sbx_policy_need need);

#endif
