/* module_unpriv.c — sandbox_py._unpriv: the unprivileged Linux backends
 * (preload, ptrace) as Python objects.  Kept apart from sandbox_py._core
 * so that it builds without libbpf and loads where BPF never will.
 *
 * On macOS the same module carries only PreloadRun, the reader of the shim
 * log that the interpose dylib writes (same records, same reader; no
 * ptrace there).
 *
 * Each run object wraps one C run; blocking calls release the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <unistd.h>

#include "preload_reader.h"
#if defined(__linux__)
#define SBX_HAVE_PTRACE 1
#include "ptrace_tracer.h"
#include "launch_error.h"
#include "landlock.h"
#include "elfinterp.h"
#include <errno.h>
#include <unistd.h>
#endif
#include "pyresult.h"

/* OSError(errno, message) for a C function that failed and said why in
 * `err`: errno as the failing call left it (cleared before the call), EIO
 * when it set none.  Every error of this module carries an errno. */
static void raise_os(const char *err)
{
    int e = errno ? errno : EIO;
    PyObject *v = Py_BuildValue("(is)", e, err);
    if (v) {
        PyErr_SetObject(PyExc_OSError, v);
        Py_DECREF(v);
    }
}

/* ---- PreloadRun ---------------------------------------------------------------*/
typedef struct {
    PyObject_HEAD
    struct sbx_preload_run *run;
    long owner;                   /* the pid that made it: its reader thread lives there */
} PreloadRun;

static int preload_init(PreloadRun *self, PyObject *args, PyObject *kw)
{
    char err[512];
    static char *kwlist[] = {"named", "attach", NULL};
    int named = 0;
    PyObject *attach = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pO&", kwlist, &named, PyUnicode_FSConverter,
                                     &attach))
        return -1;
    self->owner = (long)getpid();
    if (attach) {
        /* a log made by preload_log_create() before this process was
         * re-executed under the shim: read in windows */
        errno = 0;
        self->run = sbx_preload_attach(PyBytes_AS_STRING(attach), err, sizeof err);
        Py_DECREF(attach);
    } else {
        errno = 0;
        self->run = sbx_preload_begin(named, err, sizeof err);
    }
    if (!self->run) {
        raise_os(err);
        return -1;
    }
    return 0;
}

static void preload_dealloc(PreloadRun *self)
{
    if (self->run && (long)getpid() != self->owner) {
        /* a forked child's copy: the reader thread and the log are the
         * parent's, nothing here to stop or remove */
        self->run = NULL;
    } else if (self->run) {
        struct sbx_preload_run *run = self->run;
        self->run = NULL;
        Py_BEGIN_ALLOW_THREADS
        sbx_result_free(sbx_preload_end(run));
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int preload_live(PreloadRun *self)
{
    if (!self->run) {
        PyErr_SetString(PyExc_ValueError, "this preload run has already finished");
        return 0;
    }
    if ((long)getpid() != self->owner) {
        PyErr_SetString(PyExc_ValueError, "this preload run belongs to the process this "
                                          "one was forked from");
        return 0;
    }
    return 1;
}

static PyObject *preload_log_path(PreloadRun *self, void *closure)
{
    if (!preload_live(self))
        return NULL;
    return PyUnicode_DecodeFSDefault(sbx_preload_log_path(self->run));
}

static PyObject *preload_set_root(PreloadRun *self, PyObject *args)
{
    int pid;
    PyObject *argv0;
    if (!PyArg_ParseTuple(args, "iO&", &pid, PyUnicode_FSConverter, &argv0))
        return NULL;
    if (!preload_live(self)) {
        Py_DECREF(argv0);
        return NULL;
    }
    sbx_preload_root(self->run, pid, PyBytes_AS_STRING(argv0));
    Py_DECREF(argv0);
    Py_RETURN_NONE;
}

static PyObject *preload_set_handoff(PreloadRun *self, PyObject *args)
{
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path))
        return NULL;
    if (!preload_live(self)) {
        Py_DECREF(path);
        return NULL;
    }
    sbx_preload_handoff(self->run, PyBytes_AS_STRING(path));
    Py_DECREF(path);
    Py_RETURN_NONE;
}

static PyObject *preload_wait(PreloadRun *self, PyObject *args)
{
    double timeout = -1;
    if (!PyArg_ParseTuple(args, "|d", &timeout) || !preload_live(self))
        return NULL;
    int done;
    Py_BEGIN_ALLOW_THREADS
    done = sbx_preload_wait(self->run, timeout);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(done);
}

static PyObject *preload_kill(PreloadRun *self, PyObject *unused)
{
    if (!preload_live(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    sbx_preload_kill(self->run);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *preload_finish(PreloadRun *self, PyObject *unused)
{
    if (!preload_live(self))
        return NULL;
    struct sbx_preload_run *run = self->run;
    struct sbx_result *res;
    self->run = NULL;
    Py_BEGIN_ALLOW_THREADS
    res = sbx_preload_end(run);
    Py_END_ALLOW_THREADS
    PyObject *d = sbx_result_to_py(res);
    sbx_result_free(res);
    return d;
}

static PyObject *preload_window_begin(PreloadRun *self, PyObject *unused)
{
    char err[512];
    int rc;
    if (!preload_live(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    errno = 0;
    rc = sbx_preload_window_begin(self->run, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        raise_os(err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *preload_window_end(PreloadRun *self, PyObject *args)
{
    double wait = 1.0;
    int done = 1;
    struct sbx_result *res;
    if (!PyArg_ParseTuple(args, "|d", &wait) || !preload_live(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    res = sbx_preload_window_end(self->run, wait, &done);
    Py_END_ALLOW_THREADS
    if (!res)
        return PyErr_NoMemory();
    PyObject *d = sbx_result_to_py(res);
    sbx_result_free(res);
    if (!d)
        return NULL;
    PyObject *t = Py_BuildValue("(ON)", done ? Py_True : Py_False, d);
    return t;
}

static PyMethodDef preload_methods[] = {
    {"window_begin", (PyCFunction)preload_window_begin, METH_NOARGS,
     "window_begin(): record from now on (a run attached to this process's own log)"},
    {"window_end", (PyCFunction)preload_window_end, METH_VARARGS,
     "window_end(wait=1.0) -> (children_done, dict): stop recording, the window's result"},
    {"set_root", (PyCFunction)preload_set_root, METH_VARARGS,
     "set_root(pid, argv0): the root process of the run"},
    {"set_handoff", (PyCFunction)preload_set_handoff, METH_VARARGS,
     "set_handoff(launcher): static programs are handed to the ptrace backend"},
    {"wait", (PyCFunction)preload_wait, METH_VARARGS,
     "wait(timeout=-1) -> bool: every traced process exited and the log is drained"},
    {"kill", (PyCFunction)preload_kill, METH_NOARGS, "SIGKILL every traced process"},
    {"finish", (PyCFunction)preload_finish, METH_NOARGS,
     "finish() -> dict: stop the run and return its result"},
    {NULL}};

static PyGetSetDef preload_getset[] = {
    {"log_path", (getter)preload_log_path, NULL, "the shared event log (SBX_PRELOAD_LOG)"},
    {NULL}};

static PyTypeObject PreloadRunType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sandbox_py._unpriv.PreloadRun",
    .tp_basicsize = sizeof(PreloadRun),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One run of the preload backend: the log its shims write to.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)preload_init,
    .tp_dealloc = (destructor)preload_dealloc,
    .tp_methods = preload_methods,
    .tp_getset = preload_getset,
};

#ifdef SBX_HAVE_PTRACE
/* ---- PtraceRun --------------------------------------------------------------------*/
typedef struct {
    PyObject_HEAD
    struct sbx_ptrace_run *run;
} PtraceRun;

static int ptrace_init(PtraceRun *self, PyObject *args, PyObject *kw)
{
    char err[512];
    if (!PyArg_ParseTuple(args, ""))
        return -1;
    errno = 0;
    self->run = sbx_ptrace_begin(err, sizeof err);
    if (!self->run) {
        raise_os(err);
        return -1;
    }
    return 0;
}

static void ptrace_dealloc(PtraceRun *self)
{
    if (self->run) {
        struct sbx_ptrace_run *run = self->run;
        self->run = NULL;
        Py_BEGIN_ALLOW_THREADS
        sbx_ptrace_kill(run);
        sbx_result_free(sbx_ptrace_end(run));
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ptrace_live(PtraceRun *self)
{
    if (!self->run) {
        PyErr_SetString(PyExc_ValueError, "this ptrace run has already finished");
        return 0;
    }
    return 1;
}

static PyObject *ptrace_gate_fd(PtraceRun *self, void *closure)
{
    if (!ptrace_live(self))
        return NULL;
    return PyLong_FromLong(sbx_ptrace_gate_fd(self->run));
}

static PyObject *ptrace_attach(PtraceRun *self, PyObject *args)
{
    int pid;
    PyObject *argv0;
    if (!PyArg_ParseTuple(args, "iO&", &pid, PyUnicode_FSConverter, &argv0))
        return NULL;
    if (!ptrace_live(self)) {
        Py_DECREF(argv0);
        return NULL;
    }
    char err[512];
    int rc;
    Py_BEGIN_ALLOW_THREADS
    errno = 0;
    rc = sbx_ptrace_attach(self->run, pid, PyBytes_AS_STRING(argv0), err, sizeof err);
    Py_END_ALLOW_THREADS
    Py_DECREF(argv0);
    if (rc < 0) {
        raise_os(err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *ptrace_wait(PtraceRun *self, PyObject *args)
{
    double timeout = -1;
    if (!PyArg_ParseTuple(args, "|d", &timeout) || !ptrace_live(self))
        return NULL;
    int done;
    Py_BEGIN_ALLOW_THREADS
    done = sbx_ptrace_wait(self->run, timeout);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(done);
}

static PyObject *ptrace_kill(PtraceRun *self, PyObject *unused)
{
    if (!ptrace_live(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    sbx_ptrace_kill(self->run);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *ptrace_finish(PtraceRun *self, PyObject *unused)
{
    if (!ptrace_live(self))
        return NULL;
    struct sbx_ptrace_run *run = self->run;
    struct sbx_result *res;
    self->run = NULL;
    Py_BEGIN_ALLOW_THREADS
    res = sbx_ptrace_end(run);
    Py_END_ALLOW_THREADS
    PyObject *d = sbx_result_to_py(res);
    sbx_result_free(res);
    return d;
}

static PyObject *ptrace_set_breakaway(PtraceRun *self, PyObject *args)
{
    PyObject *decl, *keeper;
    if (!PyArg_ParseTuple(args, "O&O&", PyUnicode_FSConverter, &decl, PyUnicode_FSConverter,
                          &keeper))
        return NULL;
    int rc = ptrace_live(self) ? sbx_ptrace_set_breakaway(self->run, PyBytes_AS_STRING(decl),
                                                          PyBytes_AS_STRING(keeper)) : -2;
    Py_DECREF(decl);
    Py_DECREF(keeper);
    if (rc == -2)
        return NULL;
    if (rc < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef ptrace_methods[] = {
    {"set_breakaway", (PyCFunction)ptrace_set_breakaway, METH_VARARGS,
     "set_breakaway(declaration, keeper): processes whose exec matches leave the run"},
    {"attach", (PyCFunction)ptrace_attach, METH_VARARGS,
     "attach(pid, argv0): trace the root, which waits on the gate"},
    {"wait", (PyCFunction)ptrace_wait, METH_VARARGS,
     "wait(timeout=-1) -> bool: every traced process exited"},
    {"kill", (PyCFunction)ptrace_kill, METH_NOARGS, "SIGKILL every traced process"},
    {"finish", (PyCFunction)ptrace_finish, METH_NOARGS,
     "finish() -> dict: stop the run and return its result"},
    {NULL}};

static PyGetSetDef ptrace_getset[] = {
    {"gate_fd", (getter)ptrace_gate_fd, NULL,
     "fd the child's launcher blocks on until it is traced"},
    {NULL}};

static PyTypeObject PtraceRunType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sandbox_py._unpriv.PtraceRun",
    .tp_basicsize = sizeof(PtraceRun),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One run of the ptrace backend.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ptrace_init,
    .tp_dealloc = (destructor)ptrace_dealloc,
    .tp_methods = ptrace_methods,
    .tp_getset = ptrace_getset,
};

static PyObject *ptrace_probe(PyObject *mod, PyObject *unused)
{
    char why[512];
    int ok = sbx_ptrace_available(why, sizeof why);
    return Py_BuildValue("(Os)", ok ? Py_True : Py_False, why);
}

#endif

#ifdef SBX_HAVE_PTRACE
/* ---- Landlock (sandbox_py/_landlock.py) ---------------------------------------*/
static PyObject *landlock_abi(PyObject *mod, PyObject *unused)
{
    int abi = sbx_landlock_abi();
    return Py_BuildValue("(ii)", abi, abi ? 0 : errno);
}

/* landlock_ruleset(abi, [(path: bytes, kind: int)]) -> (fd, [(path, errno)]):
 * the ruleset, and the rules that could not be added (a path that does not
 * exist).  The caller owns the fd. */
static PyObject *landlock_ruleset(PyObject *mod, PyObject *args)
{
    int abi;
    PyObject *rules;
    if (!PyArg_ParseTuple(args, "iO!", &abi, &PyList_Type, &rules))
        return NULL;
    int fd = sbx_landlock_ruleset(abi);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    PyObject *skipped = PyList_New(0);
    if (!skipped) {
        close(fd);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rules); i++) {
        PyObject *path;
        unsigned kind;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(rules, i), "O&I", PyUnicode_FSConverter,
                              &path, &kind))
            goto fail;
        if (sbx_landlock_allow(fd, abi, PyBytes_AS_STRING(path), kind) < 0) {
            PyObject *t = Py_BuildValue("(Oi)", path, errno);
            if (!t || PyList_Append(skipped, t) < 0) {
                Py_XDECREF(t);
                Py_DECREF(path);
                goto fail;
            }
            Py_DECREF(t);
        }
        Py_DECREF(path);
    }
    return Py_BuildValue("(iN)", fd, skipped);
fail:
    close(fd);
    Py_DECREF(skipped);
    return NULL;
}

/* landlock_allow(fd, abi, path, kind): one more rule. */
static PyObject *landlock_allow(PyObject *mod, PyObject *args)
{
    int fd, abi;
    unsigned kind;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "iiO&I", &fd, &abi, PyUnicode_FSConverter, &path, &kind))
        return NULL;
    int r = sbx_landlock_allow(fd, abi, PyBytes_AS_STRING(path), kind);
    if (r < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    Py_RETURN_NONE;
}

/* elf_interp(path) -> str | None: the PT_INTERP an ELF file names ("" for
 * none: static, or not ELF), None when it cannot be read. */
static PyObject *elf_interp(PyObject *mod, PyObject *args)
{
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path))
        return NULL;
    char out[4096];
    long n = sbx_elf_interp(PyBytes_AS_STRING(path), out, sizeof out);
    Py_DECREF(path);
    if (n < 0)
        Py_RETURN_NONE;
    return PyUnicode_DecodeFSDefaultAndSize(out, n);
}

/* landlock_restrict(fd): for a preexec_fn, between fork and exec. */
static PyObject *landlock_restrict(PyObject *mod, PyObject *args)
{
    int fd;
    if (!PyArg_ParseTuple(args, "i", &fd))
        return NULL;
    if (sbx_landlock_restrict(fd) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}
#endif

static PyObject *preload_log_create(PyObject *mod, PyObject *unused)
{
    char path[256], err[512];
    errno = 0;
    if (sbx_preload_log_create(path, sizeof path, err, sizeof err) < 0) {
        raise_os(err);
        return NULL;
    }
    return PyUnicode_DecodeFSDefault(path);
}

static PyObject *preload_self_quiet(PyObject *mod, PyObject *args)
{
    int on;
    if (!PyArg_ParseTuple(args, "p", &on))
        return NULL;
    return PyBool_FromLong(sbx_preload_self_quiet(on) == 0);
}

static PyObject *preload_self_breakaway(PyObject *mod, PyObject *args)
{
    PyObject *text;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &text))
        return NULL;
    int rc = sbx_preload_self_breakaway(PyBytes_AS_STRING(text));
    Py_DECREF(text);
    return PyBool_FromLong(rc == 0);
}

static PyMethodDef module_methods[] = {
    {"preload_self_quiet", preload_self_quiet, METH_VARARGS,
     "preload_self_quiet(on) -> bool: this thread's calls not recorded by this process's shim"},
    {"preload_self_breakaway", preload_self_breakaway, METH_VARARGS,
     "preload_self_breakaway(text) -> bool: this process's own shim's breakaway declaration"},
    {"preload_log_create", preload_log_create, METH_NOARGS,
     "preload_log_create() -> path: a paused event log for PreloadRun(attach=path)"},
#ifdef SBX_HAVE_PTRACE
    {"landlock_abi", landlock_abi, METH_NOARGS,
     "landlock_abi() -> (abi, errno): the Landlock ABI in use here (0: none)"},
    {"landlock_ruleset", landlock_ruleset, METH_VARARGS,
     "landlock_ruleset(abi, [(path, kind)]) -> (fd, [(path, errno)])"},
    {"landlock_allow", landlock_allow, METH_VARARGS,
     "landlock_allow(fd, abi, path, kind): add one rule to a ruleset"},
    {"landlock_restrict", landlock_restrict, METH_VARARGS,
     "landlock_restrict(fd): restrict this process to the ruleset"},
    {"elf_interp", elf_interp, METH_VARARGS,
     "elf_interp(path) -> str | None: the ELF file's PT_INTERP ('' for none)"},
    {"ptrace_available", ptrace_probe, METH_NOARGS,
     "ptrace_available() -> (bool, reason): can this process trace its children"},
#endif
    {NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "sandbox_py._unpriv",
    "The unprivileged Linux backends: preload and ptrace.", -1, module_methods};

PyMODINIT_FUNC PyInit__unpriv(void)
{
    if (PyType_Ready(&PreloadRunType) < 0)
        return NULL;
#ifdef SBX_HAVE_PTRACE
    if (PyType_Ready(&PtraceRunType) < 0)
        return NULL;
#endif
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    Py_INCREF(&PreloadRunType);
    if (PyModule_AddObject(m, "PreloadRun", (PyObject *)&PreloadRunType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifdef SBX_HAVE_PTRACE
    Py_INCREF(&PtraceRunType);
    if (PyModule_AddObject(m, "PtraceRun", (PyObject *)&PtraceRunType) < 0 ||
        PyModule_AddStringConstant(m, "LAUNCH_ERROR_FORMAT", SBX_LAUNCH_ERROR_FORMAT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    return m;
}
