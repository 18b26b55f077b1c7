/* seatbelt_apply.c — the interpose launcher puts itself in the run's
 * seatbelt sandbox before it execs the command (sandbox_py/_backends/
 * seatbelt.py writes the profile; docs/enforcement-macos-windows.md).
 *
 * Applied here, in our own (never SIP-protected) launcher, rather than by
 * exec'ing /usr/bin/sandbox-exec: dyld strips DYLD_INSERT_LIBRARIES from a
 * SIP-protected program and so from everything it starts, which would end
 * the tracing.  A sandbox is inherited across exec and fork, so the
 * command and all its children are held to it.
 *
 * The profile comes in a file named by SBX_SEATBELT_PROFILE.  It is only
 * trusted when it is a regular file of ours that nobody else may write
 * (0600-like, not a symlink): a profile someone else can rewrite is no
 * policy.  Any failure stops the launch: the command never runs without
 * the sandbox it was asked to have.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seatbelt_apply.h"

/* libsystem_sandbox (part of libSystem); not in the public headers beyond
 * the deprecated sandbox_init.  flags 0: `profile` is SBPL text, as
 * sandbox-exec -p passes it. */
int sandbox_init_with_parameters(const char *profile, uint64_t flags,
                                 const char *const parameters[], char **errorbuf);
void sandbox_free_error(char *errorbuf);

#define PROFILE_MAX (16u << 20)

static int refuse(const char *path, const char *why, int err)
{
    fprintf(stderr, "sandbox_py: cannot apply the seatbelt profile %s: %s%s%s\n", path, why,
            err ? ": " : "", err ? strerror(err) : "");
    return -1;
}

int sbx_seatbelt_apply_from_env(void)
{
    const char *path = getenv("SBX_SEATBELT_PROFILE");
    if (!path || !*path)
        return 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return refuse(path, "open", errno);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) || st.st_size <= 0 || (uint64_t)st.st_size > PROFILE_MAX) {
        close(fd);
        return refuse(path, "not a private regular file of this user (mode 0600)", 0);
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t have = 0;
    while (text && have < (size_t)st.st_size) {
        ssize_t n = read(fd, text + have, (size_t)st.st_size - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    if (!text || have != (size_t)st.st_size) {
        free(text);
        return refuse(path, "read", errno);
    }
    text[have] = 0;
    unsetenv("SBX_SEATBELT_PROFILE");
    const char *const no_parameters[] = {NULL};
    char *error = NULL;
    if (sandbox_init_with_parameters(text, 0, no_parameters, &error) != 0) {
        fprintf(stderr, "sandbox_py: the seatbelt profile %s was refused: %s\n", path,
                error ? error : "(no reason given)");
        if (error)
            sandbox_free_error(error);
        free(text);
        return -1;
    }
    free(text);
    return 0;
}
