/* elfinterp.c — see elfinterp.h.  Reads only the ELF and program headers. */
#include "elfinterp.h"

#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

long sbx_elf_interp(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long result = 0;
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
        goto out;
    for (unsigned i = 0; i < eh.e_phnum && i < 256; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)i * sizeof ph)) !=
            (ssize_t)sizeof ph)
            break;
        if (ph.p_type != PT_INTERP)
            continue;
        if (ph.p_filesz == 0 || ph.p_filesz >= cap)
            break;
        ssize_t n = pread(fd, out, ph.p_filesz, (off_t)ph.p_offset);
        if (n != (ssize_t)ph.p_filesz)
            break;
        out[n] = '\0';
        result = (long)strlen(out);
        break;
    }
out:
    close(fd);
    return result;
}
