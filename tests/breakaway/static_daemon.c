/* A statically linked daemon for tests/test_breakaway.py: forks, the parent
 * returns, the child starts a session of its own, writes argv[1] (a file of
 * its own) and lives argv[2] seconds.  Static: the preload shim cannot enter
 * it, so without breakaway it would be handed to ptrace. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    pid_t c = fork();
    if (c < 0)
        return 1;
    if (c > 0)
        return 0;
    setsid();
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        dprintf(fd, "%d\n", (int)getpid());
        close(fd);
    }
    sleep((unsigned)atoi(argv[2]));
    return 0;
}
