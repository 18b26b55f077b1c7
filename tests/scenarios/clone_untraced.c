/* clone_untraced.c — children that ask not to be traced, for
 * tests/test_clone_untraced.py.  Usage: clone_untraced A B C D
 *
 * Each way of starting a task reads one file in the new task:
 *   A: a process from a raw clone(CLONE_UNTRACED | SIGCHLD);
 *   B: a process from a raw clone3 with CLONE_UNTRACED (where clone3 fails
 *      with ENOSYS, the program falls back to clone, as libc does);
 *   C: a thread from clone(CLONE_THREAD | CLONE_VM | ... | CLONE_UNTRACED);
 *   D: a thread from pthread_create (libc's clone3, or clone after ENOSYS).
 * Prints one line per way and exits with the number of reads that failed:
 * a tracer that lost a task would see the program succeed and miss a read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_UNTRACED
#define CLONE_UNTRACED 0x00800000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* clone3's argument (linux/sched.h, version 0: 64 bytes) */
struct clone3_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

/* Raw system calls only: a task started by a raw clone has no libc state
 * of its own. */
static int read_file(const char *path)
{
    char buf[64];
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    if (fd < 0)
        return -1;
    long n = syscall(SYS_read, fd, buf, sizeof buf);
    syscall(SYS_close, fd);
    return n > 0 ? 0 : -1;
}

static int reap(const char *how, long pid)
{
    int st;
    if (pid < 0) {
        printf("%s: cannot start: %s\n", how, strerror(errno));
        return 1;
    }
    if (waitpid((pid_t)pid, &st, __WALL) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
        printf("%s: the child's read failed\n", how);
        return 1;
    }
    printf("%s: read\n", how);
    return 0;
}

static int by_clone(const char *path)
{
    long pid = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        syscall(SYS_exit, read_file(path) ? 1 : 0);
    return reap("clone(CLONE_UNTRACED)", pid);
}

static int by_clone3(const char *path)
{
    struct clone3_args ca = {0};
    ca.flags = CLONE_UNTRACED;
    ca.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid < 0 && errno == ENOSYS) {
        printf("clone3: ENOSYS, falling back to clone\n");
        pid = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
    }
    if (pid == 0)
        syscall(SYS_exit, read_file(path) ? 1 : 0);
    return reap("clone3(CLONE_UNTRACED)", pid);
}

static volatile int thread_rc = -2;

static int thread_main(void *arg)
{
    __atomic_store_n(&thread_rc, read_file(arg), __ATOMIC_RELEASE);
    syscall(SYS_exit, 0);            /* this thread only */
    return 0;
}

static int by_raw_thread(const char *path)
{
    size_t size = 256 * 1024;
    char *stack = malloc(size);
    if (!stack)
        return 1;
    int fl = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
             CLONE_SYSVSEM | CLONE_UNTRACED;
    if (clone(thread_main, stack + size, fl, (void *)path) < 0) {
        printf("thread clone(CLONE_UNTRACED): cannot start: %s\n", strerror(errno));
        return 1;
    }
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 20000 && __atomic_load_n(&thread_rc, __ATOMIC_ACQUIRE) == -2; i++)
        nanosleep(&ms, NULL);
    int rc = __atomic_load_n(&thread_rc, __ATOMIC_ACQUIRE);
    printf("thread clone(CLONE_UNTRACED): %s\n", rc == 0 ? "read" : "the read failed");
    return rc == 0 ? 0 : 1;          /* the stack is left: the thread may still be leaving */
}

static void *pthread_main(void *arg) { return (void *)(intptr_t)read_file(arg); }

static int by_pthread(const char *path)
{
    pthread_t th;
    void *rc = (void *)1;
    if (pthread_create(&th, NULL, pthread_main, (void *)path) != 0 ||
        pthread_join(th, &rc) != 0 || rc) {
        printf("pthread_create: the read failed\n");
        return 1;
    }
    printf("pthread_create: read\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s A B C D\n", argv[0]);
        return 100;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    int failed = by_clone(argv[1]);
    failed += by_clone3(argv[2]);
    failed += by_raw_thread(argv[3]);
    failed += by_pthread(argv[4]);
    return failed;
}
