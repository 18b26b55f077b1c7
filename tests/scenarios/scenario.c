/* scenario.c — one program, many file-access scenarios (argv[1] picks one).
 *
 * The tests build it twice, dynamically and statically, and run each
 * scenario in a fresh directory prepared by the test.  Every scenario does
 * exactly the accesses its name says, with raw syscalls where libc could
 * add accesses of its own, so the test can assert precisely.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what)
{
    perror(what);
    exit(99);
}

static void read_all(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

static void read_file(const char *p)
{
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        die(p);
    read_all(fd);
    close(fd);
}

static void write_file(const char *p, const char *text)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(p);
    if (write(fd, text, strlen(text)) < 0)
        die("write");
    close(fd);
}

static void *thread_main(void *arg)
{
    read_file((const char *)arg);
    return NULL;
}

#if defined(__x86_64__)
/* openat and read of data.txt by syscall instructions of the program */
static void *inline_open_read(void *unused)
{
    static const char name[] = "data.txt";
    static char buf[64];
    long fd, r;
    (void)unused;
    __asm__ volatile("syscall" : "=a"(fd)
                     : "a"((long)SYS_openat), "D"((long)AT_FDCWD), "S"(name), "d"(0L)
                     : "rcx", "r11", "memory");
    if (fd < 0)
        die("inline openat");
    __asm__ volatile("syscall" : "=a"(r)
                     : "a"((long)SYS_read), "D"(fd), "S"(buf), "d"((long)sizeof buf)
                     : "rcx", "r11", "memory");
    return NULL;
}
#endif

static int wait_child(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) < 0)
        die("waitpid");
    return st;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: scenario NAME\n");
        return 2;
    }
    const char *s = argv[1];
    if (!strcmp(s, "dirfd_open")) {             /* openat(dirfd, "f") */
        int dfd = open("sub", O_RDONLY | O_DIRECTORY);
        if (dfd < 0)
            die("sub");
        int fd = openat(dfd, "f.txt", O_RDONLY);
        if (fd < 0)
            die("openat");
        read_all(fd);
    } else if (!strcmp(s, "chdir_dotdot")) {    /* chdir then ../ */
        if (chdir("sub") < 0)
            die("chdir");
        read_file("../top.txt");
    } else if (!strcmp(s, "fchdir")) {
        int dfd = open("sub", O_RDONLY | O_DIRECTORY);
        if (dfd < 0 || fchdir(dfd) < 0)
            die("fchdir");
        read_file("f.txt");
    } else if (!strcmp(s, "rename")) {
        if (rename("old.txt", "new.txt") < 0)
            die("rename");
    } else if (!strcmp(s, "unlink")) {
        if (unlink("victim.txt") < 0)
            die("unlink");
    } else if (!strcmp(s, "mkdir")) {
        if (mkdir("newdir", 0755) < 0)
            die("mkdir");
    } else if (!strcmp(s, "create_write")) {
        write_file("created.txt", "fresh\n");
    } else if (!strcmp(s, "rdwr_read")) {      /* O_RDWR, only read */
        int fd = open("data.txt", O_RDWR);
        if (fd < 0)
            die("data.txt");
        read_all(fd);
    } else if (!strcmp(s, "probes")) {         /* absent files */
        struct stat st;
        if (stat("missing_stat", &st) == 0 || access("missing_access", R_OK) == 0 ||
            open("missing_open", O_RDONLY) >= 0)
            return 3;
    } else if (!strcmp(s, "direct_syscall")) { /* bypasses libc */
        long fd = syscall(SYS_openat, AT_FDCWD, "data.txt", O_RDONLY);
        if (fd < 0)
            die("openat");
        char buf[64];
        syscall(SYS_read, fd, buf, sizeof buf);
#if defined(__x86_64__)
    } else if (!strcmp(s, "inline_syscall")) { /* a syscall instruction in the program */
        inline_open_read(NULL);
    } else if (!strcmp(s, "inline_thread")) {  /* the same, in a thread */
        pthread_t t;
        if (pthread_create(&t, NULL, inline_open_read, NULL) != 0)
            die("pthread_create");
        pthread_join(t, NULL);
    } else if (!strcmp(s, "inline_execve")) {  /* exec without libc's execve */
        static char cat[] = "/bin/cat", arg[] = "data.txt";
        char *argv[] = {cat, arg, NULL};
        long r;
        __asm__ volatile("syscall" : "=a"(r)
                         : "a"((long)SYS_execve), "D"(cat), "S"(argv), "d"(environ)
                         : "rcx", "r11", "memory");
        die("inline execve");
#endif
    } else if (!strcmp(s, "thread")) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_main, "data.txt") != 0)
            die("pthread_create");
        pthread_join(t, NULL);
    } else if (!strcmp(s, "fork_exec")) {
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            execl("/bin/cat", "cat", "data.txt", (char *)NULL);
            _exit(127);
        }
        return WEXITSTATUS(wait_child(pid));
    } else if (!strcmp(s, "posix_spawn")) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "spawn_out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char *args[] = {"cat", "data.txt", NULL};
        pid_t pid;
        if (posix_spawn(&pid, "/bin/cat", &fa, NULL, args, environ) != 0)
            die("posix_spawn");
        return WEXITSTATUS(wait_child(pid));
    } else if (!strcmp(s, "daemon")) {          /* writes after its parent exits */
        pid_t pid = fork();
        if (pid == 0) {
            setsid();
            if (fork() == 0) {
                usleep(300 * 1000);
                write_file("late.txt", "late\n");
                _exit(0);
            }
            _exit(0);
        }
        wait_child(pid);
    } else if (!strcmp(s, "longpath")) {        /* > 300 bytes */
        char path[1024] = "";
        for (int i = 0; i < 12; i++) {
            strcat(path, i ? "/" : "");
            strcat(path, "directory_level_with_a_long_name");
            if (mkdir(path, 0755) < 0 && errno != EEXIST)
                die("mkdir");
        }
        strcat(path, "/deep.txt");
        write_file(path, "deep\n");
        if (chdir("directory_level_with_a_long_name/directory_level_with_a_long_name") < 0)
            die("chdir");
        read_file("directory_level_with_a_long_name/directory_level_with_a_long_name/"
                  "directory_level_with_a_long_name/directory_level_with_a_long_name/"
                  "directory_level_with_a_long_name/directory_level_with_a_long_name/"
                  "directory_level_with_a_long_name/directory_level_with_a_long_name/"
                  "directory_level_with_a_long_name/directory_level_with_a_long_name/"
                  "deep.txt");
    } else if (!strcmp(s, "nonutf8")) {
        write_file("caf\xe9.txt", "latin-1 name\n");
    } else if (!strcmp(s, "symlink_read")) {
        read_file("link.txt");
    } else if (!strcmp(s, "mmap_read")) {       /* no read() at all */
        int fd = open("data.txt", O_RDONLY);
        if (fd < 0)
            die("data.txt");
        char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            die("mmap");
        return p[0] == 'd' ? 0 : 4;
    } else if (!strcmp(s, "listdir")) {
        DIR *d = opendir("sub");
        if (!d)
            die("opendir");
        while (readdir(d))
            ;
        closedir(d);
    } else if (!strcmp(s, "exit_status")) {
        return 7;
    } else if (!strcmp(s, "signal")) {
        raise(SIGTERM);
        return 0;
    } else if (!strcmp(s, "many")) {            /* 2000 distinct files */
        if (mkdir("many", 0755) < 0)
            die("mkdir");
        char p[64];
        for (int i = 0; i < 2000; i++) {
            snprintf(p, sizeof p, "many/f%04d.txt", i);
            write_file(p, "x");
        }
    } else if (!strcmp(s, "open_unused")) {     /* opened, never read */
        int fd = open("data.txt", O_RDONLY);
        if (fd < 0)
            die("data.txt");
    } else if (!strcmp(s, "sleep")) {           /* a tree that outlives timeouts */
        if (fork() == 0) {
            sleep(60);
            _exit(0);
        }
        sleep(60);
    } else {
        fprintf(stderr, "unknown scenario %s\n", s);
        return 2;
    }
    return 0;
}
