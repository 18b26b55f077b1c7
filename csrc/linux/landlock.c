/* landlock.c — see landlock.h.  Raw system calls: glibc has no wrappers,
 * and the uapi header of the build machine may be older than the kernel
 * the run meets, so the rights of newer ABIs are spelled out here. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

/* The file-system rights, by the ABI that introduced them. */
#define LL_EXECUTE      (1ULL << 0)
#define LL_WRITE_FILE   (1ULL << 1)
#define LL_READ_FILE    (1ULL << 2)
#define LL_READ_DIR     (1ULL << 3)
#define LL_REMOVE_DIR   (1ULL << 4)
#define LL_REMOVE_FILE  (1ULL << 5)
#define LL_MAKE_CHAR    (1ULL << 6)
#define LL_MAKE_DIR     (1ULL << 7)
#define LL_MAKE_REG     (1ULL << 8)
#define LL_MAKE_SOCK    (1ULL << 9)
#define LL_MAKE_FIFO    (1ULL << 10)
#define LL_MAKE_BLOCK   (1ULL << 11)
#define LL_MAKE_SYM     (1ULL << 12)
#define LL_REFER        (1ULL << 13)   /* ABI 2: link/rename across directories */
#define LL_TRUNCATE     (1ULL << 14)   /* ABI 3 */
#define LL_IOCTL_DEV    (1ULL << 15)   /* ABI 5 */
/* ABI 6: what a restricted process may reach outside its domain */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL               (1ULL << 1)
#define LL_RULE_PATH_BENEATH 1
#define LL_CREATE_RULESET_VERSION (1U << 0)

/* The newest ABI whose rights this file knows (7 added only audit logging). */
#define LL_KNOWN_ABI 7

struct ll_ruleset_attr {          /* struct landlock_ruleset_attr, ABI 6 */
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath {          /* struct landlock_path_beneath_attr */
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

static uint64_t fs_rights(int abi)
{
    uint64_t r = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_READ_DIR |
                 LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_CHAR | LL_MAKE_DIR |
                 LL_MAKE_REG | LL_MAKE_SOCK | LL_MAKE_FIFO | LL_MAKE_BLOCK |
                 LL_MAKE_SYM;
    if (abi >= 2)
        r |= LL_REFER;
    if (abi >= 3)
        r |= LL_TRUNCATE;
    if (abi >= 5)
        r |= LL_IOCTL_DEV;
    return r;
}

int sbx_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (v <= 0)
        return 0;
    return v > LL_KNOWN_ABI ? LL_KNOWN_ABI : (int)v;
}

int sbx_landlock_ruleset(int abi)
{
    struct ll_ruleset_attr attr = {fs_rights(abi), 0, 0};
    if (abi >= 6)
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
    /* The size tells an older kernel which fields we mean; a newer one
     * takes the shorter struct as it is. */
    size_t size = abi >= 6 ? sizeof attr : abi >= 4 ? 2 * sizeof(uint64_t) : sizeof(uint64_t);
    return (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
}

int sbx_landlock_allow(int ruleset, int abi, const char *path, unsigned kind)
{
    uint64_t all = fs_rights(abi), want = 0;
    if (kind & SBX_LL_READ)
        want |= LL_READ_FILE | LL_READ_DIR;
    if (kind & SBX_LL_WRITE)
        want |= all & ~(LL_EXECUTE | LL_READ_FILE | LL_READ_DIR);
    if (kind & SBX_LL_EXECUTE)
        want |= LL_EXECUTE;
    if (kind & SBX_LL_LIST)
        want |= LL_READ_DIR;
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    /* A rule on a file may carry only the rights that act on a file. */
    if (!S_ISDIR(st.st_mode))
        want &= LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV;
    struct ll_path_beneath rule = {want & all, fd};
    long r = rule.allowed_access
                 ? syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0)
                 : 0;
    int e = errno;
    close(fd);
    errno = e;
    return r < 0 ? -1 : 0;
}

int sbx_landlock_restrict(int ruleset)
{
    /* A process that may not raise its privileges at exec needs no
     * CAP_SYS_ADMIN to restrict itself; root keeps set-uid semantics. */
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) == 0)
        return 0;
    if (errno != EPERM)
        return -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_landlock_restrict_self, ruleset, 0);
}
