/* shim_os_linux.c — shim_os.h on Linux: raw system calls (never a hook,
 * never half-initialised libc state), /proc/self/fd, auxv's AT_EXECFN,
 * dl_iterate_phdr and the ELF program header. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shim_linux.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../csrc/linux/syscalls.h"   /* open(2) flags in the model's terms */

long sbx_sys(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
#else
#error "sbx_sys: add this architecture's system call sequence"
#endif
}

int sbx_os_getpid(void) { return (int)SBX_SYS0(SYS_getpid); }
long sbx_os_gettid(void) { return (long)SBX_SYS0(SYS_gettid); }
int sbx_os_getppid(void) { return (int)SBX_SYS0(SYS_getppid); }
int sbx_os_open(const char *path, int flags)
{
    return (int)SBX_SYS4(SYS_openat, AT_FDCWD, path, flags, 0);
}
void sbx_os_close(int fd) { SBX_SYS1(SYS_close, fd); }
long sbx_os_pread(int fd, void *buf, size_t n, long off)
{
    return SBX_SYS4(SYS_pread64, fd, buf, n, off);
}
int sbx_os_fstat(int fd, struct stat *sb) { return (int)SBX_SYS2(SYS_fstat, fd, sb); }
long sbx_os_lseek_cur(int fd) { return SBX_SYS3(SYS_lseek, fd, 0, SEEK_CUR); }
long sbx_os_getfl(int fd) { return SBX_SYS2(SYS_fcntl, fd, F_GETFL); }
long sbx_os_faccessat(int dirfd, const char *path, int mode)
{
    return SBX_SYS4(SYS_faccessat, dirfd, path, mode, 0);
}
long sbx_os_getcwd(char *buf, size_t cap)
{
    long n = SBX_SYS2(SYS_getcwd, buf, cap);
    return n > 0 ? n - 1 : n;          /* the kernel counts the NUL */
}

void *sbx_os_map_log(const char *path, size_t len)
{
    int fd = sbx_os_open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    long m = sbx_sys(SYS_mmap, 0, (long)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    sbx_os_close(fd);   /* the mapping outlives the fd */
    return m < 0 && m > -4096 ? NULL : (void *)m;
}
void sbx_os_unmap(void *p, size_t len) { SBX_SYS2(SYS_munmap, p, len); }

long sbx_os_fd_name(int fd, char *out, size_t cap)
{
    char link[32] = "/proc/self/fd/";
    char digits[12];
    int nd = 0;
    unsigned v = (unsigned)fd;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t k = strlen(link);
    while (nd)
        link[k++] = digits[--nd];
    link[k] = '\0';
    long n = SBX_SYS4(SYS_readlinkat, AT_FDCWD, link, out, cap - 1);
    if (n <= 0 || n >= (long)cap - 1)
        return -1;          /* nothing, or cut short: no name is better than a wrong one */
    out[n] = '\0';
    if (n > 10 && memcmp(out + n - 10, " (deleted)", 10) == 0)
        return -1;          /* the file has no name any more */
    return n;
}

long sbx_os_real_dir(const char *path, char *out, size_t cap)
{
    int fd = (int)SBX_SYS4(SYS_openat, AT_FDCWD, path, O_PATH | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    long n = sbx_os_fd_name(fd, out, cap);
    sbx_os_close(fd);
    return n > 0 && out[0] == '/' ? n : -1;
}

long sbx_os_root(char *out, size_t cap)
{
    long n = SBX_SYS4(SYS_readlinkat, AT_FDCWD, "/proc/self/root", out, cap - 1);
    if (n <= 0 || n >= (long)cap - 1 || out[0] != '/')
        return -1;
    out[n] = '\0';
    return n == 1 ? 0 : n;
}

int sbx_os_other_mount_ns(void)
{
    /* the run's namespace: passed by sandbox_py (SBX_PRELOAD_MNTNS) */
    const char *want = getenv("SBX_PRELOAD_MNTNS");
    struct stat sb;
    if (!want || !*want || SBX_SYS4(SYS_newfstatat, AT_FDCWD, "/proc/self/ns/mnt", &sb, 0) < 0)
        return 0;
    unsigned long long ino = 0;
    for (const char *c = want; *c >= '0' && *c <= '9'; c++)
        ino = ino * 10 + (unsigned)(*c - '0');
    return ino != (unsigned long long)sb.st_ino;
}

unsigned sbx_os_open_intent(int oflags) { return sbx_linux_open_intent((unsigned)oflags); }

/* A static ELF (no PT_INTERP) cannot load an LD_PRELOAD library. */
#if defined(__x86_64__)
#define SBX_ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define SBX_ELF_MACHINE EM_AARCH64
#endif

int sbx_os_is_static(int fd, const unsigned char *buf, long n)
{
    if (n < SELFMAG + 1 || memcmp(buf, ELFMAG, SELFMAG) != 0)
        return 0;
    Elf64_Ehdr eh;
    /* An ELF of another class or machine (a gcc -m32 program, x32) cannot
     * load this shim either: ptrace takes it and names its 32-bit system
     * calls, instead of the loader printing "wrong ELF class" into the
     * program's stderr and the process going unobserved. */
    if (buf[EI_CLASS] != ELFCLASS64 || n < (long)sizeof eh)
        return 1;
    memcpy(&eh, buf, sizeof eh);
    if (eh.e_machine != SBX_ELF_MACHINE)
        return 1;
    Elf64_Phdr ph[64];
    size_t cnt = eh.e_phnum < 64 ? eh.e_phnum : 64;
    int is_static = 0;
    if (eh.e_phentsize == sizeof(Elf64_Phdr) &&
        SBX_SYS4(SYS_pread64, fd, ph, cnt * sizeof *ph, eh.e_phoff) ==
            (long)(cnt * sizeof *ph)) {
        is_static = 1;
        for (size_t i = 0; i < cnt; i++)
            if (ph[i].p_type == PT_INTERP)
                is_static = 0;
    }
    return is_static;
}

void sbx_os_exe_names(char *fn, char *exe, size_t cap)
{
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    size_t l = execfn ? strlen(execfn) : 0;
    if (execfn && l < cap)
        memcpy(fn, execfn, l + 1);
    else
        fn[0] = '\0';
    long n = SBX_SYS4(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", exe, cap - 1);
    exe[n > 0 ? n : 0] = '\0';
}

struct each_ctx {
    const char *shim;
    void (*report)(const char *);
    const char **interp;
};

static int each_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct each_ctx *c = arg;
    if (!info->dlpi_name || !info->dlpi_name[0]) {
        /* the main program: its PT_INTERP names the ELF interpreter */
        for (int i = 0; i < info->dlpi_phnum; i++)
            if (info->dlpi_phdr[i].p_type == PT_INTERP)
                *c->interp = (const char *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        return 0;
    }
    if (strncmp(info->dlpi_name, "linux-vdso", 10) == 0 ||
        strncmp(info->dlpi_name, "linux-gate", 10) == 0 ||
        (c->shim && strcmp(info->dlpi_name, c->shim) == 0))
        return 0;
    c->report(info->dlpi_name);
    return 0;
}

void sbx_os_each_loaded(const char *shim, void (*report)(const char *name),
                        const char **interp)
{
    struct each_ctx c = {shim, report, interp};
    dl_iterate_phdr(each_object, &c);
}

/* glibc's FILE: written bytes not yet flushed sit between these pointers. */
int sbx_os_stream_unflushed(FILE *f)
{
    return f->_IO_write_ptr > f->_IO_write_base;
}

/* The kernel gives no name longer than a page (getcwd, /proc/self/fd:
 * ENAMETOOLONG), yet a process can sit, and open files, in a directory
 * nested deeper than that (chdir/fchdir step by step).  The name is then
 * found the way getcwd() did before the kernel knew it: up through "..",
 * looking in each parent for the entry of the directory below (by inode
 * number; by stat where the inode numbers differ: a mount point). */
struct sbx_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static long name_in_parent(int parent, const struct stat *child, char *name, size_t cap)
{
    for (int by_stat = 0; by_stat < 2; by_stat++) {
        if (SBX_SYS3(SYS_lseek, parent, 0, SEEK_SET) < 0)
            return -1;
        char buf[2048];
        long n;
        while ((n = SBX_SYS3(SYS_getdents64, parent, buf, sizeof buf)) > 0) {
            for (long at = 0; at < n;) {
                struct sbx_dirent64 *d = (struct sbx_dirent64 *)(buf + at);
                at += d->d_reclen;
                const char *nm = d->d_name;
                if ((nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0'))))
                    continue;
                struct stat sb;
                if (by_stat ? SBX_SYS4(SYS_newfstatat, parent, nm, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
                                  sb.st_dev != child->st_dev || sb.st_ino != child->st_ino
                            : d->d_ino != child->st_ino)
                    continue;
                size_t l = strlen(nm);
                if (l + 1 > cap)
                    return -1;
                memcpy(name, nm, l + 1);
                return (long)l;
            }
        }
    }
    return -1;
}

long sbx_os_long_dir_name(int dirfd, char *out, size_t cap)
{
    if (cap < 2)
        return -1;
    struct stat root, cur_st;
    if (SBX_SYS4(SYS_newfstatat, AT_FDCWD, "/", &root, 0) < 0)
        return -1;
    int cur = (int)SBX_SYS4(SYS_openat, dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (cur < 0 || sbx_os_fstat(cur, &cur_st) < 0) {
        if (cur >= 0)
            sbx_os_close(cur);
        return -1;
    }
    size_t pos = cap - 1;
    out[pos] = '\0';
    long result = -1;
    for (int depth = 0; depth < 65536; depth++) {
        if (cur_st.st_dev == root.st_dev && cur_st.st_ino == root.st_ino) {
            result = 0;
            break;
        }
        int parent = (int)SBX_SYS4(SYS_openat, cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        struct stat par_st;
        if (parent < 0 || sbx_os_fstat(parent, &par_st) < 0 ||
            (par_st.st_dev == cur_st.st_dev && par_st.st_ino == cur_st.st_ino)) {
            if (parent >= 0)
                sbx_os_close(parent);
            break;          /* a root that is not ours: no name from here */
        }
        char name[256];
        long l = name_in_parent(parent, &cur_st, name, sizeof name);
        sbx_os_close(cur);
        cur = parent;
        cur_st = par_st;
        if (l < 0 || (size_t)l + 1 > pos)
            break;
        pos -= (size_t)l;
        memcpy(out + pos, name, (size_t)l);
        out[--pos] = '/';
    }
    sbx_os_close(cur);
    if (result < 0)
        return -1;
    if (pos == cap - 1)
        out[--pos] = '/';
    size_t len = cap - 1 - pos;
    memmove(out, out + pos, len + 1);
    return (long)len;
}
