/* preload_cases.c — programs for the corner cases the preload shim must
 * report as the kernel-side backends do (tests/test_preload_fidelity.py).
 * One mode per argv[1]; built dynamically and statically. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_all(int fd)
{
    char buf[4096];
    long n, total = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    return n < 0 ? -1 : (int)total;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *mode = argv[1];
    if (strcmp(mode, "popen-after-clearenv") == 0) {
        /* the environment is scrubbed, then a shell reads a file */
        clearenv();
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "cat '%s'", argv[2]);
        FILE *f = popen(cmd, "r");
        if (!f)
            return 3;
        char buf[256];
        size_t n = fread(buf, 1, sizeof buf, f);
        int st = pclose(f);
        printf("%zu %d\n", n, st);
        return st == 0 && n > 0 ? 0 : 4;
    }
    if (strcmp(mode, "popen-write-after-clearenv") == 0) {
        /* the same, the other way: the shell writes what we give it */
        clearenv();
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "cat > '%s'", argv[2]);
        FILE *f = popen(cmd, "we");
        if (!f || fputs("piped\n", f) < 0)
            return 3;
        int st = pclose(f);
        return st == 0 ? 0 : 4;
    }
    if (strcmp(mode, "deep-cwd") == 0 && argc == 5) {
        /* chdir and fchdir, by turns, DEPTH times into NAME below BASE,
         * then a relative open of f.txt */
        if (chdir(argv[2]) < 0)
            return 3;
        int depth = atoi(argv[4]);
        for (int i = 0; i < depth; i++) {
            if (i % 2) {
                if (chdir(argv[3]) < 0)
                    return 4;
            } else {
                int d = open(argv[3], O_RDONLY | O_DIRECTORY);
                if (d < 0 || fchdir(d) < 0)
                    return 5;
                close(d);
            }
        }
        int fd = open("f.txt", O_RDONLY);
        if (fd < 0 || read_all(fd) <= 0)
            return 6;
        close(fd);
        return 0;
    }
    if (strcmp(mode, "renamed-dirfd") == 0 && argc == 4) {
        /* a dirfd to DIR/dirA; dirA renamed to dirB (here, or by a `mv`
         * child when argv[3] is "mv"); then openat(dirfd, "f2") */
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/dirA", argv[2]);
        snprintf(b, sizeof b, "%s/dirB", argv[2]);
        int d = open(a, O_RDONLY | O_DIRECTORY);
        if (d < 0)
            return 3;
        int f1 = openat(d, "f1", O_RDONLY);      /* the name is used once before */
        if (f1 < 0 || read_all(f1) <= 0)
            return 4;
        close(f1);
        if (strcmp(argv[3], "mv") == 0) {
            char cmd[9000];
            snprintf(cmd, sizeof cmd, "mv '%s' '%s'", a, b);
            if (system(cmd) != 0)
                return 5;
        } else if (rename(a, b) < 0) {
            return 5;
        }
        int f2 = openat(d, "f2", O_RDONLY);
        if (f2 < 0 || read_all(f2) <= 0)
            return 6;
        close(f2);
        return 0;
    }
    if (strcmp(mode, "dlopen-missing") == 0) {
        void *h = dlopen(argv[2], RTLD_NOW);
        return h ? 3 : 0;
    }
    return 2;
}
