/* wire.h — the one struct between the hook DLL and the launcher.
 *
 * Each traced process connects one client end of the launcher's named pipe
 * and writes records in this compact binary form: a fixed 16-byte header and
 * a payload.  Paths travel as UTF-16 (the native Windows form, already made
 * absolute and normal by the DLL, see winpath.h); the launcher converts them
 * to UTF-8 once, when it builds the sbx_result.  Little-endian, packed, both
 * halves are x86-64 built by the same compiler.
 *
 * The launcher hands the pipe name to each process through a named file
 * mapping keyed by the process id (`sbx_cfg_name`), not the environment, so
 * a child whose environment was scrubbed is still traced.
 */
#ifndef SBX_WIN_WIRE_H
#define SBX_WIN_WIRE_H

#include <stdint.h>

enum sbx_wire_type {
    SBX_MSG_HELLO = 1,  /* payload: struct sbx_wire_hello */
    SBX_MSG_PATH = 2,   /* an access of the sending process (its HELLO's pid);
                         * flags: SBX_READ/WRITE/PROBE/ENUM|SBX_CREATED, as the access
                         * model gave them; payload: UTF-16 path */
    SBX_MSG_EXEC = 3,   /* payload: struct sbx_wire_exec, path, cwd, command line
                         * (UTF-16); flags: SBX_WIRE_BREAKAWAY when the process left
                         * the run */
    SBX_MSG_WARN = 4,   /* payload: UTF-16 sentence */
    SBX_MSG_BYE = 5,    /* the process flushed everything at exit */
    SBX_MSG_STOP = 6,   /* launcher-internal: wakes its own listener at the end */
    /* An open file of the sending process let go (closed, or still open at
     * its exit) without its content used: the ledger's candidate
     * (csrc/core/access.h), settled by the launcher against the run's sets.
     * payload: UTF-16 path. */
    SBX_MSG_UNUSED = 7,
    /* An access outside the run's policy (csrc/win/winpolicy.h): refused
     * when the policy says deny, only reported when it says report.
     * flags: enum sbx_policy_need; payload: uint32_t pid, UTF-16 path. */
    SBX_MSG_DENIED = 16,
};

#pragma pack(push, 1)
struct sbx_wire_hdr {
    uint16_t type;
    uint16_t flags;
    uint32_t len;       /* whole record in bytes, header included */
    uint64_t time;      /* QueryPerformanceCounter: orders events across processes */
};

#define SBX_WIRE_BREAKAWAY 1

struct sbx_wire_hello {
    uint32_t pid, ppid;
};

struct sbx_wire_exec {
    uint32_t pid, ppid;
    uint32_t path_chars; /* UTF-16 units of the image path */
    uint32_t cwd_chars;  /* then of the child's current directory (normal;
                          * 0: unknown); the command line fills the rest */
};

/* The per-process configuration the injector leaves behind. */
#define SBX_CFG_MAX_PATH 1024
struct sbx_wire_config {
    uint32_t magic;     /* SBX_CFG_MAGIC */
    uint32_t ppid;
    volatile uint32_t attached;        /* set by the DLL once its hooks are in */
    uint16_t pipe[SBX_CFG_MAX_PATH];   /* \\.\pipe\... */
    uint16_t dll[SBX_CFG_MAX_PATH];    /* full path of the hook DLL */
    uint16_t breakaway[SBX_CFG_MAX_PATH]; /* the run's breakaway declaration, one
                                           * entry per line (csrc/core/breakaway.h) */
    /* The policy section (csrc/win/winpolicy.h) as a handle valid in the
     * child, which may only map it for reading; 0: no policy. */
    uint64_t policy;
};
#pragma pack(pop)

#define SBX_CFG_MAGIC 0x53425831u      /* "SBX1" */
#define SBX_CFG_PREFIX L"Local\\sbx_py_cfg_"

#endif
