/* pyresult.c — see pyresult.h. */
#include "pyresult.h"

/* The str objects made for the run's paths, by the address of the path's
 * bytes: a process's own set refers to the run's copy of each path
 * (sbx_pathset_add_both), so its lists reuse those objects instead of
 * decoding every path again (a storm of a million paths: one str each). */
struct strcache {
    const char **keys;
    PyObject **vals;        /* borrowed: the run's lists hold them */
    size_t cap;             /* power of two; 0 = no cache */
};

static size_t cache_slot(const struct strcache *c, const char *k)
{
    size_t i = ((uintptr_t)k >> 4) * 0x9E3779B97F4A7C15ull >> 20 & (c->cap - 1);
    while (c->keys[i] && c->keys[i] != k)
        i = (i + 1) & (c->cap - 1);
    return i;
}

struct split {
    PyObject *lists[4];     /* reads, writes, probes, enumerations */
    struct strcache *cache;
    int fill;               /* 1: put the new objects in the cache; 0: look there first */
};

static int visit(void *ctx, const char *path, size_t len, unsigned cats)
{
    struct split *s = ctx;
    struct strcache *c = s->cache;
    PyObject *str = NULL;
    size_t slot = 0;
    if (c && c->cap) {
        slot = cache_slot(c, path);
        if (!s->fill && c->keys[slot])
            str = Py_NewRef(c->vals[slot]);
    }
    if (!str && !(str = PyUnicode_DecodeFSDefaultAndSize(path, (Py_ssize_t)len)))
        return -1;
    static const unsigned bits[4] = {SBX_READ, SBX_WRITE, SBX_PROBE, SBX_ENUM};
    for (int i = 0; i < 4; i++)
        if ((cats & bits[i]) && PyList_Append(s->lists[i], str) < 0) {
            Py_DECREF(str);
            return -1;
        }
    if (c && c->cap && s->fill && !c->keys[slot]) {
        c->keys[slot] = path;
        c->vals[slot] = str;        /* the lists keep it alive */
    }
    Py_DECREF(str);
    return 0;
}

static PyObject *exec_to_py(const struct sbx_exec *e)
{
    PyObject *argv = PyList_New((Py_ssize_t)e->argc);
    if (!argv)
        return NULL;
    for (size_t i = 0; i < e->argc; i++) {
        PyObject *a = PyUnicode_DecodeFSDefault(e->argv[i]);
        if (!a) {
            Py_DECREF(argv);
            return NULL;
        }
        PyList_SET_ITEM(argv, (Py_ssize_t)i, a);
    }
    PyObject *path = PyUnicode_DecodeFSDefault(e->path);
    if (!path) {
        Py_DECREF(argv);
        return NULL;
    }
    return Py_BuildValue("(LLNN)", (long long)e->pid, (long long)e->ppid, path, argv);
}

/* A refused access: (path, "read" | "write") for Result.denied. */
static int visit_refused(void *ctx, const char *path, size_t len, unsigned cats)
{
    PyObject *list = ctx;
    static const unsigned bits[2] = {SBX_READ, SBX_WRITE};
    static const char *names[2] = {"read", "write"};
    for (int i = 0; i < 2; i++) {
        if (!(cats & bits[i]))
            continue;
        PyObject *t = Py_BuildValue("(Ns)", PyUnicode_DecodeFSDefaultAndSize(
                                                path, (Py_ssize_t)len), names[i]);
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            return -1;
        }
        Py_DECREF(t);
    }
    return 0;
}

static PyObject *str_or_none(const char *s)
{
    return s ? PyUnicode_DecodeFSDefault(s) : Py_NewRef(Py_None);
}

/* (pid, ppid, parent, path, argv, cwd, returncode, reads, writes, probes,
 * enumerations): parent, path, cwd and returncode may be None. */
static PyObject *process_to_py(const struct sbx_process *p, struct strcache *cache)
{
    struct split s = {{NULL}, cache, 0};
    PyObject *argv = NULL, *t = NULL;
    for (int i = 0; i < 4; i++)
        if (!(s.lists[i] = PyList_New(0)))
            goto done;
    if (sbx_pathset_foreach(p->paths, visit, &s) != 0) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    if (!(argv = PyList_New((Py_ssize_t)p->argc)))
        goto done;
    for (size_t i = 0; i < p->argc; i++) {
        PyObject *a = PyUnicode_DecodeFSDefault(p->argv[i]);
        if (!a)
            goto done;
        PyList_SET_ITEM(argv, (Py_ssize_t)i, a);
    }
    t = Py_BuildValue("(LLNNONNOOOO)", (long long)p->pid, (long long)p->ppid,
                      p->parent >= 0 ? PyLong_FromLongLong(p->parent) : Py_NewRef(Py_None),
                      str_or_none(p->path), argv, str_or_none(p->cwd),
                      p->has_status ? PyLong_FromLong(p->status) : Py_NewRef(Py_None),
                      s.lists[0], s.lists[1], s.lists[2], s.lists[3]);
done:
    Py_XDECREF(argv);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(s.lists[i]);
    return t;
}

static int add_processes(PyObject *d, struct sbx_result *r, struct strcache *cache)
{
    sbx_result_settle_processes(r);
    PyObject *list = PyList_New(0);
    if (!list)
        return -1;
    for (size_t i = 0; i < r->nprocs; i++) {
        PyObject *p = process_to_py(&r->procs[i], cache);
        if (!p || PyList_Append(list, p) < 0) {
            Py_XDECREF(p);
            Py_DECREF(list);
            return -1;
        }
        Py_DECREF(p);
    }
    int rc = PyDict_SetItemString(d, "processes", list);
    Py_DECREF(list);
    return rc;
}

PyObject *sbx_result_to_py(const struct sbx_result *r)
{
    static const char *names[4] = {"reads", "writes", "probes", "enumerations"};
    struct strcache cache = {NULL, NULL, 0};
    struct split s = {{NULL}, &cache, 1};
    PyObject *d = PyDict_New(), *execs = NULL, *breakaways = NULL, *warnings = NULL,
             *refused = NULL;
    if (!d)
        return NULL;
    if (r->nprocs) {
        /* no cache (the paths decoded again) when there is no room for one */
        size_t cap = 16;
        while (cap < 2 * sbx_pathset_count(r->paths))
            cap *= 2;
        cache.keys = calloc(cap, sizeof *cache.keys);
        cache.vals = malloc(cap * sizeof *cache.vals);
        if (cache.keys && cache.vals)
            cache.cap = cap;
    }
    for (int i = 0; i < 4; i++)
        if (!(s.lists[i] = PyList_New(0)))
            goto fail;
    /* unsorted: every consumer makes sets of these lists (PathSet sorts
     * when iterated), and sorting a storm's million paths cost ~0.2 s */
    if (sbx_pathset_foreach(r->paths, visit, &s) != 0) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto fail;
    }
    for (int i = 0; i < 4; i++)
        if (PyDict_SetItemString(d, names[i], s.lists[i]) < 0)
            goto fail;
    if (!(execs = PyList_New(0)) || !(breakaways = PyList_New(0)))
        goto fail;
    for (size_t i = 0; i < r->nexecs; i++) {
        PyObject *e = exec_to_py(&r->execs[i]);
        if (!e || PyList_Append(r->execs[i].breakaway ? breakaways : execs, e) < 0) {
            Py_XDECREF(e);
            goto fail;
        }
        Py_DECREF(e);
    }
    if (!(warnings = PyList_New(0)))
        goto fail;
    for (size_t i = 0; i < r->nwarnings; i++) {
        PyObject *w = PyUnicode_DecodeFSDefault(r->warnings[i]);
        if (!w || PyList_Append(warnings, w) < 0) {
            Py_XDECREF(w);
            goto fail;
        }
        Py_DECREF(w);
    }
    if (PyDict_SetItemString(d, "execs", execs) < 0 ||
        PyDict_SetItemString(d, "breakaways", breakaways) < 0 ||
        PyDict_SetItemString(d, "warnings", warnings) < 0 ||
        PyDict_SetItemString(d, "complete", r->complete ? Py_True : Py_False) < 0)
        goto fail;
    PyObject *status = r->has_status ? PyLong_FromLong(r->status) : Py_NewRef(Py_None);
    if (!status || PyDict_SetItemString(d, "status", status) < 0) {
        Py_XDECREF(status);
        goto fail;
    }
    Py_DECREF(status);
    if (!(refused = PyList_New(0)) ||
        sbx_pathset_foreach_refused(r->paths, visit_refused, refused) != 0 ||
        PyDict_SetItemString(d, "refused", refused) < 0) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto fail;
    }
    /* the records are settled (do-nothing forks dropped) when handed out */
    if (add_processes(d, (struct sbx_result *)r, &cache) < 0)
        goto fail;
    free(cache.keys);
    free(cache.vals);
    cache.keys = NULL;
    cache.vals = NULL;
    for (int i = 0; i < 4; i++)
        Py_DECREF(s.lists[i]);
    Py_DECREF(execs);
    Py_DECREF(breakaways);
    Py_DECREF(warnings);
    Py_DECREF(refused);
    return d;
fail:
    free(cache.keys);
    free(cache.vals);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(s.lists[i]);
    Py_XDECREF(execs);
    Py_XDECREF(breakaways);
    Py_XDECREF(warnings);
    Py_XDECREF(refused);
    Py_DECREF(d);
    return NULL;
}
