/* shim_os_darwin.c — shim_os.h on macOS.
 *
 * dyld never rebinds calls made from the interposing image, so libSystem's
 * own functions are called directly: they never enter our hooks.  Each
 * keeps errno, as the Linux raw system calls do (the core reports between
 * a hook's real call and its return).
 */
#include "../core/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <libproc.h>
#include <pthread.h>
#include <mach-o/dyld.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <unistd.h>

/* Darwin has no glibc internals to patch: the outer hooks report. */
int sbx_mmap_body_patched, sbx_open_body_patched;

#define KEEP(stmt) do { int e_ = errno; stmt; errno = e_; } while (0)
#define NEG(r) ((r) < 0 ? -errno : (r))

int sbx_os_getpid(void) { return getpid(); }
long sbx_os_gettid(void)
{
    uint64_t t = 0;
    pthread_threadid_np(NULL, &t);
    return (long)t;
}
int sbx_os_getppid(void) { return getppid(); }

int sbx_os_open(const char *path, int flags)
{
    int r;
    KEEP(r = open(path, flags); r = NEG(r));
    return r;
}
void sbx_os_close(int fd) { KEEP(close(fd)); }
long sbx_os_pread(int fd, void *buf, size_t n, long off)
{
    long r;
    KEEP(r = (long)pread(fd, buf, n, (off_t)off); r = NEG(r));
    return r;
}
int sbx_os_fstat(int fd, struct stat *sb)
{
    int r;
    KEEP(r = fstat(fd, sb); r = NEG(r));
    return r;
}
long sbx_os_lseek_cur(int fd)
{
    long r;
    KEEP(r = (long)lseek(fd, 0, SEEK_CUR); r = NEG(r));
    return r;
}
long sbx_os_getfl(int fd)
{
    long r;
    KEEP(r = fcntl(fd, F_GETFL); r = NEG(r));
    return r;
}
long sbx_os_faccessat(int dirfd, const char *path, int mode)
{
    long r;
    KEEP(r = faccessat(dirfd, path, mode, 0); r = NEG(r));
    return r;
}
/* Not getcwd(3): libsystem_c implements it with calls into
 * libsystem_kernel (open, fcntl) that cross an image boundary and so reach
 * our own hooks, which resolve paths with this very function.  The same
 * steps made from this image are never rebound.  O_EVTONLY needs no read
 * permission on the directory, as the cwd itself does not. */
long sbx_os_getcwd(char *buf, size_t cap)
{
    char tmp[MAXPATHLEN];
    long r = -1;
    KEEP({
        int fd = open(".", O_EVTONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (fcntl(fd, F_GETPATH, tmp) != -1 && strlen(tmp) < cap) {
                r = (long)strlen(tmp);
                memcpy(buf, tmp, (size_t)r + 1);
            }
            close(fd);
        }
    });
    return r;
}

void *sbx_os_map_log(const char *path, size_t len)
{
    void *m = NULL;
    KEEP({
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            close(fd);            /* the mapping outlives the fd */
            if (m == MAP_FAILED)
                m = NULL;
        }
    });
    return m;
}
void sbx_os_unmap(void *p, size_t len) { KEEP(munmap(p, len)); }

/* F_GETPATH: the kernel's name of the vnode (macOS has no /proc). */
long sbx_os_fd_name(int fd, char *out, size_t cap)
{
    char buf[MAXPATHLEN];
    long r = -1;
    KEEP(if (fcntl(fd, F_GETPATH, buf) != -1 && strlen(buf) < cap) {
        r = (long)strlen(buf);
        memcpy(out, buf, (size_t)r + 1);
    });
    return r;
}

unsigned sbx_os_open_intent(int oflags)
{
    unsigned acc = (unsigned)oflags & O_ACCMODE, in = 0;
    if (acc != O_WRONLY)
        in |= SBX_OPEN_READ;
    if (acc != O_RDONLY)
        in |= SBX_OPEN_WRITE;
    if (oflags & O_TRUNC)
        in |= SBX_OPEN_TRUNC;
#ifdef O_EVTONLY
    if (oflags & O_EVTONLY)        /* a handle for event notification only */
        in |= SBX_OPEN_NODATA;
#endif
    return in;
}

/* Every Mach-O program is started by dyld: none is out of reach the way a
 * static ELF is.  (Programs dyld strips DYLD_* from are found by the
 * missing hello record instead, see docs/macos.md.) */
int sbx_os_is_static(int fd, const unsigned char *head, long n)
{
    (void)fd;
    (void)head;
    (void)n;
    return 0;
}

void sbx_os_exe_names(char *fn, char *exe, size_t cap)
{
    uint32_t size = (uint32_t)cap;
    KEEP({
        if (_NSGetExecutablePath(fn, &size) != 0)
            fn[0] = '\0';
        int n = proc_pidpath(getpid(), exe, (uint32_t)cap);
        exe[n > 0 && (size_t)n < cap ? n : 0] = '\0';
    });
}

void sbx_os_each_loaded(const char *shim, void (*report)(const char *name),
                        const char **interp)
{
    /* LC_LOAD_DYLINKER of every program */
    *interp = "/usr/lib/dyld";
    uint32_t n = _dyld_image_count();
    for (uint32_t i = 1; i < n; i++) {       /* image 0 is the program */
        const char *name = _dyld_get_image_name(i);
        struct stat sb;
        int on_disk;
        if (!name || !name[0] || (shim && strcmp(name, shim) == 0))
            continue;
        /* System libraries live in the dyld shared cache, not at their
         * names (macOS 11+): no file was read under that name. */
        KEEP(on_disk = stat(name, &sb) == 0);
        if (on_disk)
            report(name);
    }
}

/* BSD stdio: bytes written but not flushed sit between _bf._base and _p
 * while the stream is in write mode. */
#ifndef __SWR
#define __SWR 0x0008
#endif
int sbx_os_stream_unflushed(FILE *f)
{
    return (f->_flags & __SWR) && f->_bf._base && f->_p > f->_bf._base;
}

int sbx_os_execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                    int flags)
{
    (void)dirfd;
    (void)path;
    (void)argv;
    (void)envp;
    (void)flags;
    errno = ENOSYS;            /* no execveat on macOS: never reached */
    return -1;
}

long sbx_os_long_dir_name(int dirfd, char *out, size_t cap)
{
    /* macOS names a directory through F_GETPATH up to MAXPATHLEN only; a
     * deeper one is lost (the shim warns that an access lost its name) */
    (void)dirfd;
    (void)out;
    (void)cap;
    return -1;
}

long sbx_os_real_dir(const char *path, char *out, size_t cap)
{
    /* calls from the interposing image are not rebound: libSystem's own */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[MAXPATHLEN];
    long n = -1;
    if (fcntl(fd, F_GETPATH, buf) == 0) {
        size_t l = strlen(buf);
        if (l + 1 <= cap && buf[0] == '/') {
            memcpy(out, buf, l + 1);
            n = (long)l;
        }
    }
    close(fd);
    return n;
}

long sbx_os_root(char *out, size_t cap)
{
    /* macOS has no /proc to ask: a chroot() in this image is learnt by the
     * chroot hook (sbx_root_changed); one inherited from a parent is not */
    (void)out;
    (void)cap;
    return 0;
}

int sbx_os_other_mount_ns(void)
{
    return 0;   /* no mount namespaces on macOS */
}

/* Opens reported from inside another hook's real call (shim_os.h): a
 * global sequence and, per fd, the sequence and thread of its last
 * reported open.  No thread-local storage: dyld allocates a thread's TLV
 * block on first use, and the hooks never allocate.  A mark newer than
 * the caller's sequence, made by the caller's thread on the fd its real
 * call returned, is that call's own open. */
#define SBX_MARKED_FDS 4096
static unsigned long g_open_seq;
static struct {
    unsigned long seq;
    uintptr_t thread;
} g_open_marks[SBX_MARKED_FDS];

unsigned long sbx_os_open_seq(void)
{
    return __atomic_load_n(&g_open_seq, __ATOMIC_ACQUIRE);
}
void sbx_os_open_mark(int fd)
{
    if (fd < 0 || fd >= SBX_MARKED_FDS)
        return;
    __atomic_store_n(&g_open_marks[fd].seq, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_open_marks[fd].thread, (uintptr_t)pthread_self(), __ATOMIC_RELEASE);
    __atomic_store_n(&g_open_marks[fd].seq, __atomic_add_fetch(&g_open_seq, 1, __ATOMIC_ACQ_REL),
                     __ATOMIC_RELEASE);
}
int sbx_os_open_marked_since(int fd, unsigned long seq)
{
    return fd >= 0 && fd < SBX_MARKED_FDS &&
           __atomic_load_n(&g_open_marks[fd].seq, __ATOMIC_ACQUIRE) > seq &&
           __atomic_load_n(&g_open_marks[fd].thread, __ATOMIC_ACQUIRE) ==
               (uintptr_t)pthread_self();
}
