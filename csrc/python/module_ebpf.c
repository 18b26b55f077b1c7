/* module.c — the CPython extension sandbox_py._core (Linux).
 *
 * Written against the CPython C API rather than cffi: the event reader is a
 * native thread that must run without the GIL, and the few entry points
 * below release the GIL around every wait, which the C API states plainly.
 * Every function here is a thin wrapper over ebpf.h.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ebpf.h"
#include "pyresult.h"

static pid_t current_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static PyObject *py_ebpf_load(PyObject *self, PyObject *args)
{
    char err[512] = "";
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = sbx_ebpf_load(err, sizeof err);
    Py_END_ALLOW_THREADS
    if (rc) {
        errno = -rc;
        PyObject *e = Py_BuildValue("(is)", -rc, err);
        if (e) {
            PyErr_SetObject(PyExc_OSError, e);
            Py_DECREF(e);
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_run_begin(PyObject *self, PyObject *args)
{
    uint32_t id = sbx_ebpf_run_begin();
    if (!id)
        return PyErr_NoMemory();
    return PyLong_FromUnsignedLong(id);
}

static PyObject *py_spawner_set(PyObject *self, PyObject *args)
{
    unsigned int run;
    if (!PyArg_ParseTuple(args, "I", &run))
        return NULL;
    if (sbx_ebpf_spawner_set(run, current_tid()) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *py_spawner_clear(PyObject *self, PyObject *args)
{
    sbx_ebpf_spawner_clear(current_tid());
    Py_RETURN_NONE;
}

/* Trace every thread of this process; returns the list of tids. */
static PyObject *py_track_self(PyObject *self, PyObject *args)
{
    unsigned int run;
    if (!PyArg_ParseTuple(args, "I", &run))
        return NULL;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, "/proc/self/task");
    PyObject *tids = PyList_New(0);
    struct dirent *de;
    while (tids && (de = readdir(d))) {
        char *end;
        long tid = strtol(de->d_name, &end, 10);
        if (*end || tid <= 0)
            continue;
        if (sbx_ebpf_track_task(run, (pid_t)tid) == 0) {
            PyObject *t = PyLong_FromLong(tid);
            if (!t || PyList_Append(tids, t) < 0)
                Py_CLEAR(tids);
            Py_XDECREF(t);
        }
    }
    closedir(d);
    return tids;
}

static PyObject *py_untrack(PyObject *self, PyObject *arg)
{
    PyObject *it = PyObject_GetIter(arg), *item;
    if (!it)
        return NULL;
    while ((item = PyIter_Next(it))) {
        long tid = PyLong_AsLong(item);
        Py_DECREF(item);
        if (tid == -1 && PyErr_Occurred())
            break;
        sbx_ebpf_untrack_task((pid_t)tid);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* ebpf_run_breakaway(run, [bytes, ...]): the run's declared names and paths. */
static PyObject *py_run_breakaway(PyObject *self, PyObject *args)
{
    unsigned int run;
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "IO", &run, &seq))
        return NULL;
    PyObject *fast = PySequence_Fast(seq, "breakaway entries must be a sequence");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    const char **entries = PyMem_Calloc(n ? (size_t)n : 1, sizeof *entries);
    if (!entries) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!(entries[i] = PyBytes_AsString(PySequence_Fast_GET_ITEM(fast, i)))) {
            PyMem_Free(entries);
            Py_DECREF(fast);
            return NULL;
        }
    char err[256];
    int rc = sbx_ebpf_run_breakaway(run, entries, (size_t)n, err, sizeof err);
    PyMem_Free(entries);
    Py_DECREF(fast);
    if (rc < 0) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_run_wait(PyObject *self, PyObject *args)
{
    unsigned int run;
    double timeout;
    if (!PyArg_ParseTuple(args, "Id", &run, &timeout))
        return NULL;
    int done;
    Py_BEGIN_ALLOW_THREADS
    done = sbx_ebpf_run_wait(run, timeout);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(done);
}

static PyObject *py_run_kill(PyObject *self, PyObject *args)
{
    unsigned int run;
    if (!PyArg_ParseTuple(args, "I", &run))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    sbx_ebpf_run_kill(run);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_run_end(PyObject *self, PyObject *args)
{
    unsigned int run;
    if (!PyArg_ParseTuple(args, "I", &run))
        return NULL;
    struct sbx_result *res;
    Py_BEGIN_ALLOW_THREADS
    res = sbx_ebpf_run_end(run);
    Py_END_ALLOW_THREADS
    if (!res) {
        PyErr_Format(PyExc_ValueError, "no such run: %u", run);
        return NULL;
    }
    PyObject *d = sbx_result_to_py(res);
    sbx_result_free(res);
    return d;
}

static PyObject *py_set_attached(PyObject *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = sbx_ebpf_set_attached(on);
    Py_END_ALLOW_THREADS
    if (rc) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"ebpf_load", py_ebpf_load, METH_NOARGS,
     "Load the BPF programs once per process; OSError(errno, reason) on failure."},
    {"ebpf_run_begin", py_run_begin, METH_NOARGS, "Start a run; returns its id."},
    {"ebpf_set_attached", py_set_attached, METH_O,
     "Benchmarks only: detach (False) or re-attach (True) the loaded programs."},
    {"ebpf_spawner_set", py_spawner_set, METH_VARARGS,
     "Children the calling thread forks from now on belong to run."},
    {"ebpf_spawner_clear", py_spawner_clear, METH_NOARGS,
     "The calling thread stops being a spawner."},
    {"ebpf_track_self", py_track_self, METH_VARARGS,
     "Trace every thread of this process for run; returns their tids."},
    {"ebpf_untrack", py_untrack, METH_O, "Stop tracing the given tids."},
    {"ebpf_run_breakaway", py_run_breakaway, METH_VARARGS,
     "Declare the run's breakaway names and paths (bytes), matched at exec."},
    {"ebpf_run_wait", py_run_wait, METH_VARARGS,
     "Wait (timeout seconds, <0 forever) until every task of the run exited."},
    {"ebpf_run_kill", py_run_kill, METH_VARARGS, "SIGKILL every task of the run."},
    {"ebpf_run_end", py_run_end, METH_VARARGS,
     "Finish the run; returns its paths, execs, completeness and warnings."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "sandbox_py._core",
    "C core of sandbox_py: the Linux eBPF backend.", -1, methods,
};

PyMODINIT_FUNC PyInit__core(void)
{
    return PyModule_Create(&moduledef);
}
