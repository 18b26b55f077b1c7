/* landlock.h — the Linux enforcer of a Policy (sandbox_py/policy.py):
 * Landlock, unprivileged, inherited by every process the restricted one
 * starts.  The ruleset is built by the process that starts the run (it
 * opens the policy's trees, so a child can neither see nor change the
 * rules), and only restricting oneself happens in the child before exec:
 * two system calls, safe between fork and exec (docs/enforcement.md).
 */
#ifndef SBX_LANDLOCK_H
#define SBX_LANDLOCK_H

/* What a tree may be used for (a rule's `kind`): read files and list
 * directories; create, write, rename and remove; execute; list only. */
#define SBX_LL_READ    1u
#define SBX_LL_WRITE   2u
#define SBX_LL_EXECUTE 4u
#define SBX_LL_LIST    8u   /* list directories only (not read their files) */

/* The newest Landlock ABI this kernel offers and this build knows (1..7),
 * or 0 with errno set (ENOSYS: not built in; EOPNOTSUPP: disabled at boot). */
int sbx_landlock_abi(void);

/* A ruleset handling every file-system right of `abi` (and, from ABI 6,
 * scoping abstract unix sockets and signals to the run): an fd, or -1. */
int sbx_landlock_ruleset(int abi);

/* Allow `kind` (SBX_LL_*) below `path` (the path itself when it is not a
 * directory).  0, or -1 with errno (ENOENT: the path does not exist). */
int sbx_landlock_allow(int ruleset, int abi, const char *path, unsigned kind);

/* Restrict the calling thread (and so everything it execs or forks) to
 * `ruleset`.  Sets no_new_privs only when the kernel requires it (a process
 * without CAP_SYS_ADMIN).  Async-signal-safe.  0, or -1 with errno. */
int sbx_landlock_restrict(int ruleset);

#endif
