/* interpose_launcher.c — the first program of an interpose run
 * (sandbox_py/_sbx_interpose_exec).  Python starts it in the command's
 * place (Popen's executable=), with the command's own argv: it execs
 * argv[0] through $PATH.
 *
 * Why it exists: it is our own binary, so dyld always loads the dylib into
 * it (it is never SIP-protected), and the dylib's exec hook records the
 * command's exec before the kernel runs it.  If the command is then
 * stripped of DYLD_* (SIP, hardened runtime), the reader knows a process
 * was exec'd that never said hello, and names it.  The dylib recognises
 * this image (SBX_PRELOAD_HANDOFF names it) and reports nothing of its own
 * but the exec and the $PATH search, which are the command's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "seatbelt_apply.h"

int main(int argc, char **argv)
{
    if (argc < 1 || !argv[0]) {
        fprintf(stderr, "sandbox_py interpose launcher: no program given\n");
        return 127;
    }
    /* Popen's executable= (a program other than argv[0]) comes this way */
    const char *exe = getenv("SBX_INTERPOSE_EXE");
    char program[4096];
    snprintf(program, sizeof program, "%s", exe && *exe ? exe : argv[0]);
    unsetenv("SBX_INTERPOSE_EXE");
    /* a policy that cannot be applied must not run unenforced (126: the
     * code a shell gives a command it found but could not run) */
    if (sbx_seatbelt_apply_from_env() < 0)
        return 126;
    execvp(program, argv);
    /* the parent learns the failure from this exit status and message */
    fprintf(stderr, "sandbox_py: cannot run %s: %s\n", program, strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
