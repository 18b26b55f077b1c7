/* elfinterp.h — the ELF program interpreter (PT_INTERP) of an executable.
 *
 * The kernel maps the dynamic loader itself, without an open() the tracer
 * could see, so the loader is reported as read by asking the executable
 * which one it names. */
#ifndef SBX_ELFINTERP_H
#define SBX_ELFINTERP_H

#include <stddef.h>

/* Write the PT_INTERP path of the ELF file at `path` into out.  Returns its
 * length, 0 when the file has none (static binary, script, not ELF), or -1
 * when it cannot be read. */
long sbx_elf_interp(const char *path, char *out, size_t cap);

#endif
