/* path_truth.c — the situations where a tracer is tempted to name a file
 * the kernel did not open (tests/test_path_truth.py prepares the directory
 * and says what the kernel opened).  argv[1] names the case.  Built
 * dynamically and statically. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(99);
}

static void read_fd(int fd)
{
    char buf[256];
    if (fd < 0)
        die("open");
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

static int send_fd(int sock, int fd)
{
    char data = 'x';
    struct iovec iov = {&data, 1};
    char ctl[CMSG_SPACE(sizeof(int))];
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(sock, &m, 0) < 0 ? -1 : 0;
}

static int recv_fd(int sock)
{
    char data;
    struct iovec iov = {&data, 1};
    char ctl[CMSG_SPACE(sizeof(int))];
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    if (recvmsg(sock, &m, 0) <= 0)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *s = argv[1];
    if (!strcmp(s, "dotdot")) {                 /* lnk -> real/sub */
        read_fd(open("lnk/../x", O_RDONLY));
    } else if (!strcmp(s, "dotdot_dirfd")) {
        int d = open("lnk", O_RDONLY | O_DIRECTORY);
        read_fd(openat(d, "../x", O_RDONLY));
    } else if (!strcmp(s, "relink")) {          /* ln -> a.txt, replaced after the read */
        read_fd(open("ln", O_RDONLY));
        if (unlink("ln") < 0 || symlink("other.txt", "ln") < 0)
            die("relink");
    } else if (!strcmp(s, "link_gone")) {       /* ln2 -> ln -> a.txt, all removed after */
        read_fd(open("ln2", O_RDONLY));
        if (unlink("ln2") < 0 || unlink("ln") < 0 || unlink("a.txt") < 0)
            die("unlink");
    } else if (!strcmp(s, "devfd")) {
        int fd = open("f.txt", O_RDONLY);
        char name[64];
        snprintf(name, sizeof name, "/dev/fd/%d", fd);
        read_fd(open(name, O_RDONLY));
    } else if (!strcmp(s, "procfd")) {
        int fd = open("f.txt", O_RDONLY);
        char name[64];
        snprintf(name, sizeof name, "/proc/%d/fd/%d", (int)getpid(), fd);
        read_fd(open(name, O_RDONLY));
    } else if (!strcmp(s, "scm_rights")) {     /* opened by one process, read by another */
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
            die("socketpair");
        pid_t child = fork();
        if (child == 0) {
            int fd = open("f.txt", O_RDONLY);
            _exit(fd < 0 || send_fd(sv[0], fd) < 0 ? 99 : 0);
        }
        int fd = recv_fd(sv[1]);
        int st;
        waitpid(child, &st, 0);
        read_fd(fd);
        close(fd);
    } else if (!strcmp(s, "longpath")) {        /* 24 nested 200-byte names */
        char comp[201];
        memset(comp, 'd', 200);
        comp[200] = '\0';
        int d = open(".", O_RDONLY | O_DIRECTORY);
        for (int i = 0; i < 24; i++) {
            if (mkdirat(d, comp, 0755) < 0 && errno != EEXIST)
                die("mkdirat");
            int n = openat(d, comp, O_RDONLY | O_DIRECTORY);
            if (n < 0)
                die("openat dir");
            close(d);
            d = n;
        }
        int f = openat(d, "deep.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (f < 0 || write(f, "x", 1) != 1)
            die("deep.txt");
        close(f);
        read_fd(openat(d, "deep.txt", O_RDONLY));
    } else if (!strcmp(s, "tmpfile")) {         /* nameless, then given a name */
        int fd = open(".", O_TMPFILE | O_WRONLY, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1)
            die("O_TMPFILE");
        char name[64];
        snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, name, AT_FDCWD, "named.txt", AT_SYMLINK_FOLLOW) < 0)
            die("linkat");
    } else if (!strcmp(s, "tmpfile_emptypath")) {   /* named by linkat(fd, "") */
        int dir = open(".", O_RDONLY | O_DIRECTORY);
        int fd = open(".", O_TMPFILE | O_RDWR, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1)
            die("O_TMPFILE");
        if (linkat(fd, "", dir, "named2.txt", AT_EMPTY_PATH) < 0)
            die("linkat AT_EMPTY_PATH");
        /* used again through the descriptor, now that the file has a name */
        if (write(fd, "y", 1) != 1 || fsync(fd) < 0 || lseek(fd, 0, SEEK_SET) < 0)
            die("write after linkat");
        read_fd(fd);
    } else if (!strcmp(s, "deleted")) {         /* read after its name is gone */
        int fd = open("f.txt", O_RDONLY);
        if (unlink("f.txt") < 0)
            die("unlink");
        read_fd(fd);
    } else if (!strcmp(s, "chroot")) {          /* root only */
        if (chroot("root") < 0 || chdir("/") < 0)
            die("chroot");
        read_fd(open("/f.txt", O_RDONLY));
    } else if (!strcmp(s, "mntns")) {           /* root only */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("src", "mnt", NULL, MS_BIND, NULL) < 0)
            die("mount namespace");
        read_fd(open("mnt/f.txt", O_RDONLY));
    } else if (!strcmp(s, "int80")) {           /* 32-bit open + read from a 64-bit process */
#if defined(__x86_64__)
        static const char name[] = "f.txt";
        static char buf[64];
        long fd;
        /* the name must be addressable in 32 bits: a static in the low 4 GiB
         * of a non-PIE image would be; copy it to a MAP_32BIT page instead */
        char *low = (char *)syscall(SYS_mmap, 0, 4096, 3, 0x22 | 0x40 /* MAP_32BIT */, -1, 0);
        if ((long)low < 0)
            die("mmap");
        memcpy(low, name, sizeof name);
        __asm__ volatile("int $0x80" : "=a"(fd) : "a"(5), "b"(low), "c"(0), "d"(0) : "memory");
        if (fd < 0)
            die("int80 open");
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(3), "b"(fd), "c"(low + 64), "d"(32)
                         : "memory");
        (void)buf;
#endif
    } else {
        fprintf(stderr, "unknown case %s\n", s);
        return 2;
    }
    return 0;
}
