/* STUB: replaced by the registry implementation. */
#include "registry.h"
int registry_init_module(PyObject *module, pseud_state *st) { (void)module; (void)st; return 0; }
PyObject *registry_lookup(pseud_state *st, PyObject *registry, PyObject *name, PyObject *kw)
{ (void)st; (void)registry; (void)kw; PyErr_SetObject(PyExc_NotImplementedError, name); return NULL; }
PyObject *rpccallable_func(PyObject *c) { return c; }
int rpccallable_with_identity(PyObject *c) { (void)c; return 0; }
