/* shim.h — the shim's internal API (shim_core.c), used by the hook bodies
 * (shims/core/hooks_posix.c and each system's own hooks).
 *
 * Everything here is async-signal-safe and lock-free: it runs inside
 * signal handlers, vfork children, half-initialised processes and between
 * fork and exec of threaded programs.  It never calls malloc and never
 * calls a libc function that a hook intercepts: what it needs from the
 * system goes through shim_os.h.
 */
#ifndef SBX_SHIM_H
#define SBX_SHIM_H

#include <fcntl.h>      /* AT_FDCWD: -100 on Linux, -2 on macOS */
#include <stddef.h>
#include <stdint.h>

#include "sbx_log.h"
#include "shim_os.h"
#include "../../csrc/core/access.h"      /* the access model: SBX_OP_*, SBX_READ ... */

#define SBX_EXPORT __attribute__((visibility("default")))
#define SBX_PATH_MAX 4096
/* Names of files in directories nested deeper than the kernel names (a
 * slow path, with buffers of this size on the stack) */
#define SBX_LONG_PATH_MAX 16384

/* True when this process reports to a run (the log is mapped). */
int sbx_on(void);

/* Resolve `path` against dirfd (AT_FDCWD: the cwd; an absolute name: the
 * process root) into an absolute, clean name, ".." taken physically as the
 * kernel does.  Returns its length, -1 (then nothing should be reported) or
 * SBX_RESOLVE_TOO_LONG (the access happened; its name does not fit). */
#define SBX_RESOLVE_TOO_LONG (-2)
long sbx_resolve(int dirfd, const char *path, char *out, size_t cap);
/* chroot() made `host_root` (the host's name of it) the process root. */
void sbx_root_changed(const char *host_root);

/* Report a path-taking call: `op` says what it does to the name (access.h
 * decides what that records), `ok` whether it succeeded. */
void sbx_path_at(int dirfd, const char *path, enum sbx_op op, int ok);
#define sbx_path(path, op, ok) sbx_path_at(AT_FDCWD, path, op, ok)
/* Record categories the access model already decided (sbx_access_open). */
void sbx_path_cats_at(int dirfd, const char *path, unsigned cats);
/* What the posix_spawn'ed `child` did inside libc before its exec
 * (posix_spawnp's search), reported by the parent once it knows the pid. */
void sbx_child_path(int child, const char *path, enum sbx_op op, int ok);
void sbx_child_path_cats(int child, const char *path, unsigned cats);
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

/* Linux (glibc_internal.c): glibc's own open and mmap bodies report by
 * themselves once patched, so the outer hooks must not report again.
 * Always 0 on macOS. */
extern int sbx_mmap_body_patched, sbx_open_body_patched;

/* exec family.  sbx_exec_env() returns envp, or a copy (in `buf`) with the
 * shim's variables put back when the program scrubbed them. */
/* envp names another sandbox_py run's log (a nested run): 1, with a warning;
 * the exec then leaves this run like a breakaway, its envp untouched. */
int sbx_nested_run(char *const envp[]);
char *const *sbx_exec_env(char *const envp[], char **vec, size_t nvec,
                          char *store, size_t nstore);
void sbx_exec_before(int dirfd, const char *path, char *const argv[], int spawned_pid,
                     int handoff);
/* A statically linked target the shim cannot enter: the launcher to run
 * instead (the ptrace backend adopts it), with the target's resolved path
 * in `target`; NULL to exec normally. */
const char *sbx_handoff_target(int dirfd, const char *path, char *target, size_t cap);
/* Bytes sbx_handoff_env needs beyond the target's name for the loader's
 * variables it renames (see shim_core.c). */
size_t sbx_loader_env_bytes(char *const env[]);
/* The launcher's environment: env without LD_PRELOAD, plus the target. */
char *const *sbx_handoff_env(char *const env[], const char *target, char **vec, size_t nvec,
                             char *store, size_t nstore);
void sbx_exec_failed(int dirfd, const char *path, int err);
/* The run's breakaway declaration matches this exec (csrc/core/breakaway.h:
 * names against the basename of the file as called or of argv[0]; paths
 * against the file as called, made absolute).  Such a program runs with
 * sbx_breakaway_env(): the caller's environment without the shim
 * (LD_PRELOAD, LD_AUDIT entries) and without any SBX_ variable, so neither
 * it nor its children are traced; sbx_breakaway_left() tells the reader
 * (before an exec of this process, or with the pid a spawn returned). */
int sbx_breakaway(int dirfd, const char *path, char *const argv[]);
void sbx_breakaway_left(int dirfd, const char *path, char *const argv[], int spawned_pid);
char *const *sbx_breakaway_env(char *const env[], char **vec, size_t nvec, char *store,
                               size_t nstore);

/* fork() returned in the parent / child. */
void sbx_forked_parent(int child);
void sbx_forked_child(void);
/* A thread of this process enters (1) or leaves (0) libc's posix_spawn. */
void sbx_spawning(int on);

/* Settle every fd still open (exit paths). */
void sbx_flush_fds(void);
/* The process exits with `status` (the exit paths that know it). */
void sbx_exiting(int status);

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
