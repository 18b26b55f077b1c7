/* shim.h — the preload shim's internal API (shim_core.c), used by the hook
 * bodies in shim_hooks.c.
 *
 * Everything here is async-signal-safe and lock-free: it runs inside
 * signal handlers, vfork children, half-initialised processes and between
 * fork and exec of threaded programs.  It never calls malloc and never
 * calls a libc function that a hook intercepts: system calls go through
 * sbx_sys() directly.
 */
#ifndef SBX_SHIM_H
#define SBX_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "sbx_log.h"
#include "../../csrc/core/access.h"      /* the access model: SBX_OP_*, SBX_READ ... */
#include "../../csrc/linux/syscalls.h"   /* open(2) flags in the model's terms */

#define SBX_EXPORT __attribute__((visibility("default")))
#define SBX_PATH_MAX 4096

/* Raw system call (no errno, returns -errno). */
long sbx_sys(long n, long a, long b, long c, long d, long e, long f);
#define SBX_SYS0(n) sbx_sys(n, 0, 0, 0, 0, 0, 0)
#define SBX_SYS1(n, a) sbx_sys(n, (long)(a), 0, 0, 0, 0, 0)
#define SBX_SYS2(n, a, b) sbx_sys(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define SBX_SYS3(n, a, b, c) sbx_sys(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define SBX_SYS4(n, a, b, c, d) sbx_sys(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* True when this process reports to a run (the log is mapped). */
int sbx_on(void);

/* Resolve `path` against dirfd (AT_FDCWD: the cwd) into an absolute, clean
 * name.  Returns its length or -1 (then nothing should be reported). */
long sbx_resolve(int dirfd, const char *path, char *out, size_t cap);

/* Report a path-taking call: `op` says what it does to the name (access.h
 * decides what that records), `ok` whether it succeeded. */
void sbx_path_at(int dirfd, const char *path, enum sbx_op op, int ok);
#define sbx_path(path, op, ok) sbx_path_at(-100 /* AT_FDCWD */, path, op, ok)
/* Record categories the access model already decided (sbx_access_open). */
void sbx_path_cats_at(int dirfd, const char *path, unsigned cats);
/* The same for a call that takes two names (rename, link). */
void sbx_path2_at(int dirfd1, const char *path1, int dirfd2, const char *path2,
                  enum sbx_op op, int ok);

/* Existence of a name before an O_CREAT open:
 * 1 exists, 0 absent, -1 unknown. */
int sbx_exists_at(int dirfd, const char *path);

/* An open(2)-like call returned `fd` (or -1). */
void sbx_opened(int dirfd, const char *path, int oflags, int fd, int existed);

/* The first read / write / listing through fd is reported, later ones are
 * dropped here, in the traced process (one report per fd and kind). */
void sbx_fd_use(int fd, unsigned kind);   /* SBX_READ, SBX_WRITE, SBX_ENUM */
/* fd is about to be closed (or replaced by dup2): settle what it did. */
void sbx_fd_closing(int fd);
void sbx_fd_dup(int oldfd, int newfd);
void sbx_fd_close_range(unsigned lo, unsigned hi);
/* opendir/fdopendir: fd lists a directory. */
void sbx_fd_mark_dir(int fd);
/* mmap returned r for fd: its content was read (and written, shared+writable). */
void sbx_mapped(void *r, int prot, int flags, int fd);

/* glibc_internal.c: route glibc's own opens, reads and maps (locale, NSS,
 * time zones) through the shim; a warning when that is not possible. */
void sbx_glibc_internal_patch(void);
extern int sbx_mmap_body_patched, sbx_open_body_patched;

/* exec family.  sbx_exec_env() returns envp, or a copy (in `buf`) with the
 * shim's variables put back when the program scrubbed them. */
char *const *sbx_exec_env(char *const envp[], char **vec, size_t nvec,
                          char *store, size_t nstore);
void sbx_exec_before(int dirfd, const char *path, char *const argv[], int spawned_pid,
                     int handoff);
/* A statically linked target the shim cannot enter: the launcher to run
 * instead (the ptrace backend adopts it), with the target's resolved path
 * in `target`; NULL to exec normally. */
const char *sbx_handoff_target(int dirfd, const char *path, char *target, size_t cap);
/* The launcher's environment: env without LD_PRELOAD, plus the target. */
char *const *sbx_handoff_env(char *const env[], const char *target, char **vec, size_t nvec,
                             char *store, size_t nstore);
void sbx_exec_failed(int dirfd, const char *path, int err);

/* fork() returned in the parent / child. */
void sbx_forked_parent(int child);
void sbx_forked_child(void);

/* Settle every fd still open (exit paths). */
void sbx_flush_fds(void);

void sbx_warn(const char *text);
/* The same, naming this process: "process <pid> <what>". */
void sbx_warn_process(const char *what);

/* Start-up of a freshly exec'd image (constructor): its exec record and
 * the libraries the loader mapped; later dlopen()s go to sbx_loaded. */
void sbx_start(int argc, char **argv);
/* `exe` (the running image) is sandbox_py's own launcher: its accesses
 * are machinery, not the command's. */
int sbx_is_launcher(const char *exe);
void sbx_loaded(const char *name);
/* Every object loaded now (after a dlopen: the library and its dependencies;
 * the ones already reported are absorbed by the shim's cache). */
void sbx_loaded_all(void);

#endif
