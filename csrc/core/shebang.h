/* shebang.h — the interpreter a `#!` script names, as the kernel reads it:
 * the first word after "#!" (blanks skipped), up to a blank or the end of
 * the line.  The one parser for every mechanism that must find it itself
 * (the ptrace tracer through csrc/linux/exec_reads.c, the preload and
 * interpose shim before an exec); eBPF gets the kernel's own answer.
 * Header-only and libc-free: the shim and the loader audit module, which
 * link no C library, include it as they are. */
#ifndef SBX_SHEBANG_H
#define SBX_SHEBANG_H

#include <stddef.h>

/* The first `n` bytes of a file (the kernel reads 256): the length of the
 * interpreter copied into out (NUL-terminated), or 0 when the file is not
 * a script or the name does not fit in cap. */
static inline size_t sbx_shebang_interp(const char *buf, size_t n, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    if (n < 2 || buf[0] != '#' || buf[1] != '!')
        return 0;
    size_t i = 2, j;
    while (i < n && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    for (j = i; j < n && buf[j] != ' ' && buf[j] != '\t' && buf[j] != '\n' && buf[j]; j++)
        ;
    if (j == i || j - i >= cap)
        return 0;
    for (size_t k = i; k < j; k++)
        out[k - i] = buf[k];
    out[j - i] = '\0';
    return j - i;
}

#endif
