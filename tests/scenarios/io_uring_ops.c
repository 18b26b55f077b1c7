/* io_uring_ops.c — file operations made through io_uring, and the same
 * operations made through system calls, for tests/test_io_uring.py.
 *
 *   io_uring_ops uring SCENARIO    through io_uring (liburing, or "raw_*"
 *                                  scenarios through the bare system calls)
 *   io_uring_ops sys SCENARIO      the system-call equivalent
 *
 * Run in a directory the test prepared (f.txt, sub/g.txt, empty/).  The
 * eBPF backend must report both modes identically.  Prints "ok"; exits 3
 * when io_uring is not available here, 4 when the file system lacks what a
 * scenario needs (user xattrs), 1 when an operation failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

static int uring_mode;
static struct io_uring ring;
static char buf[64];

static void die(const char *what, int err)
{
    fprintf(stderr, "%s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

static void setup(unsigned flags)
{
    struct io_uring_params p = {.flags = flags};
    if (flags & IORING_SETUP_SQPOLL)
        p.sq_thread_idle = 2000;
    int rc = io_uring_queue_init_params(8, &ring, &p);
    if (rc < 0) {
        fprintf(stderr, "io_uring unavailable: %s\n", strerror(-rc));
        exit(3);
    }
}

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (!s)
        die("no sqe", EBUSY);
    return s;
}

/* Submit what is queued and wait for one completion: its result. */
static int complete_one(void)
{
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait(&ring, 1);
    if (rc < 0)
        die("submit", rc);
    rc = io_uring_wait_cqe(&ring, &cqe);
    if (rc < 0)
        die("wait", rc);
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    return res;
}

/* ---- one operation, in either mode ------------------------------------ */

static int do_openat(int dfd, const char *path, int flags, unsigned sqe_flags)
{
    if (!uring_mode)
        return openat(dfd, path, flags, 0644);
    struct io_uring_sqe *s = sqe_get();
    io_uring_prep_openat(s, dfd, path, flags, 0644);
    s->flags |= sqe_flags;
    return complete_one();
}

static int do_openat2(const char *path, int flags)
{
    struct open_how how = {.flags = flags, .mode = 0};
    if (!uring_mode)
        return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    io_uring_prep_openat2(sqe_get(), AT_FDCWD, path, &how);
    return complete_one();
}

static int do_read(int fd, unsigned sqe_flags)
{
    if (!uring_mode)
        return (int)read(fd, buf, sizeof buf);
    struct io_uring_sqe *s = sqe_get();
    io_uring_prep_read(s, fd, buf, sizeof buf, 0);
    s->flags |= sqe_flags;
    return complete_one();
}

static int do_write(int fd, unsigned sqe_flags)
{
    if (!uring_mode)
        return (int)write(fd, "written\n", 8);
    struct io_uring_sqe *s = sqe_get();
    io_uring_prep_write(s, fd, "written\n", 8, 0);
    s->flags |= sqe_flags;
    return complete_one();
}

static int do_statx(const char *path)
{
    struct statx stx;
    if (!uring_mode)
        return statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx);
    io_uring_prep_statx(sqe_get(), AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx);
    return complete_one();
}

static int must(int rc, const char *what)
{
    if (rc < 0 && (uring_mode ? -rc : errno) == EOPNOTSUPP) {
        fprintf(stderr, "%s: not supported by this file system\n", what);
        exit(4);                /* user xattrs, fallocate: the test skips */
    }
    if (rc < 0)
        die(what, uring_mode ? rc : errno);
    return rc;
}

/* open f.txt, read it (the common case) */
static void open_read(unsigned sqe_flags)
{
    int fd = must(do_openat(AT_FDCWD, "f.txt", O_RDONLY, sqe_flags), "open f.txt");
    must(do_read(fd, sqe_flags), "read");
    close(fd);
}

/* create out.txt and write it */
static void write_new(unsigned sqe_flags)
{
    int fd = must(do_openat(AT_FDCWD, "out.txt", O_WRONLY | O_CREAT | O_TRUNC, sqe_flags),
                  "open out.txt");
    must(do_write(fd, sqe_flags), "write");
    close(fd);
}

/* ---- the bare system calls, no liburing --------------------------------- */

/* "inline_*": io_uring_setup made by a syscall instruction of the program
 * itself, not through libc's syscall() */
static int g_inline;

/* A ring set up with io_uring_setup and mmap, one request at a time. */
struct raw_ring {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

static int raw_setup(struct raw_ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
#if defined(__x86_64__)
    if (g_inline) {             /* a syscall instruction in the program */
        long fd;
        __asm__ volatile("syscall" : "=a"(fd)
                         : "a"((long)SYS_io_uring_setup), "D"(4L), "S"(&p)
                         : "rcx", "r11", "memory");
        r->fd = fd < 0 ? (errno = (int)-fd, -1) : (int)fd;
    } else
#endif
    r->fd = (int)syscall(SYS_io_uring_setup, 4, &p);
    if (r->fd < 0) {
        fprintf(stderr, "io_uring unavailable: %s\n", strerror(errno));
        exit(3);
    }
    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                    IORING_OFF_SQ_RING);
    char *cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                    IORING_OFF_CQ_RING);
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
        die("mmap ring", errno);
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

static int raw_do(struct raw_ring *r, const struct io_uring_sqe *req)
{
    unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
    r->sqes[idx] = *req;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(SYS_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
        die("io_uring_enter", errno);
    unsigned head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
    if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
        die("no completion", EIO);
    int res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

static void raw_open_read_write(void)
{
    if (!uring_mode) {
        open_read(0);
        write_new(0);
        return;
    }
    struct raw_ring r;
    raw_setup(&r);
    struct io_uring_sqe s;
    memset(&s, 0, sizeof s);
    s.opcode = IORING_OP_OPENAT;
    s.fd = AT_FDCWD;
    s.addr = (unsigned long)"f.txt";
    s.open_flags = O_RDONLY;
    int fd = must(raw_do(&r, &s), "raw openat");
    memset(&s, 0, sizeof s);
    s.opcode = IORING_OP_READ;
    s.fd = fd;
    s.addr = (unsigned long)buf;
    s.len = sizeof buf;
    must(raw_do(&r, &s), "raw read");
    memset(&s, 0, sizeof s);
    s.opcode = IORING_OP_OPENAT;
    s.fd = AT_FDCWD;
    s.addr = (unsigned long)"out.txt";
    s.open_flags = O_WRONLY | O_CREAT | O_TRUNC;
    s.len = 0644;
    int out = must(raw_do(&r, &s), "raw openat out");
    memset(&s, 0, sizeof s);
    s.opcode = IORING_OP_WRITE;
    s.fd = out;
    s.addr = (unsigned long)"written\n";
    s.len = 8;
    must(raw_do(&r, &s), "raw write");
    close(fd);
    close(out);
}

/* ---- scenarios ------------------------------------------------------------- */

static void scenario(const char *name)
{
    struct statx stx;
    if (!strcmp(name, "open_read")) {
        open_read(0);
    } else if (!strcmp(name, "openat2_read")) {
        int fd = must(do_openat2("f.txt", O_RDONLY), "openat2");
        must(do_read(fd, 0), "read");
    } else if (!strcmp(name, "open_missing")) {
        if (do_openat(AT_FDCWD, "missing.txt", O_RDONLY, 0) >= 0)
            die("missing.txt exists", EEXIST);
    } else if (!strcmp(name, "open_unused")) {
        must(do_openat(AT_FDCWD, "f.txt", O_RDONLY, 0), "open");   /* a probe */
    } else if (!strcmp(name, "dirfd_read")) {
        int d = must(open("sub", O_RDONLY | O_DIRECTORY), "open sub");
        int fd = must(do_openat(d, "g.txt", O_RDONLY, 0), "openat sub/g.txt");
        must(do_read(fd, 0), "read");
    } else if (!strcmp(name, "write")) {
        write_new(0);
    } else if (!strcmp(name, "statx")) {
        must(do_statx("f.txt"), "statx");
        if (do_statx("missing.txt") >= 0)
            die("missing.txt exists", EEXIST);
    } else if (!strcmp(name, "renameat")) {
        if (!uring_mode)
            must(renameat(AT_FDCWD, "f.txt", AT_FDCWD, "new.txt"), "rename");
        else {
            io_uring_prep_renameat(sqe_get(), AT_FDCWD, "f.txt", AT_FDCWD, "new.txt", 0);
            must(complete_one(), "rename");
        }
    } else if (!strcmp(name, "unlinkat")) {
        if (!uring_mode)
            must(unlinkat(AT_FDCWD, "f.txt", 0), "unlink");
        else {
            io_uring_prep_unlinkat(sqe_get(), AT_FDCWD, "f.txt", 0);
            must(complete_one(), "unlink");
        }
    } else if (!strcmp(name, "rmdir")) {
        if (!uring_mode)
            must(unlinkat(AT_FDCWD, "empty", AT_REMOVEDIR), "rmdir");
        else {
            io_uring_prep_unlinkat(sqe_get(), AT_FDCWD, "empty", AT_REMOVEDIR);
            must(complete_one(), "rmdir");
        }
    } else if (!strcmp(name, "mkdirat")) {
        if (!uring_mode)
            must(mkdirat(AT_FDCWD, "newdir", 0755), "mkdir");
        else {
            io_uring_prep_mkdirat(sqe_get(), AT_FDCWD, "newdir", 0755);
            must(complete_one(), "mkdir");
        }
    } else if (!strcmp(name, "symlinkat")) {
        if (!uring_mode)
            must(symlinkat("f.txt", AT_FDCWD, "new.lnk"), "symlink");
        else {
            io_uring_prep_symlinkat(sqe_get(), "f.txt", AT_FDCWD, "new.lnk");
            must(complete_one(), "symlink");
        }
    } else if (!strcmp(name, "linkat")) {
        if (!uring_mode)
            must(linkat(AT_FDCWD, "f.txt", AT_FDCWD, "hard.txt", 0), "link");
        else {
            io_uring_prep_linkat(sqe_get(), AT_FDCWD, "f.txt", AT_FDCWD, "hard.txt", 0);
            must(complete_one(), "link");
        }
    } else if (!strcmp(name, "fixed_file")) {
        /* opened by a system call, read through the ring's file table */
        int fd = must(open("f.txt", O_RDONLY), "open");
        if (!uring_mode) {
            must(do_read(fd, 0), "read");
            return;
        }
        must(io_uring_register_files(&ring, &fd, 1), "register");
        struct io_uring_sqe *s = sqe_get();
        io_uring_prep_read(s, 0, buf, sizeof buf, 0);
        s->flags |= IOSQE_FIXED_FILE;
        must(complete_one(), "read fixed");
    } else if (!strcmp(name, "direct_open")) {
        /* opened straight into a fixed slot (no fd at all), read there */
        if (!uring_mode) {
            open_read(0);
            must(do_read(must(open("sub/g.txt", O_RDONLY), "open"), 0), "read");
            return;
        }
        int fds[2] = {-1, -1};
        must(io_uring_register_files(&ring, fds, 2), "register");
        io_uring_prep_openat_direct(sqe_get(), AT_FDCWD, "f.txt", O_RDONLY, 0, 1);
        must(complete_one(), "open direct");
        struct io_uring_sqe *s = sqe_get();
        io_uring_prep_read(s, 1, buf, sizeof buf, 0);
        s->flags |= IOSQE_FIXED_FILE;
        must(complete_one(), "read fixed");
        s = sqe_get();
        io_uring_prep_openat(s, AT_FDCWD, "sub/g.txt", O_RDONLY, 0);
        s->file_index = IORING_FILE_INDEX_ALLOC;   /* the kernel picks the slot */
        int slot = must(complete_one(), "open direct alloc");
        s = sqe_get();
        io_uring_prep_read(s, slot, buf, sizeof buf, 0);
        s->flags |= IOSQE_FIXED_FILE;
        must(complete_one(), "read fixed alloc");
    } else if (!strcmp(name, "xattr")) {
        /* by name: setxattr a write, getxattr a probe */
        char v[8];
        if (!uring_mode) {
            must(setxattr("f.txt", "user.sbx", "v", 1, 0), "setxattr");
            getxattr("sub/g.txt", "user.none", v, sizeof v);   /* ENODATA: still a probe */
        } else {
            io_uring_prep_setxattr(sqe_get(), "user.sbx", "v", "f.txt", 0, 1);
            must(complete_one(), "setxattr");
            io_uring_prep_getxattr(sqe_get(), "user.none", v, "sub/g.txt", sizeof v);
            complete_one();
        }
    } else if (!strcmp(name, "fd_writes")) {
        /* content and metadata changed through an open file */
        int fd = must(open("f.txt", O_RDWR), "open");
        if (!uring_mode) {
            must(fallocate(fd, 0, 0, 4096), "fallocate");
            must(ftruncate(fd, 2), "ftruncate");
            must(fsetxattr(fd, "user.sbx", "v", 1, 0), "fsetxattr");
            return;
        }
        io_uring_prep_fallocate(sqe_get(), fd, 0, 0, 4096);
        must(complete_one(), "fallocate");
        struct io_uring_sqe *s = sqe_get();
        io_uring_prep_rw(55 /* IORING_OP_FTRUNCATE, Linux 6.9 */, s, fd, NULL, 0, 2);
        must(complete_one(), "ftruncate");
        io_uring_prep_fsetxattr(sqe_get(), fd, "user.sbx", "v", 0, 1);
        must(complete_one(), "fsetxattr");
    } else if (!strcmp(name, "fixed_fd_install")) {
        /* opened into a fixed slot, given an fd (FIXED_FD_INSTALL, Linux
         * 6.8), read by a system call */
        if (!uring_mode) {
            open_read(0);
            return;
        }
        int fds[1] = {-1};
        must(io_uring_register_files(&ring, fds, 1), "register");
        io_uring_prep_openat_direct(sqe_get(), AT_FDCWD, "f.txt", O_RDONLY, 0, 0);
        must(complete_one(), "open direct");
        struct io_uring_sqe *s = sqe_get();
        memset(s, 0, sizeof *s);
        s->opcode = 54;             /* IORING_OP_FIXED_FD_INSTALL */
        s->fd = 0;
        s->flags = IOSQE_FIXED_FILE;
        int fd = must(complete_one(), "install");
        if (read(fd, buf, sizeof buf) < 0)
            die("read", errno);
    } else if (!strcmp(name, "async")) {
        open_read(IOSQE_ASYNC);
        write_new(IOSQE_ASYNC);
        must(do_statx("f.txt"), "statx");
    } else if (!strcmp(name, "raw_open_read_write")) {
        raw_open_read_write();
    } else if (!strcmp(name, "inline_open_read_write")) {
        g_inline = 1;
        raw_open_read_write();
    } else if (!strcmp(name, "unseen_splice")) {
        int fd = must(open("f.txt", O_RDONLY), "open"), p[2];
        must(pipe(p), "pipe");
        if (!uring_mode)
            must((int)splice(fd, NULL, p[1], NULL, 4, 0), "splice");
        else {
            io_uring_prep_splice(sqe_get(), fd, 0, p[1], -1, 4, 0);
            must(complete_one(), "splice");
        }
    } else if (!strcmp(name, "unseen_skip")) {
        /* the read posts no completion when it succeeds */
        int fd = must(do_openat(AT_FDCWD, "f.txt", O_RDONLY, 0), "open");
        if (!uring_mode) {
            must(do_read(fd, 0), "read");
            return;
        }
        struct io_uring_sqe *s = sqe_get();
        io_uring_prep_read(s, fd, buf, sizeof buf, 0);
        s->flags |= IOSQE_CQE_SKIP_SUCCESS | IOSQE_IO_LINK;
        io_uring_prep_nop(sqe_get());       /* something to wait for */
        must(complete_one(), "read + nop");
    } else if (!strcmp(name, "unseen_prep_failed")) {
        /* rejected before its name is copied: buf_index must be 0 */
        if (!uring_mode) {
            if (openat(AT_FDCWD, "f.txt", O_RDONLY | O_DIRECTORY) >= 0)
                die("opened f.txt as a directory", EEXIST);
            return;
        }
        struct io_uring_sqe *s = sqe_get();
        io_uring_prep_openat(s, AT_FDCWD, "f.txt", O_RDONLY, 0);
        s->buf_index = 1;
        if (complete_one() != -EINVAL)
            die("expected EINVAL", EINVAL);
    } else if (!strcmp(name, "unseen_overflow")) {
        /* more completions than the completion queue holds (16), reaped
         * only afterwards: the overflowed ones come without their requests */
        if (!uring_mode)
            return;
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 8; j++)
                io_uring_prep_openat(sqe_get(), AT_FDCWD, "f.txt", O_RDONLY, 0);
            if (io_uring_submit(&ring) < 0)
                die("submit", EIO);
        }
        for (int i = 0; i < 24; i++) {
            struct io_uring_cqe *cqe;
            if (io_uring_wait_cqe(&ring, &cqe) < 0)
                die("wait", EIO);
            io_uring_cqe_seen(&ring, cqe);
        }
    } else {
        fprintf(stderr, "unknown scenario %s\n", name);
        exit(2);
    }
    (void)stx;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s uring|sys SCENARIO\n", argv[0]);
        return 2;
    }
    uring_mode = !strcmp(argv[1], "uring");
    const char *name = argv[2];
    unsigned flags = 0;
    if (!strncmp(name, "sqpoll_", 7)) {
        flags = IORING_SETUP_SQPOLL;
        name += 7;
    } else if (!strncmp(name, "defer_", 6)) {
        flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        name += 6;
    }
    if (uring_mode && strncmp(name, "raw_", 4))
        setup(flags);
    scenario(name);
    if (uring_mode && strncmp(name, "raw_", 4))
        io_uring_queue_exit(&ring);
    printf("ok\n");
    return 0;
}
