/* STUB: replaced by the future implementation. */
#include "future.h"
int future_init_module(PyObject *module, pseud_state *st) { (void)module; (void)st; return 0; }
PyObject *future_new(pseud_state *st) { (void)st; PyErr_SetString(PyExc_NotImplementedError, "future"); return NULL; }
int future_set_result(PyObject *f, PyObject *v) { (void)f; (void)v; return 0; }
int future_set_exception(PyObject *f, PyObject *e) { (void)f; (void)e; return 0; }
