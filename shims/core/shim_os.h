/* shim_os.h — what the portable shim core (shim_core.c, hooks_posix.c)
 * asks of the operating system.  One implementation per system:
 * shims/linux/shim_os_linux.c (raw system calls, /proc, auxv, ELF) and
 * shims/macos/shim_os_darwin.c (libSystem, F_GETPATH, dyld).
 *
 * Every function here must be callable from a signal handler, a vfork
 * child and before the shim's constructor ran, and must never enter one
 * of the shim's own hooks (on Linux that means raw system calls; on macOS
 * calls made from the interposing image are never rebound by dyld, so
 * libSystem's functions are safe to call directly).
 */
#ifndef SBX_SHIM_OS_H
#define SBX_SHIM_OS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

/* The loader variable that injects the shim, and how its list separates
 * entries (the shim puts itself back when a program scrubs it). */
#if defined(__APPLE__)
#define SBX_OS_PRELOAD_VAR "DYLD_INSERT_LIBRARIES"
#else
#define SBX_OS_PRELOAD_VAR "LD_PRELOAD"
#endif

int sbx_os_getpid(void);
/* The calling thread's id (the kernel's, not pthread_self). */
long sbx_os_gettid(void);
int sbx_os_getppid(void);

/* open(2) without hooks: an fd, or -errno. */
int sbx_os_open(const char *path, int flags);
void sbx_os_close(int fd);
long sbx_os_pread(int fd, void *buf, size_t n, long off);
int sbx_os_fstat(int fd, struct stat *sb);          /* 0 or -errno */
long sbx_os_lseek_cur(int fd);                      /* offset, or -errno */
long sbx_os_getfl(int fd);                          /* fcntl(F_GETFL), or -errno */
/* faccessat(dirfd, path, mode, 0): 0, or -errno */
long sbx_os_faccessat(int dirfd, const char *path, int mode);
/* The cwd into buf: its length without the NUL, or <= 0. */
long sbx_os_getcwd(char *buf, size_t cap);

/* Map the run's log (MAP_SHARED, read-write): NULL on failure.  The fd
 * is closed before returning. */
void *sbx_os_map_log(const char *path, size_t len);
void sbx_os_unmap(void *p, size_t len);

/* The kernel's name of the file behind fd: its length, or -1.  A file
 * without a name (O_TMPFILE, deleted, memfd) gives -1, never the kernel's
 * placeholder ("/tmp/#123 (deleted)"). */
long sbx_os_fd_name(int fd, char *out, size_t cap);

/* The name of directory `dirfd` (AT_FDCWD: the cwd) when the kernel will
 * not give it: nested deeper than a page of name (ENAMETOOLONG).  Found
 * by walking up through ".."; its length, or -1. */
long sbx_os_long_dir_name(int dirfd, char *out, size_t cap);

/* The directory `path` names, its symlinks followed, as the kernel
 * resolves it now (for ".." after a symlinked directory): its length, or
 * -1 (absent, not resolvable). */
long sbx_os_real_dir(const char *path, char *out, size_t cap);

/* The process's root directory in the host's terms when it is not "/"
 * (chroot): its length, 0 when it is "/", -1 when unknown. */
long sbx_os_root(char *out, size_t cap);

/* 1 when this process is no longer in the mount namespace the run started
 * in (its names are then its own), else 0. */
int sbx_os_other_mount_ns(void);

/* open(2) flags in the access model's terms (SBX_OPEN_*). */
unsigned sbx_os_open_intent(int oflags);

/* The first bytes of an executable (`n` of them, not a #! script):
 * 1 when it is a binary the shim cannot enter (Linux: an ELF without
 * PT_INTERP, or of another class or machine: a 32-bit program); fd is open
 * on it for further reads. */
int sbx_os_is_static(int fd, const unsigned char *head, long n);

/* This image at start-up: the name it was executed as (made absolute by
 * the caller) into `fn` ("" if unknown) and the file the kernel runs into
 * `exe`. */
void sbx_os_exe_names(char *fn, char *exe, size_t cap);

/* Every object the loader has mapped (not the main program, not the shim
 * itself `shim`): report(name) each; *interp gets the program's
 * interpreter (Linux: PT_INTERP) or stays NULL. */
void sbx_os_each_loaded(const char *shim, void (*report)(const char *name),
                        const char **interp);

/* stdio: 1 when `f` holds written data not yet flushed to its fd. */
int sbx_os_stream_unflushed(FILE *f);

/* exec relative to a directory fd or with flags (Linux execveat); only
 * called when dirfd is not AT_FDCWD or flags are set. */
int sbx_os_execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                    int flags);

/* Opens reported from inside another hook's real call.  On macOS libc's
 * own bodies open through symbols the dylib interposes (libsystem_c's
 * fopen and opendir through open$NOCANCEL ...), so a hook that reports
 * the open its real call made (fopen, opendir, mkstemp) may find it
 * reported already (and an open wrapper may reach an interposed stub:
 * open$NOCANCEL, __open_nocancel): the open family marks each fd it
 * reports with a sequence number; a hook takes sbx_os_open_seq() before
 * its real call and reports only an fd not marked since.  Linux: glibc's internal
 * opens never reach a hook (the patched ones: sbx_open_body_patched). */
#if defined(__APPLE__)
unsigned long sbx_os_open_seq(void);
void sbx_os_open_mark(int fd);
int sbx_os_open_marked_since(int fd, unsigned long seq);
#else
static inline unsigned long sbx_os_open_seq(void) { return 0; }
static inline void sbx_os_open_mark(int fd) { (void)fd; }
static inline int sbx_os_open_marked_since(int fd, unsigned long seq)
{
    (void)fd;
    (void)seq;
    return 0;
}
#endif

#endif
