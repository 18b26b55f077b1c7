/* glibc_internal.c — what glibc does inside itself (glibc only).
 *
 * glibc opens and reads files on its own behalf: locale data, gconv
 * modules, /etc/nsswitch.conf, /etc/passwd, /etc/localtime and zoneinfo.
 * Those calls go straight to internal function bodies (__open_nocancel,
 * __read_nocancel, __mmap ...) and never through the PLT, so symbol
 * interposition cannot see them.  Here the entry of each such body is
 * overwritten with an absolute jump to a replacement that makes the same
 * system call itself and reports it.  The replacement never calls the
 * original, so no instruction is relocated: the only requirement is that
 * the body is at least as long as the jump.
 *
 * Done once per image, from the shim's constructor, while the process has
 * a single thread.  A body that cannot be patched (another libc, a symbol
 * too short) is reported as a warning: the Result is then incomplete, never
 * silently short.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include "shim_linux.h"

int sbx_mmap_body_patched, sbx_open_body_patched;

#define KEEP_ERRNO_DO(stmt)                                                    \
    do {                                                                       \
        int saved_errno_ = errno;                                              \
        stmt;                                                                  \
        errno = saved_errno_;                                                  \
    } while (0)

static long ret_errno(long r)
{
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* ---- replacements (each is exactly the system call glibc would make) ------- */
static int body_open_nocancel(const char *file, int oflag, ...)
{
    mode_t mode = 0;
    if ((oflag & O_CREAT) || (oflag & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, oflag);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int ex = (oflag & O_CREAT) && !(oflag & O_EXCL) ? sbx_exists_at(AT_FDCWD, file) : 0;
    long r = ret_errno(sbx_sys(SYS_openat, AT_FDCWD, (long)file, oflag, mode, 0, 0));
    KEEP_ERRNO_DO(sbx_opened(AT_FDCWD, file, oflag, (int)r, ex));
    return (int)r;
}

static ssize_t body_read_nocancel(int fd, void *buf, size_t n)
{
    long r = ret_errno(sbx_sys(SYS_read, fd, (long)buf, (long)n, 0, 0, 0));
    if (r >= 0)
        KEEP_ERRNO_DO(sbx_fd_use(fd, SBX_READ));
    return r;
}

static ssize_t body_pread64_nocancel(int fd, void *buf, size_t n, off_t off)
{
    long r = ret_errno(sbx_sys(SYS_pread64, fd, (long)buf, (long)n, (long)off, 0, 0));
    if (r >= 0)
        KEEP_ERRNO_DO(sbx_fd_use(fd, SBX_READ));
    return r;
}

static ssize_t body_write_nocancel(int fd, const void *buf, size_t n)
{
    long r = ret_errno(sbx_sys(SYS_write, fd, (long)buf, (long)n, 0, 0, 0));
    if (r >= 0)
        KEEP_ERRNO_DO(sbx_fd_use(fd, SBX_WRITE));
    return r;
}

static int body_close_nocancel(int fd)
{
    KEEP_ERRNO_DO(sbx_fd_closing(fd));
    return (int)ret_errno(sbx_sys(SYS_close, fd, 0, 0, 0, 0, 0));
}

/* mmap is called by glibc's locale loader (and by malloc, with no file);
 * external callers reach it too, so the PLT hook then only passes through. */
static void *body_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (off & 4095) {               /* glibc's own check */
        errno = EINVAL;
        return MAP_FAILED;
    }
    long r = sbx_sys(SYS_mmap, (long)addr, (long)len, prot, flags, fd, (long)off);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return MAP_FAILED;
    }
    KEEP_ERRNO_DO(sbx_mapped((void *)r, prot, flags, fd));
    return (void *)r;
}

/* readdir() and scandir() list through glibc's own getdents64 */
static ssize_t body_getdents64(int fd, void *buf, size_t n)
{
    long r = ret_errno(sbx_sys(SYS_getdents64, fd, (long)buf, (long)n, 0, 0, 0));
    if (r >= 0)
        KEEP_ERRNO_DO(sbx_fd_use(fd, SBX_ENUM));
    return r;
}

/* fstatat64 is also what glibc's own stat() calls reach (NSS checks whether
 * /etc/nsswitch.conf changed); the PLT hooks of the stat family then report
 * the same probe twice, which the shim's probe cache absorbs. */
static int body_fstatat64(int dirfd, const char *path, void *buf, int flag)
{
    long r = ret_errno(sbx_sys(SYS_newfstatat, dirfd, (long)path, (long)buf, flag, 0, 0));
    if (path && path[0])
        KEEP_ERRNO_DO(sbx_path_at(dirfd, path, SBX_OP_PROBE, r == 0));
    return (int)r;
}

/* realpath() resolves links with glibc's own readlink */
static ssize_t body_readlinkat(int dirfd, const char *path, char *buf, size_t n)
{
    long r = ret_errno(sbx_sys(SYS_readlinkat, dirfd, (long)path, (long)buf, (long)n, 0, 0));
    KEEP_ERRNO_DO(sbx_path_at(dirfd, path, SBX_OP_READLINK, r >= 0));
    return r;
}

static ssize_t body_readlink(const char *path, char *buf, size_t n)
{
    return body_readlinkat(AT_FDCWD, path, buf, n);
}

/* ---- symbols looked up by handle ------------------------------------------------ */
/* dlsym(handle, name) on a handle of libc (ctypes.CDLL("libc.so.6").fopen,
 * a plugin loader) searches that library's own scope: it returns libc's
 * function, not the shim's hook, and calls through the pointer bypass the
 * shim.  The shim's dlsym gives such a caller the hook instead, when the
 * function found is exactly the one the hook wraps (the next definition
 * after the shim).  dlsym(RTLD_NEXT, ...) depends on who calls it: that
 * call jumps to glibc's dlsym directly (x86_64 stub below), so the return
 * address glibc looks at is still the caller's. */
#if defined(__x86_64__)
void *(*sbx_real_dlsym)(void *, const char *) __attribute__((visibility("hidden")));

__attribute__((visibility("hidden"))) void sbx_dlsym_init(void)
{
    if (!sbx_real_dlsym)
        *(void **)&sbx_real_dlsym = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!sbx_real_dlsym)
        *(void **)&sbx_real_dlsym = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
}

static int in_shim(const void *p)
{
    Dl_info self, other;
    return dladdr((void *)in_shim, &self) && dladdr(p, &other) &&
           self.dli_fbase == other.dli_fbase;
}

__attribute__((visibility("hidden"))) void *sbx_dlsym_by_handle(void *handle,
                                                                 const char *name)
{
    sbx_dlsym_init();
    if (!sbx_real_dlsym)
        return NULL;
    void *found = sbx_real_dlsym(handle, name);
    if (!found || handle == RTLD_DEFAULT || !name || !sbx_on())
        return found;
    int err_keep = errno;
    void *ours = sbx_real_dlsym(RTLD_DEFAULT, name);
    void *next = sbx_real_dlsym(RTLD_NEXT, name);
    errno = err_keep;
    return ours && ours != found && next == found && in_shim(ours) ? ours : found;
}

__asm__(".text\n"
        ".globl dlsym\n"
        ".type dlsym, @function\n"
        "dlsym:\n"
        "    cmpq $-1, %rdi\n"                  /* RTLD_NEXT */
        "    jne 2f\n"
        "    movq sbx_real_dlsym(%rip), %rax\n"
        "    testq %rax, %rax\n"
        "    je 1f\n"
        "    jmp *%rax\n"
        "1:  pushq %rdi\n"                       /* not resolved yet: do it, keep */
        "    pushq %rsi\n"                       /* the arguments and the stack */
        "    subq $8, %rsp\n"                    /* aligned, then jump as above */
        "    call sbx_dlsym_init\n"
        "    addq $8, %rsp\n"
        "    popq %rsi\n"
        "    popq %rdi\n"
        "    movq sbx_real_dlsym(%rip), %rax\n"
        "    testq %rax, %rax\n"
        "    je 3f\n"
        "    jmp *%rax\n"
        "2:  jmp sbx_dlsym_by_handle\n"
        "3:  xorl %eax, %eax\n"
        "    ret\n"
        ".size dlsym, .-dlsym\n");
#endif

/* ---- patching ---------------------------------------------------------------------*/
#define JUMP_LEN 13                 /* movabs $target, %r11; jmp *%r11 */

/* The size of the function at `target` named `name`, from the dynamic
 * symbol table of the object that holds it, found through its GNU hash
 * table: one chain walk.  dladdr1(RTLD_DL_SYMENT) answers the same but
 * scans every symbol of libc for each call, a tenth of a short program's
 * start-up for the ten bodies patched here.  0 when not found. */
struct sym_lookup {
    uintptr_t target;
    const char *name;
    size_t size;
};

static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

static int find_sym(struct dl_phdr_info *info, size_t len, void *arg)
{
    (void)len;
    struct sym_lookup *q = arg;
    const ElfW(Dyn) *dyn = NULL;
    int holds = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && q->target >= lo && q->target < lo + ph->p_memsz)
            holds = 1;
        else if (ph->p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
    }
    if (!holds)
        return 0;
    if (!dyn)
        return 1;
    const ElfW(Sym) *sym = NULL;
    const char *str = NULL;
    const uint32_t *gh = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        /* the loader relocates these in place where .dynamic is writable */
        uintptr_t v = dyn->d_un.d_ptr;
        if (v < info->dlpi_addr)
            v += info->dlpi_addr;
        if (dyn->d_tag == DT_SYMTAB)
            sym = (const ElfW(Sym) *)v;
        else if (dyn->d_tag == DT_STRTAB)
            str = (const char *)v;
        else if (dyn->d_tag == DT_GNU_HASH)
            gh = (const uint32_t *)v;
    }
    if (!sym || !str || !gh)
        return 1;
    uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_words = gh[2];
    const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)(gh + 4) + bloom_words);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t h = gnu_hash(q->name);
    if (!nbuckets)
        return 1;
    for (uint32_t i = buckets[h % nbuckets]; i >= symoffset; i++) {
        uint32_t h2 = chain[i - symoffset];
        if ((h | 1) == (h2 | 1) && !strcmp(str + sym[i].st_name, q->name) &&
            info->dlpi_addr + sym[i].st_value == q->target) {
            q->size = sym[i].st_size;
            break;
        }
        if (h2 & 1)
            break;
    }
    return 1;
}

static size_t symbol_size(void *target, const char *name)
{
    struct sym_lookup q = {(uintptr_t)target, name, 0};
    dl_iterate_phdr(find_sym, &q);
    return q.size;
}

static int patch(const char *name, const char *version, void *replacement)
{
#if defined(__x86_64__)
    void *target = version ? dlvsym(RTLD_NEXT, name, version) : dlsym(RTLD_NEXT, name);
    if (!target)
        return -1;
    if (symbol_size(target, name) < JUMP_LEN)
        return -1;
    uintptr_t page = (uintptr_t)target & ~(uintptr_t)4095;
    size_t span = ((uintptr_t)target + JUMP_LEN - page + 4095) & ~(size_t)4095;
    if (SBX_SYS3(SYS_mprotect, page, span, PROT_READ | PROT_WRITE | PROT_EXEC) < 0)
        return -1;
    unsigned char code[JUMP_LEN] = {0x49, 0xbb};       /* movabs imm64, %r11 */
    uint64_t to = (uint64_t)(uintptr_t)replacement;
    memcpy(code + 2, &to, 8);
    code[10] = 0x41;                                   /* jmp *%r11 */
    code[11] = 0xff;
    code[12] = 0xe3;
    memcpy(target, code, JUMP_LEN);
    SBX_SYS3(SYS_mprotect, page, span, PROT_READ | PROT_EXEC);
    return 0;
#else
    (void)name; (void)version; (void)replacement;
    return -1;
#endif
}

void sbx_glibc_internal_patch(void)
{
    static const struct {
        const char *name, *version;
        void *replacement;
    } bodies[] = {
        /* __open64_nocancel is the same body on x86_64 */
        {"__open_nocancel", "GLIBC_PRIVATE", (void *)body_open_nocancel},
        {"__read_nocancel", "GLIBC_PRIVATE", (void *)body_read_nocancel},
        {"__pread64_nocancel", "GLIBC_PRIVATE", (void *)body_pread64_nocancel},
        {"__write_nocancel", "GLIBC_PRIVATE", (void *)body_write_nocancel},
        {"__close_nocancel", "GLIBC_PRIVATE", (void *)body_close_nocancel},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        failed |= patch(bodies[i].name, bodies[i].version, bodies[i].replacement) < 0;
    /* opendir() and fopen(..."c") open through __open_nocancel: their PLT
     * hooks must then not report the same open a second time */
    sbx_open_body_patched = !failed;
    failed |= patch("getdents64", NULL, (void *)body_getdents64) < 0;
    failed |= patch("fstatat64", NULL, (void *)body_fstatat64) < 0;
    failed |= patch("readlink", NULL, (void *)body_readlink) < 0;
    failed |= patch("readlinkat", NULL, (void *)body_readlinkat) < 0;
    if (patch("mmap", NULL, (void *)body_mmap) == 0)
        sbx_mmap_body_patched = 1;
    else
        failed = 1;
    if (failed)
        sbx_warn("the C library of this program could not be instrumented: files it opens "
                 "on its own behalf (locale data, /etc/nsswitch.conf, time zones) may be "
                 "missing");
}
