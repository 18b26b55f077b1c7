/* launcher.c — see launcher.h.
 *
 * Threads: the caller's thread starts and waits for the tree; one listener
 * thread accepts pipe connections, one at a time (each traced process
 * connects once, when the DLL starts); one reader thread per connection
 * copies whole records into a shared list.  Records carry a
 * QueryPerformanceCounter time, so events of different processes are put
 * back in the order they happened before the order-dependent rules of
 * pathset.c (created-then-read is not a read) and the open-file ledger are
 * applied.  Each record is attributed to the process whose connection
 * carried it (the pid its HELLO gave): the result keeps one record per
 * process of the tree (result.h), each hung under the process that created
 * it, with its own sets.
 */
#include "launcher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "access.h"
#include "cmdline.h"
#include "inject.h"
#include "winpath.h"
#include "winpolicy.h"
#include "wire.h"

#define PIPE_BUF_SIZE 65536
#define SBX_PATH_MAX_ROOT 4096

struct rec {
    uint64_t time;
    size_t seq;
    uint32_t pid;       /* the process that sent it */
    uint8_t *data;      /* whole record, header included */
};

struct conn {
    uint32_t pid;       /* 0 until HELLO */
    int bye;
};

struct collector {
    CRITICAL_SECTION cs;
    wchar_t pipe[96];
    volatile LONG stopping;
    HANDLE next;        /* the instance the listener waits on */
    struct rec *recs;
    size_t nrecs, cap_recs;
    struct conn *conns;
    size_t nconns, cap_conns;
    HANDLE *readers;
    size_t nreaders, cap_readers;
    int out_of_memory;
    DWORD connect_error;   /* a ConnectNamedPipe failure we could not read past */
};

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static HANDLE new_instance(struct collector *c, int first)
{
    return CreateNamedPipeW(c->pipe,
                            PIPE_ACCESS_INBOUND | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
                            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                            PIPE_UNLIMITED_INSTANCES, 0, PIPE_BUF_SIZE, 0, NULL);
}

struct reader_arg {
    struct collector *c;
    HANDLE pipe;
    size_t conn;
};

static void keep_record(struct collector *c, size_t conn, const uint8_t *p, uint32_t len)
{
    struct sbx_wire_hdr h;
    memcpy(&h, p, sizeof h);
    EnterCriticalSection(&c->cs);
    if (h.type == SBX_MSG_HELLO && len >= sizeof h + sizeof(struct sbx_wire_hello)) {
        struct sbx_wire_hello hello;
        memcpy(&hello, p + sizeof h, sizeof hello);
        c->conns[conn].pid = hello.pid;
    } else if (h.type == SBX_MSG_BYE) {
        c->conns[conn].bye = 1;
    } else if (h.type == SBX_MSG_STOP) {
        ;
    } else {
        uint8_t *copy = malloc(len);
        if (!copy || grow((void **)&c->recs, &c->cap_recs, c->nrecs, sizeof *c->recs) < 0) {
            free(copy);
            c->out_of_memory = 1;
        } else {
            memcpy(copy, p, len);
            c->recs[c->nrecs].time = h.time;
            c->recs[c->nrecs].seq = c->nrecs;
            c->recs[c->nrecs].pid = c->conns[conn].pid;
            c->recs[c->nrecs].data = copy;
            c->nrecs++;
        }
    }
    LeaveCriticalSection(&c->cs);
}

static DWORD WINAPI reader_main(void *varg)
{
    struct reader_arg *a = varg;
    size_t cap = PIPE_BUF_SIZE, have = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (have == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        DWORD got = 0;
        if (!ReadFile(a->pipe, buf + have, (DWORD)(cap - have), &got, NULL) || got == 0)
            break;          /* the process closed its end: it has exited */
        have += got;
        size_t off = 0;
        while (have - off >= sizeof(struct sbx_wire_hdr)) {
            struct sbx_wire_hdr h;
            memcpy(&h, buf + off, sizeof h);
            if (h.len < sizeof h) {
                have = off = 0;     /* corrupt stream: drop the connection's data */
                goto out;
            }
            if (have - off < h.len)
                break;
            keep_record(a->c, a->conn, buf + off, h.len);
            off += h.len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
out:
    free(buf);
    CloseHandle(a->pipe);
    free(a);
    return 0;
}

static DWORD WINAPI listener_main(void *varg)
{
    struct collector *c = varg;
    for (;;) {
        HANDLE p = c->next;
        /* ERROR_PIPE_CONNECTED: the client came first; ERROR_NO_DATA: it
         * came, wrote and closed before we got here (a short process while
         * this thread was not scheduled) — its records are still to read. */
        BOOL ok = ConnectNamedPipe(p, NULL);
        DWORD e = ok ? 0 : GetLastError();
        ok = ok || e == ERROR_PIPE_CONNECTED || e == ERROR_NO_DATA;
        if (!ok)
            c->connect_error = e;
        /* Open the next instance at once: a client finding none waits. */
        c->next = new_instance(c, 0);
        if (ok) {
            struct reader_arg *a = malloc(sizeof *a);
            HANDLE t = NULL;
            EnterCriticalSection(&c->cs);
            if (a && grow((void **)&c->conns, &c->cap_conns, c->nconns, sizeof *c->conns) == 0 &&
                grow((void **)&c->readers, &c->cap_readers, c->nreaders, sizeof(HANDLE)) == 0) {
                a->c = c;
                a->pipe = p;
                a->conn = c->nconns;
                c->conns[c->nconns].pid = 0;
                c->conns[c->nconns].bye = 0;
                c->nconns++;
                t = CreateThread(NULL, 64 * 1024, reader_main, a, 0, NULL);
                if (t)
                    c->readers[c->nreaders++] = t;
            }
            if (!t) {
                c->out_of_memory = 1;
                free(a);
                CloseHandle(p);
            }
            LeaveCriticalSection(&c->cs);
        } else {
            CloseHandle(p);
        }
        if (c->stopping || c->next == INVALID_HANDLE_VALUE)
            break;
    }
    if (c->next != INVALID_HANDLE_VALUE)
        CloseHandle(c->next);
    return 0;
}

/* The tree is gone: every client that ever connected has been accepted
 * once a connection of our own gets through (instances are served one at
 * a time), so wake the listener with one and let it finish. */
static void stop_listener(struct collector *c, HANDLE listener)
{
    InterlockedExchange(&c->stopping, 1);
    while (WaitForSingleObject(listener, 0) == WAIT_TIMEOUT) {
        HANDLE h = CreateFileW(c->pipe, GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            struct sbx_wire_hdr stop = {SBX_MSG_STOP, 0, sizeof stop, 0};
            DWORD w;
            WriteFile(h, &stop, sizeof stop, &w, NULL);
            CloseHandle(h);
            break;
        }
        if (GetLastError() == ERROR_PIPE_BUSY)
            WaitNamedPipeW(c->pipe, 50);
        else
            Sleep(1);
    }
    WaitForSingleObject(listener, INFINITE);
    for (size_t i = 0; i < c->nreaders; i++) {
        WaitForSingleObject(c->readers[i], INFINITE);
        CloseHandle(c->readers[i]);
    }
}

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* UTF-16 (len units) to a malloc'd UTF-8 string. */
static char *utf8(const uint16_t *w, size_t len)
{
    size_t cap = len * 3 + 1;
    char *s = malloc(cap);
    if (s && sbx_utf16_to_utf8(s, cap, w, len) < 0) {
        free(s);
        s = NULL;
    }
    return s;
}

/* An access of process pid (0: a connection that never said which, which
 * the DLL does not make: the run's sets only). */
static void add_path(struct sbx_result *r, uint32_t pid, unsigned flags, const uint16_t *w,
                     size_t len)
{
    char *s = utf8(w, len);
    int rc = !s ? -1
             : pid ? sbx_result_record(r, pid, s, strlen(s), flags)
                   : sbx_pathset_add(r->paths, s, strlen(s), flags);
    if (rc < 0)
        sbx_result_warn(r, "out of memory while collecting paths; some are missing");
    free(s);
}

/* An open file of process pid let go unused: the ledger settles it. */
static void settle_unused(struct sbx_result *r, uint32_t pid, const uint16_t *w, size_t len)
{
    char *s = utf8(w, len);
    int rc = !s ? -1
             : pid ? sbx_result_settle(r, pid, s, strlen(s), 0)
                   : sbx_ledger_settle(r->paths, s, strlen(s), 0);
    if (rc < 0)
        sbx_result_warn(r, "out of memory while collecting paths; some are missing");
    free(s);
}

static void add_exec(struct sbx_result *r, int64_t pid, int64_t ppid, const char *path,
                     const char *const *argv, size_t argc)
{
    if (sbx_result_add_exec(r, pid, ppid, path, argv, argc) < 0)
        sbx_result_warn(r, "out of memory while collecting execs; some are missing");
}

/* ---- the policy ------------------------------------------------------------------ */
static void add_denial(struct sbx_win_denials *d, const char *path, enum sbx_policy_need need,
                       uint32_t pid)
{
    char *copy = path ? _strdup(path) : NULL;
    if (!d || !copy || grow((void **)&d->v, &d->cap, d->n, sizeof *d->v) < 0) {
        free(copy);
        return;
    }
    d->v[d->n].path = copy;
    d->v[d->n].category = sbx_policy_need_name(need);
    d->v[d->n].pid = pid;
    d->n++;
}

void sbx_win_denials_free(struct sbx_win_denials *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].path);
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

typedef WCHAR(NTAPI *upcase_t)(WCHAR);
static upcase_t upcase;

/* The hook DLL's comparison (shims/windows/enforce.c): ntdll's simple
 * upper-case mapping. */
static uint16_t fold(uint16_t c)
{
    return upcase(c);
}

/* The policy in a section every process of the tree can only read: its
 * security descriptor grants read access and nothing else to everyone,
 * the owner included (OWNER RIGHTS), so a handle to it cannot be
 * duplicated into a writable one either.  We, its creator, get the access
 * we ask for and write the policy once. */
static HANDLE policy_section(const void *blob, size_t len, char *err, size_t errlen)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    HANDLE s = NULL;
    void *view = NULL;
    typedef BOOL(WINAPI * conv_t)(LPCWSTR, DWORD, PSECURITY_DESCRIPTOR *, PULONG);
    conv_t conv = (conv_t)(void *)GetProcAddress(LoadLibraryW(L"advapi32.dll"),
                                                 "ConvertStringSecurityDescriptorToSecurityDescriptorW");
    if (conv && conv(L"D:P(A;;GR;;;WD)(A;;GR;;;OW)", 1 /* SDDL_REVISION_1 */, &sd, NULL)) {
        SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
        s = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE, 0, (DWORD)len, NULL);
        view = s ? MapViewOfFile(s, FILE_MAP_WRITE, 0, 0, 0) : NULL;
    }
    if (!view) {
        snprintf(err, errlen, "cannot create the policy section (Win32 error %lu)",
                 (unsigned long)GetLastError());
        if (s)
            CloseHandle(s);
        s = NULL;
    } else {
        memcpy(view, blob, len);
        UnmapViewOfFile(view);
    }
    if (sd)
        LocalFree(sd);
    return s;
}

static void apply_denied(struct sbx_win_denials *d, const struct sbx_wire_hdr *h,
                         const uint8_t *pay, size_t plen)
{
    uint32_t pid;
    if (plen < sizeof pid)
        return;
    memcpy(&pid, pay, sizeof pid);
    size_t units = (plen - sizeof pid) / 2;
    uint16_t *w = malloc(units * 2 + 2);
    if (!w)
        return;
    memcpy(w, pay + sizeof pid, units * 2);
    char *s = utf8(w, units);
    if (s)
        add_denial(d, s, (enum sbx_policy_need)h->flags, pid);
    free(s);
    free(w);
}

/* An exec's image is read by the process that runs it (the model's
 * exec), in that process's record. */
static void add_image_read(struct sbx_result *r, DWORD pid, const char *path)
{
    if (path[0] && sbx_result_record(r, pid, path, strlen(path),
                                     sbx_access_classify(SBX_OP_EXEC, 1).first) < 0)
        sbx_result_warn(r, "out of memory while collecting paths; some are missing");
}

/* A process created by a traced one (a fork and an exec at once on
 * Windows): its exec record hangs under its creator's record. */
static void apply_exec(struct sbx_result *r, const struct sbx_wire_hdr *h, const uint8_t *w,
                       size_t plen)
{
    struct sbx_wire_exec x;
    if (plen < sizeof x)
        return;
    memcpy(&x, w, sizeof x);
    size_t units = (plen - sizeof x) / 2;
    if (x.path_chars > units || x.cwd_chars > units - x.path_chars)
        return;
    const uint16_t *path = (const uint16_t *)(w + sizeof x);
    const uint16_t *cwd = path + x.path_chars;
    size_t clen = units - x.path_chars - x.cwd_chars;
    wchar_t *cmd = malloc((clen + 1) * sizeof *cmd);
    char *upath = utf8(path, x.path_chars);
    char *ucwd = x.cwd_chars ? utf8(cwd, x.cwd_chars) : NULL;
    if (cmd && upath) {
        memcpy(cmd, cwd + x.cwd_chars, clen * 2);
        cmd[clen] = 0;
        char **argv = NULL;
        size_t argc = sbx_win_split_cmdline((const uint16_t *)cmd, &argv);
        if (h->flags & SBX_WIRE_BREAKAWAY) {
            sbx_result_add_breakaway(r, x.pid, x.ppid, upath, (const char *const *)argv, argc);
        } else {
            add_exec(r, x.pid, x.ppid, upath, (const char *const *)argv, argc);
            if (ucwd && sbx_result_proc_cwd(r, x.pid, ucwd) < 0)
                sbx_result_warn(r, "out of memory while collecting execs; some are missing");
            add_image_read(r, x.pid, upath);
        }
        free(argv);
    }
    free(cmd);
    free(upath);
    free(ucwd);
}

static void apply(struct sbx_result *r, const struct rec *rec, struct sbx_win_denials *denied)
{
    struct sbx_wire_hdr h;
    memcpy(&h, rec->data, sizeof h);
    const uint8_t *pay = rec->data + sizeof h;
    size_t plen = h.len - sizeof h;
    uint16_t *w = malloc(plen + 2);
    if (!w)
        return;
    memcpy(w, pay, plen);
    if (h.type == SBX_MSG_DENIED) {
        apply_denied(denied, &h, pay, plen);
    } else if (h.type == SBX_MSG_PATH) {
        add_path(r, rec->pid, h.flags, w, plen / 2);
    } else if (h.type == SBX_MSG_UNUSED) {
        settle_unused(r, rec->pid, w, plen / 2);
    } else if (h.type == SBX_MSG_WARN) {
        char *s = utf8(w, plen / 2);
        if (s)
            sbx_result_warn(r, "%s", s);
        free(s);
    } else if (h.type == SBX_MSG_EXEC) {
        apply_exec(r, &h, (const uint8_t *)w, plen);
    }
    free(w);
}

/* ---- the job's members -------------------------------------------------------
 * The job's completion port names every process that joins the tree, also
 * ones no hook saw created.  Two kinds of such process are recognised as
 * the system's own helpers, not steps of the build:
 *
 * - the console host, <system directory>\conhost.exe: under Wine a child
 *   started with CREATE_NEW_CONSOLE or CREATE_NO_WINDOW (and so every
 *   ShellExecuteExW child) has its kernelbase start it while the loader
 *   initialises, before the hook DLL is in; on Windows the console driver
 *   starts it for the program.  It is a terminal: it reads no input of the
 *   build.
 * - under Wine, <system directory>\explorer.exe started by such a console
 *   host: Wine's desktop process, started when the first console window of
 *   a session needs a desktop.
 *
 * Any other process the console host started, and any process started by
 * these two, is counted like every other, so nothing can run unseen behind
 * them.  A process that joined and did not report in, and is not one of
 * these, makes the run incomplete and is named in the warning. */
struct member {
    DWORD pid;
    HANDLE process;     /* kept: the image name and parent are asked after it ran */
};

struct job_watch {
    HANDLE port;
    HANDLE thread;
    CRITICAL_SECTION cs;
    struct member *m;
    size_t n, cap;
    wchar_t conhost[MAX_PATH + 16];   /* normal paths of the system's helpers */
    wchar_t explorer[MAX_PATH + 16];
};

/* Normal image path of a process, into out (SBX_PATH_MAX_ROOT units); 0 when
 * unknown.  Asked after the process ran: when the job announces it, a new
 * process has no image name yet (Wine answers ERROR_INVALID_HANDLE), and the
 * name stays on the process object after it exited. */
static size_t image_of(HANDLE p, uint16_t *out)
{
    wchar_t image[SBX_PATH_MAX_ROOT];
    DWORD n = SBX_PATH_MAX_ROOT;
    if (!p || !QueryFullProcessImageNameW(p, 0, image, &n))
        return 0;
    long l = sbx_winpath_normal(out, SBX_PATH_MAX_ROOT, (const uint16_t *)image, n);
    return l < 0 ? 0 : (size_t)l;
}

static int same_path(const uint16_t *a, size_t alen, const wchar_t *b)
{
    size_t blen = wcslen(b);
    return blen && alen == blen &&
           CompareStringOrdinal((const wchar_t *)a, (int)alen, b, (int)blen, TRUE) == CSTR_EQUAL;
}

static DWORD parent_of(HANDLE p)
{
    typedef LONG(NTAPI * qip_t)(HANDLE, int, PVOID, ULONG, PULONG);
    static qip_t qip;
    if (!qip)
        qip = (qip_t)(void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                                            "NtQueryInformationProcess");
    /* PROCESS_BASIC_INFORMATION: ExitStatus, PebBaseAddress, AffinityMask,
     * BasePriority, UniqueProcessId, InheritedFromUniqueProcessId */
    ULONG_PTR pbi[6];
    if (!p || !qip || qip(p, 0 /* ProcessBasicInformation */, pbi, sizeof pbi, NULL) < 0)
        return 0;
    return (DWORD)pbi[5];
}

static int running_on_wine(void)
{
    return GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") != NULL;
}

#define WATCH_STOP ((ULONG_PTR)1)

static DWORD WINAPI watch_main(void *varg)
{
    struct job_watch *w = varg;
    for (;;) {
        DWORD msg;
        ULONG_PTR key;
        LPOVERLAPPED ov;
        if (!GetQueuedCompletionStatus(w->port, &msg, &key, &ov, INFINITE))
            break;
        if (key == WATCH_STOP)
            break;
        if (msg != JOB_OBJECT_MSG_NEW_PROCESS)
            continue;
        DWORD pid = (DWORD)(ULONG_PTR)ov;
        HANDLE p = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
        EnterCriticalSection(&w->cs);
        if (grow((void **)&w->m, &w->cap, w->n, sizeof *w->m) == 0) {
            w->m[w->n].pid = pid;
            w->m[w->n].process = p;
            w->n++;
        } else if (p) {
            CloseHandle(p);
        }
        LeaveCriticalSection(&w->cs);
    }
    return 0;
}

/* Attach to the job before any process is in it. Returns 0 or -1 (then
 * the run goes on without excusing console hosts); watch_free either way. */
static int watch_start(struct job_watch *w, HANDLE job)
{
    memset(w, 0, sizeof *w);
    InitializeCriticalSection(&w->cs);
    wchar_t sys[MAX_PATH];
    UINT sl = GetSystemDirectoryW(sys, MAX_PATH);
    if (sl > 0 && sl < MAX_PATH) {
        wchar_t raw[MAX_PATH + 16];
        _snwprintf(raw, MAX_PATH + 16, L"%ls\\conhost.exe", sys);
        raw[MAX_PATH + 15] = 0;
        if (sbx_winpath_normal((uint16_t *)w->conhost, MAX_PATH + 16, (const uint16_t *)raw,
                               wcslen(raw)) < 0)
            w->conhost[0] = 0;
        _snwprintf(raw, MAX_PATH + 16, L"%ls\\explorer.exe", sys);
        raw[MAX_PATH + 15] = 0;
        if (!running_on_wine() ||
            sbx_winpath_normal((uint16_t *)w->explorer, MAX_PATH + 16, (const uint16_t *)raw,
                               wcslen(raw)) < 0)
            w->explorer[0] = 0;
    }
    w->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!w->port)
        return -1;
    JOBOBJECT_ASSOCIATE_COMPLETION_PORT acp = {job, w->port};
    if (!SetInformationJobObject(job, JobObjectAssociateCompletionPortInformation, &acp,
                                 sizeof acp) ||
        !(w->thread = CreateThread(NULL, 64 * 1024, watch_main, w, 0, NULL))) {
        CloseHandle(w->port);
        w->port = NULL;
        return -1;
    }
    return 0;
}

/* The job is empty: every NEW_PROCESS message was queued before the last
 * process exited, so a stop message posted now comes after all of them. */
static void watch_stop(struct job_watch *w)
{
    if (w->thread) {
        PostQueuedCompletionStatus(w->port, 0, WATCH_STOP, NULL);
        WaitForSingleObject(w->thread, INFINITE);
        CloseHandle(w->thread);
        w->thread = NULL;
    }
    if (w->port) {
        CloseHandle(w->port);
        w->port = NULL;
    }
}

static void watch_free(struct job_watch *w)
{
    watch_stop(w);
    for (size_t i = 0; i < w->n; i++)
        if (w->m[i].process)
            CloseHandle(w->m[i].process);
    free(w->m);
    DeleteCriticalSection(&w->cs);
}

/* The command the launcher started: the first record of the run. */
struct root {
    DWORD pid;
    const char *path;         /* its image (UTF-8, normal), "" when unknown */
    const char *cwd;          /* where it started, NULL when unknown */
    const char *const *argv;
    size_t argc;
};

static struct sbx_result *build(struct collector *c, HANDLE job, struct job_watch *w,
                                struct sbx_win_denials *denied, const struct root *root)
{
    struct sbx_result *r = sbx_result_new();
    if (!r)
        return NULL;
    /* The root first: every other record hangs below it. */
    add_exec(r, root->pid, GetCurrentProcessId(), root->path, root->argv, root->argc);
    if (root->cwd && sbx_result_proc_cwd(r, root->pid, root->cwd) < 0)
        sbx_result_warn(r, "out of memory while collecting execs; some are missing");
    add_image_read(r, root->pid, root->path);
    qsort(c->recs, c->nrecs, sizeof *c->recs, cmp_rec);
    for (size_t i = 0; i < c->nrecs; i++)
        apply(r, &c->recs[i], denied);
    /* Every process of the job was kept open by the watch: its exit code
     * is there to ask (a pid the run reused ends up with the last one's). */
    for (size_t i = 0; i < w->n; i++) {
        DWORD code;
        if (w->m[i].process && GetExitCodeProcess(w->m[i].process, &code) &&
            code != STILL_ACTIVE)
            sbx_result_proc_exit(r, w->m[i].pid, (int)code);
    }
    size_t hellos = 0;
    for (size_t i = 0; i < c->nconns; i++) {
        if (!c->conns[i].pid)
            continue;
        hellos++;
        if (!c->conns[i].bye)
            sbx_result_warn(r, "process %lu ended without delivering its last events "
                            "(killed or crashed); some of its accesses may be missing",
                            (unsigned long)c->conns[i].pid);
    }
    /* Processes that did not report in: the system's helpers are excused
     * (see struct member); the others are named in the warning, so the user
     * can tell which program ran unseen. */
    size_t hosts = 0;
    char names[1024];
    size_t nl = 0, named = 0;
    names[0] = 0;
    DWORD *consoles = calloc(w->n + 1, sizeof *consoles);
    size_t nconsoles = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < w->n; i++) {
            int traced = 0;
            for (size_t j = 0; j < c->nconns && !traced; j++)
                traced = c->conns[j].pid == w->m[i].pid;
            if (traced)
                continue;
            uint16_t image[SBX_PATH_MAX_ROOT];
            size_t il = image_of(w->m[i].process, image);
            int console = il && same_path(image, il, w->conhost);
            if (pass == 0) {          /* first the console hosts, so pass 1 knows them */
                if (console && consoles)
                    consoles[nconsoles++] = w->m[i].pid;
                continue;
            }
            int helper = console;
            if (!helper && il && same_path(image, il, w->explorer)) {
                DWORD parent = parent_of(w->m[i].process);
                for (size_t k = 0; k < nconsoles && !helper; k++)
                    helper = parent && consoles[k] == parent;
            }
            if (helper) {
                hosts++;
                continue;
            }
            char *u = il ? utf8(image, il) : NULL;
            if (named++ < 4 && nl < sizeof names - 1) {
                int k = snprintf(names + nl, sizeof names - nl, "%s%s (pid %lu)",
                                 nl ? ", " : ": ", u ? u : "image unknown",
                                 (unsigned long)w->m[i].pid);
                nl = k < 0 ? nl : (nl + (size_t)k >= sizeof names ? sizeof names - 1 : nl + (size_t)k);
            }
            free(u);
        }
    }
    free(consoles);
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
    if (QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct, sizeof acct,
                                  NULL) &&
        acct.TotalProcesses > hellos + hosts)
        sbx_result_warn(r, "%lu of %lu processes in the tree ran without the hook DLL "
                        "(created by a call that is not hooked); their accesses are missing%s",
                        (unsigned long)(acct.TotalProcesses - hellos - hosts),
                        (unsigned long)acct.TotalProcesses, names);
    if (c->out_of_memory)
        sbx_result_warn(r, "out of memory while receiving events; some are missing");
    if (c->connect_error)
        sbx_result_warn(r, "the event pipe refused a connection (Win32 error %lu); the events "
                        "of a process may be missing", (unsigned long)c->connect_error);
    return r;
}

static void free_collector(struct collector *c)
{
    for (size_t i = 0; i < c->nrecs; i++)
        free(c->recs[i].data);
    free(c->recs);
    free(c->conns);
    free(c->readers);
    DeleteCriticalSection(&c->cs);
}

static void set_err(char *err, size_t errlen, const char *what, DWORD code)
{
    snprintf(err, errlen, "%s (Win32 error %lu)", what, (unsigned long)code);
}

/* A full Win32 path (n units, in place in `path`, SBX_PATH_MAX_ROOT units)
 * with its 8.3 aliases expanded, in normal form into out.  Length or -1. */
static long long_normal(wchar_t *path, DWORD n, uint16_t *out)
{
    wchar_t longer[SBX_PATH_MAX_ROOT];
    DWORD ln = GetLongPathNameW(path, longer, SBX_PATH_MAX_ROOT);
    if (ln > 0 && ln < SBX_PATH_MAX_ROOT) {
        memcpy(path, longer, (ln + 1) * sizeof *path);
        n = ln;
    }
    return sbx_winpath_normal(out, SBX_PATH_MAX_ROOT, (const uint16_t *)path, n);
}

/* The root's image is an exec like any other: outside the execute trees,
 * it is reported and, when the policy denies, never resumed (1). */
static int refuse_root(const struct sbx_win_run *run, HANDLE process, char *err, size_t errlen)
{
    wchar_t image[SBX_PATH_MAX_ROOT];
    DWORD n = SBX_PATH_MAX_ROOT;
    uint16_t norm[SBX_PATH_MAX_ROOT];
    if (!QueryFullProcessImageNameW(process, 0, image, &n))
        return 0;
    long nl = long_normal(image, n, norm);
    if (nl < 0 || sbx_policy_allows(run->policy, SBX_NEED_EXEC, norm, (size_t)nl, fold))
        return 0;
    char *u = utf8(norm, (size_t)nl);
    add_denial(run->denied, u, SBX_NEED_EXEC, GetProcessId(process));
    struct sbx_policy_hdr h;
    memcpy(&h, run->policy, sizeof h);
    if (h.mode == SBX_POLICY_DENY)
        snprintf(err, errlen, "%s is outside the policy's execute trees", u ? u : "the program");
    free(u);
    return h.mode == SBX_POLICY_DENY;
}

/* Wait for the root, then for every other process of the job. */
static int wait_tree(HANDLE root, HANDLE job, double timeout, LARGE_INTEGER start,
                     LARGE_INTEGER freq)
{
    DWORD ms = timeout < 0 ? INFINITE : (DWORD)(timeout * 1000.0);
    if (WaitForSingleObject(root, ms) != WAIT_OBJECT_0)
        return 0;
    for (unsigned spin = 0;; spin++) {
        JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
        if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct,
                                       sizeof acct, NULL) ||
            acct.ActiveProcesses == 0)
            return 1;
        LARGE_INTEGER now;
        QueryPerformanceCounter(&now);
        if (timeout >= 0 && (double)(now.QuadPart - start.QuadPart) / freq.QuadPart > timeout)
            return 0;
        Sleep(spin < 50 ? 1 : 10);
    }
}

struct sbx_result *sbx_win_run(const struct sbx_win_run *run, double *duration,
                               DWORD *start_error, char *err, size_t errlen)
{
    struct collector c;
    memset(&c, 0, sizeof c);
    InitializeCriticalSection(&c.cs);
    static LONG counter;
    _snwprintf(c.pipe, 96, L"\\\\.\\pipe\\sbx_py_%lu_%ld_%lu", (unsigned long)GetCurrentProcessId(),
               (long)InterlockedIncrement(&counter), (unsigned long)GetTickCount());
    c.pipe[95] = 0;
    *start_error = 0;
    if (errlen)
        err[0] = 0;

    struct sbx_result *r = NULL;
    HANDLE listener = NULL, job = NULL, policy = NULL;
    PROCESS_INFORMATION pi = {0};
    struct job_watch watch;
    int watching = 0;
    memset(&watch, 0, sizeof watch);
    if (run->policy) {
        upcase = (upcase_t)(void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                                                  "RtlUpcaseUnicodeChar");
        if (!upcase || !sbx_policy_valid(run->policy, run->policy_len) ||
            !(policy = policy_section(run->policy, run->policy_len, err, errlen))) {
            if (!policy && err[0] == 0)
                snprintf(err, errlen, "the policy is not well formed");
            *start_error = ERROR_INVALID_PARAMETER;
            goto out;
        }
    }
    sbx_inject_set_policy(policy);
    c.next = new_instance(&c, 1);
    if (c.next == INVALID_HANDLE_VALUE) {
        set_err(err, errlen, "cannot create the event pipe", GetLastError());
        goto out;
    }
    listener = CreateThread(NULL, 0, listener_main, &c, 0, NULL);
    if (!listener) {
        set_err(err, errlen, "cannot start the pipe listener", GetLastError());
        CloseHandle(c.next);
        goto out;
    }
    /* The job holds the whole tree: children join it automatically, it is
     * how we know when the last one exited, and KILL_ON_JOB_CLOSE means the
     * tree dies with us if we are killed. */
    job = CreateJobObjectW(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    memset(&lim, 0, sizeof lim);
    lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    /* a declared breakaway is created outside the job (the hook DLL asks for
     * CREATE_BREAKAWAY_FROM_JOB): not waited for, not killed with it */
    if (run->breakaway && *run->breakaway)
        lim.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_BREAKAWAY_OK;
    if (!job || !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim, sizeof lim)) {
        set_err(err, errlen, "cannot create a job object", GetLastError());
        goto stop;
    }
    /* If the port cannot be attached, console hosts are counted as
     * untraced processes: incomplete, never silently so. */
    watch_start(&watch, job);
    watching = 1;

    LARGE_INTEGER freq, start, end;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&start);
    STARTUPINFOW si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    wchar_t *cmd = _wcsdup(run->cmdline);   /* CreateProcessW may write to it */
    BOOL ok = cmd && CreateProcessW(NULL, cmd, NULL, NULL, TRUE,
                                    CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT, NULL, run->cwd,
                                    &si, &pi);
    DWORD e = GetLastError();
    free(cmd);
    if (!ok) {
        *start_error = e ? e : ERROR_NOT_ENOUGH_MEMORY;
        set_err(err, errlen, "cannot start the command", *start_error);
        goto stop;
    }
    if (policy && refuse_root(run, pi.hProcess, err, errlen)) {
        *start_error = ERROR_ACCESS_DENIED;
        TerminateProcess(pi.hProcess, ERROR_ACCESS_DENIED);
        goto stop;
    }
    if (!AssignProcessToJobObject(job, pi.hProcess)) {
        set_err(err, errlen, "cannot put the command in a job object", GetLastError());
        TerminateProcess(pi.hProcess, 1);
        goto stop;
    }
    wchar_t werr[256];
    DWORD rc = sbx_inject(pi.hProcess, pi.dwProcessId, GetCurrentProcessId(), run->dll, c.pipe,
                          run->breakaway, werr, 256);
    if (rc) {
        snprintf(err, errlen, "cannot load the hook DLL %ls into the command: %ls", run->dll, werr);
        TerminateJobObject(job, 1);
        goto stop;
    }
    ResumeThread(pi.hThread);
    int finished = wait_tree(pi.hProcess, job, run->timeout, start, freq);
    if (!finished) {
        TerminateJobObject(job, 1);
        wait_tree(pi.hProcess, job, 10.0, start, freq);
    }
    QueryPerformanceCounter(&end);
    *duration = (double)(end.QuadPart - start.QuadPart) / freq.QuadPart;
    stop_listener(&c, listener);
    listener = NULL;
    watch_stop(&watch);

    /* The root's image: the name it was started with may be an 8.3 alias,
     * so report the long one, as the hook DLL reports every path. */
    wchar_t image[SBX_PATH_MAX_ROOT];
    DWORD n = SBX_PATH_MAX_ROOT;
    uint16_t norm[SBX_PATH_MAX_ROOT];
    long nl = -1;
    if (QueryFullProcessImageNameW(pi.hProcess, 0, image, &n))
        nl = long_normal(image, n, norm);
    char *upath = nl >= 0 ? utf8(norm, (size_t)nl) : NULL;
    /* ... and where it started: the directory asked for, or ours */
    n = GetFullPathNameW(run->cwd ? run->cwd : L".", SBX_PATH_MAX_ROOT, image, NULL);
    nl = n > 0 && n < SBX_PATH_MAX_ROOT ? long_normal(image, n, norm) : -1;
    char *ucwd = nl >= 0 ? utf8(norm, (size_t)nl) : NULL;
    struct root root = {pi.dwProcessId, upath ? upath : "", ucwd, run->argv, run->argc};
    r = build(&c, job, &watch, run->denied, &root);
    free(upath);
    free(ucwd);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    r->has_status = 1;
    r->status = (int)code;
    sbx_result_proc_exit(r, pi.dwProcessId, (int)code);
    if (!finished)
        sbx_result_warn(r, "timeout after %gs: the whole process tree was killed; accesses "
                        "after that point are missing", run->timeout);
    sbx_result_settle_processes(r);
    goto out;

stop:
    stop_listener(&c, listener);
    listener = NULL;
out:
    if (pi.hProcess) {
        CloseHandle(pi.hProcess);
        CloseHandle(pi.hThread);
    }
    if (watching)
        watch_free(&watch);
    if (job)
        CloseHandle(job);
    if (policy)
        CloseHandle(policy);
    sbx_inject_set_policy(NULL);
    free_collector(&c);
    return r;
}
