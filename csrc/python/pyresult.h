/* pyresult.h — an sbx_result as the Python dict every backend's session
 * returns from finish(): reads, writes, probes, enumerations (lists of str,
 * decoded like os.fsdecode), execs (list of (pid, ppid, path, argv)),
 * complete (bool), warnings (list of str), status (int or None),
 * processes (list of (pid, ppid, parent, path, argv, cwd, returncode,
 * reads, writes, probes, enumerations), see result.h). */
#ifndef SBX_PYRESULT_H
#define SBX_PYRESULT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "result.h"

PyObject *sbx_result_to_py(const struct sbx_result *r);

#endif
