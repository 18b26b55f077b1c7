/* exec_reads.h — the one place that accounts what an exec reads (the
 * contract's "an executed binary, its interpreter (#! line, ELF interpreter
 * and its resolved target)").  Every Linux backend calls it with what its
 * mechanism saw of the exec; one that must find a script's interpreter
 * itself asks sbx_exec_script_interp() (the #! parser is csrc/core/shebang.h,
 * which the shim shares). */
#ifndef SBX_EXEC_READS_H
#define SBX_EXEC_READS_H

#include <stdint.h>

#include "pathset.h"
#include "result.h"

/* called: the program's name as exec'd, made absolute and clean (a symlink
 *         such as /usr/bin/cc), or NULL;
 * exe:    the file the kernel executed (symlinks resolved), or NULL;
 * script_interp: the #! interpreter as the script wrote it, made absolute,
 *         or NULL.
 * Records them as reads, plus the ELF interpreter the kernel mapped for
 * `exe` and that interpreter's resolved target.  Returns 0, or -1 when
 * memory ran out. */
int sbx_exec_reads(sbx_pathset *ps, const char *called, const char *exe,
                   const char *script_interp);
/* The same, recorded as process `pid`'s reads (sbx_result_record): call it
 * right after sbx_result_add_exec(), so that they are the new image's. */
int sbx_exec_reads_record(struct sbx_result *res, int64_t pid, const char *called,
                          const char *exe, const char *script_interp);

/* The interpreter named by the #! line of the file at `path` (shebang.h),
 * into out: its length, or 0 when it is not a script. */
size_t sbx_exec_script_interp(const char *path, char *out, size_t cap);

#endif
