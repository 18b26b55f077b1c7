/* escape.c — a hostile child for tests/test_enforcement.py: it tries to get
 * out of a policy that lets it read ROOT/ro and write ROOT/rw, and never
 * touch ROOT/secret (s.txt, t.txt).  Usage: escape ATTEMPT ROOT [FD]
 *
 * Each attempt prints one line per try, "NAME: refused (errno)" or
 * "NAME: ESCAPED", and the program exits with the number that escaped
 * (the test also checks the disk: a try that claims refusal but changed
 * something is caught there).  "inherited" writes through an fd the parent
 * opened before the policy existed: that one cannot be refused, and the
 * run must report it instead, and so must "metadata" (chmod, utimes).
 * "reopen_inherited" reopens such an fd through /proc/self/fd/N and
 * /dev/fd/N: a new open, which is refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root;
static int escaped;

static char *at(const char *rel)
{
    static char bufs[8][4096];
    static int n;
    char *b = bufs[n++ % 8];
    snprintf(b, 4096, "%s/%s", root, rel);
    return b;
}

/* r: the call's result (>= 0 is success, the escape) */
static void verdict(const char *name, long r)
{
    if (r >= 0) {
        printf("%s: ESCAPED\n", name);
        escaped++;
    } else {
        printf("%s: refused (%s)\n", name, strerror(errno));
    }
}

/* Open for writing and write: the escape is the bytes landing. */
static void try_write(const char *name, const char *path, int flags)
{
    int fd = open(path, O_WRONLY | flags, 0644);
    long r = fd;
    if (fd >= 0) {
        r = write(fd, "pwned\n", 6);
        close(fd);
    }
    verdict(name, r);
}

static void try_read(const char *name, const char *path)
{
    char buf[64];
    int fd = open(path, O_RDONLY);
    long r = fd;
    if (fd >= 0) {
        r = read(fd, buf, sizeof buf);
        close(fd);
    }
    verdict(name, r);
}

static void plain(void)
{
    try_read("read secret", at("secret/s.txt"));
    try_write("write read-only", at("ro/victim.txt"), O_TRUNC);
    try_write("create in secret", at("secret/new.txt"), O_CREAT | O_EXCL);
    verdict("mkdir in read-only", mkdir(at("ro/newdir"), 0755));
    verdict("unlink read-only", unlink(at("ro/victim.txt")));
}

static void dotdot(void)
{
    try_read("rw/../secret", at("rw/../secret/s.txt"));
    try_write("rw/../ro", at("rw/../ro/victim.txt"), O_TRUNC);
    try_write("rw/sub/../../secret", at("rw/sub/../../secret/new.txt"), O_CREAT);
}

static void symlinks(void)
{
    /* creating the links inside the writable tree is allowed */
    if (symlink(at("ro/victim.txt"), at("rw/to-ro")) < 0 ||
        symlink(at("secret"), at("rw/to-secret")) < 0) {
        perror("symlink");
        exit(100);
    }
    try_write("symlink to read-only", at("rw/to-ro"), O_TRUNC);
    try_read("symlink to secret dir", at("rw/to-secret/s.txt"));
    try_write("create through symlink", at("rw/to-secret/new.txt"), O_CREAT);
    verdict("unlink through symlinked dir", unlink(at("rw/to-secret/t.txt")));
}

static void hardlink(void)
{
    long r = link(at("ro/victim.txt"), at("rw/hard"));
    verdict("hard link of read-only", r);
    if (r == 0)
        try_write("write through hard link", at("rw/hard"), O_TRUNC);
    r = link(at("secret/s.txt"), at("rw/hard-secret"));
    verdict("hard link of secret", r);
    if (r == 0)
        try_read("read through hard link", at("rw/hard-secret"));
}

static void renames(void)
{
    if (mkdir(at("rw/dir"), 0755) < 0) {
        perror("mkdir");
        exit(100);
    }
    verdict("rename rw dir into read-only", rename(at("rw/dir"), at("ro/dir")));
    verdict("rename rw dir onto secret", rename(at("rw/dir"), at("secret")));
    verdict("rename secret into rw", rename(at("secret/s.txt"), at("rw/stolen")));
    verdict("rename read-only into rw", rename(at("ro/victim.txt"), at("rw/moved")));
    verdict("exchange rw with read-only",
            renameat2(AT_FDCWD, at("rw/dir"), AT_FDCWD, at("ro/sub"), RENAME_EXCHANGE));
}

/* Swap a file of the writable tree with a protected one: both names change */
static void exchange(void)
{
    int fd = open(at("rw/swap.txt"), O_WRONLY | O_CREAT, 0644);
    if (fd < 0 || mkdir(at("rw/swapdir"), 0755) < 0) {
        perror("rw/swap");
        exit(100);
    }
    close(fd);
    verdict("exchange rw file with secret file",
            renameat2(AT_FDCWD, at("rw/swap.txt"), AT_FDCWD, at("secret/s.txt"),
                      RENAME_EXCHANGE));
    verdict("exchange rw file with read-only file",
            renameat2(AT_FDCWD, at("rw/swap.txt"), AT_FDCWD, at("ro/victim.txt"),
                      RENAME_EXCHANGE));
    verdict("exchange rw dir with secret dir",
            renameat2(AT_FDCWD, at("rw/swapdir"), AT_FDCWD, at("secret"), RENAME_EXCHANGE));
    /* the protected name reached through a symlinked directory of rw */
    if (symlink(at("secret"), at("rw/to-secret")) < 0) {
        perror("symlink");
        exit(100);
    }
    verdict("exchange through a symlinked dir",
            renameat2(AT_FDCWD, at("rw/swap.txt"), AT_FDCWD, at("rw/to-secret/t.txt"),
                      RENAME_EXCHANGE));
}

/* Reopen, through its /proc/self/fd alias, a descriptor of a protected file
 * that the parent opened before the policy (Landlock checks every open,
 * a reopen included) */
static void reopen_inherited(int fd)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    try_read("reopen inherited fd for reading", p);
    try_write("reopen inherited fd for writing", p, 0);
    snprintf(p, sizeof p, "/dev/fd/%d", fd);
    try_read("reopen inherited fd through /dev/fd", p);
}

static void procfd(void)
{
    char p[64];
    /* a read-only fd, reopened for writing through its magic link */
    int fd = open(at("ro/victim.txt"), O_RDONLY);
    if (fd < 0) {
        perror("open ro");
        exit(100);
    }
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    try_write("reopen read-only fd for writing", p, O_TRUNC);
    /* an O_PATH fd (Landlock does not check O_PATH), then a real open */
    int pfd = open(at("secret/s.txt"), O_PATH);
    if (pfd >= 0) {
        snprintf(p, sizeof p, "/proc/self/fd/%d", pfd);
        try_read("reopen O_PATH fd of secret", p);
        try_write("reopen O_PATH fd of secret for writing", p, 0);
    }
    int dfd = open(at("secret"), O_PATH | O_DIRECTORY);
    if (dfd >= 0)
        verdict("openat below an O_PATH dir of secret",
                openat(dfd, "s.txt", O_RDONLY));
}

static void procroot(void)
{
    char p[4200];
    snprintf(p, sizeof p, "/proc/self/root%s", at("secret/s.txt"));
    try_read("/proc/self/root to secret", p);
    snprintf(p, sizeof p, "/proc/self/root%s", at("ro/victim.txt"));
    try_write("/proc/self/root to read-only", p, O_TRUNC);
    snprintf(p, sizeof p, "/proc/self/root%s", at("secret/new2.txt"));
    try_write("/proc/self/root create in secret", p, O_CREAT | O_EXCL);
    snprintf(p, sizeof p, "/proc/%d/cwd/../secret/s.txt", getpid());
    try_read("/proc/PID/cwd to secret", p);
}

static void inherited(int fd)
{
    /* opened by the parent before the policy: Landlock checks at open */
    long r = write(fd, "through an inherited fd\n", 24);
    printf("inherited fd: %s\n", r == 24 ? "written (cannot be refused)" : strerror(errno));
}

static void metadata(void)
{
    /* Landlock does not govern a file's metadata: these succeed */
    long r = chmod(at("secret/s.txt"), 0600);
    printf("chmod secret: %s\n", r == 0 ? "done (cannot be refused)" : strerror(errno));
    struct timespec ts[2] = {{0, 0}, {0, 0}};
    r = utimensat(AT_FDCWD, at("ro/victim.txt"), ts, 0);
    printf("utimes read-only: %s\n", r == 0 ? "done (cannot be refused)" : strerror(errno));
}

static void uring_try(struct io_uring *ring, const char *name, const char *path, int flags)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    struct io_uring_cqe *cqe;
    io_uring_prep_openat(sqe, AT_FDCWD, path, flags, 0644);
    io_uring_submit(ring);
    if (io_uring_wait_cqe(ring, &cqe) < 0) {
        perror("io_uring_wait_cqe");
        exit(100);
    }
    int res = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    long r = res;
    if (res >= 0) {
        char buf[16];
        r = (flags & O_ACCMODE) == O_RDONLY ? read(res, buf, sizeof buf) : write(res, "pwned\n", 6);
        close(res);
    } else {
        errno = -res;
    }
    verdict(name, r);
}

static void uring(void)
{
    struct io_uring ring;
    int e = io_uring_queue_init(8, &ring, 0);
    if (e < 0) {
        printf("io_uring: unavailable (%s)\n", strerror(-e));
        return;
    }
    uring_try(&ring, "io_uring open secret", at("secret/s.txt"), O_RDONLY);
    uring_try(&ring, "io_uring write read-only", at("ro/victim.txt"), O_WRONLY | O_TRUNC);
    uring_try(&ring, "io_uring create in secret", at("secret/new.txt"), O_WRONLY | O_CREAT);
    io_uring_queue_exit(&ring);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: escape ATTEMPT ROOT [FD]\n");
        return 100;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    root = argv[2];
    const char *a = argv[1];
    if (!strcmp(a, "plain") || !strcmp(a, "static"))
        plain();
    else if (!strcmp(a, "dotdot"))
        dotdot();
    else if (!strcmp(a, "symlink"))
        symlinks();
    else if (!strcmp(a, "hardlink"))
        hardlink();
    else if (!strcmp(a, "rename"))
        renames();
    else if (!strcmp(a, "procfd"))
        procfd();
    else if (!strcmp(a, "procroot"))
        procroot();
    else if (!strcmp(a, "exchange"))
        exchange();
    else if (!strcmp(a, "reopen_inherited") && argc > 3)
        reopen_inherited(atoi(argv[3]));
    else if (!strcmp(a, "inherited") && argc > 3)
        inherited(atoi(argv[3]));
    else if (!strcmp(a, "metadata"))
        metadata();
    else if (!strcmp(a, "io_uring"))
        uring();
    else {
        fprintf(stderr, "unknown attempt %s\n", a);
        return 100;
    }
    return escaped;
}
