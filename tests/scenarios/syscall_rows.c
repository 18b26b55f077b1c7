/* syscall_rows.c — one case per row of csrc/linux/syscalls.def: the call
 * made through its libc function (so the preload shim has its hook to
 * show, and a static build exercises ptrace and eBPF the same way), in a
 * directory tests/test_syscall_rows.py prepared.  argv[1] names the row.
 *
 * Prints "ok" when the call succeeded and "failed: <errno>" when it did
 * not (xattrs on a file system without them): the test then expects the
 * contract's answer for a failed call, a probe.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

static int report(int rc)
{
    if (rc < 0)
        printf("failed: %d\n", errno);
    else
        printf("ok\n");
    return 0;
}

static int open_or_die(const char *p, int flags)
{
    int fd = open(p, flags, 0644);
    if (fd < 0) {
        perror(p);
        exit(99);
    }
    return fd;
}

/* The rows libc does not reach on this architecture (it uses the *at
 * forms), made as raw system calls.  The preload backend cannot see raw
 * system calls of a dynamic program (docs/backends.md); the test knows. */
static int raw_row(const char *name)
{
    char buf[256];
    struct stat st;
    struct timeval tv[2] = {{0, 0}, {0, 0}};
    struct { const char *name; long nr, a, b, c; } rows[] = {
#ifdef SYS_open
        {"open", SYS_open, (long)"f.txt", O_RDONLY, 0},
        {"creat", SYS_creat, (long)"new.txt", 0644, 0},
        {"stat", SYS_stat, (long)"f.txt", (long)&st, 0},
        {"lstat", SYS_lstat, (long)"lnk", (long)&st, 0},
        {"access", SYS_access, (long)"f.txt", F_OK, 0},
        {"readlink", SYS_readlink, (long)"lnk", (long)buf, sizeof buf},
        {"mkdir", SYS_mkdir, (long)"newdir", 0755, 0},
        {"mknod", SYS_mknod, (long)"fifo", S_IFIFO | 0644, 0},
        {"symlink", SYS_symlink, (long)"f.txt", (long)"new.lnk", 0},
        {"unlink", SYS_unlink, (long)"f.txt", 0, 0},
        {"rmdir", SYS_rmdir, (long)"empty", 0, 0},
        {"chmod", SYS_chmod, (long)"f.txt", 0600, 0},
        {"chown", SYS_chown, (long)"f.txt", -1, -1},
        {"lchown", SYS_lchown, (long)"f.txt", -1, -1},
        {"utime", SYS_utime, (long)"f.txt", 0, 0},
        {"utimes", SYS_utimes, (long)"f.txt", (long)tv, 0},
        {"rename", SYS_rename, (long)"f.txt", (long)"new.txt", 0},
        {"link", SYS_link, (long)"f.txt", (long)"hard.txt", 0},
#endif
        {"getdents64", -1, 0, 0, 0},
        {"newfstatat", SYS_newfstatat, AT_FDCWD, (long)"f.txt", (long)&st},
        {"faccessat2", SYS_faccessat2, AT_FDCWD, (long)"f.txt", F_OK},
        {"futimesat", SYS_futimesat, AT_FDCWD, (long)"f.txt", 0},
        {"renameat", SYS_renameat, AT_FDCWD, (long)"f.txt", AT_FDCWD},
        {"lsetxattr", SYS_lsetxattr, (long)"f.txt", (long)"user.sbx", (long)"v"},
        {"lgetxattr", SYS_lgetxattr, (long)"f.txt", (long)"user.sbx", (long)buf},
        {"llistxattr", SYS_llistxattr, (long)"f.txt", (long)buf, sizeof buf},
        {"lremovexattr", SYS_lremovexattr, (long)"f.txt", (long)"user.sbx", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (strcmp(rows[i].name, name))
            continue;
        long r;
        if (!strcmp(name, "renameat"))
            r = syscall(SYS_renameat, AT_FDCWD, "f.txt", AT_FDCWD, "new.txt");
        else if (!strcmp(name, "lsetxattr"))
            r = syscall(SYS_lsetxattr, "f.txt", "user.sbx", "v", 1, 0);
        else if (!strcmp(name, "lgetxattr"))
            r = syscall(SYS_lgetxattr, "f.txt", "user.sbx", buf, sizeof buf);
        else if (!strcmp(name, "newfstatat"))
            r = syscall(SYS_newfstatat, AT_FDCWD, "f.txt", &st, 0);
        else if (!strcmp(name, "faccessat2"))
            r = syscall(SYS_faccessat2, AT_FDCWD, "f.txt", F_OK, 0);
        else if (!strcmp(name, "getdents64")) {
            int fd = open("sub", O_RDONLY | O_DIRECTORY);
            r = syscall(SYS_getdents64, fd, buf, sizeof buf);
        } else
            r = syscall(rows[i].nr, rows[i].a, rows[i].b, rows[i].c);
        return report(r < 0 ? -1 : 0);
    }
    fprintf(stderr, "unknown raw row %s\n", name);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *s = argv[1];
    struct stat st;
    char buf[256];
    if (!strcmp(s, "stat"))
        return report(stat("f.txt", &st));
    if (!strcmp(s, "lstat"))
        return report(lstat("lnk", &st));
    if (!strcmp(s, "fstatat"))
        return report(fstatat(AT_FDCWD, "f.txt", &st, 0));
    if (!strcmp(s, "statx")) {
        struct statx sx;
        return report(statx(AT_FDCWD, "f.txt", 0, STATX_SIZE, &sx));
    }
    if (!strcmp(s, "access"))
        return report(access("f.txt", R_OK));
    if (!strcmp(s, "faccessat"))
        return report(faccessat(AT_FDCWD, "missing.txt", F_OK, 0));
    if (!strcmp(s, "statfs")) {
        struct statfs sf;
        return report(statfs("f.txt", &sf));
    }
    if (!strcmp(s, "getxattr"))
        return report((int)getxattr("f.txt", "user.sbx", buf, sizeof buf));
    if (!strcmp(s, "listxattr"))
        return report((int)listxattr("f.txt", buf, sizeof buf));
    if (!strcmp(s, "chdir"))
        return report(chdir("sub"));
    if (!strcmp(s, "readlink"))
        return report((int)readlink("lnk", buf, sizeof buf));
    if (!strcmp(s, "readlinkat"))
        return report((int)readlinkat(AT_FDCWD, "lnk", buf, sizeof buf));
    if (!strcmp(s, "mkdir"))
        return report(mkdir("newdir", 0755));
    if (!strcmp(s, "mkdirat"))
        return report(mkdirat(AT_FDCWD, "newdir", 0755));
    if (!strcmp(s, "mknod"))
        return report(mkfifo("fifo", 0644));
    if (!strcmp(s, "symlink"))
        return report(symlink("f.txt", "new.lnk"));
    if (!strcmp(s, "symlinkat"))
        return report(symlinkat("f.txt", AT_FDCWD, "new.lnk"));
    if (!strcmp(s, "unlink"))
        return report(unlink("f.txt"));
    if (!strcmp(s, "unlinkat"))
        return report(unlinkat(AT_FDCWD, "f.txt", 0));
    if (!strcmp(s, "rmdir"))
        return report(rmdir("empty"));
    if (!strcmp(s, "truncate"))
        return report(truncate("f.txt", 1));
    if (!strcmp(s, "chmod"))
        return report(chmod("f.txt", 0600));
    if (!strcmp(s, "fchmodat"))
        return report(fchmodat(AT_FDCWD, "f.txt", 0600, 0));
    if (!strcmp(s, "chown"))
        return report(chown("f.txt", getuid(), getgid()));
    if (!strcmp(s, "fchownat"))
        return report(fchownat(AT_FDCWD, "f.txt", getuid(), getgid(), 0));
    if (!strcmp(s, "utimes"))
        return report(utimes("f.txt", NULL));
    if (!strcmp(s, "utimensat"))
        return report(utimensat(AT_FDCWD, "f.txt", NULL, 0));
    if (!strcmp(s, "setxattr"))
        return report(setxattr("f.txt", "user.sbx", "v", 1, 0));
    if (!strcmp(s, "removexattr"))
        return report(removexattr("f.txt", "user.sbx"));
    if (!strcmp(s, "rename_over"))     /* new.txt exists: replaced */
        return report(rename("f.txt", "new.txt"));
    if (!strcmp(s, "renameat2"))
        return report(renameat2(AT_FDCWD, "f.txt", AT_FDCWD, "new.txt", 0));
    if (!strcmp(s, "link"))
        return report(link("f.txt", "hard.txt"));
    if (!strcmp(s, "linkat"))
        return report(linkat(AT_FDCWD, "f.txt", AT_FDCWD, "hard.txt", 0));
    if (!strcmp(s, "execve_missing")) {
        char *av[] = {"nothere", NULL};
        return report(execve("nothere", av, NULL));
    }
    /* ---- through an open file ---- */
    if (!strcmp(s, "ftruncate"))
        return report(ftruncate(open_or_die("f.txt", O_RDWR), 1));
    if (!strcmp(s, "fallocate"))
        return report(posix_fallocate(open_or_die("f.txt", O_RDWR), 0, 4096) ? -1 : 0);
    if (!strcmp(s, "fchmod"))
        return report(fchmod(open_or_die("f.txt", O_RDONLY), 0600));
    if (!strcmp(s, "fchown"))
        return report(fchown(open_or_die("f.txt", O_RDONLY), getuid(), getgid()));
    if (!strcmp(s, "futimens"))
        return report(futimens(open_or_die("f.txt", O_RDONLY), NULL));
    if (!strcmp(s, "fsetxattr"))
        return report(fsetxattr(open_or_die("f.txt", O_RDONLY), "user.sbx", "v", 1, 0));
    if (!strcmp(s, "pread"))
        return report((int)pread(open_or_die("f.txt", O_RDONLY), buf, sizeof buf, 0));
    if (!strcmp(s, "pwrite"))
        return report((int)pwrite(open_or_die("f.txt", O_RDWR), "x", 1, 0));
    if (!strcmp(s, "readv")) {
        struct iovec v = {buf, sizeof buf};
        return report((int)readv(open_or_die("f.txt", O_RDONLY), &v, 1));
    }
    if (!strcmp(s, "mmap")) {
        void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, open_or_die("f.txt", O_RDONLY), 0);
        return report(m == MAP_FAILED ? -1 : 0);
    }
    if (!strcmp(s, "getdents")) {
        DIR *d = opendir("sub");
        if (!d)
            return report(-1);
        while (readdir(d))
            ;
        return report(closedir(d));
    }
    if (!strcmp(s, "sendfile"))
        return report((int)sendfile(open_or_die("out.txt", O_WRONLY | O_CREAT | O_TRUNC),
                                    open_or_die("f.txt", O_RDONLY), NULL, 4));
    if (!strcmp(s, "copy_file_range"))
        return report((int)copy_file_range(open_or_die("f.txt", O_RDONLY), NULL,
                                           open_or_die("out.txt", O_WRONLY | O_CREAT | O_TRUNC),
                                           NULL, 4, 0));
    if (!strcmp(s, "splice")) {
        int p[2];
        if (pipe(p) < 0)
            return report(-1);
        loff_t off = 0;
        return report((int)splice(open_or_die("f.txt", O_RDONLY), &off, p[1], NULL, 4, 0));
    }
    if (!strncmp(s, "raw:", 4))
        return raw_row(s + 4);
    fprintf(stderr, "unknown row %s\n", s);
    return 2;
}
