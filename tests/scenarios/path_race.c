/* path_race.c — another thread rewrites one byte of the path string while
 * the opens run, so the kernel copies "data.txt" (exists) or "dxta.txt"
 * (never exists) at whatever instant it reads the string.  A tracer that
 * reads the string at another instant names the wrong one: a read of
 * dxta.txt is a file that was never opened.  argv[1] = number of opens;
 * prints how many succeeded (and read a byte) and how many failed. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char path[] = "data.txt";
static atomic_int stop;

static void *flipper(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        ((volatile char *)path)[1] = 'x';
        for (volatile int i = 0; i < 50; i++) ;
        ((volatile char *)path)[1] = 'a';
        for (volatile int i = 0; i < 50; i++) ;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000, ok = 0, bad = 0;
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    for (int i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            char c;
            if (read(fd, &c, 1) == 1)
                ok++;
            close(fd);
        } else {
            bad++;
        }
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    printf("%d %d\n", ok, bad);
    return 0;
}
