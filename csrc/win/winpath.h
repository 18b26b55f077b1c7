/* winpath.h — the one normal form of Windows paths (docs/json-schema.md).
 *
 * `C:\dir\file`: drive letter upper case, backslashes, no `\\?\` or `\??\`
 * prefix, no `.`/`..` components, no repeated or trailing separator (the
 * drive root keeps its `C:\`).  UNC paths become `\\server\share\...`.
 * Device names (`\??\pipe\x`, `\\.\CONIN$`) become `\\.\name` and other NT
 * object names (`\Device\...`) are kept as they are: recorded, never
 * mistaken for files.  Letter case of the rest is kept as the program wrote
 * it (the file system is case-insensitive; no lookup is made).
 *
 * Portable C99 on UTF-16 code units (uint16_t, because wchar_t is 32-bit on
 * Linux), so it is unit-tested natively and compiled into both the hook DLL
 * and the launcher.
 */
#ifndef SBX_WIN_WINPATH_H
#define SBX_WIN_WINPATH_H

#include <stddef.h>
#include <stdint.h>

/* Normalise an absolute path in any Win32 or NT form.  Writes at most cap
 * units (NUL-terminated) and returns the length, or -1 when `in` is not
 * absolute or the result does not fit. */
long sbx_winpath_normal(uint16_t *out, size_t cap, const uint16_t *in, size_t len);

/* Resolve `rel` against the absolute directory `base` (as NT does for a
 * RootDirectory handle and Win32 for the current directory) and normalise.
 * `rel` may itself be absolute, rooted (`\x`: base's root) or
 * drive-relative (`D:x`).  Returns the length or -1. */
long sbx_winpath_join(uint16_t *out, size_t cap, const uint16_t *base, size_t blen,
                      const uint16_t *rel, size_t rlen);

/* 1 when `p` is absolute in some Win32 or NT form. */
int sbx_winpath_is_absolute(const uint16_t *p, size_t len);

/* UTF-16 to UTF-8.  A lone surrogate (possible in NTFS names) is written as
 * its 3-byte generalised UTF-8 form so nothing is lost.  Returns bytes
 * written (NUL-terminated) or -1 when it does not fit. */
long sbx_utf16_to_utf8(char *out, size_t cap, const uint16_t *in, size_t len);

#endif
