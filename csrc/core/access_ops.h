/* access_ops.h — the operations of the access model (access.h), apart and
 * include-free so that the BPF programs can use them too. */
#ifndef SBX_ACCESS_OPS_H
#define SBX_ACCESS_OPS_H

/* What a call does to the names it takes. */
enum sbx_op {
    SBX_OP_NONE = 0,
    SBX_OP_OPEN,       /* open family: sbx_access_open() says what is known at once;
                        * the open-file ledger settles the rest when the file is used
                        * or closed */
    SBX_OP_PROBE,      /* stat, access, statfs, getxattr, listxattr, chdir, realpath */
    SBX_OP_READLINK,   /* the link itself is read (not its target) */
    SBX_OP_LIST,       /* a directory listed by name (scandir) */
    SBX_OP_CREATE,     /* mkdir, mknod, mkfifo, symlink: the (only) name is created */
    SBX_OP_REMOVE,     /* unlink, rmdir */
    SBX_OP_MODIFY,     /* truncate, chmod, chown, utimes, setxattr, removexattr by name */
    SBX_OP_RENAME,     /* old name: written, and read when it existed before the run;
                        * new name: written and created (replaced counts as created) */
    SBX_OP_LINK,       /* existing name: read; new name: written and created */
    SBX_OP_EXEC,       /* exec by name; success is accounted by sbx_exec_reads() */
    SBX_OP_LOAD,       /* a file loaded by name without an open anyone saw (a shared
                        * library the loader mapped): its content is read */
    SBX_OP_COUNT
};

/* Content used through an open file (or a mapping of it). */
enum sbx_use {
    SBX_USE_READ = 1,  /* read family, mmap for reading, sendfile/splice/copy source */
    SBX_USE_WRITE,     /* write family, ftruncate, fallocate, fchmod, fsetxattr,
                        * futimens, shared writable mmap, copy destination */
    SBX_USE_LIST,      /* getdents */
};

#endif
