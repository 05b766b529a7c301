/* STUB */
#include "proxy.h"
int proxy_init_module(PyObject *module, pseud_state *st) { (void)module; (void)st; return 0; }
PyObject *proxy_new(pseud_state *st, PyObject *rpc, PyObject *peer, PyObject *name)
{ (void)st; (void)rpc; (void)peer; (void)name; PyErr_SetString(PyExc_NotImplementedError, "proxy"); return NULL; }
